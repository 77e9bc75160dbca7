"""Accuracy of a text classifier under noise and attacks, next to its clean accuracy.

`evaluate_robustness` scores a fine-tuned classifier on labelled examples
as they are and under each of:

- character noise (`tfptlm.analysis.text_noise`): ``typo``, ``swap``,
  ``delete``, ``insert``, each word hit with probability ``noise_rate``;
- ``word_substitution`` (`tfptlm.analysis.word_substitution`): ``substitutions``
  words per text replaced by their nearest neighbour in the model's own
  word-embedding space;
- ``hotflip`` (`tfptlm.analysis.hotflip`): up to ``max_flips`` gradient-chosen
  word flips per text.

For each it reports the accuracy and the attack success rate: the share of
the examples classified correctly when clean that are classified wrongly
under the attack. Everything is seeded. ``tfptlm evaluate --robustness``
prints the table and writes the report as JSON.

Example:

>>> model = load_finetuned("runs/sst2")
>>> report = evaluate_robustness(model, read_labelled(model, "dev.tsv"), RobustnessSettings())
>>> print(format_robustness(report))                        # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfptlm.analysis.hotflip import hotflip_attack
from tfptlm.analysis.text_noise import CHARACTER_NOISE, add_character_noise
from tfptlm.analysis.word_substitution import (
    STOP_WORDS,
    EmbeddingNeighbours,
    substitute_words,
    tokenizer_vocabulary,
    whole_word_entries,
)
from tfptlm.data.data_errors import ReadResult
from tfptlm.tasks.text_classifier import TextClassifier


@dataclass
class RobustnessSettings:
    """How hard each attack hits (see the module)."""

    noise_rate: float = 0.1
    substitutions: int = 2
    max_flips: int = 3
    seed: int = 0
    skip_stop_words: bool = True
    batch_size: int = 32

    def validate(self) -> None:
        if not 0.0 <= self.noise_rate <= 1.0:
            raise ValueError(f"the robustness noise rate is a share of words in [0, 1], got {self.noise_rate}")
        for name in ("substitutions", "max_flips", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"robustness {name} must be >= 1, got {getattr(self, name)}")


def _columns(examples: ReadResult) -> tuple[list[str], list[str] | None]:
    texts = [e.text for e in examples.examples]
    pairs = [e.text_pair for e in examples.examples] if examples.examples[0].text_pair is not None else None
    return texts, pairs


def _score(predictions: np.ndarray, labels: np.ndarray, clean_correct: np.ndarray) -> dict:
    correct = predictions == labels
    attacked = int(clean_correct.sum())
    return {
        "accuracy": float(correct.mean()),
        "attack_success_rate": float((clean_correct & ~correct).sum() / attacked) if attacked else 0.0,
    }


def _hotflip(model, texts, pairs, labels, clean_correct, settings: RobustnessSettings) -> tuple[np.ndarray, dict]:
    """HotFlip predictions for every example (those wrong when clean are not attacked)."""
    tokenizer = model.preprocessor.tokenizer
    special = {tokenizer.id_to_token(i) for i in tokenizer.special_token_ids}
    entries = whole_word_entries(tokenizer_vocabulary(tokenizer), special)
    if settings.skip_stop_words:
        entries = {w: i for w, i in entries.items() if w.lower() not in STOP_WORDS}
    candidate_ids = np.array(sorted(entries.values()), "int32")
    predictions = np.zeros(len(texts), "int64")
    flips = np.zeros(len(texts), "int32")
    batch = max(1, min(settings.batch_size, 16))  # the gains are [batch, length, candidates]
    for begin in range(0, len(texts), batch):
        end = begin + batch
        columns = [tf.constant(texts[begin:end])] + ([tf.constant(pairs[begin:end])] if pairs else [])
        inputs = {k: v.numpy() for k, v in model.preprocessor(*columns).items()}
        # Examples already wrong are not attacked (their prediction stays).
        result = hotflip_attack(model, inputs, labels[begin:end], candidate_ids, settings.max_flips)
        predictions[begin:end] = result.predictions
        flips[begin:end] = result.flips
    attacked = clean_correct.sum()
    return predictions, {"mean_flips": float(flips[clean_correct].sum() / attacked) if attacked else 0.0}


def evaluate_robustness(model, examples: ReadResult, settings: RobustnessSettings | None = None, log=None) -> dict:
    """Clean accuracy and accuracy + attack success rate under each attack (see the module).

    Args:
        model: a fine-tuned `TextClassifier` with its preprocessor
            (`tfptlm.finetuning.run.load_finetuned`).
        examples: labelled examples.
        settings: the attacks' strength and seed.
        log: optional ``print``-like function for progress lines.
    """
    settings = settings or RobustnessSettings()
    settings.validate()
    if not isinstance(model, TextClassifier):
        raise ValueError(
            f"robustness evaluation is for text classifiers, not {type(model).__name__} "
            "(a text_classification model from `tfptlm finetune`)"
        )
    if not examples.examples:
        raise ValueError("robustness evaluation needs at least one labelled example")
    log = log or (lambda message: None)
    texts, pairs = _columns(examples)
    index = {name: i for i, name in enumerate(model.label_names)}
    labels = np.array([index[e.label] for e in examples.examples])

    def predict(texts_now, pairs_now) -> np.ndarray:
        return model.predict_probabilities(texts_now, pairs_now, batch_size=settings.batch_size).argmax(-1)

    started = time.perf_counter()
    clean = predict(texts, pairs)
    clean_correct = clean == labels
    attacks: dict[str, dict] = {}
    neighbours = EmbeddingNeighbours.from_model(model, model.preprocessor.tokenizer)
    rng = random.Random(settings.seed)
    perturbations = {
        kind: (lambda text, kind=kind: add_character_noise(text, kind, settings.noise_rate, rng))
        for kind in CHARACTER_NOISE
    }
    perturbations["word_substitution"] = lambda text: substitute_words(
        text, neighbours, settings.substitutions, rng, settings.skip_stop_words
    )
    for name, perturb in perturbations.items():
        rng.seed(f"{settings.seed}:{name}")  # each attack repeatable on its own
        new_texts = [perturb(t) for t in texts]
        new_pairs = [perturb(t) for t in pairs] if pairs else None
        changed = np.array([a != b for a, b in zip(texts, new_texts)])
        if new_pairs:
            changed |= np.array([a != b for a, b in zip(pairs, new_pairs)])
        attacks[name] = {**_score(predict(new_texts, new_pairs), labels, clean_correct),
                         "changed_share": float(changed.mean())}
        log(f"{name}: accuracy {attacks[name]['accuracy']:.4f}")
    predictions, extra = _hotflip(model, texts, pairs, labels, clean_correct, settings)
    attacks["hotflip"] = {**_score(predictions, labels, clean_correct), **extra}
    log(f"hotflip: accuracy {attacks['hotflip']['accuracy']:.4f}")
    return {
        "examples": len(labels),
        "clean_accuracy": float(clean_correct.mean()),
        "attacks": attacks,
        "settings": dataclasses.asdict(settings),
        "seconds": round(time.perf_counter() - started, 1),
    }


def evaluate_robustness_file(model, path: str, settings: RobustnessSettings | None = None, log=None) -> dict:
    """`evaluate_robustness` on a labelled file read with the model's data settings.

    ``model`` comes from `tfptlm.finetuning.run.load_finetuned`.
    """
    if not isinstance(model, TextClassifier):
        raise ValueError(
            f"--robustness evaluates text classifiers; this is a {getattr(model.recipe, 'task', '?')} model"
        )
    examples = model.recipe.read(path, model.data_config, model.label_names)
    report = evaluate_robustness(model, examples, settings, log)
    report["skipped_rows"] = examples.skipped
    return report


def format_robustness(report: dict) -> str:
    """The report as a Markdown table: clean accuracy, then each attack's accuracy and success rate."""
    settings = report["settings"]
    details = {
        **{kind: f"{settings['noise_rate']:.0%} of words" for kind in CHARACTER_NOISE},
        "word_substitution": f"{settings['substitutions']} words/text",
        "hotflip": f"up to {settings['max_flips']} flips",
    }
    lines = [
        f"Robustness on {report['examples']} examples (seed {settings['seed']})",
        "",
        "| attack | strength | accuracy | attack success rate |",
        "| --- | --- | ---: | ---: |",
        f"| clean | - | {report['clean_accuracy']:.4f} | - |",
    ]
    for name, scores in report["attacks"].items():
        lines.append(
            f"| {name} | {details.get(name, '')} | {scores['accuracy']:.4f} | {scores['attack_success_rate']:.4f} |"
        )
    return "\n".join(lines)
