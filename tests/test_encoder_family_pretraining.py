"""End to end: ``tfptlm pretrain`` of ALBERT, RoBERTa, XLNet and a keras-hub encoder, then fine-tuning and export."""

import json

import keras
import numpy as np
import pytest

from tfptlm.cli import main
from tfptlm.config import dump_config, load_config
from tfptlm.models.loading import load_keras_model
from tfptlm.tokenizers import load_tokenizer
from test_finetune_cli import reviews
from test_pretrain_cli import write_corpus

TINY = [
    "--set", "model.num_layers=2", "--set", "model.hidden_dim=32",
    "--set", "model.num_heads=2", "--set", "model.intermediate_dim=64",
    "--set", "model.max_sequence_length=64",
    "--set", "tokenizer.vocab_size=500", "--set", "data.max_sequence_length=32",
    "--set", "data.max_predictions=6", "--set", "training.batch_size=4",
    "--set", "training.eval_batches=2", "--set", "training.checkpoint_every=3",
]

#: config file, extra settings, the held-out metrics it reports, the backbone class.
RUNS = {
    "albert": ("albert_tiny_pretrain.yaml", ["model.embedding_dim=16"],
               ("mlm_accuracy", "sop_accuracy", "mlm_frequency_baseline"), "AlbertBackbone"),
    "roberta": ("roberta_tiny_pretrain.yaml", ["data.whole_word_masking=true"],
                ("mlm_accuracy", "mlm_frequency_baseline"), "RobertaBackbone"),
    "xlnet": ("xlnet_tiny_pretrain.yaml", ["data.plm_span_targets=true"],
              ("plm_accuracy",), "XLNetBackbone"),
    "hub_albert": ("bert_tiny_pretrain.yaml", ["objective=mlm_sop", "model.hub_class=albert",
                                               "model.embedding_dim=16"],
                   ("mlm_accuracy", "sop_accuracy"), "HubBackbone"),
}


def pretrain(tmp_path, name, steps=3):
    config, extra, _, _ = RUNS[name]
    train = write_corpus(tmp_path / "train.txt", documents=12)
    out = tmp_path / name
    args = ["pretrain", "--config", f"configs/{config}", "--train-files", str(train),
            "--steps", str(steps), "--output-dir", str(out), *TINY]
    for setting in extra:
        args += ["--set", setting]
    assert main(args) == 0
    return out


@pytest.mark.parametrize("name", list(RUNS))
def test_pretrain_each_family(tmp_path, capsys, name):
    out = pretrain(tmp_path, name)
    _, _, metric_names, backbone_class = RUNS[name]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 3
    for metric in metric_names:
        assert 0.0 <= metrics[metric] <= 1.0, metric
    assert "held-out" in capsys.readouterr().out
    backbone = load_keras_model(out / "backbone.keras")
    assert type(backbone).__name__ == backbone_class
    pretrainer = load_keras_model(out / "pretrainer.keras")
    assert pretrainer.count_params() >= backbone.count_params()
    if name == "roberta":  # byte-level BPE, MLM only (no NSP / SOP head)
        assert type(load_tokenizer(out / "tokenizer")).__name__ == "BytePairTokenizer"
        assert sorted(pretrainer.output) == ["mlm"]
    if name == "xlnet":  # re-running with more steps resumes from the checkpoint
        pretrain(tmp_path, name, steps=4)
        assert json.loads((out / "metrics.json").read_text())["steps_this_run"] == 1
        assert "Resuming" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["roberta", pytest.param("xlnet", marks=pytest.mark.slow)])
def test_finetune_a_pretrained_family_then_export_a_saved_model(tmp_path, name):
    out = pretrain(tmp_path, name, steps=2)
    train, dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    for path, rows in ((train, reviews(48, 0)), (dev, reviews(16, 1))):
        path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    tuned = tmp_path / "tuned"
    assert main(["finetune", "--train-file", str(train), "--eval-file", str(dev),
                 "--set", f"backbone.path={out}", "--set", "data.sequence_length=32",
                 "--set", "training.epochs=1", "--set", "training.batch_size=16",
                 "--output-dir", str(tuned)]) == 0
    assert 0.0 <= json.loads((tuned / "metrics.json").read_text())["accuracy"] <= 1.0
    exported = tmp_path / "exported"
    assert main(["export", "--model", str(tuned), "--format", "saved_model", "--output", str(exported)]) == 0
    import tensorflow as tf

    from tfptlm.finetuning import load_finetuned

    serve = tf.saved_model.load(str(next(exported.iterdir()))).signatures["serving_default"]
    texts = ["the film was great, and the cast sang", "the film was dull"]
    expected = load_finetuned(tuned).predict_probabilities(texts)
    np.testing.assert_allclose(serve(text=tf.constant(texts))["probabilities"].numpy(), expected, atol=1e-5)
    keras.backend.clear_session()


def test_roberta_pretraining_exports_as_fill_mask_and_xlnet_is_refused(tmp_path, capsys):
    import tensorflow as tf

    out = pretrain(tmp_path, "roberta", steps=1)
    exported = tmp_path / "fill_mask"
    assert main(["export", "--model", str(out), "--format", "saved_model", "--output", str(exported)]) == 0
    serve = tf.saved_model.load(str(exported / "1")).signatures["serving_default"]
    answer = serve(text=tf.constant(["alpha <mask> gamma", "no mark"]))
    assert answer["tokens"].shape == (2, 1, 5)  # one mark in the first text, top 5
    assert answer["scores"].numpy()[1].sum() == 0.0  # the second has none
    xlnet = tmp_path / "xlnet"  # what the export looks at in a permuted-LM pretraining output
    xlnet.mkdir()
    (xlnet / "pretrainer.keras").write_bytes(b"")
    dump_config(load_config(None, ["objective=plm", "model.family=xlnet"]), xlnet / "config.yaml")
    assert main(["export", "--model", str(xlnet), "--format", "saved_model",
                 "--output", str(tmp_path / "x")]) == 1
    assert "fine-tune it" in capsys.readouterr().err


@pytest.mark.parametrize(
    "settings, message",
    [
        (["objective=mlm_sop", "model.family=albert", "model.embedding_dim=256"], "embedding_dim"),
        (["objective=plm", "model.family=xlnet", "model.max_sequence_length=16"], "exceed model.max_sequence_length"),
    ],
)
def test_impossible_model_settings_stop_before_any_work(tmp_path, settings, message):
    from tfptlm.pretraining import run_pretraining

    train = write_corpus(tmp_path / "train.txt")
    config = load_config(None, [f"data.train_files={train}", "data.max_sequence_length=32", *settings])
    with pytest.raises(ValueError, match=message):
        run_pretraining(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing trained, nothing written
