"""The pretraining run behind ``tfptlm pretrain``: text files in, pretrained model out.

``objective`` picks the data pipeline and the pretraining model: ``mlm_nsp``
(BERT: masked LM + next-sentence prediction), ``mlm_sop`` (ALBERT: masked LM +
sentence-order prediction), ``mlm`` (RoBERTa: dynamic masked LM on
full-sentence packed inputs) -- each for a BERT, ALBERT or RoBERTa backbone or
a keras-hub encoder --, ``plm`` (XLNet, permuted LM), ``clm`` (GPT, causal LM
on packed documents), ``span_corruption`` (T5-style, for T5 or BART) or
``text_infilling`` (BART-style, for BART or T5).
Everything lands in one output directory::

    config.yaml      the resolved config
    run_info.json    package versions, git commit, seed and start step of every invocation
    tokenizer/       the tokenizer files + tokenizer.json
    checkpoints/     step checkpoints (model, optimizer, step, dropout seeds); re-running
                     the same command resumes exactly here, data position included
    logs/            TensorBoard logs
    history.csv      training and held-out metrics every ``checkpoint_every`` steps
    metrics.json     final held-out metrics, steps and tokens per second
    pretrainer.keras the pretraining model (BertPretrainer, CausalLM or Seq2SeqLM);
    backbone.keras   the backbone alone

Example:

>>> config = load_config("configs/bert_tiny_pretrain.yaml")
>>> metrics = run_pretraining(config, "runs/bert_tiny")
>>> metrics["mlm_accuracy"], metrics["nsp_accuracy"]
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import keras
import tensorflow as tf

from tfptlm.config import (
    FAMILY_TOKENIZERS,
    PretrainConfig,
    TokenizerConfig,
    dump_config,
    tokenizer_type,
)
from tfptlm.data import (
    CorpusError,
    make_masked_lm_dataset,
    read_documents,
    validate_for_nsp,
)
from tfptlm.data.objectives import (
    make_clm_dataset,
    make_span_corruption_dataset,
    make_text_infilling_dataset,
)
from tfptlm.data.objectives.plm import make_plm_dataset
from tfptlm.metrics.generation import perplexity
from tfptlm.models.albert import AlbertBackbone
from tfptlm.models.bart import BartBackbone
from tfptlm.models.bert import BERT_SIZES, BertBackbone
from tfptlm.models.gpt import GPTBackbone
from tfptlm.models.roberta import RobertaBackbone
from tfptlm.models.t5 import T5Backbone
from tfptlm.models.xlnet import XLNetBackbone
from tfptlm.tasks.bert_pretrainer import BertPretrainer
from tfptlm.tasks.causal_lm import CausalLM
from tfptlm.tasks.seq2seq_lm import Seq2SeqLM, decoder_start_id
from tfptlm.tasks.xlnet_pretrainer import XLNetPretrainer
from tfptlm.tokenizers import load_tokenizer, train_tokenizer
from tfptlm.training.callbacks import CheckpointEveryEpoch, StopAtStep, ThroughputMeter
from tfptlm.training.checkpoints import check_resumable, continue_stream, resume
from tfptlm.training.distribution import (
    jit_compile_for_strategy, outside_strategy, run_distributed, shard_by_data,
)
from tfptlm.training.nan_guard import NaNGuard
from tfptlm.training.optimizer import create_optimizer
from tfptlm.training.output_dir import check_output_dir
from tfptlm.training.reproducibility import seed_everything
from tfptlm.training.run_records import record_run
from tfptlm.training.runtime import set_precision
from tfptlm.training.privacy import count_examples, plan_privacy

#: Share of the training documents held out for evaluation when no eval files are given.
HELD_OUT_SHARE = 0.05


def load_corpora(config: PretrainConfig) -> tuple[list, list]:
    """Reads and checks the train and eval documents; fails before any training."""
    data = config.data
    if not data.train_files:
        raise ValueError("no training files: set data.train_files or pass --train-files")
    train = read_documents(data.train_files, data.one_document_per_line)
    if data.eval_files:
        evaluation = read_documents(data.eval_files, data.one_document_per_line)
    else:
        held_out = max(2, int(len(train) * HELD_OUT_SHARE))
        if len(train) < held_out + 2:
            raise CorpusError(
                f"{len(train)} documents in {data.train_files} are too few to hold out "
                f"{held_out} for evaluation and train on the rest; pass evaluation "
                "files (--eval-files or data.eval_files)"
            )
        train, evaluation = train[:-held_out], train[-held_out:]
    if config.objective in ("mlm_nsp", "plm"):  # both draw B from another document
        validate_for_nsp(train, data.train_files)
        validate_for_nsp(evaluation, data.eval_files or data.train_files)
    return train, evaluation


def prepare_tokenizer(config: PretrainConfig, output_dir: Path):
    """Loads the run's tokenizer (resume), the configured one or a keras-hub preset's, or trains one."""
    saved = output_dir / "tokenizer"
    if (saved / "tokenizer.json").is_file():
        return load_tokenizer(saved)
    model = config.model
    if config.tokenizer.path:
        tokenizer = load_tokenizer(config.tokenizer.path)
    elif model.hub_preset:
        from tfptlm.models.hub import load_hub_wordpiece_tokenizer

        tokenizer = load_hub_wordpiece_tokenizer(model.hub_preset)
    else:
        # A new keras-hub RoBERTa gets RoBERTa's usual vocabulary (byte-level BPE).
        family = model.hub_class if model.hub_class in FAMILY_TOKENIZERS else model.family
        tokenizer = train_configured_tokenizer(config.tokenizer, family, config.data.train_files)
    tokenizer.save(saved)
    return tokenizer


def train_configured_tokenizer(options: TokenizerConfig, family: str, files: list[str]):
    """Trains the tokenizer that ``options`` (a config's ``tokenizer:``) asks for on ``files``."""
    kind = tokenizer_type(options, family)
    print(f"Training a {kind} vocabulary of about {options.vocab_size} tokens")
    extra = {
        "wordpiece": dict(lowercase=options.lowercase, strip_accents=options.strip_accents),
        "sentencepiece": dict(lowercase=options.lowercase),
        "byte_bpe": {},
    }[kind]
    return train_tokenizer(kind, files, options.vocab_size, **extra)


#: The backbone class of each model family.
BACKBONES = {
    "bert": BertBackbone,
    "albert": AlbertBackbone,
    "roberta": RobertaBackbone,
    "xlnet": XLNetBackbone,
    "gpt": GPTBackbone,
    "t5": T5Backbone,
    "bart": BartBackbone,
}
#: The sentence-level task trained next to the masked LM by each MLM objective.
SENTENCE_OBJECTIVES = {"mlm_nsp": "nsp", "mlm_sop": "sop", "mlm": None}


def build_pretrainer(config: PretrainConfig, tokenizer) -> keras.Model:
    """Builds the configured backbone and the objective's pretraining model around it."""
    backbone = build_backbone(config, tokenizer)
    family = config.model.family
    if config.objective in SENTENCE_OBJECTIVES:
        return BertPretrainer(
            backbone, sentence_objective=SENTENCE_OBJECTIVES[config.objective], name=f"{family}_pretrainer"
        )
    if family == "xlnet":
        return XLNetPretrainer(backbone, name="xlnet_pretrainer")
    if family == "gpt":
        return CausalLM(backbone, name="causal_lm")
    start_id = decoder_start_id(backbone, tokenizer)
    return Seq2SeqLM(backbone, decoder_start_id=start_id, name="seq2seq_lm")


def check_model_settings(config: PretrainConfig) -> None:
    """Fails fast on model sizes that cannot work (e.g. an ALBERT embedding wider than its
    hidden size, sequences longer than the model takes), before any vocabulary is trained:
    it builds the configured backbone once with an 8-token vocabulary and throws it away."""
    if config.model.hub_preset:  # its sizes are fixed; loading it is the check
        return
    build_backbone(config, SimpleNamespace(vocabulary_size=8))


def build_backbone(config: PretrainConfig, tokenizer) -> keras.Model:
    """The configured backbone: a keras-hub encoder or tfptlm's model of ``model.family``."""
    model, data = config.model, config.data
    longest = data.max_sequence_length
    if config.objective == "span_corruption":
        longest = max(longest, data.target_length)
    if longest > model.max_sequence_length:
        raise ValueError(
            f"the data's sequences of up to {longest} tokens (data.max_sequence_length, "
            f"data.target_length) exceed model.max_sequence_length ({model.max_sequence_length})"
        )
    sizes = dict(
        num_layers=model.num_layers,
        hidden_dim=model.hidden_dim,
        num_heads=model.num_heads,
        intermediate_dim=model.intermediate_dim,
        dropout=model.dropout,
    )
    if model.family != "t5":  # T5 has relative positions, no position table
        sizes["max_sequence_length"] = model.max_sequence_length
    if model.hub_preset or model.hub_class:
        return _hub_backbone(model, sizes, tokenizer)
    if model.family == "bert":
        sizes["norm_first"] = model.norm_first
    if model.family == "albert":
        sizes.update(embedding_dim=model.embedding_dim, parameter_sharing=model.parameter_sharing)
    return BACKBONES[model.family].from_size(
        model.size, vocabulary_size=tokenizer.vocabulary_size, name=f"{model.family}_backbone", **sizes
    )


def _hub_backbone(model, sizes: dict, tokenizer) -> keras.Model:
    """A keras-hub encoder: the preset's weights, or a new one of ``model.size`` (BERT's sizes)."""
    from tfptlm.models import hub  # keras-hub is only imported when asked for

    if model.hub_preset:
        backbone = hub.load_hub_preset(model.hub_preset)
    else:
        settings = {**BERT_SIZES[model.size], **{k: v for k, v in sizes.items() if v is not None}}
        if hub.takes_argument(model.hub_class, "embedding_dim"):  # ALBERT
            settings["embedding_dim"] = model.embedding_dim or 128
        backbone = hub.hub_backbone_from_config(
            model.hub_class, vocabulary_size=tokenizer.vocabulary_size, **settings
        )
    if backbone.vocabulary_size < tokenizer.vocabulary_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocabulary_size} tokens but the keras-hub backbone "
            f"only {backbone.vocabulary_size} embeddings"
        )
    return backbone


def make_datasets(config: PretrainConfig, tokenizer, train_documents, eval_documents, seed: int):
    """The objective's training stream (endless, re-randomized every epoch) and held-out batches."""
    data, training = config.data, config.training
    common = dict(tokenizer=tokenizer, batch_size=training.batch_size)
    start_id = decoder_start_id(config.model.family, tokenizer)
    if config.objective in SENTENCE_OBJECTIVES:
        common.update(
            max_sequence_length=data.max_sequence_length,
            sentence_objective=SENTENCE_OBJECTIVES[config.objective],
            mask_rate=data.mask_rate,
            max_predictions=data.max_predictions,
            random_next_rate=data.random_next_rate,
            whole_word_masking=data.whole_word_masking,
            max_ngram=data.max_ngram,
            word_segmenter=data.word_segmenter,
        )
        make = make_masked_lm_dataset
    elif config.objective == "plm":
        common.update(
            max_sequence_length=data.max_sequence_length,
            prediction_ratio=data.plm_prediction_ratio,
            span_targets=data.plm_span_targets,
            max_span_length=data.plm_max_span_length,
            random_next_rate=data.random_next_rate,
        )
        make = make_plm_dataset
    elif config.objective == "clm":
        common.update(sequence_length=data.max_sequence_length)
        make = make_clm_dataset
    elif config.objective == "span_corruption":
        common.update(
            inputs_length=data.max_sequence_length,
            targets_length=data.target_length,
            noise_density=data.noise_density,
            mean_noise_span_length=data.mean_noise_span_length,
            decoder_start_id=start_id,
        )
        make = make_span_corruption_dataset
    else:
        common.update(
            max_length=data.max_sequence_length,
            mask_ratio=data.infilling_rate,
            poisson_lambda=data.poisson_lambda,
            permute_sentences=data.permute_sentences,
            decoder_start_id=start_id,
        )
        make = make_text_infilling_dataset
    train = make(train_documents, seed=seed, **common)
    if config.objective in (*SENTENCE_OBJECTIVES, "plm"):
        common["deterministic_eval"] = True
    evaluation = make(
        eval_documents, shuffle=False, repeat=False, seed=training.seed, drop_remainder=False, **common
    )
    # Cached: every evaluation during the run scores the same masks and spans.
    # Counted: packing and rebatching can leave tf.data with a wrong batch
    # count, and Keras then warns that the input ran out.
    evaluation = evaluation.take(training.eval_batches).cache()
    batches = sum(1 for _ in evaluation)
    return train, evaluation.apply(tf.data.experimental.assert_cardinality(batches))


def frequency_baseline(dataset: tf.data.Dataset) -> float:
    """MLM accuracy of always predicting the most frequent masked token."""
    counts: Counter = Counter()
    for _, labels, weights in dataset:
        ids = labels["mlm"].numpy()[weights["mlm"].numpy() > 0]
        counts.update(ids.tolist())
    total = sum(counts.values())
    return counts.most_common(1)[0][1] / total if total else 0.0


def run_pretraining(config: PretrainConfig, output_dir: str | Path, verbose: int = 1) -> dict:
    """Pretrains the configured model with its objective; resumes from ``output_dir`` if it has checkpoints.

    Returns the final held-out metrics (also written to ``metrics.json``). With
    ``training.distribution`` it runs on this worker's share of the devices or
    machines (:mod:`tfptlm.training.distribution`); only the chief writes ``output_dir``.
    """
    config.validate()
    return run_distributed(config.training, output_dir, lambda out: _pretrain(config, out, Path(output_dir), verbose))


def _pretrain(config: PretrainConfig, output_dir: Path, shared_dir: Path, verbose: int) -> dict:
    """:func:`run_pretraining` on one worker: writes ``output_dir``, resumes from ``shared_dir`` (the chief's)."""
    check_output_dir(output_dir)
    check_model_settings(config)
    output_dir = Path(output_dir)
    train_documents, eval_documents = load_corpora(config)
    output_dir.mkdir(parents=True, exist_ok=True)
    check_resumable(config, output_dir, ("model", "tokenizer"))
    dump_config(config, output_dir / "config.yaml")

    training = config.training
    seed_everything(training.seed, training.deterministic)
    set_precision(training.mixed_precision)
    tokenizer = prepare_tokenizer(config, output_dir)
    pretrainer = build_pretrainer(config, tokenizer)
    optimizer = create_optimizer(
        learning_rate=training.learning_rate,
        total_steps=training.steps,
        warmup_steps=int(training.steps * training.warmup_ratio),
        weight_decay=training.weight_decay,
        clip_norm=None if training.privacy.enabled else training.clip_norm,  # DP clips per example
    )
    optimizer.build(pretrainer.trainable_variables)
    # Resume: weights, optimizer, step and dropout seeds from the newest readable
    # checkpoint, and the data stream from the batch after the last one trained on.
    manager, start_step = resume(pretrainer, optimizer, output_dir, shared_dir)
    record_run(output_dir, start_step, training.seed, training.deterministic)
    train_dataset, eval_dataset = make_datasets(
        config, tokenizer, train_documents, eval_documents, seed=training.seed
    )
    train_dataset, eval_dataset = shard_by_data(continue_stream(train_dataset, start_step)), shard_by_data(eval_dataset)

    jit_compile = jit_compile_for_strategy(training.jit_compile)
    privacy = None
    if training.privacy.enabled:  # DP-SGD (clm only): one privacy unit = one packed block
        blocks = make_clm_dataset(train_documents, tokenizer, config.data.max_sequence_length,
                                  training.batch_size, shuffle=False, repeat=False, drop_remainder=False)
        privacy = plan_privacy(training.privacy, count_examples(blocks), training.batch_size, training.steps)
    fitted = privacy.trainer(pretrainer) if privacy else pretrainer
    fitted.compile(optimizer=optimizer, jit_compile=jit_compile)
    steps_per_epoch = min(training.checkpoint_every, training.steps)
    throughput = ThroughputMeter(training.batch_size * config.data.max_sequence_length)
    started = time.perf_counter()
    if start_step < training.steps:
        fitted.fit(
            train_dataset,
            epochs=math.ceil(training.steps / steps_per_epoch),
            initial_epoch=start_step // steps_per_epoch,
            steps_per_epoch=steps_per_epoch,
            validation_data=eval_dataset,
            shuffle=False,  # the dataset shuffles itself, every epoch
            callbacks=[
                NaNGuard(output_dir / "checkpoints"),  # first: it raises before anything saves
                StopAtStep(training.steps),
                CheckpointEveryEpoch(manager),
                throughput,
                keras.callbacks.CSVLogger(str(output_dir / "history.csv"), append=True),
                keras.callbacks.TensorBoard(str(output_dir / "logs"), write_graph=False),
            ],
            verbose=verbose,
        )
    train_seconds = time.perf_counter() - started

    with outside_strategy(pretrainer):  # exact held-out scores, the same on every worker
        results = pretrainer.evaluate(eval_dataset, return_dict=True, verbose=0)
    metrics = {name: float(value) for name, value in results.items()}
    if config.objective in SENTENCE_OBJECTIVES:
        metrics["mlm_frequency_baseline"] = frequency_baseline(eval_dataset)
    elif config.objective != "plm":
        metrics["perplexity"] = perplexity(metrics["loss"])
    metrics.update(
        objective=config.objective,
        steps=int(optimizer.iterations.numpy()),
        steps_this_run=int(optimizer.iterations.numpy()) - start_step,
        tokens_per_second=throughput.tokens_per_second,
        train_seconds=train_seconds,
        jit_compile=jit_compile,
        mixed_precision=training.mixed_precision,
        vocabulary_size=tokenizer.vocabulary_size,
        train_documents=len(train_documents),
        eval_documents=len(eval_documents),
        **(privacy.report(int(optimizer.iterations.numpy())) if privacy else {}),
    )
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    pretrainer.save(output_dir / "pretrainer.keras")
    pretrainer.backbone.save(output_dir / "backbone.keras")
    return metrics


def summarize(metrics: dict) -> str:
    """One short human summary of :func:`run_pretraining`'s metrics."""
    if metrics["objective"] == "plm":
        return (
            f"steps {metrics['steps']} | {metrics['tokens_per_second']:,.0f} tokens/s | "
            f"held-out permuted-LM loss {metrics['loss']:.3f}, "
            f"accuracy {metrics['plm_accuracy']:.3f}"
        )
    if "perplexity" in metrics:
        return (
            f"steps {metrics['steps']} | {metrics['tokens_per_second']:,.0f} tokens/s | "
            f"held-out {metrics['objective']} loss {metrics['loss']:.3f}, perplexity "
            f"{metrics['perplexity']:.1f}, token accuracy {metrics['accuracy']:.3f}"
        )
    sentence = "".join(
        f" | {name.upper()} accuracy {metrics[f'{name}_accuracy']:.3f} (chance 0.5)"
        for name in ("nsp", "sop")
        if f"{name}_accuracy" in metrics
    )
    return (
        f"steps {metrics['steps']} | {metrics['tokens_per_second']:,.0f} tokens/s | "
        f"held-out MLM accuracy {metrics['mlm_accuracy']:.3f} "
        f"(most-frequent-token baseline {metrics['mlm_frequency_baseline']:.3f})"
        f"{sentence} | MLM loss {metrics.get('mlm_loss', metrics['loss']):.3f}"
    )


