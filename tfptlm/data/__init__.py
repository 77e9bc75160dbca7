"""tfptlm.data."""
