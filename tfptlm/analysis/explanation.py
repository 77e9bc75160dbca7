"""Explains one prediction of a text classifier: integrated gradients per token and word, and attention maps.

Example:

>>> model = load_finetuned("runs/sst2")
>>> result = explain(model, "a gripping, well acted film")
>>> result.label_names[result.target], [(w["text"], round(w["attribution"], 3)) for w in result.words]
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from tfptlm.analysis.attention_maps import attention_maps
from tfptlm.analysis.embedding_path import explainable_backbone
from tfptlm.analysis.integrated_gradients import integrated_gradients


@dataclass
class Explanation:
    """One explained prediction; ``words`` merge the word pieces (attribution summed).

    tokens / token_attributions: the packed word pieces (``[CLS]``... ``[SEP]``)
    and one attribution each. words: ``{"text", "attribution", "tokens"}`` with
    the indices of its pieces. probabilities: one per label. target: the
    explained class id; predicted: the predicted one. score_kind:
    "probability" or "logit"; score / baseline_score: its value at the text
    and at the baseline. attention: ``[layers, heads, tokens, tokens]``.
    settings: steps, method, baseline.
    """

    text: str
    text_pair: str | None
    tokens: list[str]
    token_attributions: list[float]
    words: list[dict]
    label_names: list[str]
    probabilities: list[float]
    predicted: int
    target: int
    score_kind: str
    score: float
    baseline_score: float
    completeness_error: float
    attention: np.ndarray
    settings: dict

    def to_json(self) -> dict:
        """The numbers as JSON-ready values (attention rounded to 4 decimals)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "attention"}
        data["predicted_label"] = self.label_names[self.predicted]
        data["target_label"] = self.label_names[self.target]
        data["attention"] = np.round(self.attention, 4).tolist()
        return data


def resolve_target(label_names: list[str], target: str | int | None) -> int | None:
    """The class id of ``target`` (a label name, or a class id); None stays None.

    Example:
        >>> resolve_target(["neg", "pos"], "pos"), resolve_target(["neg", "pos"], "0")
        (1, 0)
    """
    if target is None:
        return None
    if str(target) in label_names:
        return label_names.index(str(target))
    if str(target).isdigit() and int(target) < len(label_names):
        return int(target)
    raise ValueError(f"--target {target!r} is not one of the model's labels: {', '.join(label_names)}")


def word_groups(token_ids: list[int], tokenizer) -> list[list[int]]:
    """Token indices grouped into words: a word starts at a word-start piece; special tokens stand alone.

    Example:
        >>> word_groups(ids_of("[CLS] un ##aff ##able [SEP]"), tokenizer)   # doctest: +SKIP
        [[0], [1, 2, 3], [4]]
    """
    starts = tokenizer.word_start_flags()
    special = set(tokenizer.special_token_ids)
    groups: list[list[int]] = []
    for index, token_id in enumerate(token_ids):
        joins_previous = not starts[token_id] and groups and token_ids[groups[-1][-1]] not in special
        if joins_previous and token_id not in special:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def _word_text(tokenizer, ids: list[int]) -> str:
    text = tokenizer.detokenize(np.array(ids, "int32")).numpy()
    return (text.decode("utf-8") if isinstance(text, bytes) else str(text)).strip()


def explain(
    model: keras.Model,
    text: str,
    text_pair: str | None = None,
    target: str | int | None = None,
    steps: int = 50,
    baseline: str = "pad",
    score: str = "probability",
    method: str = "riemann_midpoint",
) -> Explanation:
    """Explains ``model``'s prediction for one text (or text pair).

    Args:
        model: a `TextClassifier` with its preprocessor (as `load_finetuned` returns it).
        text, text_pair: the raw input.
        target: the label (name or class id) to explain; None: the predicted one.
        steps, baseline, score, method: integrated-gradients settings
            (see `tfptlm.analysis.integrated_gradients`).
    """
    explainable_backbone(model)
    target_id = resolve_target(model.label_names, target)
    pairs = None if text_pair is None else [text_pair]
    packed = model.preprocessor([text], pairs)
    length = int(np.asarray(packed["padding_mask"]).sum())
    inputs = {name: np.asarray(value)[:, :length] for name, value in packed.items()}
    logits = keras.ops.convert_to_numpy(model(inputs, training=False))[0]
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    result = integrated_gradients(model, inputs, target_id, steps=steps, baseline=baseline, score=score, method=method)
    tokenizer = model.preprocessor.tokenizer
    token_ids = inputs["token_ids"][0].tolist()
    attributions = result.attributions.astype(float)
    words = [
        {"text": _word_text(tokenizer, [token_ids[i] for i in group]),
         "attribution": float(attributions[group].sum()), "tokens": group}
        for group in word_groups(token_ids, tokenizer)
    ]
    return Explanation(
        text=text,
        text_pair=text_pair,
        tokens=[tokenizer.id_to_token(i) for i in token_ids],
        token_attributions=attributions.tolist(),
        words=words,
        label_names=list(model.label_names),
        probabilities=probabilities.astype(float).tolist(),
        predicted=int(np.argmax(logits)),
        target=result.target,
        score_kind=score,
        score=result.score,
        baseline_score=result.baseline_score,
        completeness_error=result.completeness_error,
        attention=attention_maps(model.backbone, inputs)[:, 0],
        settings={"steps": steps, "method": method, "baseline": baseline},
    )
