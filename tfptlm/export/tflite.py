"""Export a fine-tuned model to TFLite for phones: raw strings in, label probabilities out.

Layout (each export adds the next version, as for SavedModels)::

    OUTPUT/1/model.tflite   the model; for text classification the tokenizer is inside
    OUTPUT/1/labels.txt     class names (tag names for a tagger), one a line, in output order
    OUTPUT/1/task.json      the fine-tuning task and data settings (copied from the model dir)
    OUTPUT/1/tflite.json    inputs, outputs, quantization, custom ops and parity figures
    OUTPUT/1/tokenizer/     vocab.txt + tokenizer.json, for clients of token-id models

Text classifiers (single texts or text pairs) take raw UTF-8 strings: the
signature ``serving_default`` maps ``text`` `[batch]` (and ``text_pair``) to
``probabilities`` `[batch, classes]` (float32), ``label`` `[batch]` (string)
and ``score`` `[batch]`. Inside, `tfptlm.export.tflite_tokenizer` reproduces the
model's `WordPieceTokenizer` with tensorflow-text's TFLite kernels, then the
ids are trimmed, wrapped in ``[CLS] ... [SEP]`` and padded to the longest row
of the batch (a multiple of 8, at most ``sequence_length``) exactly like the
training preprocessor, using only TFLite builtin ops.

Taggers and question answerers keep their tokenizer outside: their raw-string
signatures need word offsets and windowing that TFLite cannot run, so their
``.tflite`` takes ``token_ids``, ``segment_ids`` and ``padding_mask`` (int32
`[batch, sequence_length]`) and returns what the SavedModel's ``serve_tokens``
signature returns (``tag_ids``, or ``start_logits``/``end_logits``); a
`TokenInputsWarning` says so at export time.

Conversion: the serving function is traced, its weights frozen into
constants, and converted with ``supported_ops=[TFLITE_BUILTINS]`` plus
``allow_custom_ops`` for the two tensorflow-text kernels; no Select TF ops
(Flex) are needed. ``quantize="dynamic_int8"`` sets
``optimizations=[tf.lite.Optimize.DEFAULT]`` (int8 weights, float
activations); ``"float16"`` adds ``target_spec.supported_types=[tf.float16]``.

Running needs the tensorflow-text TFLite kernels: in Python,
``tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS`` (what `TFLiteClassifier`
uses); on Android/iOS, link tensorflow-text's TFLite ops
(``FastBertNormalize``, ``FastWordpieceTokenizeWithOffsets``) into the
interpreter. A token-id export needs no custom op.

Example:

>>> path = export_tflite("runs/sst2", "exports/sst2_tflite", quantize="dynamic_int8")  # doctest: +SKIP
>>> run_tflite(path, ["A gorgeous, witty film."])                                       # doctest: +SKIP
array([[0.03, 0.97]], dtype=float32)
>>> TFLiteClassifier(path).classify(["A gorgeous, witty film."])                        # doctest: +SKIP
[{'label': 'positive', 'score': 0.97, 'probabilities': {...}}]
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from tfptlm.export.saved_model import PROBE_TEXTS as SAVED_MODEL_PROBE_TEXTS
from tfptlm.export.saved_model import version_dir
from tfptlm.export.tflite_tokenizer import UnsupportedTokenizerError, tflite_tokenizer
from tfptlm.finetuning.backbones import TOKENIZER_DIR
from tfptlm.finetuning.run import TASK_FILE, load_finetuned
from tfptlm.tasks.task import BACKBONE_INPUTS

#: The ``quantize`` choices: float32 weights, int8 weights (dynamic-range
#: quantization: activations stay float), float16 weights.
QUANTIZATIONS = ("none", "dynamic_int8", "float16")
MODEL_FILE = "model.tflite"
LABELS_FILE = "labels.txt"
METADATA_FILE = "tflite.json"

#: The tensorflow-text TFLite kernels a raw-string model uses.
CUSTOM_OPS = ("FastBertNormalize", "FastWordpieceTokenizeWithOffsets")

#: Largest difference allowed between the float32 export's probabilities and the Keras model's.
PARITY_ATOL = 1e-4

#: The SavedModel's probe strings plus accents, full-width punctuation, Chinese
#: and a text longer than any model: the inputs where tokenizers disagree.
PROBE_TEXTS = SAVED_MODEL_PROBE_TEXTS + [
    "这家酒店的服务很好，房间也很干净！下次还会再来。",
    "ÀÉÎÕÜ Straße ﬁne ＡＢＣ１２３ don't… $5+3=8",
    "The plot thickens, then thins out again. " * 60,
]


#: Why a task's raw-string signature cannot go into TFLite.
_NO_STRINGS = {
    "token_classification": (
        "a tagger splits text into words with character offsets (regex ops) and tags each "
        "word's first piece, which TFLite has no kernels for"
    ),
    "question_answering": (
        "question answering cuts long contexts into overlapping windows and maps the best span "
        "back to character offsets, which TFLite has no kernels for"
    ),
}


class TokenInputsWarning(UserWarning):
    """The exported ``.tflite`` takes token ids, not raw strings."""


def export_tflite(
    model_dir: str | Path,
    output_dir: str | Path,
    version: int | None = None,
    quantize: str = "none",
    check: bool = True,
) -> Path:
    """Exports a ``tfptlm finetune`` output directory to ``output_dir/<version>/model.tflite``.

    Args:
        model_dir: the fine-tuned model directory.
        output_dir: the export base directory; versions are numbered folders.
        version: the version number; default the next free one.
        quantize: ``"none"`` (float32), ``"dynamic_int8"`` (int8 weights, about
            4x smaller) or ``"float16"`` (float16 weights, about 2x smaller).
        check: run the ``.tflite`` on `PROBE_TEXTS` and compare it with the
            Keras model: labels must agree and, for ``"none"``, probabilities
            within `PARITY_ATOL` (``AssertionError`` if not); quantized exports
            report their largest difference (and any label flips) in
            ``tflite.json`` without failing.

    Returns:
        The path of the ``model.tflite`` written.
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    model = load_finetuned(model_dir)
    target = version_dir(output_dir, version)

    content, metadata = convert(model, quantize)
    target.mkdir(parents=True)
    path = target / MODEL_FILE
    path.write_bytes(content)
    names = getattr(model, "label_names", None) or getattr(model, "tag_names", None) or []
    (target / LABELS_FILE).write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    shutil.copy(model_dir / TASK_FILE, target / TASK_FILE)
    shutil.copytree(model_dir / TOKENIZER_DIR, target / TOKENIZER_DIR)
    if check:
        metadata["parity"] = check_parity(model, path, metadata)
    (target / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
    return path


# -- conversion --------------------------------------------------------------


def convert(model, quantize: str = "none") -> tuple[bytes, dict]:
    """Converts a loaded fine-tuned model (see `load_finetuned`) to TFLite.

    Returns:
        ``(flatbuffer bytes, metadata)``; the metadata says which inputs and
        outputs the model has and why, and is written to ``tflite.json``.
    """
    data = model.data_config
    model = _float32_model(model)
    signature, function, reason = None, None, None
    if model.recipe.task == "text_classification":
        try:
            lite_tokenizer = tflite_tokenizer(model.preprocessor.tokenizer)
        except (UnsupportedTokenizerError, tf.errors.OpError) as error:
            reason = f"its tokenizer cannot run in TFLite ({error})"
        else:
            function, signature = string_function(
                model, lite_tokenizer, data.sequence_length, data.text_pair_column is not None
            )
    else:
        reason = _NO_STRINGS[model.recipe.task]
    if function is None:
        warnings.warn(
            f"The TFLite export takes token ids, not raw strings: {reason}. Its inputs are "
            f"{', '.join(BACKBONE_INPUTS)} (int32 [batch, {data.sequence_length}]); tokenize with "
            f"the tokenizer/ folder next to the model (tfptlm's WordPieceTokenizer).",
            TokenInputsWarning,
            stacklevel=3,
        )
        function, signature = token_function(model, data.sequence_length)

    concrete, outputs = frozen_function(function, signature)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], tf.Module())
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True  # the tensorflow-text tokenizer kernels
    if quantize == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    content = converter.convert()

    metadata = {
        "task": model.recipe.task,
        "inputs": [spec.name for spec in tf.nest.flatten(signature)],
        "outputs": outputs,
        "raw_strings": reason is None,
        "token_inputs_reason": reason,
        "sequence_length": data.sequence_length,
        "quantize": quantize,
        "custom_ops": list(CUSTOM_OPS) if reason is None else [],
        "signature": "serving_default",
    }
    return content, metadata


def frozen_function(function, signature) -> tuple[tf.types.experimental.ConcreteFunction, list[str]]:
    """``function`` traced for ``signature`` with every weight turned into a constant, and its output names.

    The converter would otherwise keep Keras 3 weights as resource variables
    (VAR_HANDLE ops that a TFLite interpreter never initializes). Freezing
    drops the names of the outputs, so a thin wrapper puts them back (TFLite
    signature outputs take the names of the returned dict's keys).
    """
    traced = tf.function(function, input_signature=signature).get_concrete_function()
    frozen = convert_variables_to_constants_v2(traced)
    names = sorted(traced.structured_outputs)  # a dict is flattened in key order

    def named(*inputs):
        return dict(zip(names, frozen(*tf.nest.flatten(inputs))))

    return tf.function(named, input_signature=signature).get_concrete_function(), names


def _float32_model(model):
    """The model itself, or a float32 copy if it computes in (b)float16 (mixed precision)."""
    if all(layer.compute_dtype == "float32" for layer in model._flatten_layers()):
        return model
    config = json.loads(
        json.dumps(keras.saving.serialize_keras_object(model))
        .replace('"mixed_bfloat16"', '"float32"')
        .replace('"mixed_float16"', '"float32"')
    )
    copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    for name in ("preprocessor", "recipe", "data_config"):
        setattr(copy, name, getattr(model, name))
    return copy


def pack_inputs(
    segments: list[tf.RaggedTensor],
    sequence_length: int,
    cls_id: int,
    sep_id: int,
    pad_id: int,
) -> dict[str, tf.Tensor]:
    """`tfptlm.data.packing.pack_segments` (with ``pad_to_batch``) in TFLite builtin ops only.

    One or two segments of ids `[batch, (tokens)]` are trimmed round-robin to
    fit ``sequence_length`` with ``[CLS]`` and a ``[SEP]`` after each, and
    padded to the longest row rounded up to a multiple of 8 (at most
    ``sequence_length``), by gathering from the ragged values instead of the
    ragged ops (which TFLite lacks).
    """
    if len(segments) not in (1, 2):
        raise ValueError(f"pack_inputs takes one or two segments, got {len(segments)}")
    available = sequence_length - len(segments) - 1
    if available < len(segments):
        raise ValueError(
            f"sequence_length {sequence_length} leaves no room for {len(segments)} segment(s)"
        )
    lengths = [tf.cast(segment.row_lengths(), tf.int32) for segment in segments]
    if len(segments) == 1:
        keeps = [tf.minimum(lengths[0], available)]
    else:
        # Round-robin: each segment gets half the room (the first one the odd
        # token), and what one of them leaves unused goes to the other.
        first = tf.minimum(lengths[0], tf.maximum((available + 1) // 2, available - lengths[1]))
        keeps = [first, tf.minimum(lengths[1], available - first)]
    total = tf.add_n(keeps) + len(segments) + 1
    longest = (tf.reduce_max(total) + 7) // 8 * 8
    length = tf.minimum(tf.maximum(longest, 8), sequence_length)
    # [batch, length]: every position of every row.
    positions = tf.range(length)[tf.newaxis, :] + tf.zeros_like(keeps[0])[:, tf.newaxis]
    token_ids = tf.where(positions == 0, cls_id, pad_id)
    segment_ids = tf.zeros_like(token_ids)
    start = tf.ones_like(keeps[0])[:, tf.newaxis]  # where the segment's first token goes
    for index, (segment, keep) in enumerate(zip(segments, keeps)):
        values = tf.concat([tf.cast(segment.flat_values, tf.int32), [pad_id]], axis=0)
        row_starts = tf.cast(segment.row_splits[:-1], tf.int32)[:, tf.newaxis]
        end = start + keep[:, tf.newaxis]
        inside = (positions >= start) & (positions < end)
        source = tf.where(inside, row_starts + positions - start, tf.shape(values)[0] - 1)
        token_ids = tf.where(inside, tf.gather(values, source), token_ids)
        token_ids = tf.where(positions == end, sep_id, token_ids)
        if index:
            segment_ids = tf.where((positions >= start) & (positions <= end), index, segment_ids)
        start = end + 1
    return {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": tf.cast(positions < start, tf.int32),
    }


def string_function(model, lite_tokenizer, sequence_length: int, text_pairs: bool):
    """``(function, input signature)``: raw strings -> ``label``, ``score``, ``probabilities``."""
    tokenizer = model.preprocessor.tokenizer
    special = {"cls_id": tokenizer.cls_id, "sep_id": tokenizer.sep_id, "pad_id": tokenizer.pad_id}
    label_names = tf.constant(model.label_names)

    def answers(segments):
        inputs = pack_inputs([lite_tokenizer.tokenize(s) for s in segments], sequence_length, **special)
        probabilities = tf.nn.softmax(model(inputs, training=False), axis=-1)
        return {
            "label": tf.gather(label_names, tf.argmax(probabilities, axis=-1, output_type=tf.int32)),
            "score": tf.reduce_max(probabilities, axis=-1),
            "probabilities": probabilities,
        }

    if text_pairs:
        def serve(text, text_pair):
            return answers([text, text_pair])

        return serve, [_strings("text"), _strings("text_pair")]

    def serve(text):
        return answers([text])

    return serve, [_strings("text")]


def token_function(model, sequence_length: int):
    """``(function, input signature)``: the backbone inputs -> the SavedModel ``serve_tokens`` outputs."""
    task = model.recipe.task
    signature = [
        {name: tf.TensorSpec([None, sequence_length], tf.int32, name=name) for name in BACKBONE_INPUTS}
    ]

    def serve(inputs):
        outputs = model(inputs, training=False)
        if task == "text_classification":
            return {"probabilities": tf.nn.softmax(outputs, axis=-1)}
        if task == "token_classification":
            return {"tag_ids": tf.argmax(outputs, axis=-1, output_type=tf.int32)}
        return {"start_logits": outputs["start"], "end_logits": outputs["end"]}

    return serve, signature


def _strings(name: str) -> tf.TensorSpec:
    return tf.TensorSpec([None], tf.string, name=name)


# -- running -----------------------------------------------------------------


def load_interpreter(path: str | Path):
    """A `tf.lite` interpreter for ``path`` with tensorflow-text's TFLite kernels registered."""
    import tensorflow_text as tf_text
    from tensorflow.lite.python.interpreter import InterpreterWithCustomOps

    with warnings.catch_warnings():
        # tf.lite.Interpreter warns that it moves to the ai-edge-litert package.
        warnings.simplefilter("ignore", UserWarning)
        return InterpreterWithCustomOps(
            model_path=str(path),
            custom_op_registerers=tf_text.tflite_registrar.SELECT_TFTEXT_OPS,
        )


def _model_path(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no TFLite model at {path}")
    return path


def _utf8(text: str | bytes) -> bytes:
    """UTF-8 bytes; invalid bytes and lone surrogates become U+FFFD (which the tokenizer drops)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode("utf-8")


class TFLiteClassifier:
    """Runs an exported text classifier ``.tflite`` on raw strings, like `TextClassifier.classify`.

    Args:
        path: the ``model.tflite`` file or its version folder; ``labels.txt``
            next to it names the classes (class ids are used without it).

    Example:

    >>> classifier = TFLiteClassifier("exports/sst2_tflite/1")   # doctest: +SKIP
    >>> classifier.predict_probabilities(["Dull.", "Superb!"])    # doctest: +SKIP
    array([[0.91, 0.09], [0.04, 0.96]], dtype=float32)
    """

    def __init__(self, path: str | Path):
        self.path = _model_path(path)
        self.interpreter = load_interpreter(self.path)
        self._runner = self.interpreter.get_signature_runner("serving_default")
        self.inputs = tuple(self.interpreter.get_signature_list()["serving_default"]["inputs"])
        if "text" not in self.inputs:
            raise ValueError(
                f"{self.path} takes token ids ({', '.join(self.inputs)}), not raw strings (see "
                "token_inputs_reason in the tflite.json next to it); "
                "tokenize with the tokenizer/ folder next to it and use tfptlm.export.tflite.run_tokens"
                if set(self.inputs) == set(BACKBONE_INPUTS)
                else f"{self.path} is not a text classifier export (inputs: {', '.join(self.inputs)})"
            )
        labels = self.path.parent / LABELS_FILE
        self.label_names = labels.read_text(encoding="utf-8").splitlines() if labels.is_file() else None

    @property
    def takes_pairs(self) -> bool:
        return "text_pair" in self.inputs

    def predict_probabilities(
        self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, batch_size: int = 32
    ) -> np.ndarray:
        """Class probabilities `[len(texts), classes]` (float32)."""
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be a list of strings, not one string")
        if self.takes_pairs != (text_pairs is not None):
            raise ValueError(
                "this model classifies text pairs: pass text_pairs"
                if self.takes_pairs
                else "this model classifies single texts: text_pairs must be None"
            )
        if text_pairs is not None and len(text_pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(text_pairs)} text_pairs")
        rows = []
        for begin in range(0, len(texts), batch_size):
            inputs = {"text": np.array([_utf8(t) for t in texts[begin : begin + batch_size]], dtype=object)}
            if text_pairs is not None:
                inputs["text_pair"] = np.array(
                    [_utf8(t) for t in text_pairs[begin : begin + batch_size]], dtype=object
                )
            rows.append(self._runner(**inputs)["probabilities"])
        if not rows:
            classes = self._runner.get_output_details()["probabilities"]["shape_signature"][-1]
            return np.zeros((0, classes), "float32")
        return np.concatenate(rows).astype("float32")

    def classify(
        self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, batch_size: int = 32
    ) -> list[dict]:
        """One ``{"label", "score", "probabilities"}`` per text, as `TextClassifier.classify` gives."""
        probabilities = self.predict_probabilities(texts, text_pairs, batch_size)
        names = self.label_names or [str(i) for i in range(probabilities.shape[-1])]
        return [
            {
                "label": names[int(np.argmax(row))],
                "score": float(np.max(row)),
                "probabilities": dict(zip(names, map(float, row))),
            }
            for row in probabilities
        ]


def run_tflite(
    path: str | Path, texts: Sequence[str], text_pairs: Sequence[str] | None = None
) -> np.ndarray:
    """Class probabilities `[len(texts), classes]` from an exported classifier ``.tflite``."""
    return TFLiteClassifier(path).predict_probabilities(texts, text_pairs)


def run_tokens(path: str | Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs a token-id ``.tflite`` (tagger, QA, or a classifier without its tokenizer).

    Args:
        inputs: int32 ``token_ids``, ``segment_ids``, ``padding_mask``, each
            `[batch, sequence_length]` (e.g. from `tfptlm.data.packing.pack_segments`).
    """
    interpreter = load_interpreter(_model_path(path))
    runner = interpreter.get_signature_runner("serving_default")
    return runner(**{name: np.asarray(inputs[name], np.int32) for name in BACKBONE_INPUTS})


# -- parity ------------------------------------------------------------------


def check_parity(model, path: Path, metadata: dict) -> dict:
    """Runs the ``.tflite`` and the Keras model on `PROBE_TEXTS`; returns the figures.

    Raises ``AssertionError`` when labels (tags, best spans) differ, or for a
    float32 export when any probability (logit for QA) differs by more than
    `PARITY_ATOL`; quantized exports only report.
    """
    quantized = metadata["quantize"] != "none"
    task = model.recipe.task
    if metadata["raw_strings"]:
        pairs = PROBE_TEXTS[::-1] if "text_pair" in metadata["inputs"] else None
        expected = model.predict_probabilities(PROBE_TEXTS, pairs)
        actual = TFLiteClassifier(path).predict_probabilities(PROBE_TEXTS, pairs)
        labels_expected, labels_actual = expected.argmax(-1), actual.argmax(-1)
    else:
        inputs = _probe_token_inputs(model)
        outputs = run_tokens(path, inputs)
        reference = model.predict_on_batch(inputs)
        if task == "text_classification":
            expected = keras.ops.convert_to_numpy(keras.ops.softmax(reference, axis=-1))
            actual = outputs["probabilities"]
            labels_expected, labels_actual = expected.argmax(-1), actual.argmax(-1)
        elif task == "token_classification":
            real = inputs["padding_mask"] > 0
            expected = actual = np.zeros(1)
            labels_expected = np.asarray(reference).argmax(-1)[real]
            labels_actual = outputs["tag_ids"][real]
        else:
            expected = np.stack([reference["start"], reference["end"]])
            actual = np.stack([outputs["start_logits"], outputs["end_logits"]])
            real = (inputs["padding_mask"] > 0)[np.newaxis]
            expected, actual = np.where(real, expected, 0.0), np.where(real, actual, 0.0)
            labels_expected, labels_actual = expected.argmax(-1), actual.argmax(-1)
    difference = float(np.max(np.abs(np.asarray(actual) - np.asarray(expected)), initial=0.0))
    flips = int(np.sum(np.asarray(labels_expected) != np.asarray(labels_actual)))
    report = {
        "probe_texts": len(PROBE_TEXTS),
        "max_abs_difference": difference,
        "label_differences": flips,
    }
    if not quantized:
        if flips:
            raise AssertionError(f"the TFLite export gives {flips} different label(s) on the probe texts")
        if difference > PARITY_ATOL:
            raise AssertionError(
                f"the TFLite export differs from the Keras model by {difference:.2e} "
                f"(more than {PARITY_ATOL:g}) on the probe texts"
            )
    return report


def _probe_token_inputs(model) -> dict[str, np.ndarray]:
    """`PROBE_TEXTS` packed to full length with the model's own tokenizer."""
    from tfptlm.data.packing import pack_segments

    tokenizer = model.preprocessor.tokenizer
    inputs = pack_segments(
        [tokenizer.tokenize(tf.constant(PROBE_TEXTS))],
        model.data_config.sequence_length,
        cls_id=tokenizer.cls_id,
        sep_id=tokenizer.sep_id,
        pad_id=tokenizer.pad_id,
    )
    return {name: value.numpy() for name, value in inputs.items()}
