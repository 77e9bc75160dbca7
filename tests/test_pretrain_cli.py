"""End to end: ``tfptlm tokenizer train`` and ``tfptlm pretrain`` on tiny corpora, resume, bad input."""

import json

import keras
import numpy as np
import pytest

from tfptlm.cli import main

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()

# A model small enough to train in seconds.
TINY = [
    "--set", "model.num_layers=1", "--set", "model.hidden_dim=32",
    "--set", "model.num_heads=2", "--set", "model.intermediate_dim=64",
    "--set", "tokenizer.vocab_size=200", "--set", "data.max_sequence_length=32",
    "--set", "data.max_predictions=5", "--set", "training.batch_size=4",
    "--set", "training.eval_batches=2", "--set", "training.checkpoint_every=2",
]


def write_corpus(path, documents=12, sentences=5, seed=0):
    """BERT format: each document cycles through the words from its own offset."""
    rng = np.random.default_rng(seed)
    lines = []
    for d in range(documents):
        for s in range(sentences):
            start = int(rng.integers(len(WORDS)))
            lines.append(" ".join(WORDS[(start + i) % len(WORDS)] for i in range(4 + s % 3)) + " .")
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pretrain_args(train, output_dir, steps, *extra):
    return ["pretrain", "--train-files", str(train), "--steps", str(steps),
            "--output-dir", str(output_dir), *TINY, *extra]


def test_tokenizer_train_command_writes_a_vocabulary(tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus.txt")
    assert main(["tokenizer", "train", "--files", str(corpus), "--vocab-size", "100",
                 "--output", str(tmp_path / "vocab")]) == 0
    vocabulary = (tmp_path / "vocab" / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert vocabulary[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert set(WORDS) <= set(vocabulary)
    assert "Wrote" in capsys.readouterr().out


def test_pretrain_writes_outputs_then_resumes(tmp_path, capsys):
    train = write_corpus(tmp_path / "train.txt")
    evaluation = write_corpus(tmp_path / "eval.txt", documents=4, seed=1)
    out = tmp_path / "run"
    assert main(pretrain_args(train, out, 4, "--eval-files", str(evaluation))) == 0

    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("mlm_accuracy", "nsp_accuracy", "mlm_loss", "steps", "tokens_per_second"):
        assert key in metrics
    assert metrics["steps"] == 4
    assert 0.0 <= metrics["mlm_accuracy"] <= 1.0 and metrics["mlm_loss"] > 0
    for name in ("config.yaml", "tokenizer/vocab.txt", "pretrainer.keras", "backbone.keras",
                 "history.csv", "checkpoints/checkpoint"):
        assert (out / name).exists(), name
    history = (out / "history.csv").read_text().strip().split("\n")
    assert len(history) == 1 + 2  # header + one row per checkpoint interval
    assert "val_mlm_accuracy" in history[0]

    # Same command with more steps: continues from step 4 instead of starting over.
    assert main(pretrain_args(train, out, 6, "--eval-files", str(evaluation))) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["steps"], metrics["steps_this_run"]) == (6, 2)
    assert len((out / "history.csv").read_text().strip().split("\n")) == 1 + 3

    # The saved models reload and agree with each other.
    pretrainer = keras.saving.load_model(out / "pretrainer.keras")
    backbone = keras.saving.load_model(out / "backbone.keras")
    inputs = {
        "token_ids": np.array([[2, 7, 8, 9, 3, 10, 3, 0]], "int32"),
        "segment_ids": np.array([[0, 0, 0, 0, 0, 1, 1, 0]], "int32"),
        "padding_mask": np.array([[1, 1, 1, 1, 1, 1, 1, 0]], "int32"),
    }
    np.testing.assert_allclose(
        pretrainer.backbone(inputs)["sequence_output"],
        backbone(inputs)["sequence_output"], atol=1e-6,
    )
    assert pretrainer.optimizer.iterations.numpy() == 6

    # Resuming with another model size is refused before any work, naming the key.
    capsys.readouterr()
    assert main(pretrain_args(train, out, 8, "--set", "model.hidden_dim=64")) == 1
    assert "model.hidden_dim" in capsys.readouterr().err


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: None, "missing.txt"),
        (lambda p: p.write_bytes(b"good line\n\nsecond doc\n\xff\xfe bad\n"), "line 4"),
        (lambda p: p.write_text("only one document .\nstill the same one .\n"), "documents"),
        (lambda p: p.write_text(""), "empty"),
        (lambda p: p.write_text("a b .\nc d .\n\ne f .\ng h .\n\ni j .\n"), "too few to hold out"),
    ],
    ids=["missing-file", "invalid-utf8", "one-document", "empty", "too-few-to-hold-out"],
)
def test_bad_corpus_stops_before_training(tmp_path, capsys, setup, message):
    path = tmp_path / "missing.txt"
    setup(path)
    assert main(pretrain_args(path, tmp_path / "run", 2)) == 1
    error = capsys.readouterr().err
    assert message in error
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_bad_config_key_stops_with_its_name(tmp_path, capsys):
    train = write_corpus(tmp_path / "train.txt")
    assert main(pretrain_args(train, tmp_path / "run", 2, "--set", "training.stepz=3")) == 1
    assert "unknown key 'training.stepz'" in capsys.readouterr().err


@pytest.mark.slow  # pretrain + fine-tune + both exports: each part has its own tests
def test_quickstart_runs_on_the_bundled_corpus(tmp_path, capsys):
    quick = tmp_path / "quick"
    assert main(["quickstart", "--output-dir", str(quick), "--steps", "2", "--finetune-steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "Quickstart done" in out and "held-out MLM accuracy" in out
    assert "Sentiment (SST-2 dev, 872 sentences): accuracy" in out
    metrics = json.loads((quick / "metrics.json").read_text())
    assert metrics["steps"] == 2
    assert metrics["train_documents"] > 100 and metrics["eval_documents"] == 20
    sentiment = json.loads((quick / "sentiment" / "metrics.json").read_text())
    assert sentiment["steps"] == 2 and sentiment["label_names"] == ["negative", "positive"]
    assert sentiment["train_examples"] == 2000 and sentiment["eval_examples"] == 872
    assert out.count("SavedModel") == 2 and "TFLite int8" in out
    assert (quick / "exports" / "saved_model" / "1" / "saved_model.pb").is_file()
    assert (quick / "exports" / "tflite" / "1" / "model.tflite").is_file()
