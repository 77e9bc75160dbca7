"""Import pretrained checkpoints from local folders (Hugging Face safetensors)."""
