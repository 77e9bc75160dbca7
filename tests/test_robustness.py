"""Robustness evaluation: character noise, embedding-neighbour substitutions, HotFlip, the CLI."""

import json
import random

import keras
import numpy as np
import pytest
from keras import ops

from tfptlm.analysis.hotflip import hotflip_attack
from tfptlm.analysis.robustness import RobustnessSettings, evaluate_robustness
from tfptlm.analysis.text_noise import CHARACTER_NOISE, add_character_noise, perturb_word
from tfptlm.analysis.word_substitution import EmbeddingNeighbours, substitute_words, whole_word_entries
from tfptlm.cli import main
from tfptlm.data.data_errors import ReadResult


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("typo", "a charmibg jourmey"),  # n -> b and n -> m: keyboard neighbours of n
        ("swap", "a charmign ojurney"),
        ("delete", "a charmig jourey"),
        ("insert", "a charminbg journmey"),  # a neighbour typed right after the letter
    ],
)
def test_each_character_noise_with_a_fixed_seed(kind, expected):
    # Rate 1: every word of 2+ letters gets exactly one error; "a" is too short.
    assert add_character_noise("a charming journey", kind, rate=1.0, seed=0) == expected
    assert add_character_noise("a charming journey", kind, rate=1.0, seed=0) == expected  # repeatable


def test_noise_keeps_case_punctuation_spacing_and_other_scripts():
    assert add_character_noise("Wow!! It's GREAT,  really.", "typo", 1.0, 5) == "Woa!! It'z HREAT,  rwally."
    assert perturb_word("Film", "typo", random.Random(2)) == "Dilm"
    assert add_character_noise("电影很好 ok", "delete", 1.0, 0) == "电影很好 o"
    assert perturb_word("oo", "swap", random.Random(0)) == "oo"  # no two different letters to swap


@pytest.mark.parametrize("kind", CHARACTER_NOISE)
def test_rate_zero_leaves_the_text_unchanged(kind):
    text = "Never boring, always surprising: a film to see twice."
    assert add_character_noise(text, kind, rate=0.0, seed=3) == text


def test_noise_errors():
    with pytest.raises(ValueError, match="unknown character noise 'shout'"):
        add_character_noise("text", "shout", 0.1)
    with pytest.raises(ValueError, match=r"in \[0, 1\], got 1.5"):
        add_character_noise("text", "typo", 1.5)


# A hand-made vocabulary: by cosine, good ~ great and bad ~ awful; by distance good ~ bad.
VOCABULARY = ["[PAD]", "[CLS]", "good", "great", "bad", "##ly", "the", "awful"]
EMBEDDINGS = np.array(
    [[0, 0], [1, 0.1], [1, 0.1], [10, 1.5], [0.9, -0.5], [1, 0.1], [0.2, 1], [9, -6]], "float32"
)


def neighbours():
    return EmbeddingNeighbours(EMBEDDINGS, whole_word_entries(VOCABULARY, {"[PAD]", "[CLS]"}))


def test_whole_word_entries_skip_special_tokens_and_pieces():
    assert whole_word_entries(VOCABULARY, {"[PAD]", "[CLS]"}) == {"good": 2, "great": 3, "bad": 4, "the": 6, "awful": 7}
    assert whole_word_entries(["<s>", "Ġgood", "good", "Ġ,", "▁x"]) == {"good": 1, "x": 4}


def test_nearest_neighbour_is_by_cosine_over_whole_words():
    found = neighbours()
    assert found.nearest("good") == "great"  # not ##ly or [CLS] (same vector), not bad (closer in distance)
    assert found.nearest("Bad") == "awful"
    assert found.nearest("film") is None


def test_substitution_replaces_words_keeping_case_and_punctuation():
    rng = random.Random(0)
    assert substitute_words("The good film.", neighbours(), 1, rng) == "The great film."
    assert substitute_words("Good! bad", neighbours(), 5, rng) == "Great! awful"
    assert substitute_words("the film", neighbours(), 2, rng) == "the film"  # a stop-word
    assert substitute_words("the film", neighbours(), 2, rng, skip_stop_words=False) != "the film"


def bag_of_words_classifier():
    """logits = sum of word embeddings @ W: class 1 ("pos") scores the first coordinate."""
    embedding = keras.layers.Embedding(6, 2, name="token_embedding")
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    backbone = keras.Model(ids, embedding(ids))
    backbone.token_embedding = embedding
    dense = keras.layers.Dense(2, use_bias=False)
    model = keras.Model({"token_ids": ids}, dense(ops.sum(backbone(ids), axis=1)))
    model.backbone = backbone
    # 0 [PAD], 1 [CLS], 2 good, 3 bad, 4 film, 5 fine
    embedding.set_weights([np.array([[0, 0], [0, 0], [1, 0], [-1, 0], [0, 1], [0.6, 0]], "float32")])
    dense.set_weights([np.array([[-1, 1], [0, 0]], "float32")])
    return model


def test_hotflip_flips_the_word_with_the_largest_promised_gain():
    model = bag_of_words_classifier()
    ids = np.array([[1, 4, 2, 4], [1, 2, 5, 5]])
    result = hotflip_attack(model, {"token_ids": ids}, np.array([1, 1]), np.array([2, 3, 4, 5]), max_flips=3)
    # Every position has the same gradient (pointing to -x); replacing "good" (x=1) by "bad"
    # (x=-1) promises the most, then "fine" (x=0.6). One flip is enough for the first text
    # (x: 1 -> -1), two for the second (x: 2.2 -> 0.2 -> -1.4); [CLS] is never a candidate.
    np.testing.assert_array_equal(result.token_ids, [[1, 4, 3, 4], [1, 3, 3, 5]])
    np.testing.assert_array_equal(result.flips, [1, 2])
    np.testing.assert_array_equal(result.predictions, [0, 0])


def test_hotflip_respects_its_budget_and_skips_wrong_predictions():
    model = bag_of_words_classifier()
    ids = np.array([[1, 2, 2, 2], [1, 3, 4, 4]])  # the second is already wrong (neg for label pos)
    result = hotflip_attack(model, {"token_ids": ids}, np.array([1, 1]), np.array([2, 3, 4, 5]), max_flips=1)
    np.testing.assert_array_equal(result.flips, [1, 0])
    np.testing.assert_array_equal(result.token_ids[1], ids[1])
    assert result.predictions[0] == 1  # one flip of three "good": still positive


def test_robustness_needs_a_classifier_and_sane_settings():
    examples = ReadResult([])
    with pytest.raises(ValueError, match="for text classifiers"):
        evaluate_robustness(bag_of_words_classifier(), examples)
    with pytest.raises(ValueError, match="max_flips must be >= 1"):
        evaluate_robustness(bag_of_words_classifier(), examples, RobustnessSettings(max_flips=0))


TINY = [
    "--set", "backbone.config={num_layers: 1, hidden_dim: 32, num_heads: 2, intermediate_dim: 64}",
    "--set", "tokenizer.vocab_size=150", "--set", "data.sequence_length=16",
    "--set", "training.batch_size=16", "--set", "training.learning_rate=0.01", "--set", "training.epochs=8",
]


def test_finetune_adversarially_then_evaluate_robustness_end_to_end(tmp_path, capsys):
    rng = random.Random(0)
    words = {"pos": "great wonderful superb lovely".split(), "neg": "awful terrible boring dull".split()}
    rows = [(f"the film was {rng.choice(words[label])}", label) for label in ["pos", "neg"] * 60]
    data = tmp_path / "train.tsv"
    data.write_text("text\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in rows), encoding="utf-8")
    out = tmp_path / "run"
    assert main(["finetune", *TINY, "--set", "training.adversarial.method=fgm", "--set",
                 "training.adversarial.epsilon=0.05", "--train-file", str(data), "--output-dir", str(out)]) == 0
    model = keras.saving.load_model(out / "model.keras", compile=False)
    assert type(model).__name__ == "TextClassifier"  # the plain task model, not the trainer

    report_file = tmp_path / "robustness.json"
    assert main(["evaluate", "--model", str(out), "--data", str(data), "--robustness", "--robustness-rate", "0",
                 "--robustness-flips", "1", "--output", str(report_file)]) == 0
    report = json.loads(report_file.read_text())
    printed = capsys.readouterr().out
    assert "| clean | - |" in printed and "| hotflip |" in printed
    assert report["examples"] == 120 and report["clean_accuracy"] > 0.9
    attacks = report["attacks"]
    assert list(attacks) == [*CHARACTER_NOISE, "word_substitution", "hotflip"]
    for kind in CHARACTER_NOISE:  # rate 0: nothing changes
        assert attacks[kind] == {"accuracy": report["clean_accuracy"], "attack_success_rate": 0.0,
                                 "changed_share": 0.0}
    assert attacks["word_substitution"]["changed_share"] > 0.9
    assert 0 < attacks["hotflip"]["mean_flips"] <= 1

    assert main(["evaluate", "--model", str(out), "--robustness", "--bias", "en", "--data", str(data)]) == 1
    assert "one at a time" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(out), "--data", str(data), "--robustness",
                 "--robustness-rate", "2"]) == 1
    assert "got 2.0" in capsys.readouterr().err
