"""tfptlm.tasks."""
