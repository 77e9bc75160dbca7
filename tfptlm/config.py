"""Dataclass configs loaded from YAML and overridden with ``--set key=value``.

Every key is checked before any work starts: an unknown key or a value of the
wrong type stops the run with one error that names the file, the line and the
dotted key.

Example:

>>> config = load_config("configs/bert_tiny_pretrain.yaml",
...                      overrides=["training.steps=200"])
>>> config.training.steps
200
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml


class ConfigError(ValueError):
    """A config file or override that cannot be used, with where it came from."""


@dataclass
class ModelConfig:
    """The backbone: a named size, optionally with individual sizes overridden.

    ``family`` is ``bert``, ``albert``, ``roberta``, ``xlnet``, ``gpt``,
    ``t5`` or ``bart``. ``embedding_dim`` and ``parameter_sharing`` (``all``,
    ``attention``, ``feed_forward``, ``none``) are ALBERT's. ``hub_class``
    (a keras-hub encoder class or short name such as ``albert``, built with
    random weights at this size) or ``hub_preset`` (a local keras-hub preset
    folder, to continue pretraining it) put a keras-hub encoder in place of
    tfptlm's own for the MLM objectives.
    """

    family: str = "bert"
    size: str = "tiny"
    num_layers: Optional[int] = None
    hidden_dim: Optional[int] = None
    num_heads: Optional[int] = None
    intermediate_dim: Optional[int] = None
    max_sequence_length: int = 512
    dropout: float = 0.1
    norm_first: bool = False
    embedding_dim: Optional[int] = None
    parameter_sharing: str = "all"
    hub_class: Optional[str] = None
    hub_preset: Optional[str] = None


@dataclass
class TokenizerConfig:
    """The tokenizer: load one from ``path`` or train one on the training files.

    ``type`` is ``wordpiece``, ``sentencepiece`` or ``byte_bpe``; ``auto``
    picks the model family's usual one (BERT WordPiece, T5 SentencePiece,
    GPT and BART byte-level BPE). ``lowercase`` and ``strip_accents`` apply
    to WordPiece (and ``lowercase`` to SentencePiece).
    """

    path: Optional[str] = None
    type: str = "auto"
    vocab_size: int = 8000
    lowercase: bool = True
    strip_accents: bool = True


@dataclass
class DataConfig:
    """Raw text files and the pretraining objective's settings.

    ``max_sequence_length`` is the model input length (the encoder's for
    T5/BART); ``target_length`` the decoder length of span corruption.
    ``noise_density`` and ``mean_noise_span_length`` are T5's span-corruption
    settings; ``infilling_rate``, ``poisson_lambda`` and ``permute_sentences``
    BART's text infilling.

    The MLM objectives mask single word pieces, or whole words with
    ``whole_word_masking`` (n-grams of up to ``max_ngram`` whole words, 3 in
    ALBERT); ``word_segmenter: jieba`` finds the words of Chinese text, where
    each character is its own piece. The permuted LM (XLNet) predicts the last
    ``plm_prediction_ratio`` (1/K, K = 6) of each factorization order, as
    whole spans of up to ``plm_max_span_length`` tokens with ``plm_span_targets``.
    """

    train_files: list[str] = field(default_factory=list)
    eval_files: list[str] = field(default_factory=list)
    one_document_per_line: bool = False
    max_sequence_length: int = 128
    mask_rate: float = 0.15
    max_predictions: int = 20
    random_next_rate: float = 0.5
    target_length: int = 64
    noise_density: float = 0.15
    mean_noise_span_length: float = 3.0
    infilling_rate: float = 0.3
    poisson_lambda: float = 3.0
    permute_sentences: bool = False
    whole_word_masking: bool = False
    max_ngram: int = 1
    word_segmenter: Optional[str] = None
    plm_prediction_ratio: float = 1 / 6
    plm_span_targets: bool = False
    plm_max_span_length: int = 5


@dataclass
class PrivacyConfig:
    """Differentially private training with DP-SGD (``tfptlm.training.privacy``).

    Off unless ``enabled``. Each example's gradient is clipped to the L2 norm
    ``l2_norm_clip``, and Gaussian noise of ``noise_multiplier`` x
    ``l2_norm_clip`` is added to each batch's sum. Give ``noise_multiplier``, or
    ``target_epsilon`` to have it solved for the run's steps. ``delta``: the
    epsilon is reported for this delta (keep it well below 1/N). ``accountant``:
    ``rdp`` or ``pld`` (dp-accounting). ``train_backbone: false`` trains only
    the task head (fine-tuning; far less noise for small budgets).
    ``training.clip_norm`` is not used then.
    """

    enabled: bool = False
    l2_norm_clip: float = 1.0
    noise_multiplier: Optional[float] = None
    target_epsilon: Optional[float] = None
    delta: float = 1e-5
    accountant: str = "rdp"
    train_backbone: bool = True


@dataclass
class TrainingConfig:
    """The optimizer, schedule, precision, XLA switch and checkpointing.

    A checkpoint is written every ``checkpoint_every`` steps; re-running the
    same command resumes from the newest one. ``seed`` makes a run repeatable
    on the same machine; ``deterministic: true`` also turns on TensorFlow's op
    determinism (slower; see ``tfptlm.training.reproducibility``).
    """

    batch_size: int = 32
    steps: int = 1000
    learning_rate: float = 5e-4
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    jit_compile: Union[bool, str] = "auto"
    mixed_precision: str = "float32"
    checkpoint_every: int = 200
    eval_batches: int = 20
    seed: int = 0
    deterministic: bool = False
    # none | mirrored | multi_worker | tpu (tfptlm.training.distribution); batch_size stays global
    distribution: str = "none"
    tpu: Optional[str] = None  # the TPU's name or grpc:// address (TPUClusterResolver)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)  # DP-SGD, causal LM (clm) only


@dataclass
class PretrainConfig:
    """Everything ``tfptlm pretrain`` needs."""

    objective: str = "mlm_nsp"
    model: ModelConfig = field(default_factory=ModelConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def validate(self) -> None:
        """Check values that a type alone cannot (choices and ranges)."""
        _check_choice("objective", self.objective, tuple(OBJECTIVE_FAMILIES))
        families = OBJECTIVE_FAMILIES[self.objective]
        if self.model.family not in families:
            raise ConfigError(
                f"objective {self.objective} trains model.family {' or '.join(families)}, "
                f"not {self.model.family!r}"
            )
        _check_choice("tokenizer.type", self.tokenizer.type, TOKENIZER_TYPES)
        _check_switches(self.training)
        _check_privacy(self.training, "objective", self.objective, PRIVACY_OBJECTIVES)
        _check_masking(self.data)
        _check_choice("model.parameter_sharing", self.model.parameter_sharing, PARAMETER_SHARING)
        if (self.model.hub_class or self.model.hub_preset) and self.objective not in MLM_OBJECTIVES:
            raise ConfigError(
                f"model.hub_class / model.hub_preset work with the MLM objectives "
                f"({', '.join(MLM_OBJECTIVES)}), not {self.objective}"
            )
        if not 0.0 < self.data.plm_prediction_ratio <= 1.0:
            raise ConfigError(
                "data.plm_prediction_ratio must be in (0, 1] (1/K of each factorization "
                f"order is predicted), got {self.data.plm_prediction_ratio}"
            )
        positive = {
            "data.max_ngram": self.data.max_ngram,
            "data.plm_max_span_length": self.data.plm_max_span_length,
            "training.steps": self.training.steps,
            "training.batch_size": self.training.batch_size,
            "training.checkpoint_every": self.training.checkpoint_every,
            "data.max_sequence_length": self.data.max_sequence_length,
            "data.max_predictions": self.data.max_predictions,
            "tokenizer.vocab_size": self.tokenizer.vocab_size,
            "data.target_length": self.data.target_length,
            "data.mean_noise_span_length": self.data.mean_noise_span_length,
            "data.poisson_lambda": self.data.poisson_lambda,
        }
        _check_positive(positive)
        fractions = {
            "data.mask_rate": self.data.mask_rate,
            "data.random_next_rate": self.data.random_next_rate,
            "data.noise_density": self.data.noise_density,
            "data.infilling_rate": self.data.infilling_rate,
            "training.warmup_ratio": self.training.warmup_ratio,
        }
        for key, value in fractions.items():
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{key} must be between 0 and 1, got {value}")


#: The encoder families, trained with masked (or permuted) language modelling.
ENCODER_FAMILIES = ("bert", "albert", "roberta")
#: The pretraining objectives and the model families each one trains: MLM
#: alone (RoBERTa), MLM + next-sentence (BERT) or sentence-order (ALBERT)
#: prediction, the permuted LM (XLNet), and the generative objectives.
OBJECTIVE_FAMILIES = {
    "mlm_nsp": ENCODER_FAMILIES,
    "mlm_sop": ENCODER_FAMILIES,
    "mlm": ENCODER_FAMILIES,
    "plm": ("xlnet",),
    "clm": ("gpt",),
    "span_corruption": ("t5", "bart"),
    "text_infilling": ("bart", "t5"),
}
MLM_OBJECTIVES = ("mlm_nsp", "mlm_sop", "mlm")
PARAMETER_SHARING = ("all", "attention", "feed_forward", "none")
#: Tokenizer kinds, and the one each model family uses when ``tokenizer.type`` is ``auto``.
TOKENIZER_TYPES = ("auto", "wordpiece", "sentencepiece", "byte_bpe")
FAMILY_TOKENIZERS = {
    "bert": "wordpiece",
    "albert": "wordpiece",
    "roberta": "byte_bpe",
    "xlnet": "wordpiece",
    "gpt": "byte_bpe",
    "t5": "sentencepiece",
    "bart": "byte_bpe",
}


def _check_masking(data: DataConfig) -> None:
    if data.word_segmenter is not None:
        _check_choice("data.word_segmenter", data.word_segmenter, ("jieba",))
        if not data.whole_word_masking:
            raise ConfigError(
                "data.word_segmenter finds whole words for masking; set "
                "data.whole_word_masking: true as well"
            )
    if data.max_ngram > 1 and not data.whole_word_masking:
        raise ConfigError(
            "data.max_ngram > 1 masks n-grams of whole words; set data.whole_word_masking: true"
        )


def tokenizer_type(tokenizer: TokenizerConfig, family: str) -> str:
    """The tokenizer kind to train: ``tokenizer.type``, or the family's usual one for ``auto``."""
    return FAMILY_TOKENIZERS[family] if tokenizer.type == "auto" else tokenizer.type


@dataclass
class BackboneConfig:
    """Where the fine-tuned encoder comes from; the first of these that is set wins.

    ``path``: a ``tfptlm pretrain`` output directory or a ``tfptlm convert``
    output (``backbone.keras`` + ``tokenizer/``). ``hub_preset``: a local
    keras-hub preset folder. ``hub_class``: a keras-hub encoder class (or short
    name such as ``roberta``) built from ``config`` with random weights.
    Otherwise a tfptlm model of ``family`` and ``size`` (``config`` may
    override its sizes, e.g. ``hidden_dim``) from random initialization;
    family ``auto`` is BERT for the encoder tasks, BART for ``seq2seq`` and GPT
    for ``causal_lm``.
    """

    path: Optional[str] = None
    hub_preset: Optional[str] = None
    hub_class: Optional[str] = None
    family: str = "auto"
    size: str = "tiny"
    config: dict = field(default_factory=dict)


@dataclass
class FinetuneDataConfig:
    """The labelled files and how to read them.

    Classification reads TSV/CSV/JSONL (``text_column``, ``text_pair_column``,
    ``label_column``: header names, 0-based indexes or JSON keys); NER reads
    CoNLL files (``word_column``, ``tag_column``, ``tag_scheme``); QA reads
    SQuAD v1.1 JSON. Without ``eval_file``, ``eval_share`` of the training
    examples is held out.

    The generative tasks read source -> target pairs: from TSV/CSV/JSONL
    columns (``source_column``, ``target_column``), from two parallel files
    (``format: parallel``: the file name is a prefix completed by
    ``source_suffix`` and ``target_suffix``, e.g. ``train`` + ``.en.gz``),
    from DailyDialog files (``format: dialogue``: every turn is a response to
    the turns before it) or MBPP JSONL (``format: mbpp``: prompt -> code, with
    its test asserts run at evaluation). ``sequence_length`` is the source (or
    whole causal-LM sequence) length and ``target_length`` the target's;
    ``max_eval_generations`` caps the held-out examples decoded (greedy) for
    BLEU/ROUGE/pass share; ``language`` (``en``, ``zh``...; null guesses)
    picks the BLEU and ROUGE tokenization.

    ``counterfactual_augmentation`` (classification): an identity-term file
    (``en``, ``zh`` or a path; see `tfptlm.analysis.identity_terms`); every
    training text with its terms gets swapped copies with the same label.
    """

    train_file: Optional[str] = None
    eval_file: Optional[str] = None
    eval_share: float = 0.1
    format: Optional[str] = None
    has_header: bool = True
    delimiter: Optional[str] = None
    text_column: Union[int, str] = "text"
    text_pair_column: Union[int, str, None] = None
    label_column: Union[int, str] = "label"
    label_names: Optional[list[str]] = None
    word_column: int = 0
    tag_column: int = -1
    tag_scheme: str = "iob2"
    skip_bad_rows: bool = False
    sequence_length: int = 128
    doc_stride: int = 128
    max_question_length: int = 64
    max_answer_length: int = 30
    source_column: Union[int, str] = "source"
    target_column: Union[int, str] = "target"
    source_suffix: Optional[str] = None
    target_suffix: Optional[str] = None
    target_length: int = 64
    max_eval_generations: int = 200
    language: Optional[str] = None
    counterfactual_augmentation: Optional[str] = None


@dataclass
class AdversarialConfig:
    """Adversarial fine-tuning on perturbed word embeddings (``tfptlm.training.adversarial``).

    ``method``: ``none``, ``fgm`` (one step of size ``epsilon``), ``pgd``
    (``steps`` steps of size ``alpha`` kept in the ``epsilon`` ball) or
    ``freelb`` (the same steps, the gradients of all of them averaged). The
    weights train on clean loss + ``weight`` x adversarial loss.
    """

    method: str = "none"
    epsilon: float = 1.0
    alpha: float = 0.3
    steps: int = 3
    weight: float = 1.0


@dataclass
class FinetuneTrainingConfig:
    """The optimizer, schedule and switches of a fine-tuning run.

    A checkpoint is written after every epoch; re-running the same command
    resumes from the newest one. ``seed`` and ``deterministic`` are as in
    :class:`TrainingConfig`.
    """

    epochs: int = 3
    max_steps: Optional[int] = None
    batch_size: int = 32
    eval_batch_size: int = 64
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    dropout: float = 0.1
    class_weights: Union[str, list[float], None] = None
    jit_compile: Union[bool, str] = "auto"
    mixed_precision: str = "float32"
    seed: int = 0
    deterministic: bool = False
    distribution: str = "none"  # as in TrainingConfig
    tpu: Optional[str] = None
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)


@dataclass
class FinetuneConfig:
    """Everything ``tfptlm finetune`` needs."""

    task: str = "text_classification"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: FinetuneDataConfig = field(default_factory=FinetuneDataConfig)
    training: FinetuneTrainingConfig = field(default_factory=FinetuneTrainingConfig)

    def validate(self) -> None:
        """Check values that a type alone cannot (choices and ranges)."""
        _check_choice("task", self.task, FINETUNE_TASKS)
        _check_choice("data.tag_scheme", self.data.tag_scheme, ("iob1", "iob2", "bmes"))
        _check_switches(self.training)
        if isinstance(self.training.class_weights, str):
            _check_choice("training.class_weights", self.training.class_weights, ("balanced",))
        if self.data.counterfactual_augmentation and self.task != "text_classification":
            raise ConfigError(f"data.counterfactual_augmentation is for text_classification, not {self.task}")
        positive = {
            "training.epochs": self.training.epochs,
            "training.batch_size": self.training.batch_size,
            "training.eval_batch_size": self.training.eval_batch_size,
            "data.sequence_length": self.data.sequence_length,
            "data.doc_stride": self.data.doc_stride,
            "data.max_question_length": self.data.max_question_length,
            "data.max_answer_length": self.data.max_answer_length,
            "data.target_length": self.data.target_length,
        }
        _check_choice("backbone.family", self.backbone.family, ("auto", *FAMILY_TOKENIZERS))
        if self.training.max_steps is not None:
            positive["training.max_steps"] = self.training.max_steps
        _check_positive(positive)
        for key, value in {
            "data.eval_share": self.data.eval_share,
            "training.warmup_ratio": self.training.warmup_ratio,
            "training.dropout": self.training.dropout,
        }.items():
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{key} must be in [0, 1), got {value}")
        _check_adversarial(self)
        _check_privacy(self.training, "task", self.task, PRIVACY_TASKS)


#: ``training.adversarial.method`` values, and the tasks that can be trained adversarially.
ADVERSARIAL_METHODS = ("none", "fgm", "pgd", "freelb")
ADVERSARIAL_TASKS = ("text_classification",)


def _check_adversarial(config: "FinetuneConfig") -> None:
    adversarial = config.training.adversarial
    _check_choice("training.adversarial.method", adversarial.method, ADVERSARIAL_METHODS)
    _check_positive({
        "training.adversarial.epsilon": adversarial.epsilon,
        "training.adversarial.alpha": adversarial.alpha,
        "training.adversarial.steps": adversarial.steps,
    })
    if adversarial.weight < 0:
        raise ConfigError(f"training.adversarial.weight must be >= 0, got {adversarial.weight}")
    if adversarial.method == "none":
        return
    if config.task not in ADVERSARIAL_TASKS:
        raise ConfigError(
            f"training.adversarial.method {adversarial.method} is for "
            f"{', '.join(ADVERSARIAL_TASKS)}, not {config.task}; set it to none"
        )
    if getattr(config.training, "distribution", "none") != "none":
        raise ConfigError(
            f"training.adversarial runs on one device; it does not support training.distribution "
            f"{config.training.distribution} (the perturbed embedding matrix would differ between replicas)"
        )
    if getattr(getattr(config.training, "privacy", None), "enabled", False):
        raise ConfigError(
            "training.adversarial and training.privacy cannot be combined (DP-SGD needs its own "
            "per-example gradients); set training.adversarial.method: none or turn privacy off"
        )


#: The fine-tuning tasks and pretraining objectives that DP-SGD supports: one
#: training element (row, or packed token block) is one privacy unit.
PRIVACY_TASKS = ("text_classification", "token_classification", "causal_lm")
PRIVACY_OBJECTIVES = ("clm",)


def _check_privacy(training, kind: str, value: str, supported: tuple) -> None:
    """``training.privacy``: ranges, one noise setting, and what it can be combined with."""
    privacy = training.privacy
    _check_choice("training.privacy.accountant", privacy.accountant, ("rdp", "pld"))
    _check_positive({"training.privacy.l2_norm_clip": privacy.l2_norm_clip})
    if not 0.0 < privacy.delta < 1.0:
        raise ConfigError(f"training.privacy.delta must be in (0, 1), got {privacy.delta}")
    for key in ("noise_multiplier", "target_epsilon"):
        if getattr(privacy, key) is not None:
            _check_positive({f"training.privacy.{key}": getattr(privacy, key)})
    if not privacy.enabled:
        return
    if (privacy.noise_multiplier is None) == (privacy.target_epsilon is None):
        raise ConfigError("training.privacy needs exactly one of noise_multiplier and target_epsilon")
    if value not in supported:
        raise ConfigError(f"training.privacy supports {kind} {', '.join(supported)}, not {value}")
    if kind == "objective" and not privacy.train_backbone:
        raise ConfigError("training.privacy.train_backbone: false is for fine-tuning; pretraining trains the backbone")
    if training.mixed_precision == "mixed_float16":
        raise ConfigError("training.privacy does not support mixed_float16 (loss scaling would act on "
                          "the per-example gradients before clipping); use float32 or mixed_bfloat16")
    if training.distribution != "none":
        raise ConfigError("training.privacy runs on one device (training.distribution: none); each "
                          "replica would add its own noise")


#: The tasks ``tfptlm finetune`` trains.
FINETUNE_TASKS = (
    "text_classification",
    "token_classification",
    "question_answering",
    "seq2seq",
    "causal_lm",
)


#: The values of ``training.distribution`` (see tfptlm.training.distribution).
DISTRIBUTIONS = ("none", "mirrored", "multi_worker", "tpu")


def _check_switches(training) -> None:
    """The precision and XLA switches shared by pretraining and fine-tuning."""
    _check_choice(
        "training.mixed_precision",
        training.mixed_precision,
        ("float32", "mixed_bfloat16", "mixed_float16"),
    )
    if training.jit_compile not in (True, False, "auto"):
        raise ConfigError(
            f"training.jit_compile must be auto, true or false, got {training.jit_compile!r}"
        )
    _check_choice("training.distribution", training.distribution, DISTRIBUTIONS)
    if training.tpu is not None and not isinstance(training.tpu, str):
        raise ConfigError(f"training.tpu must be a TPU name or grpc:// address, got {training.tpu!r}")
    if training.tpu and training.distribution != "tpu":
        raise ConfigError(f"training.tpu is set ({training.tpu!r}) but training.distribution is "
                          f"{training.distribution!r}, not tpu")


def _check_positive(values: dict) -> None:
    for key, value in values.items():
        if value <= 0:
            raise ConfigError(f"{key} must be positive, got {value}")


def _check_choice(key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {value!r}")


def load_config(
    path: Optional[str] = None,
    overrides: Optional[list[str]] = None,
    config_class: type = PretrainConfig,
):
    """Builds a config from an optional YAML file and ``key=value`` overrides."""
    config = config_class()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        text = path.read_text(encoding="utf-8")
        try:
            node = yaml.compose(text)
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from None
        if data is not None:
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: the top level must be a mapping of keys")
            lines = _key_lines(node)
            _apply(config, data, "", lambda key: f"{path}, line {lines.get(key, '?')}")
    for override in overrides or []:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {override!r}: expected key=value, e.g. training.steps=100")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as error:
            raise ConfigError(f"--set {override!r}: the value is not valid YAML: {error}") from None
        nested: Any = value
        for part in reversed(key.strip().split(".")):
            nested = {part: nested}
        _apply(config, nested, "", lambda _key: f"--set {override}")
    config.validate()
    return config


def dump_config(config, path) -> None:
    """Writes the resolved config as YAML (``config.yaml`` in every output directory)."""
    Path(path).write_text(
        yaml.safe_dump(dataclasses.asdict(config), sort_keys=False), encoding="utf-8"
    )


def _key_lines(node, prefix: str = "") -> dict[str, int]:
    """Maps dotted keys of a composed YAML mapping to their 1-based line numbers."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            lines[key] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, key + "."))
    return lines


def _apply(config, data: dict, prefix: str, where) -> None:
    fields = {f.name: f for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    for name, value in data.items():
        key = f"{prefix}{name}"
        if name not in fields:
            raise ConfigError(
                f"{where(key)}: unknown key '{key}'; known keys here: {', '.join(fields)}"
            )
        current = getattr(config, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where(key)}: '{key}' must be a mapping of keys")
            _apply(current, value, key + ".", where)
            continue
        setattr(config, name, _coerce(value, hints[name], key, where))


def _coerce(value: Any, hint: Any, key: str, where) -> Any:
    """Returns ``value`` if it fits the type ``hint``, else raises a ConfigError."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _coerce(value, option, key, where)
            except ConfigError:
                pass
    elif hint is type(None):
        if value is None:
            return None
    elif origin is list:
        (item_type,) = typing.get_args(hint)
        if isinstance(value, item_type):  # a single file pattern
            return [value]
        if isinstance(value, list):
            return [_coerce(item, item_type, key, where) for item in value]
    elif origin is dict:
        if isinstance(value, dict):
            return dict(value)
    elif hint is float:
        if isinstance(value, str):  # PyYAML reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, hint):
        return value
    raise ConfigError(
        f"{where(key)}: '{key}' must be {_type_name(hint)}, got {value!r}"
    )


def _type_name(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if typing.get_origin(hint) is list:
        return f"a list of {_type_name(args[0])}"
    if typing.get_origin(hint) is dict:
        return "a mapping"
    return {type(None): "null", str: "a string", int: "an integer",
            float: "a number", bool: "true or false"}.get(hint, str(hint))
