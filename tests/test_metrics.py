"""Fine-tuning metrics: hand-worked examples for classification, NER and SQuAD."""

from __future__ import annotations

import json
import sys
import warnings

import pytest

from tfptlm.metrics import (
    classification_metrics,
    entity_metrics,
    exact_match_score,
    f1_score,
    normalize_answer,
    save_confusion_matrix_png,
    squad_metrics,
)

approx = pytest.approx

# --------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------

NAMES = ["cat", "dog", "bird"]
# true:  cat cat cat | dog dog dog | bird bird bird bird
# pred:  cat cat dog | dog dog dog | bird bird cat  cat
LABELS = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
PREDICTIONS = [0, 0, 1, 1, 1, 1, 2, 2, 0, 0]


def test_classification_worked_example():
    metrics = classification_metrics(LABELS, PREDICTIONS, NAMES)
    # Rows are true labels, columns predictions:
    #   cat:  2 cat, 1 dog, 0 bird
    #   dog:  0 cat, 3 dog, 0 bird
    #   bird: 2 cat, 0 dog, 2 bird
    assert metrics["confusion_matrix"] == [[2, 1, 0], [0, 3, 0], [2, 0, 2]]
    assert metrics["accuracy"] == approx(7 / 10)  # the diagonal: 2 + 3 + 2
    per_class = metrics["per_class"]
    # cat:  column sum 4, 2 right -> P 1/2; row sum 3 -> R 2/3; F1 = 2PR/(P+R) = 4/7
    assert per_class["cat"] == approx(
        {"precision": 1 / 2, "recall": 2 / 3, "f1": 4 / 7, "support": 3}
    )
    # dog:  column sum 4, 3 right -> P 3/4; R 3/3 = 1; F1 = 1.5/1.75 = 6/7
    assert per_class["dog"] == approx(
        {"precision": 3 / 4, "recall": 1.0, "f1": 6 / 7, "support": 3}
    )
    # bird: column sum 2, 2 right -> P 1; R 2/4; F1 = 1/1.5 = 2/3
    assert per_class["bird"] == approx(
        {"precision": 1.0, "recall": 1 / 2, "f1": 2 / 3, "support": 4}
    )
    assert metrics["macro_precision"] == approx((1 / 2 + 3 / 4 + 1) / 3)  # 0.75
    assert metrics["macro_recall"] == approx((2 / 3 + 1 + 1 / 2) / 3)  # 13/18
    assert metrics["macro_f1"] == approx((4 / 7 + 6 / 7 + 2 / 3) / 3)  # 44/63
    assert metrics["label_names"] == NAMES
    assert metrics["examples"] == 10
    assert list(per_class) == NAMES  # in label order


def test_classification_result_is_plain_json():
    metrics = classification_metrics(LABELS, PREDICTIONS, NAMES)
    assert json.loads(json.dumps(metrics)) == metrics
    assert type(metrics["accuracy"]) is float
    assert type(metrics["per_class"]["cat"]["support"]) is int
    assert all(type(count) is int for row in metrics["confusion_matrix"] for count in row)


def test_classification_absent_class_scores_zero_without_warning():
    # "c" is neither a true label nor predicted; "b" is true twice, predicted once.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = classification_metrics([0, 1, 0, 1], [0, 0, 0, 1], ["a", "b", "c"])
    assert metrics["confusion_matrix"] == [[2, 0, 0], [1, 1, 0], [0, 0, 0]]
    # a: column 3, 2 right -> P 2/3; R 2/2 = 1; F1 = (4/3)/(5/3) = 0.8
    assert metrics["per_class"]["a"] == approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    )
    # b: column 1, 1 right -> P 1; R 1/2; F1 2/3
    assert metrics["per_class"]["b"] == approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    )
    # c: 0/0 everywhere -> 0 (zero_division=0), and it counts in the macro mean.
    assert metrics["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert metrics["macro_f1"] == approx((0.8 + 2 / 3 + 0) / 3)  # 22/45
    assert metrics["accuracy"] == approx(3 / 4)


def test_classification_class_never_predicted():
    # "b" occurs but is never predicted: precision 0/0 -> 0, recall 0/2 = 0.
    metrics = classification_metrics([0, 1, 1], [0, 0, 0], ["a", "b"])
    assert metrics["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert metrics["per_class"]["a"]["precision"] == approx(1 / 3)


def test_classification_accepts_numpy_ids():
    np = pytest.importorskip("numpy")
    metrics = classification_metrics(
        np.array(LABELS), np.array(PREDICTIONS, dtype=np.int32), NAMES
    )
    assert metrics["accuracy"] == approx(0.7)


@pytest.mark.parametrize(
    "labels, predictions, names, message",
    [
        ([0, 1], [0], ["a", "b"], "2 labels but 1 predictions"),
        ([], [], ["a", "b"], "no examples"),
        ([0, 1, 0], [0, 1, 7], ["a", "b"], r"predictions\[2\] = 7 is not a label id in 0\.\.1"),
        ([0, -1], [0, 1], ["a", "b"], r"labels\[1\] = -1"),
        ([0, 1.5], [0, 1], ["a", "b"], r"labels\[1\] = 1\.5 is not an integer"),
        ([0], [0], [], "label_names is empty"),
        ([0], [0], ["a", "a"], "duplicates"),
    ],
)
def test_classification_errors(labels, predictions, names, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(labels, predictions, names)


def _backend_state():
    import matplotlib

    try:
        backend = matplotlib.get_backend(auto_select=False)
    except TypeError:  # matplotlib < 3.10
        backend = matplotlib.rcParams._get_backend_or_none()
    return backend, "matplotlib.pyplot" in sys.modules


def test_confusion_matrix_png(tmp_path):
    pytest.importorskip("matplotlib")
    before = _backend_state()
    path = tmp_path / "plots" / "confusion.png"
    metrics = classification_metrics(LABELS, PREDICTIONS, NAMES)
    save_confusion_matrix_png(metrics["confusion_matrix"], NAMES, path, title="dev set")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _backend_state() == before  # pyplot's backend is the user's business


def test_confusion_matrix_png_many_classes(tmp_path):
    pytest.importorskip("matplotlib")
    names = [f"class_{index:02d}" for index in range(30)]
    matrix = [[(row * 7 + column) % 13 for column in range(30)] for row in range(30)]
    path = tmp_path / "confusion30.png"
    save_confusion_matrix_png(matrix, names, str(path))
    assert path.read_bytes().startswith(b"\x89PNG")


def test_confusion_matrix_png_checks_shape(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="3 x 3"):
        save_confusion_matrix_png([[1, 0], [0, 1]], NAMES, tmp_path / "bad.png")


def test_confusion_matrix_png_without_matplotlib(tmp_path, monkeypatch):
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r"pip install 'tfptlm\[plots\]'"):
        save_confusion_matrix_png([[1]], ["a"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------
# Named entities
# --------------------------------------------------------------------------


def test_ner_iob1_conll_adjacent_entities():
    # IOB1 (CoNLL-2003): I- opens an entity after O; B- only separates two
    # adjacent entities of the same type.
    true = [
        ["I-PER", "I-PER", "B-PER", "O", "I-LOC"],  # PER(0-1) PER(2) LOC(4)
        ["O", "I-ORG", "I-ORG", "I-MISC"],  # ORG(1-2) MISC(3): type change splits
    ]
    predicted = [
        ["I-PER", "I-PER", "I-PER", "O", "I-LOC"],  # PER(0-2): both PERs missed; LOC right
        ["O", "I-ORG", "I-ORG", "I-MISC"],  # ORG, MISC right
    ]
    metrics = entity_metrics(true, predicted, scheme="iob1")
    # 5 true entities, 4 predicted, 3 right: P 3/4, R 3/5, F1 = 0.9/1.35 = 2/3
    assert metrics["entity_precision"] == approx(3 / 4)
    assert metrics["entity_recall"] == approx(3 / 5)
    assert metrics["entity_f1"] == approx(2 / 3)
    assert metrics["token_accuracy"] == approx(8 / 9)  # only B-PER vs I-PER differs
    assert metrics["per_type"]["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    for entity_type in ("LOC", "ORG", "MISC"):
        assert metrics["per_type"][entity_type] == {
            "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1
        }
    assert set(metrics["per_type"]) == {"PER", "LOC", "ORG", "MISC"}
    assert metrics["sentences"] == 2
    assert json.loads(json.dumps(metrics)) == metrics


def test_ner_iob2():
    true = [
        ["B-PER", "I-PER", "O", "B-LOC", "B-LOC"],  # PER(0-1) LOC(3) LOC(4)
        ["B-ORG", "I-ORG", "O"],  # ORG(0-1)
    ]
    predicted = [
        ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"],  # PER right; LOC(3-4) wrong
        ["O", "O", "O"],  # ORG missed
    ]
    metrics = entity_metrics(true, predicted, scheme="iob2")
    # 4 true, 2 predicted, 1 right: P 1/2, R 1/4, F1 = (1/4)/(3/4) = 1/3
    assert metrics["entity_precision"] == approx(1 / 2)
    assert metrics["entity_recall"] == approx(1 / 4)
    assert metrics["entity_f1"] == approx(1 / 3)
    assert metrics["token_accuracy"] == approx(5 / 8)  # wrong: I-LOC, B-ORG, I-ORG
    assert metrics["per_type"]["PER"]["f1"] == 1.0
    # LOC: 1 predicted, 0 right, 2 true
    assert metrics["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    # ORG: never predicted -> precision 0/0 = 0
    assert metrics["per_type"]["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_ner_bmes_strict():
    true = [
        ["B-PER", "M-PER", "E-PER", "O", "S-LOC"],  # PER(0-2) LOC(4)
        ["B-ORG", "E-ORG", "S-ORG"],  # ORG(0-1) ORG(2)
    ]
    predicted = [
        ["B-PER", "M-PER", "M-PER", "O", "S-LOC"],  # no E-: not an entity; LOC right
        ["B-ORG", "E-ORG", "S-PER"],  # ORG(0-1) right; PER(2) wrong type
    ]
    metrics = entity_metrics(true, predicted, scheme="bmes")
    # 4 true, 3 predicted (LOC, ORG, PER), 2 right: P 2/3, R 1/2, F1 = (2/3)/(7/6) = 4/7
    assert metrics["entity_precision"] == approx(2 / 3)
    assert metrics["entity_recall"] == approx(1 / 2)
    assert metrics["entity_f1"] == approx(4 / 7)
    assert metrics["token_accuracy"] == approx(6 / 8)  # wrong: M-PER vs E-PER, S-PER vs S-ORG
    assert metrics["per_type"]["LOC"]["f1"] == 1.0
    assert metrics["per_type"]["ORG"] == approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    )
    assert metrics["per_type"]["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_ner_bmes_single_and_end_tags_found():
    # seqeval's IOBES reads S- and E- (with M- read as I-): a perfect match scores 1.
    tags = [["S-PER", "B-LOC", "M-LOC", "M-LOC", "E-LOC", "O", "B-ORG", "E-ORG"]]
    metrics = entity_metrics(tags, tags, scheme="BMES")
    assert metrics["entity_f1"] == 1.0
    assert {name: row["support"] for name, row in metrics["per_type"].items()} == {
        "PER": 1, "LOC": 1, "ORG": 1
    }


def test_ner_no_entities_scores_zero_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = entity_metrics([["O", "O"], []], [["O", "O"], []], scheme="iob2")
    assert metrics["entity_f1"] == 0.0
    assert metrics["token_accuracy"] == 1.0
    assert metrics["per_type"] == {}
    assert metrics["sentences"] == 2


@pytest.mark.parametrize(
    "true, predicted, scheme, message",
    [
        (
            [["O", "B-PER"], ["O"]],
            [["O", "B-PER"], ["O", "O"]],
            "iob2",
            "sentence 1: 1 true tags but 2",
        ),
        ([["O"]], [["O"], ["O"]], "iob2", "1 true sentences but 2"),
        ([["O"]], [["O"]], "bio", "unknown tagging scheme"),
        ([["O", "M-PER"]], [["O", "O"]], "iob2", r"sentence 0, token 1: true tag 'M-PER'"),
        ([["O", "O"]], [["PER", "O"]], "bmes", r"sentence 0, token 0: predicted tag 'PER'"),
        ([], [], "iob1", "no sentences"),
        ([[]], [[]], "iob1", "no tokens"),
    ],
)
def test_ner_errors(true, predicted, scheme, message):
    with pytest.raises(ValueError, match=message):
        entity_metrics(true, predicted, scheme=scheme)


# --------------------------------------------------------------------------
# SQuAD
# --------------------------------------------------------------------------


def test_squad_normalization():
    assert normalize_answer("The Denver Broncos!") == "denver broncos"
    assert normalize_answer("  an   apple,  a day ") == "apple day"
    assert normalize_answer("Levi's Stadium") == "levis stadium"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words
    # Without CJK characters non-ASCII punctuation stays, as in the official script.
    assert normalize_answer("Broncos\u2019") == "broncos\u2019"


def test_squad_exact_match():
    assert exact_match_score("The Denver Broncos", "Denver Broncos") == 1.0
    assert exact_match_score("denver broncos.", "Denver Broncos") == 1.0
    assert exact_match_score("Broncos", "Denver Broncos") == 0.0


def test_squad_f1_partial_overlaps():
    # "broncos of denver" (3 tokens) vs "denver broncos" (2): 2 shared
    # P 2/3, R 1 -> F1 = (4/3)/(5/3) = 0.8
    assert f1_score("the Broncos of Denver", "Denver Broncos") == approx(0.8)
    # Official example: "santa clara california" vs the 11 tokens
    # "levis stadium in san francisco bay area at santa clara california":
    # P 3/3, R 3/11 -> F1 = (6/11)/(14/11) = 3/7
    assert f1_score(
        "Santa Clara, California",
        "Levi's Stadium in the San Francisco Bay Area at Santa Clara, California",
    ) == approx(3 / 7)
    # Tokens count with multiplicity: 1 shared of 3 predicted -> P 1/3, R 1, F1 0.5
    assert f1_score("go go go", "go") == approx(0.5)
    assert f1_score("Denver", "Carolina Panthers") == 0.0
    assert f1_score("", "Denver") == 0.0


def test_squad_chinese_characters_are_tokens():
    assert normalize_answer("“北京大学”。") == "北 京 大 学"
    # 北 京 shared: P 2/2, R 2/4 -> F1 = 1/(1.5) = 2/3
    assert f1_score("北京大学", "北京") == approx(2 / 3)
    assert exact_match_score("北京大学", "北京") == 0.0
    # CJK punctuation and spacing between characters do not matter.
    assert exact_match_score("《北京 大学》，", "北京大学") == 1.0
    assert exact_match_score("。", "") == 1.0
    # Mixed text: non-CJK runs split on whitespace; ["2008", "年"] vs ["2008"]
    assert f1_score("2008年", "2008") == approx(2 / 3)
    # ["beijing", "奥", "运", "会"] vs ["beijing", "奥", "运"]: P 3/4, R 1 -> F1 6/7
    assert f1_score("The Beijing 奥运会", "beijing 奥运") == approx(6 / 7)


def test_squad_metrics_best_ground_truth_and_unanswered():
    predictions = {"q1": "Denver Broncos", "q2": "the Broncos of Denver"}
    references = {
        "q1": ["Denver Broncos", "The Denver Broncos"],
        "q2": ["Carolina", "Denver Broncos"],  # best: EM 0, F1 0.8
        "q3": ["Santa Clara"],  # unanswered: 0
    }
    metrics = squad_metrics(predictions, references)
    assert metrics == approx(
        {"exact_match": 1 / 3, "f1": (1 + 0.8 + 0) / 3, "questions": 3, "unanswered": 1}
    )
    assert type(metrics["questions"]) is int and type(metrics["f1"]) is float
    assert json.loads(json.dumps(metrics)) == metrics


def test_squad_metrics_errors():
    with pytest.raises(ValueError, match="'q9'"):
        squad_metrics({"q1": "x", "q9": "y"}, {"q1": ["x"]})
    with pytest.raises(ValueError, match="no questions"):
        squad_metrics({}, {})
    with pytest.raises(ValueError, match="question 'q1'.*non-empty list"):
        squad_metrics({"q1": "x"}, {"q1": "x"})
    with pytest.raises(ValueError, match="question 'q1'.*non-empty list"):
        squad_metrics({"q1": "x"}, {"q1": []})
