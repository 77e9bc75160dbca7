"""Canary exposure audit (``tfptlm audit canaries``): the formula, the insertion and a tiny end-to-end run."""

import json
import math
import random

import numpy as np
import pytest

from tfptlm.analysis.canaries import (
    candidate_secrets, exposure, insert_canaries, make_canary, read_paragraphs,
)
from tfptlm.cli import main
from tfptlm.config import ConfigError, load_config
from tfptlm.analysis.canaries import run_canary_audit
from test_generative_pretraining import TINY
from test_pretrain_cli import write_corpus


def test_exposure_of_hand_made_log_perplexities():
    others = np.linspace(10.0, 20.0, 999)
    assert exposure(1.0, others) == (1, pytest.approx(math.log2(1000)))  # ranked first among 1,000
    assert exposure(25.0, others) == (1000, pytest.approx(0.0))          # ranked last
    rank, value = exposure(15.0, others)                                 # in the middle
    assert rank == 1 + int(np.sum(others <= 15.0)) and value == pytest.approx(math.log2(1000 / rank))
    assert exposure(10.0, others)[0] == 2  # a tie counts against the canary


def test_canaries_have_the_format_and_are_inserted_the_right_number_of_times():
    canary = make_canary(random.Random(3), digits=5)
    assert canary.startswith("my secret number is ") and len(canary.split()) == 4 + 5
    documents = [f"document {i}" for i in range(50)]
    corpus = insert_canaries(documents, {"canary a": 1, "canary b": 4, "canary c": 16}, seed=1)
    assert [corpus.count(c) for c in ("canary a", "canary b", "canary c")] == [1, 4, 16]
    assert [d for d in corpus if d.startswith("document")] == documents  # order kept, nothing lost


def test_candidates_are_distinct_same_format_or_the_whole_space():
    others = candidate_secrets("123456", 1000, random.Random(0))
    assert len(set(others)) == 999 and "123456" not in others and all(len(o) == 6 for o in others)
    assert sorted(candidate_secrets("07", 1000, random.Random(0)) + ["07"]) == [f"{n:02d}" for n in range(100)]


def test_paragraphs_are_blank_line_separated_documents(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b.\nc d.\n\ne f.\n")
    assert read_paragraphs([str(corpus)], False) == ["a b.\nc d.", "e f."]
    assert read_paragraphs([str(corpus)], True) == ["a b.", "c d.", "e f."]


def test_an_mlm_config_is_refused_with_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="needs a causal LM"):
        run_canary_audit(load_config(), tmp_path)


def test_a_tiny_audit_writes_a_well_formed_report(tmp_path, capsys):
    train = tmp_path / "train.txt"
    write_corpus(train)
    config = tmp_path / "gpt.yaml"
    config.write_text(f"objective: clm\nmodel: {{family: gpt}}\ndata: {{train_files: [{train}]}}\n")
    out = tmp_path / "audit"
    sets = [item for item in TINY if item != "--set"]
    args = ["audit", "canaries", "--config", str(config), "--output-dir", str(out), "--repetitions", "1", "3",
            "--candidates", "50", "--digits", "3", "--set", "training.steps=3"]
    assert main(args + [part for s in sets for part in ("--set", s)]) == 0
    report = json.loads((out / "canaries.json").read_text())
    rows = report["canaries"]
    assert [row["repetitions"] for row in rows] == [1, 3]
    for row in rows:
        assert 1 <= row["rank"] <= 50 and row["candidates"] == 50
        assert row["exposure"] == pytest.approx(math.log2(50) - math.log2(row["rank"]))
    text = (out / "corpus_with_canaries.txt").read_text()
    assert [text.count(row["canary"]) for row in rows] == [1, 3]
    assert report["training"]["steps"] == 3
    printed = capsys.readouterr().out
    assert "exposure" in printed and rows[0]["canary"] in printed
