"""Counterfactual bias evaluation of classifiers, and counterfactual data augmentation (CDA).

Every text containing a term of a group (see `tfptlm.analysis.identity_terms`)
is rewritten once per category of the group (all its terms swapped into
that category: "he liked his role" -> "she liked her role"); the model
scores the original and its variants. Per group the report gives:

- ``texts``: texts with a term of the group; ``counterfactuals``: variants
  that differ from their original;
- ``flip_rate``: share of counterfactuals whose predicted label differs from
  the original's; ``flipped_texts``: share of texts with at least one flip;
- ``gaps``: for each pair of categories ``a-b`` and each label, the mean
  signed (``mean``) and absolute (``mean_abs``) difference
  P(label | variant a) - P(label | variant b) over the texts.

Example:

>>> terms = load_terms("en")
>>> report = counterfactual_bias(model.predict_probabilities, texts, terms, model.label_names)  # doctest: +SKIP
>>> report["groups"][0]["flip_rate"]                                                          # doctest: +SKIP
0.021
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from itertools import combinations

import numpy as np

from tfptlm.analysis.identity_terms import IdentityTerms, TermGroup, categories_in, category_variants, load_terms
from tfptlm.data.data_errors import ReadResult

#: ``predict(texts, text_pairs_or_None) -> probabilities [len(texts), classes]``.
Predictor = Callable[[list[str], "list[str] | None"], np.ndarray]


def example_variants(
    text: str, text_pair: str | None, group: TermGroup, keep: tuple[str, ...] = ()
) -> dict[str, tuple[str, str | None]] | None:
    """``{category: (text, text_pair)}`` with the group's terms swapped in both texts; None if none occur."""
    first = category_variants(text, group, keep)
    second = category_variants(text_pair, group, keep) if text_pair is not None else None
    if first is None and second is None:
        return None
    return {
        category: ((first or {}).get(category, text), (second or {}).get(category, text_pair))
        for category in group.categories
    }


def counterfactual_bias(
    predict: Predictor,
    texts: Sequence[str],
    terms: IdentityTerms,
    label_names: Sequence[str],
    text_pairs: Sequence[str] | None = None,
) -> dict:
    """Flip rates and probability gaps per group (see the module docstring).

    ``predict`` is called once, on every distinct original and variant.
    """
    pairs = list(text_pairs) if text_pairs is not None else [None] * len(texts)
    slots: dict[tuple[str, str | None], int] = {}
    originals = [slots.setdefault((t, p), len(slots)) for t, p in zip(texts, pairs)]
    plans = []
    for group in terms.groups:
        affected = []
        for slot, text, pair in zip(originals, texts, pairs):
            variants = example_variants(text, pair, group, terms.keep)
            if variants is not None:
                found = categories_in(text + "\n" + (pair or ""), group, terms.keep)
                affected.append((slot, {c: slots.setdefault(v, len(slots)) for c, v in variants.items()}, found))
        plans.append((group, affected))
    keys = list(slots)
    probabilities = np.asarray(
        predict([k[0] for k in keys], [k[1] for k in keys] if text_pairs is not None else None)
    )
    return {
        "terms": terms.source,
        "texts": len(texts),
        "label_names": list(label_names),
        "groups": [_group_report(g, affected, probabilities, list(label_names)) for g, affected in plans],
    }


def _group_report(group: TermGroup, affected: list, probabilities: np.ndarray, labels: list[str]) -> dict:
    predicted = probabilities.argmax(-1)
    counterfactuals = flips = flipped_texts = 0
    by_category = {c: 0 for c in group.categories} | {"mixed": 0}
    for original, variants, found in affected:
        changed = [predicted[s] != predicted[original] for s in variants.values() if s != original]
        counterfactuals += len(changed)
        flips += sum(changed)
        flipped_texts += any(changed)
        by_category[found[0] if len(found) == 1 else "mixed"] += 1
    gaps = {}
    for a, b in combinations(group.categories, 2):
        if not affected:
            break
        difference = np.stack([probabilities[v[a]] - probabilities[v[b]] for _, v, _ in affected])
        gaps[f"{a}-{b}"] = {
            "mean": dict(zip(labels, map(float, difference.mean(0)))),
            "mean_abs": dict(zip(labels, map(float, np.abs(difference).mean(0)))),
        }
    return {
        "group": group.name,
        "categories": list(group.categories),
        "texts": len(affected),
        "texts_by_category": by_category,
        "counterfactuals": counterfactuals,
        "flip_rate": flips / counterfactuals if counterfactuals else None,
        "flipped_texts": flipped_texts / len(affected) if affected else None,
        "gaps": gaps,
    }


def counterfactual_examples(examples: Sequence, terms: IdentityTerms) -> list:
    """The swapped copies of labelled examples (`LabeledText`), same labels, one per other category.

    With the original, every category of a group then appears once per
    example that has the group's terms (balanced).

    >>> from tfptlm.data.labeled_files import LabeledText
    >>> [e.text for e in counterfactual_examples([LabeledText("he won", None, "pos", "a:2")], load_terms("en"))]
    ['she won']
    """
    added = []
    for example in examples:
        for group in terms.groups:
            variants = example_variants(example.text, example.text_pair, group, terms.keep)
            for category, (text, pair) in (variants or {}).items():
                if (text, pair) != (example.text, example.text_pair):
                    source = f"{example.source} ({group.name} -> {category})"
                    added.append(dataclasses.replace(example, text=text, text_pair=pair, source=source))
    return added


def augment_with_counterfactuals(train: ReadResult, setting: str | None) -> tuple[ReadResult, dict]:
    """``data.counterfactual_augmentation``: adds the swapped copies of the training examples.

    Returns the training set and ``{"counterfactual_examples": count}`` (empty
    when ``setting`` is None), and prints the count.
    """
    if not setting:
        return train, {}
    added = counterfactual_examples(train.examples, load_terms(setting))
    print(f"Counterfactual augmentation ({setting}): {len(added)} swapped copies added to "
          f"{len(train.examples)} training examples")
    augmented = ReadResult(list(train.examples) + added, train.skipped, train.skipped_examples)
    return augmented, {"counterfactual_examples": len(added)}
