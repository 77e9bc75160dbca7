"""Loading models never runs code from the model folder, and a damaged or mismatched folder is an error."""

import json
import re
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from keras.src.backend.common import global_state

from test_convert_hf_bert import TINY_CONFIG, random_checkpoint, write_checkpoint
from test_export import VOCAB, make_task_dir
from tfptlm.cli import main
from tfptlm.config import ConfigError, load_config
from tfptlm.convert import load_hf_bert
from tfptlm.finetuning.backbones import load_backbone_dir, load_model_dir
from tfptlm.finetuning.run import load_finetuned
from tfptlm.models.bert import BertBackbone
from tfptlm.models.loading import ModelFileError, load_keras_model
from tfptlm.tokenizers import WordPieceTokenizer

PACKAGE = Path(__file__).parent.parent / "tfptlm"


def tiny_bert(vocabulary_size=len(VOCAB)):
    keras.utils.set_random_seed(0)
    return BertBackbone(vocabulary_size=vocabulary_size, num_layers=1, num_heads=2, hidden_dim=16,
                        intermediate_dim=32, max_sequence_length=16)


def backbone_dir(directory, vocabulary_size=len(VOCAB), vocabulary=VOCAB):
    directory.mkdir(parents=True)
    tiny_bert(vocabulary_size).save(directory / "backbone.keras")
    WordPieceTokenizer(vocabulary).save(directory / "tokenizer")
    return directory


@pytest.fixture
def unsafe_deserialization_enabled():
    """``keras.config.enable_unsafe_deserialization()`` for one test, as a careless user may have set."""
    before = global_state.get_global_attribute("safe_mode_saving")
    keras.config.enable_unsafe_deserialization()
    yield
    global_state.set_global_attribute("safe_mode_saving", before)


def test_a_lambda_layer_in_a_model_file_is_refused_and_never_run(tmp_path, unsafe_deserialization_enabled):
    marker = tmp_path / "code_ran"
    code = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]")
    keras.Sequential([keras.Input((2,)), keras.layers.Lambda(code)]).save(tmp_path / "evil.keras")
    marker.unlink()  # building the model ran it once

    with pytest.raises(ModelFileError, match=r"evil\.keras.*Lambda"):
        load_keras_model(tmp_path / "evil.keras")
    assert not marker.exists()
    # The file does carry code: plain unsafe loading runs it.
    keras.saving.load_model(tmp_path / "evil.keras", safe_mode=False)
    assert marker.read_text() == "ran"


def test_a_class_outside_keras_in_a_model_file_is_refused(tmp_path):
    path = tmp_path / "model.keras"
    tiny_bert().save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["config.json"] = json.dumps({"module": "os", "class_name": "system", "registered_name": None,
                                         "config": {"command": f"touch {tmp_path / 'code_ran'}"}})
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match=r"model\.keras.*Could not locate class 'system'"):
        load_keras_model(path)
    assert not (tmp_path / "code_ran").exists()


def test_the_package_never_unpickles_or_loads_unsafely():
    forbidden = re.compile(r"\bpickle\b|allow_pickle\s*=\s*True|yaml\.(load|unsafe_load|full_load)\(|"
                           r"yaml\.(Unsafe|Full)?Loader\b|safe_mode\s*=\s*False|enable_unsafe_deserialization|"
                           r"torch\.load|\bmarshal\b|\bdill\b|joblib")
    found = [f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if forbidden.search(line.split("#")[0])]  # comments may name them
    assert not found, "\n".join(found)


def test_yaml_python_tags_are_refused_not_run(tmp_path):
    marker = tmp_path / "code_ran"
    config = tmp_path / "config.yaml"
    config.write_text(f"training:\n  steps: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(config))}: not valid YAML.*python/object"):
        load_config(config)
    with pytest.raises(ConfigError, match=r"--set .*not valid YAML"):
        load_config(overrides=[f"training.steps=!!python/object/apply:os.system ['touch {marker}']"])
    with pytest.raises(ConfigError, match=r"--set 'training.steps=\[1': the value is not valid YAML"):
        load_config(overrides=["training.steps=[1"])
    assert not marker.exists()


def test_directories_missing_files_are_named(tmp_path):
    folder = backbone_dir(tmp_path / "pretrained")
    (folder / "tokenizer" / "vocab.txt").unlink()
    (folder / "tokenizer" / "tokenizer.json").unlink()
    (folder / "tokenizer").rmdir()
    with pytest.raises(FileNotFoundError, match=rf"{folder} has no tokenizer: backbone\.path must be"):
        load_backbone_dir(folder)
    finetuned = make_task_dir(tmp_path / "finetuned", "text_classification")
    (finetuned / "model.keras").unlink()
    with pytest.raises(FileNotFoundError, match=rf"{finetuned} has no model\.keras"):
        load_finetuned(finetuned)


def test_a_tokenizer_larger_than_the_embedding_table_is_refused(tmp_path, capsys):
    folder = backbone_dir(tmp_path / "pretrained", vocabulary_size=10)
    message = rf"{folder}: the tokenizer \(tokenizer/\) has {len(VOCAB)} tokens but backbone\.keras has only 10"
    with pytest.raises(ValueError, match=message):
        load_backbone_dir(folder)
    padded = backbone_dir(tmp_path / "padded", vocabulary_size=len(VOCAB) + 8)  # a padded table is fine
    assert load_model_dir(padded, "backbone.keras")[1].vocabulary_size == len(VOCAB)

    finetuned = make_task_dir(tmp_path / "finetuned", "text_classification")
    WordPieceTokenizer(VOCAB + ["extra"]).save(finetuned / "tokenizer")
    assert main(["predict", "--model", str(finetuned), "a film"]) == 1
    assert f"has {len(VOCAB) + 1} tokens but model.keras has only {len(VOCAB)}" in capsys.readouterr().err


def test_a_truncated_model_file_stops_the_command_with_its_name(tmp_path, capsys):
    finetuned = make_task_dir(tmp_path / "finetuned", "text_classification")
    path = finetuned / "model.keras"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match=rf"cannot load {path} \(BadZipFile"):
        load_finetuned(finetuned)
    assert main(["predict", "--model", str(finetuned), "a film"]) == 1
    assert f"cannot load {path}" in capsys.readouterr().err


def test_flipped_bytes_give_an_error_or_the_very_same_model(tmp_path):
    original = tiny_bert()
    path = tmp_path / "backbone.keras"
    original.save(path)
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        weights = archive.getinfo("model.weights.h5")
    weights_start = weights.header_offset + 30 + len(weights.filename)
    inside_weights = [weights_start + weights.compress_size * share // 4 for share in (1, 2, 3)]
    everywhere = [len(data) * i // 12 for i in range(12)] + [len(data) - 30]
    damaged = tmp_path / "damaged.keras"
    for offset in inside_weights + everywhere:
        blob = bytearray(data)
        blob[offset : offset + 4] = bytes(b ^ 0xFF for b in blob[offset : offset + 4])
        damaged.write_bytes(bytes(blob))
        if offset in inside_weights:
            with pytest.raises(ModelFileError, match="Bad CRC-32 for file 'model.weights.h5'"):
                load_keras_model(damaged)
            continue
        try:
            loaded = load_keras_model(damaged)
        except (ModelFileError, FileNotFoundError):
            continue
        for a, b in zip(original.get_weights(), loaded.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"flip at byte {offset}")


def test_weights_that_do_not_fill_the_model_are_an_error(tmp_path):
    tiny_bert().save(tmp_path / "small.keras")
    two_layers = BertBackbone(vocabulary_size=len(VOCAB), num_layers=2, num_heads=2, hidden_dim=16,
                              intermediate_dim=32, max_sequence_length=16)
    two_layers.save(tmp_path / "large.keras")
    with zipfile.ZipFile(tmp_path / "large.keras") as large, zipfile.ZipFile(tmp_path / "small.keras") as small:
        mixed = {name: large.read(name) for name in large.namelist()}
        mixed["model.weights.h5"] = small.read("model.weights.h5")
    with zipfile.ZipFile(tmp_path / "mixed.keras", "w") as archive:
        for name, data in mixed.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match=r"mixed\.keras.*could not be loaded"):
        load_keras_model(tmp_path / "mixed.keras")


def test_a_model_saved_with_nan_weights_is_refused(tmp_path):
    backbone = tiny_bert()
    kernel = backbone.encoder_blocks[0].output_dense.kernel
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    backbone.save(tmp_path / "diverged.keras")
    with pytest.raises(ModelFileError, match=r"diverged\.keras: weight \S*output_dense/kernel holds NaN"):
        load_keras_model(tmp_path / "diverged.keras")


def test_damaged_safetensors_are_an_error_naming_the_file(tmp_path):
    folder = write_checkpoint(tmp_path / "hf", random_checkpoint(TINY_CONFIG), TINY_CONFIG)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{weights} is not a readable safetensors file.*incomplete"):
        load_hf_bert(folder)
    header = bytearray(data)
    header[20:24] = bytes(b ^ 0xFF for b in header[20:24])  # inside the JSON header
    weights.write_bytes(bytes(header))
    with pytest.raises(ValueError, match=rf"{weights} is not a readable safetensors file"):
        load_hf_bert(folder)

    tensors = random_checkpoint(TINY_CONFIG)
    tensors["encoder.layer.0.output.dense.weight"][3, 4] = np.inf
    with pytest.raises(ValueError, match=r"'encoder\.layer\.0\.output\.dense\.weight' holds NaN or infinite"):
        load_hf_bert(write_checkpoint(tmp_path / "inf", tensors, TINY_CONFIG))


def test_a_hugging_face_vocabulary_larger_than_its_embeddings_is_refused(tmp_path):
    small = dict(TINY_CONFIG, vocab_size=30)
    folder = write_checkpoint(tmp_path / "hf", random_checkpoint(small), small)
    with pytest.raises(ValueError, match=rf"{folder}: vocab\.txt has 40 tokens but config\.json's vocab_size"):
        load_hf_bert(folder)
