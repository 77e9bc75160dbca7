"""tfptlm.layers."""
