"""Fine-tuning data readers: labelled TSV/CSV/JSONL, CoNLL tags, SQuAD JSON."""

from __future__ import annotations

import json

import pytest

from tfptlm.data.conll import (
    TaggedSentence,
    convert_tags,
    read_conll,
    spans_to_tags,
    tags_to_spans,
)
from tfptlm.data.data_errors import DataFileError, ReadResult
from tfptlm.config import FinetuneDataConfig
from tfptlm.data.labeled_files import (
    LabeledText,
    check_labels_known,
    infer_label_names,
    read_labeled_file,
)
from tfptlm.finetuning.classification import ClassificationRecipe
from tfptlm.data.squad import read_squad


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(DataFileError) as info:
        call(*args, **kwargs)
    return str(info.value)


# ---------------------------------------------------------------- labelled files


def test_tsv_without_header_by_index_keeps_quotes_and_strips_spaces(tmp_path):
    path = write(tmp_path, "sst.tsv", 'it \'s "great" . \t1\r\n\nbad movie \t0\n')
    data = read_labeled_file(path, 0, -1, has_header=False)
    assert data.examples == [
        LabeledText('it \'s "great" .', None, "1", f"{path}:1"),
        LabeledText("bad movie", None, "0", f"{path}:3"),
    ]
    assert data.skipped == 0 and data.skipped_examples == []


def test_tsv_with_reordered_header_by_name_and_index(tmp_path):
    path = write(tmp_path, "chn.tsv", "label\ttext_a\n1\t很好\n0\t不好\n")
    by_name = read_labeled_file(path, "text_a", "label")
    by_index = read_labeled_file(path, 1, 0)
    assert [(e.text, e.label) for e in by_name.examples] == [("很好", "1"), ("不好", "0")]
    assert by_index.examples == by_name.examples
    assert by_name.examples[0].source == f"{path}:2"


def test_csv_with_header_quoted_commas_and_newlines(tmp_path):
    text = 'id,sentence,label\n1,"Hello, world",pos\n2,"two\nlines, ""quoted""",neg\n3,plain,pos\n'
    path = write(tmp_path, "data.csv", text)
    data = read_labeled_file(path, "sentence", "label")
    assert [(e.text, e.label, e.source) for e in data.examples] == [
        ("Hello, world", "pos", f"{path}:2"),
        ('two\nlines, "quoted"', "neg", f"{path}:3"),
        ("plain", "pos", f"{path}:5"),
    ]


def test_text_pairs_csv_and_custom_delimiter(tmp_path):
    path = write(tmp_path, "pairs.txt", "a man sleeps|a person rests|entailment\n")
    data = read_labeled_file(
        path, 0, 2, 1, file_format="csv", delimiter="|", has_header=False
    )
    assert data.examples == [
        LabeledText("a man sleeps", "a person rests", "entailment", f"{path}:1")
    ]


def test_jsonl_keys_pairs_and_label_conversion(tmp_path):
    lines = [
        {"q": "Is it?", "p": "Yes.", "y": 1},
        {"q": "Really", "p": "no", "y": True},
        {"q": " x ", "p": "y", "y": " neg "},
    ]
    text = "\n".join(json.dumps(line) for line in lines[:2]) + "\n\n" + json.dumps(lines[2]) + "\n"
    path = write(tmp_path, "qa.jsonl", text)
    data = read_labeled_file(path, "q", "y", "p")
    assert [(e.text, e.text_pair, e.label, e.source) for e in data.examples] == [
        ("Is it?", "Yes.", "1", f"{path}:1"),
        ("Really", "no", "True", f"{path}:2"),
        ("x", "y", "neg", f"{path}:4"),
    ]


def test_unlabelled_file_has_no_labels(tmp_path):
    path = write(tmp_path, "test.jsonl", '{"text": "a"}\n')
    assert read_labeled_file(path, "text").examples[0].label is None


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_byte_order_marks(tmp_path, encoding):
    text = "text\tlabel\ncafé \t1\n中文\t0\n"
    if encoding == "utf-16-be":
        raw = b"\xfe\xff" + text.encode("utf-16-be")
        path = tmp_path / "bom.tsv"
        path.write_bytes(raw)
    else:
        path = write(tmp_path, "bom.tsv", text, encoding)
    data = read_labeled_file(path, "text", "label")
    assert [(e.text, e.label, e.source) for e in data.examples] == [
        ("café", "1", f"{path}:2"),
        ("中文", "0", f"{path}:3"),
    ]


def test_bad_byte_names_file_and_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_bytes(b"text\tlabel\nok\t1\nbad \xff\t0\n")
    message = error_of(read_labeled_file, path, 0, 1)
    assert f"{path}:3:" in message and "UTF-8" in message


def test_bad_utf16_byte_names_line(tmp_path):
    path = tmp_path / "bad16.tsv"
    path.write_bytes(b"\xff\xfe" + "a\t1\nb\t0\n".encode("utf-16-le") + b"\x00")
    assert f"{path}:3:" in error_of(read_labeled_file, path, 0, 1, has_header=False)


def test_missing_header_column_lists_columns_even_when_skipping(tmp_path):
    path = write(tmp_path, "h.tsv", "text\tlabel\nx\t1\n")
    message = error_of(read_labeled_file, path, "sentence", "label", skip_bad_rows=True)
    assert f"{path}:1:" in message and "'sentence'" in message
    assert "['text', 'label']" in message


def test_header_index_out_of_range(tmp_path):
    path = write(tmp_path, "h.tsv", "text\tlabel\nx\t1\n")
    message = error_of(read_labeled_file, path, 0, 2)
    assert f"{path}:1:" in message and "column 2" in message


def test_too_few_and_too_many_fields(tmp_path):
    path = write(tmp_path, "f.tsv", "text\tlabel\ngood\t1\nno label here\n")
    message = error_of(read_labeled_file, path, "text", "label")
    assert f"{path}:3:" in message and "too few fields" in message and "'label'" in message
    path = write(tmp_path, "n.tsv", "a\t1\nb\t0\n")
    message = error_of(read_labeled_file, path, -3, 1, has_header=False)
    assert f"{path}:1:" in message and "too few fields" in message and "column -3" in message
    path = write(tmp_path, "g.tsv", "text\tlabel\nhas\ta tab\t1\n")
    message = error_of(read_labeled_file, path, "text", "label")
    assert f"{path}:2:" in message and "too many fields" in message


def test_empty_text_missing_label_and_empty_pair(tmp_path):
    path = write(tmp_path, "e.tsv", "text\tlabel\n  \t1\n")
    message = error_of(read_labeled_file, path, "text", "label")
    assert f"{path}:2:" in message and "empty text" in message and "column 'text'" in message
    path = write(tmp_path, "m.csv", "text,label\nfine,\n")
    message = error_of(read_labeled_file, path, "text", "label")
    assert f"{path}:2:" in message and "missing label" in message and "column 'label'" in message
    path = write(tmp_path, "p.jsonl", '{"a": "x", "b": "", "y": 1}\n')
    message = error_of(read_labeled_file, path, "a", "y", "b")
    assert f"{path}:1:" in message and "empty text pair" in message and "column 'b'" in message
    path = write(tmp_path, "n.jsonl", '{"a": "x", "y": null}\n')
    assert "missing label (column 'y')" in error_of(read_labeled_file, path, "a", "y")


def test_bad_jsonl_lines(tmp_path):
    path = write(tmp_path, "j.jsonl", '{"t": "a", "y": 1}\n{"t": "b", \n')
    message = error_of(read_labeled_file, path, "t", "y")
    assert f"{path}:2:" in message and "not valid JSON" in message
    path = write(tmp_path, "k.jsonl", '["a", 1]\n')
    assert f"{path}:1: expected a JSON object" in error_of(read_labeled_file, path, "t", "y")
    path = write(tmp_path, "l.jsonl", '{"t": ["a"], "y": 1}\n')
    message = error_of(read_labeled_file, path, "t", "y")
    assert f"{path}:1:" in message and "column 't'" in message


def test_label_names_check_lists_known_names(tmp_path):
    path = write(tmp_path, "l.tsv", "a\tpos\nb\tneutral\n")
    message = error_of(read_labeled_file, path, 0, 1, has_header=False, label_names=["neg", "pos"])
    assert f"{path}:2:" in message and "'neutral'" in message
    assert "['neg', 'pos']" in message and "column 1" in message
    data = read_labeled_file(path, 0, 1, has_header=False, label_names=["pos", "neutral"])
    assert len(data.examples) == 2


def test_skip_bad_rows_counts_and_keeps_messages(tmp_path):
    rows = ["text\tlabel", "ok\t1", "\t0", "no tab", "fine\t"]
    rows += [f"t{i}" for i in range(12)] + ["last\t0"]
    path = write(tmp_path, "s.tsv", "\n".join(rows) + "\n")
    data = read_labeled_file(path, "text", "label", skip_bad_rows=True)
    assert [e.text for e in data.examples] == ["ok", "last"]
    assert data.skipped == 15
    assert len(data.skipped_examples) == 10
    assert data.skipped_examples[0].startswith(f"{path}:3: empty text")
    assert data.skipped_examples[1].startswith(f"{path}:4: too few fields")


def test_no_usable_examples_is_an_error(tmp_path):
    path = write(tmp_path, "empty.tsv", "text\tlabel\n\n")
    assert "no usable examples" in error_of(read_labeled_file, path, 0, 1)
    path = write(tmp_path, "allbad.tsv", "text\tlabel\n\t1\n")
    message = error_of(read_labeled_file, path, 0, 1, skip_bad_rows=True)
    assert "no usable examples" in message and "1 bad rows" in message


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        read_labeled_file(tmp_path / "nope.tsv", 0, 1)
    with pytest.raises(ValueError, match="'tsv'.*'csv'.*'jsonl'"):
        read_labeled_file(tmp_path / "data.txt", 0, 1)
    with pytest.raises(ValueError, match="has_header=False"):
        read_labeled_file(write(tmp_path, "x.tsv", "a\t1\n"), "text", has_header=False)


def test_infer_label_names_numeric_and_lexicographic():
    def data(*labels):
        return ReadResult([LabeledText("t", None, label, "f:1") for label in labels], 0, [])

    assert infer_label_names([data("10", "1"), data("0", "2", "1")]) == ["0", "1", "2", "10"]
    assert infer_label_names([data("pos", "neg"), data("neutral")]) == ["neg", "neutral", "pos"]
    assert infer_label_names([data("10", "b", "2")]) == ["10", "2", "b"]
    with pytest.raises(ValueError):
        infer_label_names([data(None)])


def test_eval_file_label_unseen_in_training_is_an_error_naming_the_line():
    def data(file, *labels):
        return ReadResult([LabeledText("t", None, label, f"{file}:{i + 2}") for i, label in enumerate(labels)])

    train, dev = data("train.tsv", "neg", "pos", "neg"), data("dev.tsv", "pos", "neutral")
    recipe = ClassificationRecipe()
    with pytest.raises(DataFileError, match=r"dev.tsv:3: label 'neutral' .*data.label_names"):
        recipe.label_names([train, dev], FinetuneDataConfig(train_file="train.tsv", eval_file="dev.tsv"))
    # Listed labels, or a held-out share of the training file, make it a class.
    listed = FinetuneDataConfig(eval_file="dev.tsv", label_names=["neg", "neutral", "pos"])
    assert recipe.label_names([train, dev], listed) == ["neg", "neutral", "pos"]
    assert recipe.label_names([train, dev], FinetuneDataConfig()) == ["neg", "neutral", "pos"]
    check_labels_known(data("dev.tsv", "pos", None), ["neg", "pos"])  # unlabelled rows pass


# ---------------------------------------------------------------- CoNLL

CONLL_IOB1 = """-DOCSTART- -X- -X- O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

Paris NNP I-NP I-LOC
London NNP I-NP B-LOC
"""


def test_conll_iob1_with_docstart(tmp_path):
    path = write(tmp_path, "eng.testb", CONLL_IOB1)
    data = read_conll(path, scheme="iob1")
    assert data.examples == [
        TaggedSentence(
            ["EU", "rejects", "German", "call"], ["I-ORG", "O", "I-MISC", "O"], f"{path}:3"
        ),
        TaggedSentence(["Peter", "Blackburn"], ["I-PER", "I-PER"], f"{path}:8"),
        TaggedSentence(["Paris", "London"], ["I-LOC", "B-LOC"], f"{path}:13"),
    ]
    assert data.skipped == 0
    assert tags_to_spans(data.examples[2].tags, "iob1") == [("LOC", 0, 1), ("LOC", 1, 2)]


def test_conll_bmes_char_file_with_bom(tmp_path):
    text = "吴 B-NAME\r\n重 M-NAME\r\n阳 E-NAME\r\n， O\r\n\r\n中 S-CONT\r\n"
    path = write(tmp_path, "dev.char.bmes", text, "utf-8-sig")
    data = read_conll(path, scheme="bmes")
    assert [s.words for s in data.examples] == [["吴", "重", "阳", "，"], ["中"]]
    assert data.examples[0].tags == ["B-NAME", "M-NAME", "E-NAME", "O"]
    assert data.examples[1].source == f"{path}:6"


def test_conll_iob2_columns(tmp_path):
    path = write(tmp_path, "x.conll", "B-PER John 1\nI-PER Smith 2\nO runs 3\n")
    data = read_conll(path, word_column=1, tag_column=0, scheme="iob2")
    assert data.examples[0].words == ["John", "Smith", "runs"]
    assert data.examples[0].tags == ["B-PER", "I-PER", "O"]


def test_conll_bad_tag_names_line_and_suggests_scheme(tmp_path):
    path = write(tmp_path, "r.bmes", "吴 B-NAME\n重 M-NAME\n阳 E-NAME\n")
    message = error_of(read_conll, path, scheme="iob2")
    assert f"{path}:2:" in message and "'M-NAME'" in message
    assert "iob2" in message and "scheme='bmes'" in message
    path = write(tmp_path, "c.txt", "a I-PER\nb U-PER\n")
    message = error_of(read_conll, path, scheme="iob1")
    assert f"{path}:2:" in message and "'U-PER'" in message
    path = write(tmp_path, "d.txt", "a PER\n")
    assert f"{path}:1:" in error_of(read_conll, path, scheme="bmes")


def test_conll_too_few_columns_and_label_names(tmp_path):
    path = write(tmp_path, "t.txt", "a B-PER\nlonely\n")
    message = error_of(read_conll, path)
    assert f"{path}:2:" in message and "too few columns" in message
    path = write(tmp_path, "u.txt", "a B-PER\n\nb B-ORG\n")
    message = error_of(read_conll, path, label_names=["O", "B-PER", "I-PER"])
    assert f"{path}:3:" in message and "'B-ORG'" in message and "'I-PER'" in message


def test_conll_skip_bad_rows_skips_whole_sentence(tmp_path):
    text = "a B-PER\nb X-PER\nc O\n\nd O\n\ne\nf O\n\ng B-LOC\n"
    path = write(tmp_path, "s.txt", text)
    data = read_conll(path, skip_bad_rows=True)
    assert [s.words for s in data.examples] == [["d"], ["g"]]
    assert data.skipped == 2
    assert data.skipped_examples[0].startswith(f"{path}:2:")
    assert data.skipped_examples[1].startswith(f"{path}:7:")
    path = write(tmp_path, "none.txt", "-DOCSTART- O\n\n")
    assert "no sentences" in error_of(read_conll, path)


# Hand-made sequences, all well-formed in every scheme, with known answers.
CONVERSIONS = [
    (  # single-word and multi-word entities, different types adjacent
        ["I-PER", "I-PER", "O", "I-LOC", "I-ORG", "O"],
        ["B-PER", "I-PER", "O", "B-LOC", "B-ORG", "O"],
        ["B-PER", "E-PER", "O", "S-LOC", "S-ORG", "O"],
    ),
    (  # adjacent entities of the same type: IOB1 uses B- for the second one
        ["I-LOC", "B-LOC", "I-LOC", "B-LOC", "O", "I-LOC"],
        ["B-LOC", "B-LOC", "I-LOC", "B-LOC", "O", "B-LOC"],
        ["S-LOC", "B-LOC", "E-LOC", "S-LOC", "O", "S-LOC"],
    ),
    (  # long entity, entity at the start and end
        ["I-MISC", "I-MISC", "I-MISC", "I-MISC", "O", "I-PER"],
        ["B-MISC", "I-MISC", "I-MISC", "I-MISC", "O", "B-PER"],
        ["B-MISC", "M-MISC", "M-MISC", "E-MISC", "O", "S-PER"],
    ),
    (["O", "O"], ["O", "O"], ["O", "O"]),
    ([], [], []),
]


@pytest.mark.parametrize("iob1, iob2, bmes", CONVERSIONS)
def test_convert_tags_known_answers_and_round_trips(iob1, iob2, bmes):
    by_scheme = {"iob1": iob1, "iob2": iob2, "bmes": bmes}
    for source, tags in by_scheme.items():
        for target, expected in by_scheme.items():
            assert convert_tags(tags, source, target) == expected, (source, target)
    spans = tags_to_spans(iob2, "iob2")
    assert tags_to_spans(iob1, "iob1") == spans == tags_to_spans(bmes, "bmes")
    assert spans_to_tags(spans, len(iob2), "iob1") == iob1


def test_tags_to_spans_hand_examples_and_leniency():
    assert tags_to_spans(["B-PER", "I-PER", "O", "B-ORG"], "iob2") == [("PER", 0, 2), ("ORG", 3, 4)]
    # IOB2 I- after O or after another type starts an entity (like conlleval).
    assert tags_to_spans(["O", "I-PER", "I-PER", "I-LOC"], "iob2") == [("PER", 1, 3), ("LOC", 3, 4)]
    assert convert_tags(["O", "I-PER", "I-PER"], "iob2", "iob2") == ["O", "B-PER", "I-PER"]
    # BMES: B without E ends at O; M/E without B starts; S and E close.
    assert tags_to_spans(["B-A", "O", "M-A", "E-A", "E-A", "S-A", "M-A"], "bmes") == [
        ("A", 0, 1), ("A", 2, 4), ("A", 4, 5), ("A", 5, 6), ("A", 6, 7),
    ]
    # Types may contain dashes.
    assert tags_to_spans(["B-GPE-X", "I-GPE-X"], "iob2") == [("GPE-X", 0, 2)]
    with pytest.raises(ValueError, match="S-PER"):
        tags_to_spans(["S-PER"], "iob2")
    with pytest.raises(ValueError, match="scheme"):
        convert_tags(["O"], "iob2", "bioes")


# ---------------------------------------------------------------- SQuAD

CONTEXT = "The Panthers defense gave up just 308 points."


def question(qid, text="Q?", answer="308", start=34, **extra):
    answers = [{"text": answer, "answer_start": start}]
    return {"id": qid, "question": text, "answers": answers, **extra}


def squad_file(tmp_path, questions, name="train.json"):
    data = {
        "version": "1.1",
        "data": [{"title": "T", "paragraphs": [{"context": CONTEXT, "qas": questions}]}],
    }
    return write(tmp_path, name, json.dumps(data, indent=1))


def test_squad_good_file(tmp_path):
    two_answers = question("q2", "Who?", "The Panthers", 0)
    two_answers["answers"].append({"text": "Panthers defense", "answer_start": 4})
    path = squad_file(tmp_path, [question("q1", "How many points? "), two_answers])
    data = read_squad(path)
    assert data.skipped == 0
    first, second = data.examples
    assert (first.id, first.question, first.context, first.answers) == (
        "q1", "How many points?", CONTEXT, [("308", 34)],
    )
    assert first.source == f"{path}: data[0].paragraphs[0].qas[0] (id q1)"
    assert second.answers == [("The Panthers", 0), ("Panthers defense", 4)]


def test_squad_misaligned_answer(tmp_path):
    path = squad_file(tmp_path, [question("q9", start=30)])
    message = error_of(read_squad, path)
    assert str(path) in message and "qas[0]" in message and "q9" in message
    assert "'308'" in message and "found 'ust'" in message and "34" in message


def test_squad_skip_bad_rows_and_v2_and_missing_answers(tmp_path):
    good = question("ok")
    path = squad_file(tmp_path, [
        {"id": "bad", "question": "Q?", "answers": [{"text": "308", "answer_start": 3}]},
        {"id": "v2", "question": "Q?", "answers": [], "is_impossible": True},
        {"id": "none", "question": "Q?", "answers": []},
        {"id": "type", "question": 5, "answers": []},
        good,
    ])
    data = read_squad(path, skip_bad_rows=True)
    assert [e.id for e in data.examples] == ["ok"]
    assert data.skipped == 4
    assert "(id v2)" in data.skipped_examples[1] and "is_impossible" in data.skipped_examples[1]
    assert "no answers" in data.skipped_examples[2]
    assert "'question' must be str, got int" in data.skipped_examples[3]
    with pytest.raises(DataFileError, match="is_impossible"):
        read_squad(squad_file(tmp_path, [good, question("v2", is_impossible=True)]))


def test_squad_prediction_only(tmp_path):
    path = squad_file(
        tmp_path, [{"id": "p", "question": "Q?"}, {"id": "r", "question": "R?", "answers": []}]
    )
    assert [e.answers for e in read_squad(path, require_answers=False).examples] == [[], []]
    assert "missing field 'answers'" in error_of(read_squad, path)


def test_squad_duplicate_id(tmp_path):
    path = squad_file(tmp_path, [question("same"), question("same")])
    message = error_of(read_squad, path)
    assert "duplicate id" in message and "qas[1] (id same)" in message and "qas[0]" in message
    data = read_squad(path, skip_bad_rows=True)
    assert len(data.examples) == 1 and data.skipped == 1


def test_squad_bad_json_and_structure(tmp_path):
    path = write(tmp_path, "bad.json", '{"data": [\n  {"paragraphs": []},\n  oops\n]}\n')
    message = error_of(read_squad, path)
    assert f"{path}:3:" in message and "line 3" in message and "column 3" in message
    path = write(tmp_path, "nodata.json", '{"version": "1.1"}')
    assert "'data'" in error_of(read_squad, path)
    broken = {"data": [{"paragraphs": [{"qas": [{}, {}]}]}]}
    path = write(tmp_path, "noctx.json", json.dumps(broken))
    message = error_of(read_squad, path, skip_bad_rows=True)
    assert "no usable questions" in message and "2 bad questions" in message
    assert "data[0].paragraphs[0]: missing field 'context'" in message
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_squad(tmp_path / "missing.json")
