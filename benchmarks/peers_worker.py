"""One contender of ``benchmarks/peers.py``, run as its own process.

``peers.py`` starts this script once per contender (the Keras dtype policy is
global, so each precision needs its own process) and drives it over a line
protocol: the worker builds its model, runs the untimed warm-up training
steps, prints ``@@BENCH READY {...}`` and then answers each command on stdin
with one ``@@BENCH BLOCK {...}`` line:

- ``TRAIN n``: n timed training steps (one ``model.fit`` of n steps for Keras,
  n optimizer steps for PyTorch);
- ``INFER n``: n timed forward passes in inference mode (the first ``INFER``
  first runs untimed warm-up calls, so tracing and compilation stay out);
- ``PEAK n``: only for the ``matmul`` contender: n timed square matrix
  products per library (TensorFlow, and PyTorch when installed);
- ``EXIT``: prints ``@@BENCH DONE {...}`` and ends.

Every block reports wall seconds, the process's CPU seconds (all threads), the
1-minute load average when it started and the process's peak RSS so far.

Example (what ``peers.py`` runs)::

    python benchmarks/peers_worker.py '{"impl": "tfptlm", "precision": "float32",
        "jit_compile": false}' '{"batch_size": 4, "sequence_length": 32, ...}'
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import statistics
import sys
import time

PROTOCOL_PREFIX = "@@BENCH "
#: What each kind of contender imports before "RSS before the model is built" is read.
FRAMEWORK_MODULES = {
    "tfptlm": ("tensorflow", "keras", "tfptlm.tasks.bert_pretrainer", "tfptlm.training.optimizer"),
    "kerashub": ("tensorflow", "keras", "keras_hub", "tfptlm.training.optimizer"),
    "torch": ("torch", "transformers"),
    "matmul": ("tensorflow",),
}

#: BERT small (Turc et al. 2019), as ``tfptlm.models.BertBackbone.from_size("small")``.
MODEL = dict(
    vocabulary_size=30522,
    num_layers=4,
    num_heads=8,
    hidden_dim=512,
    intermediate_dim=2048,
    max_sequence_length=512,
)
DROPOUT = 0.1
#: The optimizer of every contender: AdamW, linear warm-up then linear decay,
#: no weight decay on biases and layer norms, global gradient norm clipped to 1.
OPTIMIZER = dict(
    learning_rate=1e-4, total_steps=100_000, warmup_steps=1_000, weight_decay=0.01,
    clip_norm=1.0, epsilon=1e-6,
)


def emit(kind: str, payload: dict) -> None:
    """Prints one protocol line for the parent."""
    sys.stdout.write(PROTOCOL_PREFIX + kind + " " + json.dumps(payload) + "\n")
    sys.stdout.flush()


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (``ru_maxrss``), in MB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux, bytes on macOS
    return round(rss / (1024**2 if sys.platform == "darwin" else 1024), 1)


def current_rss_mb() -> float | None:
    """The process's resident set size now (``VmRSS``), in MB; None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def tfptlm_source_hash() -> str:
    """sha256 (first 12 hex digits) of the imported tfptlm package's ``.py`` files.

    tfptlm may change between (or during) runs; equal hashes say that two
    workers ran the same library code.
    """
    import hashlib
    from pathlib import Path

    import tfptlm

    digest = hashlib.sha256()
    root = Path(tfptlm.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def make_batch(batch_size: int, sequence_length: int, num_predictions: int, seed: int = 1234):
    """A fixed synthetic MLM + NSP batch (numpy), identical for every contender.

    Token ids are uniform over the vocabulary minus the first 5 (special) ids,
    with [CLS]=2 first and [SEP]=3 closing each of the two segments; every
    sequence is full length (no padding). ``num_predictions`` distinct positions
    per sequence (never the first token) are "masked": their original ids are
    the MLM labels, the inputs there become [MASK]=4, and all weights are 1.
    Returns ``(x, y, sample_weight)`` dicts as ``BertPretrainer.fit`` takes them.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    token_ids = rng.integers(5, MODEL["vocabulary_size"], size=(batch_size, sequence_length),
                             dtype=np.int32)
    half = sequence_length // 2
    token_ids[:, 0] = 2
    token_ids[:, half - 1] = 3
    token_ids[:, -1] = 3
    segment_ids = np.zeros((batch_size, sequence_length), np.int32)
    segment_ids[:, half:] = 1
    mask_positions = np.stack([
        np.sort(rng.choice(np.arange(1, sequence_length), num_predictions, replace=False))
        for _ in range(batch_size)
    ]).astype(np.int32)
    mlm_labels = np.take_along_axis(token_ids, mask_positions, axis=1).astype(np.int32)
    np.put_along_axis(token_ids, mask_positions, 4, axis=1)
    x = {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": np.ones((batch_size, sequence_length), np.int32),
        "mask_positions": mask_positions,
    }
    y = {"mlm": mlm_labels, "nsp": rng.integers(0, 2, size=(batch_size,), dtype=np.int32)}
    sample_weight = {"mlm": np.ones((batch_size, num_predictions), np.float32),
                     "nsp": np.ones((batch_size,), np.float32)}
    return x, y, sample_weight


# ----------------------------------------------------------------------------
# Keras contenders (tfptlm, keras-hub)
# ----------------------------------------------------------------------------


def _keras_optimizer():
    from tfptlm.training.optimizer import create_optimizer

    return create_optimizer(**OPTIMIZER)


def build_tfptlm(jit_compile: bool):
    """tfptlm ``BertBackbone.from_size("small")`` + ``BertPretrainer`` (its own losses/metrics)."""
    from tfptlm.models.bert import BertBackbone
    from tfptlm.tasks.bert_pretrainer import BertPretrainer

    backbone = BertBackbone.from_size("small", vocabulary_size=MODEL["vocabulary_size"],
                                      dropout=DROPOUT)
    for key in ("num_layers", "num_heads", "hidden_dim", "intermediate_dim"):
        if getattr(backbone, key) != MODEL[key]:
            raise RuntimeError(f"BertBackbone small has {key}={getattr(backbone, key)}, "
                               f"peers_worker.MODEL says {MODEL[key]}")
    model = BertPretrainer(backbone)
    model.compile(optimizer=_keras_optimizer(), jit_compile=jit_compile)
    return model


def build_kerashub(jit_compile: bool):
    """keras-hub ``BertBackbone`` + ``MaskedLMHead`` (tied, GELU transform) + Dense(2) NSP head.

    Same losses and metrics as ``BertPretrainer.compile``'s defaults.
    """
    import keras
    import keras_hub

    backbone = keras_hub.models.BertBackbone(**MODEL, dropout=DROPOUT)
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
              for name in ("token_ids", "segment_ids", "padding_mask", "mask_positions")}
    features = backbone({name: inputs[name] for name in ("token_ids", "segment_ids", "padding_mask")})
    initializer = keras.initializers.TruncatedNormal(stddev=0.02)
    # As in keras_hub.models.BertMaskedLM (the head's `activation` would act on
    # the logits; the losses take logits).
    mlm_head = keras_hub.layers.MaskedLMHead(
        vocabulary_size=MODEL["vocabulary_size"], token_embedding=backbone.token_embedding,
        intermediate_activation="gelu", kernel_initializer=initializer,
        dtype=backbone.dtype_policy, name="mlm_head")
    nsp_head = keras.layers.Dense(2, kernel_initializer=initializer, dtype="float32", name="nsp_head")
    outputs = {"mlm": mlm_head(features["sequence_output"], mask_positions=inputs["mask_positions"]),
               "nsp": nsp_head(features["pooled_output"])}
    model = keras.Model(inputs=inputs, outputs=outputs, name="kerashub_bert_pretrainer")
    model.compile(
        optimizer=_keras_optimizer(), jit_compile=jit_compile,
        loss={"mlm": keras.losses.SparseCategoricalCrossentropy(
                  from_logits=True, reduction="mean_with_sample_weight"),
              "nsp": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
        weighted_metrics={"mlm": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]},
        metrics={"nsp": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]},
    )
    return model


class KerasContender:
    """A compiled Keras pretraining model: ``fit`` blocks and a (jit-)compiled forward pass."""

    def __init__(self, spec: dict, batch):
        import keras
        import tensorflow as tf

        from tfptlm.training.runtime import set_precision

        set_precision(spec["precision"])
        keras.utils.set_random_seed(0)
        build = build_tfptlm if spec["impl"] == "tfptlm" else build_kerashub
        self.model = build(spec["jit_compile"])
        x, y, sample_weight = batch
        self.dataset = tf.data.Dataset.from_tensors((x, y, sample_weight)).repeat()
        self.x = {k: tf.constant(v) for k, v in x.items()}
        model = self.model
        head = model.get_layer("mlm_head")
        self._forward = tf.function(lambda inputs: model(inputs, training=False),
                                    jit_compile=spec["jit_compile"])
        self.info = dict(parameters=int(model.count_params()), jit_compile=bool(model.jit_compile),
                         dtype_policy=keras.mixed_precision.global_policy().name,
                         mlm_head_dtype_policy=head.dtype_policy.name,
                         # keras-hub's tied projection (ReversibleEmbedding) has its own dtype.
                         mlm_projection_dtype=getattr(getattr(head, "token_embedding", None),
                                                      "reverse_dtype", None),
                         tfptlm_source_sha256=tfptlm_source_hash(),
                         tf_intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
                         tf_inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads())

    def train(self, steps: int) -> float:
        """Runs ``steps`` training steps; returns the last loss."""
        history = self.model.fit(self.dataset, steps_per_epoch=steps, epochs=1, verbose=0,
                                 shuffle=False)
        return float(history.history["loss"][-1])

    def infer(self, calls: int) -> None:
        for _ in range(calls):
            outputs = self._forward(self.x)
        outputs["mlm"].numpy()  # eager CPU ops are synchronous; this only makes sure


# ----------------------------------------------------------------------------
# PyTorch contender (Hugging Face transformers)
# ----------------------------------------------------------------------------


class TorchContender:
    """``transformers.BertForPreTraining`` trained eagerly on the CPU, MLM logits at the masked positions only.

    The step runs ``model.bert`` (embeddings, encoder, pooler), gathers the
    masked positions of the sequence output, and applies ``model.cls.predictions``
    (GELU transform + tied output projection) to them and
    ``model.cls.seq_relationship`` to the pooled output; the losses are those of
    the Keras contenders. ``bfloat16`` runs the forward pass under
    ``torch.autocast("cpu", dtype=torch.bfloat16)`` (all of it, as a user would:
    the vocabulary projection included); the losses are taken in float32.
    """

    def __init__(self, spec: dict, batch):
        import torch
        import transformers

        torch.manual_seed(0)
        self.torch = torch
        self.autocast = spec["precision"] != "float32"
        config = transformers.BertConfig(
            vocab_size=MODEL["vocabulary_size"], hidden_size=MODEL["hidden_dim"],
            num_hidden_layers=MODEL["num_layers"], num_attention_heads=MODEL["num_heads"],
            intermediate_size=MODEL["intermediate_dim"],
            max_position_embeddings=MODEL["max_sequence_length"], type_vocab_size=2,
            hidden_act="gelu", hidden_dropout_prob=DROPOUT, attention_probs_dropout_prob=DROPOUT,
            layer_norm_eps=1e-12)
        self.model = transformers.BertForPreTraining(config)
        x, y, sample_weight = batch
        self.inputs = dict(input_ids=torch.from_numpy(x["token_ids"]).long(),
                           token_type_ids=torch.from_numpy(x["segment_ids"]).long(),
                           attention_mask=torch.from_numpy(x["padding_mask"]).long())
        self.positions = torch.from_numpy(x["mask_positions"]).long()
        self.mlm_labels = torch.from_numpy(y["mlm"]).long()
        self.mlm_weights = torch.from_numpy(sample_weight["mlm"])
        self.nsp_labels = torch.from_numpy(y["nsp"]).long()
        no_decay = [p for n, p in self.model.named_parameters() if "bias" in n or "LayerNorm" in n]
        decay = [p for n, p in self.model.named_parameters() if not ("bias" in n or "LayerNorm" in n)]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": OPTIMIZER["weight_decay"]},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=OPTIMIZER["learning_rate"], eps=OPTIMIZER["epsilon"])
        warmup, total = OPTIMIZER["warmup_steps"], OPTIMIZER["total_steps"]
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: step / warmup if step < warmup else max(0.0, (total - step) / (total - warmup)))
        self.info = dict(parameters=sum(p.numel() for p in self.model.parameters()),
                         attention=getattr(self.model.config, "_attn_implementation", None),
                         torch_threads=torch.get_num_threads(),
                         cpu_capability=torch.backends.cpu.get_cpu_capability(),
                         autocast="bfloat16" if self.autocast else None)

    def _forward(self):
        torch = self.torch
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
            out = self.model.bert(**self.inputs)
            sequence = out.last_hidden_state
            gathered = sequence.gather(
                1, self.positions[:, :, None].expand(-1, -1, sequence.shape[-1]))
            mlm = self.model.cls.predictions(gathered)
            nsp = self.model.cls.seq_relationship(out.pooler_output)
        return mlm.float(), nsp.float()

    def _step(self) -> float:
        torch = self.torch
        functional = torch.nn.functional
        mlm, nsp = self._forward()
        token_loss = functional.cross_entropy(mlm.flatten(0, 1), self.mlm_labels.flatten(),
                                              reduction="none")
        weights = self.mlm_weights.flatten()
        loss = (token_loss * weights).sum() / weights.sum() + functional.cross_entropy(
            nsp, self.nsp_labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), OPTIMIZER["clip_norm"])
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():  # the accuracies that Keras logs, for the same work
            hits = (mlm.argmax(-1) == self.mlm_labels).float()
            self.accuracies = (float((hits * self.mlm_weights).sum() / self.mlm_weights.sum()),
                               float((nsp.argmax(-1) == self.nsp_labels).float().mean()))
        return loss.item()

    def train(self, steps: int) -> float:
        self.model.train()
        for _ in range(steps):
            loss = self._step()
        return loss

    def infer(self, calls: int) -> None:
        self.model.eval()
        with self.torch.inference_mode():
            for _ in range(calls):
                self._forward()

    def count_training_flops(self) -> int:
        """Matrix-product FLOPs of one training step, counted by ``torch.utils.flop_counter``."""
        from torch.utils.flop_counter import FlopCounterMode

        self.model.train()
        with FlopCounterMode(display=False) as counter:
            self._step()
        return int(counter.get_total_flops())


# ----------------------------------------------------------------------------
# Matrix-product peak
# ----------------------------------------------------------------------------


class MatmulPeak:
    """Times ``n x n @ n x n`` products in the group's dtype with TensorFlow and, if installed, PyTorch."""

    def __init__(self, spec: dict, size: int):
        import numpy as np
        import tensorflow as tf

        self.size = size
        rng = np.random.default_rng(0)
        a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
        bf16 = spec["precision"] != "float32"
        self.products = {}
        tf_a, tf_b = tf.constant(a), tf.constant(b)
        if bf16:
            tf_a, tf_b = tf.cast(tf_a, tf.bfloat16), tf.cast(tf_b, tf.bfloat16)
        self.products["tensorflow"] = lambda: tf.linalg.matmul(tf_a, tf_b)[0, 0].numpy()
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            dtype = torch.bfloat16 if bf16 else torch.float32
            torch_a, torch_b = torch.from_numpy(a).to(dtype), torch.from_numpy(b).to(dtype)
            self.products["torch"] = lambda: torch.mm(torch_a, torch_b)[0, 0].item()
        for product in self.products.values():  # warm-up: kernel selection, allocations
            product()
        self.info = dict(size=size, libraries=list(self.products))

    def block(self, reps: int) -> dict:
        """Per library: median seconds and CPU seconds of ``reps`` products, and GFLOP/s."""
        flops = 2 * self.size**3
        results = {}
        for library, product in self.products.items():
            seconds, cpu = [], []
            for _ in range(reps):
                begin, begin_cpu = time.perf_counter(), time.process_time()
                product()
                seconds.append(time.perf_counter() - begin)
                cpu.append(time.process_time() - begin_cpu)
            wall, cpu_median = statistics.median(seconds), statistics.median(cpu)
            results[library] = dict(seconds=round(wall, 5), cpu_seconds=round(cpu_median, 5),
                                    gflops=round(flops / wall / 1e9, 2),
                                    gflops_per_cpu_second=round(flops / max(cpu_median, 1e-9) / 1e9, 2))
        return results


# ----------------------------------------------------------------------------
# Protocol loop
# ----------------------------------------------------------------------------


def _timed(work) -> tuple[float, float, object]:
    begin, begin_cpu = time.perf_counter(), time.process_time()
    result = work()
    return time.perf_counter() - begin, time.process_time() - begin_cpu, result


def main(spec: dict, settings: dict) -> None:
    """Builds the contender ``spec`` (see ``peers.CONTENDERS``), warms up, then serves commands."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    for module in FRAMEWORK_MODULES[spec["impl"]]:  # imported before the first RSS reading
        importlib.import_module(module)
    rss_before_build = current_rss_mb()
    start = time.perf_counter()
    if spec["impl"] == "matmul":
        contender = MatmulPeak(spec, settings["matmul_size"])
        emit("READY", dict(build_seconds=round(time.perf_counter() - start, 2), **contender.info,
                           rss_before_build_mb=rss_before_build, peak_rss_mb=peak_rss_mb()))
    else:
        batch = make_batch(settings["batch_size"], settings["sequence_length"],
                           settings["num_predictions"])
        contender = (TorchContender if spec["impl"] == "torch" else KerasContender)(spec, batch)
        build_seconds = time.perf_counter() - start
        rss_after_build = current_rss_mb()
        warmup_seconds, _, warmup_loss = _timed(lambda: contender.train(settings["warmup"]))
        extra = {}
        if spec["impl"] == "torch":
            extra["counted_training_flops"] = contender.count_training_flops()
        emit("READY", dict(build_seconds=round(build_seconds, 2), warmup_steps=settings["warmup"],
                           warmup_seconds=round(warmup_seconds, 2), warmup_loss=warmup_loss,
                           rss_before_build_mb=rss_before_build, rss_after_build_mb=rss_after_build,
                           peak_rss_mb=peak_rss_mb(), **contender.info, **extra))

    inference_warm = False
    for line in sys.stdin:
        command = line.split()
        if not command:
            continue
        if command[0] == "EXIT":
            break
        count = int(command[1])
        load = round(os.getloadavg()[0], 2)
        block = dict(command=command[0], count=count, loadavg_1min=load)
        if command[0] == "PEAK":
            block["libraries"] = contender.block(count)
        elif command[0] == "TRAIN":
            seconds, cpu_seconds, loss = _timed(lambda: contender.train(count))
            block.update(seconds=round(seconds, 4), cpu_seconds=round(cpu_seconds, 4), loss=loss,
                         finite=bool(np.isfinite(loss)))
        elif command[0] == "INFER":
            if not inference_warm:
                block["warmup_seconds"] = round(_timed(lambda: contender.infer(settings["infer_warmup"]))[0], 2)
                inference_warm = True
            seconds, cpu_seconds, _ = _timed(lambda: contender.infer(count))
            block.update(seconds=round(seconds, 4), cpu_seconds=round(cpu_seconds, 4))
        else:
            raise SystemExit(f"peers_worker: unknown command {line!r}")
        block["peak_rss_mb"] = peak_rss_mb()
        emit("BLOCK", block)
    emit("DONE", dict(peak_rss_mb=peak_rss_mb()))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]), json.loads(sys.argv[2]))
