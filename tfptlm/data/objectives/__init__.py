"""tfptlm.data.objectives."""
