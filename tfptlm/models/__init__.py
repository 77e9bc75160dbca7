"""tfptlm.models."""
