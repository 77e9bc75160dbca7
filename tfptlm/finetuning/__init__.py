"""tfptlm.finetuning: fine-tune, evaluate and use task models from labelled files.

Example:

>>> from tfptlm.config import FinetuneConfig, load_config
>>> config = load_config("configs/sst2_finetune.yaml", config_class=FinetuneConfig)
>>> metrics = run_finetuning(config, "runs/sst2")                   # doctest: +SKIP
>>> model = load_finetuned("runs/sst2")                             # doctest: +SKIP
>>> evaluate_file(model, "dev.tsv")["accuracy"]                     # doctest: +SKIP
"""

from tfptlm.finetuning.backbones import load_backbone_dir, prepare_backbone
from tfptlm.finetuning.run import (
    RECIPES,
    evaluate_file,
    load_finetuned,
    predict_examples,
    read_unlabelled,
    run_finetuning,
)

__all__ = [
    "RECIPES",
    "evaluate_file",
    "load_backbone_dir",
    "load_finetuned",
    "predict_examples",
    "prepare_backbone",
    "read_unlabelled",
    "run_finetuning",
]
