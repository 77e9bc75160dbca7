"""End to end: ``tfptlm pretrain`` with the GPT, T5 and BART objectives, then ``tfptlm generate``."""

import json
import math

import keras
import pytest

from tfptlm.cli import main
from tfptlm.config import PretrainConfig, dump_config
from tfptlm.models.bert import BertBackbone
from tfptlm.tasks.bert_pretrainer import BertPretrainer
from tfptlm.tokenizers import WordPieceTokenizer
from tfptlm.generation.text import load_generator
from tfptlm.tasks.causal_lm import CausalLM
from tfptlm.tasks.seq2seq_lm import Seq2SeqLM
from test_pretrain_cli import write_corpus

TINY = [
    "--set", "model.num_layers=1", "--set", "model.hidden_dim=32",
    "--set", "model.num_heads=2", "--set", "model.intermediate_dim=64",
    "--set", "model.max_sequence_length=64",
    "--set", "tokenizer.vocab_size=400", "--set", "data.max_sequence_length=32",
    "--set", "data.target_length=16", "--set", "training.batch_size=4",
    "--set", "training.eval_batches=2", "--set", "training.checkpoint_every=2",
]

OBJECTIVES = [
    ("clm", "gpt", CausalLM, "auto"),  # byte-level BPE
    ("span_corruption", "t5", Seq2SeqLM, "auto"),  # SentencePiece
    ("text_infilling", "bart", Seq2SeqLM, "sentencepiece"),  # byte BPE is tested with GPT
]


def pretrain_args(train, out, steps, objective, family, tokenizer):
    return ["pretrain", "--train-files", str(train), "--steps", str(steps), "--output-dir", str(out),
            "--set", f"objective={objective}", "--set", f"model.family={family}",
            "--set", f"tokenizer.type={tokenizer}", *TINY]


@pytest.mark.parametrize("objective,family,task_class,tokenizer", OBJECTIVES)
def test_pretrain_then_generate(tmp_path, capsys, objective, family, task_class, tokenizer):
    train = write_corpus(tmp_path / "train.txt", documents=16)
    out = tmp_path / "run"
    assert main(pretrain_args(train, out, 4, objective, family, tokenizer)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["objective"] == objective
    assert math.isfinite(metrics["perplexity"]) and metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    assert "perplexity" in capsys.readouterr().out
    pretrainer = keras.saving.load_model(out / "pretrainer.keras", compile=False)
    assert isinstance(pretrainer, task_class)
    assert main(["generate", "--model", str(out), "--prompt", "alpha beta", "--prompt", "gamma",
                 "--max-new-tokens", "5", "--strategy", "beam", "--num-beams", "2"]) == 0
    assert capsys.readouterr().out.count(" -> ") == 2


def test_gpt_pretraining_resumes_and_generates_the_same_with_and_without_the_cache(tmp_path, capsys):
    train = write_corpus(tmp_path / "train.txt", documents=16)
    out = tmp_path / "run"
    assert main(pretrain_args(train, out, 2, "clm", "gpt", "sentencepiece")) == 0
    assert main(pretrain_args(train, out, 4, "clm", "gpt", "sentencepiece")) == 0
    assert json.loads((out / "metrics.json").read_text())["steps_this_run"] == 2
    assert "Resuming" in capsys.readouterr().out
    generator = load_generator(out)
    greedy = generator.generate(["alpha beta", "gamma"], max_new_tokens=6)
    assert greedy == generator.generate(["alpha beta", "gamma"], max_new_tokens=6, use_cache=False)
    assert greedy[:1] == generator.generate(["alpha beta"], max_new_tokens=6, strategy="beam", num_beams=1)


def test_generate_rejects_unknown_strategies_and_bert_models(tmp_path, capsys):
    assert main(["generate", "--model", str(tmp_path), "--prompt", "x", "--strategy", "nucleus"]) == 1
    assert "unknown --strategy 'nucleus'" in capsys.readouterr().err
    out = tmp_path / "bert"  # a pretraining directory of an (untrained) BERT
    out.mkdir()
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "x"]
    WordPieceTokenizer(vocabulary).save(out / "tokenizer")
    backbone = BertBackbone(len(vocabulary), num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32)
    BertPretrainer(backbone).save(out / "pretrainer.keras")
    dump_config(PretrainConfig(), out / "config.yaml")
    assert main(["generate", "--model", str(out), "--prompt", "x"]) == 1
    assert "does not generate text" in capsys.readouterr().err


def test_objective_must_fit_the_model_family(tmp_path, capsys):
    train = write_corpus(tmp_path / "train.txt")
    args = ["pretrain", "--train-files", str(train), "--output-dir", str(tmp_path / "x"),
            "--set", "objective=clm", "--set", "model.family=bert"]
    assert main(args) == 1
    assert "objective clm trains model.family gpt" in capsys.readouterr().err
