"""End to end: ``tfptlm finetune``, ``evaluate``, ``predict`` and ``convert`` on tiny files."""

import csv
import json
import random

from tfptlm.cli import main

POSITIVE = "great wonderful superb lovely excellent".split()
NEGATIVE = "awful terrible boring dull bad".split()

# A BERT small enough to fine-tune in seconds, with a vocabulary learned on the training texts.
TINY = [
    "--set", "backbone.config={num_layers: 1, hidden_dim: 32, num_heads: 2, intermediate_dim: 64}",
    "--set", "tokenizer.vocab_size=150", "--set", "data.sequence_length=32",
    "--set", "training.batch_size=16", "--set", "training.learning_rate=0.002",
]


def reviews(count, seed):
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        label = ["neg", "pos"][i % 2]
        word = rng.choice(POSITIVE if label == "pos" else NEGATIVE)
        rows.append((f"the film was {word}, and the cast {rng.choice(['sang', 'ran'])}", label))
    return rows


def finetune(tmp_path, name, *args):
    out = tmp_path / name
    assert main(["finetune", *TINY, *args, "--output-dir", str(out)]) == 0
    return out, json.loads((out / "metrics.json").read_text())


def test_classification_from_csv_then_evaluate_jsonl_and_predict_tsv(tmp_path, capsys):
    train = tmp_path / "train.csv"
    with open(train, "w", newline="", encoding="utf-8") as f:  # label first, quoted commas
        writer = csv.writer(f)
        writer.writerow(["label", "review"])
        writer.writerows((label, text) for text, label in reviews(200, seed=0))
    out, metrics = finetune(
        tmp_path, "run", "--train-file", str(train), "--set", "data.text_column=review",
        "--set", "training.epochs=8",
    )
    assert metrics["accuracy"] >= 0.9 and metrics["macro_f1"] >= 0.9
    assert metrics["eval_examples"] == 20 and metrics["train_examples"] == 180
    assert metrics["label_names"] == ["neg", "pos"]
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert sum(map(sum, metrics["confusion_matrix"])) == 20

    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(json.dumps({"stars": l, "body": t}) + "\n" for t, l in reviews(30, seed=1)))
    report = tmp_path / "eval.json"
    assert main(["evaluate", "--model", str(out), "--data", str(dev), "--set", "text_column=body",
                 "--set", "label_column=stars", "--output", str(report)]) == 0
    assert json.loads(report.read_text())["accuracy"] >= 0.9

    unlabelled = tmp_path / "new.tsv"  # no header, text in the second column
    unlabelled.write_text("1\tthe film was superb\n2\tthe film was dull\n", encoding="utf-8")
    predictions = tmp_path / "predictions.jsonl"
    assert main(["predict", "--model", str(out), "--input", str(unlabelled), "--set", "has_header=false",
                 "--set", "text_column=1", "--output", str(predictions)]) == 0
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [p["label"] for p in lines] == ["pos", "neg"]
    assert lines[0]["text"] == "the film was superb"

    capsys.readouterr()
    assert main(["predict", "--model", str(out), "the film was lovely, and the cast sang"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["label"] == "pos"


def test_bad_rows_stop_the_run_or_are_skipped_and_counted(tmp_path, capsys):
    train = tmp_path / "train.tsv"
    rows = [f"{t}\t{l}" for t, l in reviews(40, seed=2)]
    rows.insert(7, "\tpos")  # line 9 (after the header): no text
    train.write_text("text\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert main(["finetune", *TINY, "--train-file", str(train), "--output-dir", str(tmp_path / "x")]) == 1
    error = capsys.readouterr().err
    assert "train.tsv:9" in error and "text" in error
    _, metrics = finetune(
        tmp_path, "skip", "--train-file", str(train), "--set", "data.skip_bad_rows=true",
        "--set", "training.max_steps=2",
    )
    assert metrics["skipped_rows"] == {"train": 1, "eval": 0}
    assert metrics["train_examples"] + metrics["eval_examples"] == 40
    assert "Skipped 1 bad training row" in capsys.readouterr().out


def write_conll(path, sentences, seed):
    rng = random.Random(seed)
    lines = ["-DOCSTART- -X- O O", ""]
    for _ in range(sentences):  # IOB1: entities start with I-
        name, city = rng.choice(["Alice", "Bob"]), rng.choice(["Paris", "Rome"])
        for word, tag in [(name, "I-PER"), ("visited", "O"), (city, "I-LOC"), (".", "O")]:
            lines.append(f"{word} NNP I-NP {tag}")
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_ner_from_conll_iob1(tmp_path, capsys):
    train, dev = write_conll(tmp_path / "train.txt", 60, 0), write_conll(tmp_path / "dev.txt", 10, 1)
    out, metrics = finetune(
        tmp_path, "ner", "--set", "task=token_classification", "--set", "data.tag_scheme=iob1",
        "--train-file", str(train), "--eval-file", str(dev), "--set", "training.epochs=6",
    )
    assert metrics["entity_f1"] >= 0.9
    assert set(metrics["per_type"]) == {"PER", "LOC"}
    capsys.readouterr()
    assert main(["predict", "--model", str(out), "Bob visited Rome ."]) == 0
    entities = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["entities"]
    assert entities == [
        {"type": "PER", "text": "Bob", "start": 0, "end": 3},
        {"type": "LOC", "text": "Rome", "start": 12, "end": 16},
    ]


def write_squad(path, count, seed):
    rng = random.Random(seed)
    articles = []
    for i in range(count):
        name, city = rng.choice(["Alice", "Bob", "Carol"]), rng.choice(["Paris", "Rome", "Oslo"])
        context = f"{name} lives in {city}. The weather there is nice and people walk a lot every day."
        qas = [{"id": f"{seed}-{i}", "question": "Where does the person live?",
                "answers": [{"text": city, "answer_start": context.index(city)}]}]
        articles.append({"title": str(i), "paragraphs": [{"context": context, "qas": qas}]})
    path.write_text(json.dumps({"version": "1.1", "data": articles}), encoding="utf-8")
    return path


def test_question_answering_from_squad_json(tmp_path, capsys):
    train, dev = write_squad(tmp_path / "train.json", 60, 0), write_squad(tmp_path / "dev.json", 10, 1)
    out, metrics = finetune(
        tmp_path, "qa", "--set", "task=question_answering", "--train-file", str(train),
        "--eval-file", str(dev), "--set", "data.doc_stride=8", "--set", "data.max_question_length=10",
        "--set", "training.epochs=10",
    )
    assert {"exact_match", "f1", "questions"} <= set(metrics)
    assert metrics["questions"] == 10 and metrics["training_windows"] >= 60
    assert metrics["exact_match"] >= 0.8
    capsys.readouterr()
    context = "Carol lives in Oslo. The weather there is nice and people walk a lot every day."
    assert main(["predict", "--model", str(out), "--question", "Where does the person live?",
                 "--context", context]) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert context[answer["start"] : answer["end"]] == answer["text"]


def test_convert_a_hugging_face_checkpoint_then_finetune_it(tmp_path):
    from test_convert_hf_bert import TINY_CONFIG, random_checkpoint, write_checkpoint

    source = write_checkpoint(tmp_path / "hf", random_checkpoint(TINY_CONFIG), TINY_CONFIG)
    converted = tmp_path / "converted"
    assert main(["convert", "--from", "hf", str(source), "--output", str(converted)]) == 0
    train = tmp_path / "train.tsv"
    train.write_text("text\tlabel\n" + "".join(f"w{i} w{i + 1}\t{i % 3}\n" for i in range(30)))
    out = tmp_path / "run"
    assert main(["finetune", "--train-file", str(train), "--set", f"backbone.path={converted}",
                 "--set", "data.sequence_length=16", "--set", "training.max_steps=2",
                 "--output-dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["label_names"] == ["0", "1", "2"]
    assert (out / "tokenizer" / "vocab.txt").read_text() == (source / "vocab.txt").read_text()
