"""Config loading: YAML, --set overrides and the errors for bad keys and types."""

import re

import pytest

from tfptlm.config import ConfigError, FinetuneConfig, PretrainConfig, dump_config, load_config


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_yaml_and_overrides_are_applied_in_order(tmp_path):
    path = write(tmp_path, "model:\n  size: mini\ntraining:\n  steps: 10\n  learning_rate: 1e-4\n")
    config = load_config(path, ["training.steps=20", "data.train_files=a.txt"])
    assert config.model.size == "mini"
    assert config.training.steps == 20
    assert config.training.learning_rate == pytest.approx(1e-4)  # "1e-4" is a string to PyYAML
    assert config.data.train_files == ["a.txt"]


def test_unknown_key_names_file_line_and_key(tmp_path):
    path = write(tmp_path, "training:\n  steps: 10\n  batch_sise: 3\n")
    with pytest.raises(ConfigError, match=r"config\.yaml, line 3: unknown key 'training\.batch_sise'"):
        load_config(path)


def test_wrong_type_names_key_and_value(tmp_path):
    path = write(tmp_path, "training:\n  steps: many\n")
    with pytest.raises(ConfigError, match=r"line 2: 'training\.steps' must be an integer, got 'many'"):
        load_config(path)
    with pytest.raises(ConfigError, match="must be true or false"):
        load_config(None, ["model.norm_first=3"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("training.jit_compile=maybe", "jit_compile must be auto, true or false"),
        ("training.mixed_precision=int8", "mixed_precision must be one of"),
        ("data.mask_rate=1.5", "mask_rate must be between 0 and 1"),
        ("training.steps=0", "training.steps must be positive"),
        ("training", "expected key=value"),
        ("model.sizes=tiny", "--set model.sizes=tiny: unknown key 'model.sizes'"),
        ("model.parameter_sharing=some", "model.parameter_sharing must be one of all, attention"),
        ("objective=plm", "objective plm trains model.family xlnet, not 'bert'"),
        ("data.max_ngram=3", "data.max_ngram > 1 masks n-grams of whole words"),
        ("data.word_segmenter=jieba", "set data.whole_word_masking: true as well"),
        ("model.hub_class=albert", None),  # fine with the default mlm_nsp objective
    ],
)
def test_bad_values_are_refused(override, message):
    if message is None:
        load_config(None, [override])
        return
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(None, [override])


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["objective=plm", "model.family=xlnet", "data.plm_prediction_ratio=0"], "must be in (0, 1]"),
        (["objective=plm", "model.family=xlnet", "data.plm_prediction_ratio=1.5"], "must be in (0, 1]"),
        (["objective=plm", "model.family=xlnet", "model.hub_class=bert"], "work with the MLM objectives"),
        (["data.whole_word_masking=true", "data.word_segmenter=thulac"], "data.word_segmenter must be one of jieba"),
    ],
)
def test_encoder_family_settings_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, overrides)
    config = load_config(None, ["objective=plm", "model.family=xlnet", "data.plm_prediction_ratio=1"])
    assert config.data.plm_prediction_ratio == 1.0


def test_jit_compile_accepts_booleans_and_auto():
    assert load_config(None, ["training.jit_compile=true"]).training.jit_compile is True
    assert load_config(None, ["training.jit_compile=auto"]).training.jit_compile == "auto"


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "model: [unclosed\n"))


def test_dump_then_load_gives_the_same_config(tmp_path):
    config = load_config(None, ["model.size=small", "data.eval_files=[x.txt, y.txt]"])
    dump_config(config, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == config
    assert load_config(None) == PretrainConfig()


def test_shipped_configs_load():
    from pathlib import Path

    configs = sorted(Path(__file__).parent.parent.glob("configs/*.yaml"))
    assert configs, "no example configs found"
    for path in configs:
        if "task:" in path.read_text():
            assert load_config(path, config_class=FinetuneConfig).task in path.read_text()
        else:
            load_config(path)


def test_finetune_config_checks_choices_and_columns(tmp_path):
    config = load_config(None, ["task=token_classification", "data.text_column=2",
                                "training.class_weights=[1, 2.5]"], config_class=FinetuneConfig)
    assert config.data.text_column == 2 and config.training.class_weights == [1.0, 2.5]
    with pytest.raises(ConfigError, match="task must be one of"):
        load_config(None, ["task=translation"], config_class=FinetuneConfig)
    with pytest.raises(ConfigError, match="training.class_weights must be one of balanced"):
        load_config(None, ["training.class_weights=uniform"], config_class=FinetuneConfig)
    path = tmp_path / "bad.yaml"
    path.write_text("task: text_classification\ndata:\n  text_colum: 1\n")
    with pytest.raises(ConfigError, match="line 3.*unknown key 'data.text_colum'"):
        load_config(path, config_class=FinetuneConfig)
