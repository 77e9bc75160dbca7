"""tfptlm.tokenizers."""
