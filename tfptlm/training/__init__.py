"""tfptlm.training."""
