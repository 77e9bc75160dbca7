"""Import pretrained checkpoints from local folders (Hugging Face safetensors).

Example:

>>> from tfptlm.convert import convert_hf_bert, load_hf_bert
>>> backbone, tokenizer = load_hf_bert("all-MiniLM-L6-v2")   # doctest: +SKIP
>>> convert_hf_bert("all-MiniLM-L6-v2", "minilm")            # doctest: +SKIP
PosixPath('minilm')
"""

from tfptlm.convert.hf_bert import convert_hf_bert, load_hf_bert

__all__ = ["convert_hf_bert", "load_hf_bert"]
