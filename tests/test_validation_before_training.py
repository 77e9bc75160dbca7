"""A bad line deep in a data file (line 2,000) stops the run before any model is built or trained,
naming the file and line."""

import json

import pytest

from test_pretrain_cli import TINY as PRETRAIN_TINY, write_corpus
from tfptlm.cli import main

BAD_LINE = 2000
LINES = 2500


def never(*args, **kwargs):
    raise AssertionError("the run went past validation: a model or tokenizer was being prepared")


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if a run gets as far as preparing a model or a tokenizer."""
    import tfptlm.finetuning.run as finetuning
    import tfptlm.pretraining as pretraining

    monkeypatch.setattr(finetuning, "prepare_backbone", never)
    monkeypatch.setattr(pretraining, "prepare_tokenizer", never)


def with_bad_line(good_line, bad_line: bytes, header: str | None = None) -> bytes:
    """``LINES`` lines (the header first, if any) with ``bad_line`` as line ``BAD_LINE``."""
    lines = ([header] if header else []) + [good_line(i) for i in range(LINES)]
    raw = [line.encode("utf-8") for line in lines[:LINES]]
    raw[BAD_LINE - 1] = bad_line
    return b"\n".join(raw) + b"\n"


def review(i):
    return f"the film number {i} was {'great' if i % 2 else 'dull'}\t{'pos' if i % 2 else 'neg'}"


CLASSIFICATION = {
    "invalid-utf8": ("train.tsv", b"the film was \xff\xfe great\tpos", [], "invalid UTF-8"),
    "missing-column": ("train.tsv", b"a row without its label column", [], "too few fields"),
    "unknown-label": ("train.tsv", b"the film was great\tpostive", ["--set", "data.label_names=[neg, pos]"],
                      "label 'postive' is not one of the label names"),
    "empty-text": ("train.tsv", b" \tpos", [], "empty text"),
    "csv-missing-column": ("train.csv", b"only text here", [], "too few fields"),
    "jsonl-invalid-json": ("train.jsonl", b'{"text": "good film", "label": "pos"', [], "not valid JSON"),
    "jsonl-missing-label": ("train.jsonl", b'{"text": "good film"}', [], "missing label"),
}


@pytest.mark.parametrize("name", list(CLASSIFICATION))
def test_classification_file_with_a_bad_line_fails_before_training(tmp_path, capsys, no_training, name):
    file_name, bad, options, message = CLASSIFICATION[name]
    train = tmp_path / file_name
    if file_name.endswith(".jsonl"):
        text, label = zip(*(review(i).split("\t") for i in range(LINES)))
        train.write_bytes(with_bad_line(lambda i: json.dumps({"text": text[i], "label": label[i]}), bad))
    elif file_name.endswith(".csv"):
        train.write_bytes(with_bad_line(lambda i: review(i).replace("\t", ","), bad, header="text,label"))
    else:
        train.write_bytes(with_bad_line(review, bad, header="text\tlabel"))
    out = tmp_path / "run"
    assert main(["finetune", "--train-file", str(train), "--output-dir", str(out), *options]) == 1
    error = capsys.readouterr().err
    assert f"{train}:{BAD_LINE}: {message}" in error, error
    assert not out.exists()


def test_a_bad_line_in_the_evaluation_file_fails_before_training(tmp_path, capsys, no_training):
    train, evaluation = tmp_path / "train.tsv", tmp_path / "eval.tsv"
    train.write_bytes(with_bad_line(review, review(1).encode(), header="text\tlabel"))
    evaluation.write_bytes(with_bad_line(review, b"no label here", header="text\tlabel"))
    assert main(["finetune", "--train-file", str(train), "--eval-file", str(evaluation),
                 "--output-dir", str(tmp_path / "run")]) == 1
    assert f"{evaluation}:{BAD_LINE}: too few fields" in capsys.readouterr().err


def token_line(i):
    return "" if i % 5 == 3 else f"word{i} {'B-PER' if i % 5 == 0 else 'O'}"


@pytest.mark.parametrize("bad, message", [
    (b"word X-PER", "tag 'X-PER' is not valid in the iob2 scheme"),
    (b"lonely", "too few columns"),
    (b"caf\xe9 O", "invalid UTF-8"),
    (b"word B-ORG", "tag 'B-ORG' is not one of the label names"),
], ids=["invalid-tag", "missing-column", "invalid-utf8", "unknown-tag"])
def test_conll_file_with_a_bad_line_fails_before_training(tmp_path, capsys, no_training, bad, message):
    train = tmp_path / "train.conll"
    train.write_bytes(with_bad_line(token_line, bad))
    assert token_line(BAD_LINE - 1)  # the bad line replaces a token line, not a blank one
    assert main(["finetune", "--set", "task=token_classification", "--set", "data.label_names=[O, B-PER]",
                 "--train-file", str(train), "--output-dir", str(tmp_path / "run")]) == 1
    assert f"{train}:{BAD_LINE}: {message}" in capsys.readouterr().err


def test_squad_file_with_invalid_json_deep_inside_fails_before_training(tmp_path, capsys, no_training):
    paragraphs = [{"context": f"alice lives in paris number {i} .",
                   "qas": [{"id": f"q{i}", "question": "where does alice live ?",
                            "answers": [{"text": "paris", "answer_start": 15}]}]} for i in range(300)]
    text = json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}, indent=1)
    lines = text.split("\n")
    lines[BAD_LINE - 1] = lines[BAD_LINE - 1].rstrip(",") + ' "oops"'
    train = tmp_path / "train.json"
    train.write_text("\n".join(lines))
    assert main(["finetune", "--set", "task=question_answering", "--train-file", str(train),
                 "--output-dir", str(tmp_path / "run")]) == 1
    assert f"{train}:{BAD_LINE}: not valid JSON" in capsys.readouterr().err


def test_squad_answer_missing_from_its_context_deep_inside_is_named(tmp_path, capsys, no_training):
    paragraphs = [{"context": f"alice lives in paris number {i} .",
                   "qas": [{"id": f"q{i}", "question": "where does alice live ?",
                            "answers": [{"text": "paris", "answer_start": 15}]}]} for i in range(300)]
    paragraphs[250]["qas"][0]["answers"][0]["text"] = "rome"
    train = tmp_path / "train.json"
    train.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}))
    assert main(["finetune", "--set", "task=question_answering", "--train-file", str(train),
                 "--output-dir", str(tmp_path / "run")]) == 1
    error = capsys.readouterr().err
    assert f"{train}: data[0].paragraphs[250]" in error and "q250" in error, error


def test_seq2seq_pairs_with_a_missing_target_deep_inside_fail_before_training(tmp_path, capsys, no_training):
    train = tmp_path / "train.tsv"
    train.write_bytes(with_bad_line(lambda i: f"hello {i}\thallo {i}", b"hello alone", header="source\ttarget"))
    assert main(["finetune", "--set", "task=seq2seq", "--train-file", str(train),
                 "--output-dir", str(tmp_path / "run")]) == 1
    assert f"{train}:{BAD_LINE}: too few fields" in capsys.readouterr().err


def test_pretraining_corpus_with_invalid_utf8_deep_inside_fails_before_training(tmp_path, capsys, no_training):
    corpus = write_corpus(tmp_path / "train.txt", documents=420)
    lines = corpus.read_bytes().split(b"\n")
    assert len(lines) > LINES and lines[BAD_LINE - 1]
    lines[BAD_LINE - 1] = b"alpha \xc3\x28 beta ."
    corpus.write_bytes(b"\n".join(lines))
    out = tmp_path / "run"
    assert main(["pretrain", "--train-files", str(corpus), "--steps", "2", "--output-dir", str(out),
                 *PRETRAIN_TINY]) == 1
    assert f"{corpus}, line {BAD_LINE}: invalid UTF-8" in capsys.readouterr().err
    assert not out.exists()
