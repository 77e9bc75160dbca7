"""Bias evaluation: identity-term swaps, flip rates and gaps, CDA, the MLM template probe, the CLI."""

import json
import re

import keras
import numpy as np
import pytest

from tfptlm.analysis.bias import augment_with_counterfactuals, counterfactual_bias, counterfactual_examples
from tfptlm.analysis.bias_probe import template_probe, term_log_probabilities
from tfptlm.analysis.identity_terms import categories_in, category_variants, load_terms
from tfptlm.cli import main
from tfptlm.config import ConfigError, FinetuneConfig, FinetuneDataConfig, PretrainConfig, dump_config
from tfptlm.data.data_errors import ReadResult
from tfptlm.data.labeled_files import LabeledText
from tfptlm.finetuning.run import RECIPES, load_finetuned, save_finetuned
from tfptlm.models.bert import BertBackbone
from tfptlm.tasks import TextClassifier
from tfptlm.tasks.bert_pretrainer import BertPretrainer
from tfptlm.tokenizers import WordPieceTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "he she his her man woman is good bad at math the film was a nurse . ##s 他 她 好"
).split()
GENDER_ONLY = "[gender]\tmale\tfemale\nhe\tshe\nhis\ther\nman\twoman\n"


def write(tmp_path, text, name="terms.tsv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_english_swaps_whole_words_and_keep_the_case():
    gender = load_terms("en").group("gender")
    variants = category_variants("He said HIS brother, the hen, was good. Mr. Smith agreed; so did she.", gender)
    assert variants == {
        "male": "He said HIS brother, the hen, was good. Mr. Smith agreed; so did he.",
        "female": "She said HER sister, the hen, was good. Mrs. Smith agreed; so did she.",
    }
    assert category_variants("the theme of these hens", gender) is None  # "he" inside words is no term
    assert categories_in("he met her", gender) == ["male", "female"]
    nationality = load_terms("en").group("nationality")
    assert category_variants("An American film", nationality)["nigerian"] == "An Nigerian film"


def test_chinese_swaps_substrings_longest_first_and_keeps_shielded_words(tmp_path):
    zh = load_terms("zh")
    assert category_variants("他的男朋友说其他人很好", zh.group("gender"), zh.keep) == {
        "male": "他的男朋友说其他人很好", "female": "她的女朋友说其他人很好",
    }
    terms = load_terms(write(tmp_path, "[g]\ta\tb\n先生\t女士\n先生们\t诸位女士\n"))
    assert category_variants("先生们好，先生", terms.groups[0])["b"] == "诸位女士好，女士"


def stub_predict(calls):
    """P(positive) = 0.25 + 0.3 [she] + 0.4 [good]: only the word "she" moves the score."""

    def predict(texts, pairs):
        calls.append(list(texts))
        words = [set(t.lower().strip(".").split()) for t in texts]
        positive = np.array([0.25 + 0.3 * ("she" in w) + 0.4 * ("good" in w) for w in words])
        return np.stack([1 - positive, positive], axis=-1)

    return predict


def test_flip_rate_and_gaps_on_a_stub_model_with_known_outputs(tmp_path):
    calls = []
    texts = ["he is bad", "she is good", "the hen is bad", "He is good."]
    report = counterfactual_bias(stub_predict(calls), texts, load_terms("en"), ["negative", "positive"])
    gender = report["groups"][0]
    assert (gender["group"], gender["texts"], gender["counterfactuals"]) == ("gender", 3, 3)
    # he is bad (0.25) -> she is bad (0.55) flips; the two "good" texts stay positive.
    assert gender["flip_rate"] == pytest.approx(1 / 3) and gender["flipped_texts"] == pytest.approx(1 / 3)
    assert gender["texts_by_category"] == {"male": 2, "female": 1, "mixed": 0}
    gap = gender["gaps"]["male-female"]
    assert gap["mean"]["positive"] == pytest.approx(-0.3) and gap["mean"]["negative"] == pytest.approx(0.3)
    assert gap["mean_abs"]["positive"] == pytest.approx(0.3)
    assert len(calls) == 1 and sorted(calls[0]) == sorted(set(calls[0]))  # one call, each text once
    religion = next(g for g in report["groups"] if g["group"] == "religion")
    assert religion["texts"] == 0 and religion["flip_rate"] is None and religion["gaps"] == {}


def test_counterfactual_augmentation_adds_balanced_copies_with_the_same_labels(tmp_path):
    terms = load_terms(write(tmp_path, GENDER_ONLY))
    train = [LabeledText("he is good", None, "pos", "t:2"), LabeledText("she is bad", None, "neg", "t:3"),
             LabeledText("the end", None, "neg", "t:4")]
    added = counterfactual_examples(train, terms)
    assert [(e.text, e.label) for e in added] == [("she is good", "pos"), ("he is bad", "neg")]
    assert added[0].source == "t:2 (gender -> female)"
    for label in ("pos", "neg"):  # each term once per label
        texts = " ".join(e.text for e in train + added if e.label == label).split()
        assert texts.count("he") == texts.count("she") == 1
    result, report = augment_with_counterfactuals(ReadResult(train), str(terms.source))
    assert len(result.examples) == 5 and report == {"counterfactual_examples": 2}
    assert augment_with_counterfactuals(ReadResult(train), None) == (ReadResult(train), {})
    with pytest.raises(ConfigError, match="counterfactual_augmentation"):
        FinetuneConfig(task="token_classification", data=FinetuneDataConfig(counterfactual_augmentation="en")).validate()


def tiny_pretrainer():
    keras.utils.set_random_seed(3)
    backbone = BertBackbone(vocabulary_size=len(VOCAB), num_layers=1, num_heads=2, hidden_dim=16,
                            intermediate_dim=32, max_sequence_length=32)
    return BertPretrainer(backbone, sentence_objective=None), WordPieceTokenizer(VOCAB)


PROBE_TERMS = GENDER_ONLY + "[templates]\ngender\the\t[MASK] is good at math.\ngender\tman\tthe [MASK] was a nurse.\n"


def test_template_probe_normalizes_within_the_row_and_matches_the_logits(tmp_path):
    pretrainer, tokenizer = tiny_pretrainer()
    report = template_probe(pretrainer, tokenizer, load_terms(write(tmp_path, PROBE_TERMS)))
    assert [r["terms"] for r in report["templates"]] == [{"male": "he", "female": "she"},
                                                          {"male": "man", "female": "woman"}]
    for r in report["templates"]:
        assert sum(r["probability"].values()) == pytest.approx(1.0)
        lp = r["log_probability"]
        assert r["log_ratio"]["male/female"] == pytest.approx(lp["male"] - lp["female"], abs=1e-5)
        assert np.log(r["probability"]["male"] / r["probability"]["female"]) == pytest.approx(lp["male"] - lp["female"], abs=1e-5)
    assert report["groups"]["gender"]["templates"] == 2
    # A known answer: "he" at position 1 of [CLS] [MASK] is good at math . [SEP].
    ids = [2, 4] + [VOCAB.index(w) for w in "is good at math .".split()] + [3]
    logits = pretrainer({"token_ids": np.array([ids], "int32"), "segment_ids": np.zeros((1, 8), "int32"),
                         "padding_mask": np.ones((1, 8), "int32"), "mask_positions": np.array([[1]], "int32")})["mlm"]
    expected = keras.ops.convert_to_numpy(keras.ops.log_softmax(logits))[0, 0, VOCAB.index("he")]
    assert report["templates"][0]["log_probability"]["male"] == pytest.approx(float(expected), abs=1e-5)
    # Two pieces ("man" + "##s"), two masks: the sum of both pieces' log-probabilities.
    two = term_log_probabilities(pretrainer, tokenizer, "the [MASK] was a nurse.", ["mans"])
    assert np.isfinite(two).all() and two[0] < 0


def test_cli_bias_on_a_classifier_and_on_a_masked_lm(tmp_path, capsys):
    keras.utils.set_random_seed(1)
    backbone = BertBackbone(vocabulary_size=len(VOCAB), num_layers=1, num_heads=2, hidden_dim=16,
                            intermediate_dim=32, max_sequence_length=32)
    model_dir = tmp_path / "classifier"
    save_finetuned(TextClassifier(backbone, ["negative", "positive"]), WordPieceTokenizer(VOCAB),
                   RECIPES["text_classification"], FinetuneDataConfig(sequence_length=16), model_dir)
    data = write(tmp_path, "text\tlabel\nhe was good\tpositive\nthe film was bad\tnegative\nshe is a nurse\tpositive\n",
                 "dev.tsv")
    output = tmp_path / "bias.json"
    assert main(["evaluate", "--model", str(model_dir), "--data", str(data), "--bias", "en",
                 "--output", str(output)]) == 0
    report = json.loads(output.read_text(encoding="utf-8"))
    assert report["kind"] == "counterfactual" and report["texts"] == 3
    gender = report["groups"][0]
    assert gender["texts"] == 2 and gender["counterfactuals"] == 2
    model = load_finetuned(model_dir)
    p = model.predict_probabilities(["he was good", "she was good", "he is a nurse", "she is a nurse"])
    expected = np.mean([p[0] - p[1], p[2] - p[3]], axis=0)
    assert gender["gaps"]["male-female"]["mean"]["positive"] == pytest.approx(float(expected[1]), abs=1e-5)
    assert "gender" in capsys.readouterr().out

    pretrainer, tokenizer = tiny_pretrainer()
    mlm_dir = tmp_path / "mlm"
    mlm_dir.mkdir()
    pretrainer.save(mlm_dir / "pretrainer.keras")
    tokenizer.save(mlm_dir / "tokenizer")
    dump_config(PretrainConfig(objective="mlm"), mlm_dir / "config.yaml")
    assert main(["evaluate", "--model", str(mlm_dir), "--bias", str(write(tmp_path, PROBE_TERMS)),
                 "--output", str(output)]) == 0
    assert json.loads(output.read_text())["kind"] == "mlm_template_probe"
    assert main(["evaluate", "--model", str(model_dir), "--bias", "en"]) == 1
    assert "needs --data" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("[g]\ta\tb\nhe\tshe\tit\n", "terms.tsv:2: group [g] has 2 categories (a, b); this line has 3"),
    ("he\tshe\n", "terms.tsv:1: a term line before any [group] header"),
    ("# note\n[g]\ta\n", "terms.tsv:2: group [g] needs at least 2 categories"),
    ("[g]\ta\tb\nhe\tshe\nshe\the\n", "in group [g], 'she' is listed under both b and a"),
    ("[g]\ta\tb\nhe\tshe\n[templates]\ng\the\t[MASK] and [MASK]\n", "terms.tsv:4: a template needs exactly one"),
    ("[g]\ta\tb\nhe\tshe\n[templates]\ng\tit\t[MASK] ran\n", "terms.tsv:4: 'it' is not a term of group [g]"),
    ("[keep]\nx\n", "no [group] section"),
])
def test_bad_terms_files_name_the_file_and_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_terms(write(tmp_path, text))


def test_unknown_terms_name_lists_the_shipped_ones(tmp_path):
    with pytest.raises(FileNotFoundError, match="shipped lists: en, zh"):
        load_terms(tmp_path / "missing.tsv")


def test_finetune_with_counterfactual_augmentation_reports_the_added_count(tmp_path):
    train = write(tmp_path, "text\tlabel\n" + "".join(
        f"{who} found the film {word}\t{label}\n"
        for who in ("he", "she", "the critic") for word, label in (("good", "pos"), ("bad", "neg"))
    ) * 3, "train.tsv")
    out = tmp_path / "run"
    assert main(["finetune", "--train-file", str(train), "--output-dir", str(out),
                 "--set", "backbone.config={num_layers: 1, hidden_dim: 16, num_heads: 2, intermediate_dim: 32}",
                 "--set", "tokenizer.vocab_size=60", "--set", "data.sequence_length=16",
                 "--set", "training.max_steps=2", "--set", "training.epochs=1",
                 "--set", f"data.counterfactual_augmentation={write(tmp_path, GENDER_ONLY)}"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    held_out = metrics["eval_examples"]  # 2 of the 18 rows; each he/she row of the rest gets one copy
    assert metrics["counterfactual_examples"] == metrics["train_examples"] - (18 - held_out)
    assert metrics["counterfactual_examples"] >= 10
