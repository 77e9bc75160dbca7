"""tfptlm: pretrain, fine-tune and ship Transformer language models with Keras 3 on TensorFlow."""

import os

# Keras reads KERAS_BACKEND when it is first imported; respect a user's choice.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
