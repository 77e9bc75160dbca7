"""End to end: ``tfptlm finetune`` of a T5 (seq2seq) and a GPT (causal LM) on tiny files."""

import gzip
import json
import math
import random

import pytest

from tfptlm.cli import main
from tfptlm.finetuning import load_finetuned, predict_examples
from tfptlm.metrics.generation import bleu, rouge

WORDS = "red blue green cat dog bird runs sleeps eats fast slow big".split()

# SentencePiece everywhere: byte BPE takes seconds to trace in every new process.
TINY = [
    "--set", "backbone.config={num_layers: 1, hidden_dim: 32, num_heads: 2, intermediate_dim: 64}",
    "--set", "tokenizer.type=sentencepiece", "--set", "tokenizer.vocab_size=200",
    "--set", "data.sequence_length=32",
    "--set", "data.target_length=12", "--set", "training.batch_size=16",
    "--set", "training.learning_rate=0.003", "--set", "data.max_eval_generations=8",
]


def sentences(count, seed):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))) for _ in range(count)]


def test_seq2seq_from_parallel_gzip_files_trains_and_scores_its_generations(tmp_path, capsys):
    """The target is the source; a few epochs of a tiny BART, then BLEU/ROUGE on its generations."""
    for split, count, seed in (("train", 400, 0), ("dev", 16, 1)):
        texts = sentences(count, seed)
        for suffix, lines in ((".src.gz", texts), (".tgt.gz", texts)):
            with gzip.open(tmp_path / f"{split}{suffix}", "wt", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
    out = tmp_path / "run"
    args = ["finetune", "--set", "task=seq2seq", "--set", "backbone.family=bart", *TINY, "--set", "data.format=parallel",
            "--set", "data.source_suffix=.src.gz", "--set", "data.target_suffix=.tgt.gz",
            "--set", "training.epochs=3", "--train-file", str(tmp_path / "train"),
            "--eval-file", str(tmp_path / "dev"), "--output-dir", str(out)]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["generated_examples"] == 8
    # Better than guessing among the ~130 tokens: the model learned something.
    assert metrics["perplexity"] < 40 and metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    generations = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    assert len(generations) == 8 and set(generations[0]) == {"source", "target", "generated"}
    predicted, references = [g["generated"] for g in generations], [g["target"] for g in generations]
    assert metrics["bleu"] == pytest.approx(bleu(predicted, references, "en")["bleu"])
    assert metrics["rougeL"] == pytest.approx(rouge(predicted, references, "en")["rougeL"])
    assert "bleu" in capsys.readouterr().out

    model = load_finetuned(out)
    [answer] = predict_examples(model, model.recipe.raw_examples(["red cat runs"], {}))
    assert answer["source"] == "red cat runs" and isinstance(answer["generated"], str)


def test_causal_lm_on_dialogues_and_mbpp_tests_run_in_the_sandbox(tmp_path):
    dialogues = tmp_path / "dialogues.txt"
    dialogues.write_text(
        "".join(f"{a} __eou__ {b} __eou__ {a} __eou__\n" for a, b in zip(sentences(40, 2), sentences(40, 3))),
        encoding="utf-8",
    )
    out = tmp_path / "dialogue"
    assert main(["finetune", "--set", "task=causal_lm", *TINY, "--set", "data.format=dialogue",
                 "--set", "training.max_steps=4", "--train-file", str(dialogues),
                 "--output-dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "causal_lm" and "bleu" in metrics and metrics["perplexity"] > 1

    tasks = tmp_path / "mbpp.jsonl"
    tasks.write_text("".join(
        json.dumps({"task_id": i, "text": f"Write a function f{i} that adds {i}.",
                    "code": f"def f{i}(x):\n    return x + {i}", "test_setup_code": "",
                    "test_list": [f"assert f{i}(1) == {1 + i}", f"assert f{i}(0) == {i}"]}) + "\n"
        for i in range(1, 21)))
    out = tmp_path / "code"
    assert main(["finetune", "--set", "task=causal_lm", *TINY, "--set", "data.format=mbpp",
                 "--set", "training.max_steps=2", "--train-file", str(tasks),
                 "--set", "data.eval_share=0.2", "--output-dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # An untrained model writes no working code; what matters is that its output ran.
    assert metrics["test_pass_share"] == 0.0 and metrics["generated_examples"] == 4


def test_parallel_files_of_different_lengths_name_both_files(tmp_path, capsys):
    (tmp_path / "train.en").write_text("a\nb\nc\n", encoding="utf-8")
    (tmp_path / "train.de").write_text("x\ny\n", encoding="utf-8")
    assert main(["finetune", "--set", "task=seq2seq", *TINY, "--set", "data.source_suffix=.en",
                 "--set", "data.target_suffix=.de", "--train-file", str(tmp_path / "train"),
                 "--output-dir", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "train.en" in error and "train.de" in error


@pytest.mark.parametrize("setting", ["backbone.family=gpt2", "task=translation"])
def test_unknown_families_and_tasks_are_config_errors(tmp_path, capsys, setting):
    assert main(["finetune", "--set", setting, "--train-file", "x", "--output-dir", str(tmp_path)]) == 1
    assert "must be one of" in capsys.readouterr().err
