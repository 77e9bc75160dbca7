"""keras-hub encoder backbones behind tfptlm's backbone interface (tfptlm.models.hub)."""

import keras
import keras_hub
import numpy as np
import pytest

from tfptlm.models.hub import (
    HUB_BACKBONES,
    HubBackbone,
    hub_backbone_from_config,
    load_hub_preset,
    load_hub_tokenizer,
)

VOCABULARY = 100
HIDDEN = 32
MAX_LENGTH = 32
COMMON = dict(vocabulary_size=VOCABULARY, num_layers=2, hidden_dim=HIDDEN,
              intermediate_dim=64, dropout=0.0)
TINY = {
    "bert": dict(COMMON, num_heads=2, max_sequence_length=MAX_LENGTH),
    "roberta": dict(COMMON, num_heads=2, max_sequence_length=MAX_LENGTH),
    "xlm_roberta": dict(COMMON, num_heads=2, max_sequence_length=MAX_LENGTH),
    "albert": dict(COMMON, num_heads=2, embedding_dim=16, max_sequence_length=MAX_LENGTH),
    "distil_bert": dict(COMMON, num_heads=2, max_sequence_length=MAX_LENGTH),
    "electra": dict(COMMON, num_heads=2, embedding_dim=16, max_sequence_length=MAX_LENGTH),
    "deberta_v3": dict(COMMON, num_heads=2, max_sequence_length=MAX_LENGTH, bucket_size=16),
    "f_net": dict(COMMON, max_sequence_length=MAX_LENGTH),
}
# Backbones that take segment ids, and those that mask padding (FNet mixes
# every position with a Fourier transform and has no mask at all).
WITH_SEGMENTS = {"bert", "albert", "electra", "f_net"}
WITH_POOLER = {"bert", "albert", "electra", "f_net"}
MASKING = set(TINY) - {"f_net"}
# One fixed weight initialization per test session.
SEEDS = {kind: i for i, kind in enumerate(TINY)}


@pytest.fixture(scope="module")
def models():
    """kind -> HubBackbone built once, wrapping a tiny keras-hub backbone."""
    built = {}
    for kind, config in TINY.items():
        keras.utils.set_random_seed(SEEDS[kind])
        built[kind] = hub_backbone_from_config(kind, **config)
    return built


def batch(length=8, lengths=(8, 5), seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array(lengths)
    padding_mask = (np.arange(length)[None, :] < lengths[:, None]).astype("int32")
    token_ids = rng.integers(3, VOCABULARY, (len(lengths), length)).astype("int32") * padding_mask
    segment_ids = ((np.arange(length)[None, :] >= lengths[:, None] // 2) * padding_mask).astype("int32")
    return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}


def numpy_outputs(model, inputs):
    return {key: keras.ops.convert_to_numpy(value) for key, value in model(inputs).items()}


def test_known_backbones_are_all_tested():
    assert set(HUB_BACKBONES) == set(TINY)


@pytest.mark.parametrize("kind", sorted(TINY))
def test_interface_shapes_and_attributes(models, kind):
    model = models[kind]
    outputs = numpy_outputs(model, batch())
    assert set(outputs) == {"sequence_output", "pooled_output"}
    assert outputs["sequence_output"].shape == (2, 8, HIDDEN)
    assert outputs["pooled_output"].shape == (2, HIDDEN)
    assert model.vocabulary_size == VOCABULARY
    assert model.hidden_dim == HIDDEN
    assert model.num_layers == 2
    assert model.max_sequence_length == MAX_LENGTH
    assert model.uses_segment_ids == (kind in WITH_SEGMENTS)
    assert model.has_pooler == (kind in WITH_POOLER)
    assert type(model.backbone).__name__ == HUB_BACKBONES[kind]
    assert model.token_embedding is model.backbone.token_embedding
    assert model.token_embedding is not None
    assert model.token_embedding.input_dim == VOCABULARY
    # The adapter adds no weights of its own.
    assert len(model.weights) == len(model.backbone.weights)


@pytest.mark.parametrize("kind", sorted(TINY))
def test_outputs_equal_the_wrapped_backbone(models, kind):
    model = models[kind]
    inputs = batch()
    raw_inputs = {name: inputs[name] for name in model.backbone.input}
    raw = model.backbone(raw_inputs)
    outputs = numpy_outputs(model, inputs)
    if isinstance(raw, dict):
        np.testing.assert_array_equal(outputs["sequence_output"], raw["sequence_output"])
        np.testing.assert_array_equal(outputs["pooled_output"], raw["pooled_output"])
    else:
        raw = keras.ops.convert_to_numpy(raw)
        np.testing.assert_array_equal(outputs["sequence_output"], raw)
        # No pooler: the first token's vector, unchanged.
        np.testing.assert_array_equal(outputs["pooled_output"], raw[:, 0, :])


@pytest.mark.parametrize("kind", sorted(MASKING))
def test_padding_does_not_change_real_positions(models, kind):
    model = models[kind]
    padded = batch(length=8, lengths=(5,), seed=1)
    unpadded = {name: value[:, :5] for name, value in padded.items()}
    with_padding = numpy_outputs(model, padded)
    without = numpy_outputs(model, unpadded)
    np.testing.assert_allclose(
        with_padding["sequence_output"][:, :5], without["sequence_output"], atol=1e-5)
    np.testing.assert_allclose(
        with_padding["pooled_output"], without["pooled_output"], atol=1e-5)


def test_fnet_says_it_does_not_mask_padding(models):
    assert not models["f_net"].uses_padding_mask
    assert all(models[kind].uses_padding_mask for kind in MASKING)


@pytest.mark.parametrize("kind", sorted(TINY))
def test_segment_ids_are_passed_through(models, kind):
    model = models[kind]
    inputs = batch()
    other = dict(inputs, segment_ids=1 - inputs["segment_ids"])
    first = numpy_outputs(model, inputs)["sequence_output"]
    second = numpy_outputs(model, other)["sequence_output"]
    if kind in WITH_SEGMENTS:
        assert np.abs(first - second).max() > 1e-3
    else:  # RoBERTa, DistilBERT, ... have no segment embeddings.
        np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("kind", sorted(TINY))
def test_keras_save_and_load_round_trip(models, kind, tmp_path):
    model = models[kind]
    inputs = batch()
    path = tmp_path / f"{kind}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, HubBackbone)
    assert type(loaded.backbone) is type(model.backbone)
    expected = numpy_outputs(model, inputs)
    actual = numpy_outputs(loaded, inputs)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name])


def test_config_round_trip_keeps_the_architecture(models):
    model = models["electra"]
    clone = HubBackbone.from_config(model.get_config())
    assert clone.backbone.get_config() == model.backbone.get_config()
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]


def test_trains_inside_a_task_model(models):
    """A classifier head on pooled_output trains the wrapped backbone's weights."""
    backbone = hub_backbone_from_config("roberta", **TINY["roberta"])
    inputs = {name: keras.Input((None,), dtype="int32", name=name)
              for name in ("token_ids", "segment_ids", "padding_mask")}
    logits = keras.layers.Dense(2)(backbone(inputs)["pooled_output"])
    classifier = keras.Model(inputs, logits)
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,  # tracing/XLA compiling is too slow for a unit test on CPU
    )
    before = keras.ops.convert_to_numpy(backbone.token_embedding.embeddings).copy()
    history = classifier.fit(batch(), np.array([0, 1]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    after = keras.ops.convert_to_numpy(backbone.token_embedding.embeddings)
    assert np.abs(after - before).max() > 0


# --- construction errors ------------------------------------------------------


def test_class_names_and_electra_vocabulary_size():
    model = hub_backbone_from_config("BertBackbone", **TINY["bert"])
    assert isinstance(model.backbone, keras_hub.models.BertBackbone)
    # ElectraBackbone calls it vocab_size; both spellings work.
    electra = hub_backbone_from_config("ElectraBackbone", **dict(
        TINY["electra"], vocab_size=TINY["electra"]["vocabulary_size"]))
    assert electra.vocabulary_size == VOCABULARY


def test_unknown_kind_lists_the_choices():
    with pytest.raises(ValueError, match="unknown keras-hub backbone 'bort'.*bert, roberta"):
        hub_backbone_from_config("bort", **TINY["bert"])
    with pytest.raises(ValueError, match="unknown keras-hub backbone"):
        hub_backbone_from_config("BertTokenizer")


@pytest.mark.parametrize("class_name, kind", [
    ("GPT2Backbone", "decoder-only"),
    ("LlamaBackbone", "decoder-only"),
    ("BartBackbone", "seq2seq"),
    ("T5Backbone", "seq2seq"),
])
def test_generative_backbones_are_refused_before_building(class_name, kind):
    # No config at all: the class alone is refused, nothing is built.
    with pytest.raises(ValueError, match=f"{class_name} is .*{kind}.*only encoder backbones"):
        hub_backbone_from_config(class_name)


def test_wrapping_a_decoder_instance_is_refused():
    gpt2 = keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCABULARY, num_layers=1, num_heads=2, hidden_dim=HIDDEN,
        intermediate_dim=64, max_sequence_length=MAX_LENGTH)
    with pytest.raises(ValueError, match="GPT2Backbone is a decoder-only.*only encoder"):
        HubBackbone(gpt2)


def test_non_text_or_non_hub_models_are_refused():
    with pytest.raises(TypeError, match="keras_hub.models.Backbone"):
        HubBackbone(keras.Sequential([keras.layers.Dense(2)]))
    images = keras.Input((4, 4, 3), name="images")
    vision = keras_hub.models.Backbone(inputs={"images": images},
                                       outputs=keras.layers.Flatten()(images))
    with pytest.raises(ValueError, match="only text encoder backbones"):
        HubBackbone(vision)


# --- local presets -------------------------------------------------------------

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "quick", "brown", "fox",
         "jump", "##s", "over", "lazy", "dog", "."]


@pytest.fixture(scope="module")
def bert_preset(models, tmp_path_factory):
    """A keras-hub preset folder: the tiny BERT's weights plus a BertTokenizer."""
    folder = tmp_path_factory.mktemp("bert_preset")
    models["bert"].backbone.save_to_preset(str(folder))
    keras_hub.models.BertTokenizer(vocabulary=WORDS).save_to_preset(str(folder))
    return folder


def test_load_hub_preset_gives_the_same_outputs(models, bert_preset):
    loaded = load_hub_preset(bert_preset)
    assert isinstance(loaded, HubBackbone)
    assert isinstance(loaded.backbone, keras_hub.models.BertBackbone)
    inputs = batch()
    expected = numpy_outputs(models["bert"], inputs)
    actual = numpy_outputs(load_hub_preset(str(bert_preset)), inputs)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name])


def test_load_hub_tokenizer(bert_preset, models, tmp_path):
    tokenizer = load_hub_tokenizer(bert_preset)
    assert isinstance(tokenizer, keras_hub.models.BertTokenizer)
    ids = keras.ops.convert_to_numpy(tokenizer("the quick fox jumps")).tolist()
    assert ids == [5, 6, 8, 9, 10]
    # A preset without a tokenizer.
    models["roberta"].backbone.save_to_preset(str(tmp_path))
    assert load_hub_tokenizer(tmp_path) is None
    assert isinstance(load_hub_preset(tmp_path).backbone, keras_hub.models.RobertaBackbone)


def test_presets_are_never_downloaded(monkeypatch, tmp_path):
    from keras_hub.src.utils import preset_utils

    def no_download(*args, **kwargs):
        raise AssertionError("keras-hub was asked to fetch a preset")

    monkeypatch.setattr(preset_utils, "get_file", no_download)
    monkeypatch.chdir(tmp_path)
    for name in ("bert_base_en", "roberta_base_en"):
        with pytest.raises(FileNotFoundError, match=f"'{name}' does not exist.*never downloads"):
            load_hub_preset(name)
        with pytest.raises(FileNotFoundError, match="never downloads"):
            load_hub_tokenizer(name)
    for handle in ("kaggle://keras/bert/keras/bert_base_en", "hf://google/bert"):
        with pytest.raises(FileNotFoundError, match="remote handle.*never downloads"):
            load_hub_preset(handle)
    (tmp_path / "weights.h5").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_hub_preset(tmp_path / "weights.h5")
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        load_hub_preset(tmp_path)
    with pytest.raises(TypeError, match="local keras-hub preset folder"):
        load_hub_preset(None)


def test_local_folder_named_like_a_builtin_preset_is_read_locally(models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    models["distil_bert"].backbone.save_to_preset("bert_base_en")
    loaded = load_hub_preset("bert_base_en")
    assert isinstance(loaded.backbone, keras_hub.models.DistilBertBackbone)


def test_decoder_preset_is_refused(tmp_path):
    gpt2 = keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCABULARY, num_layers=1, num_heads=2, hidden_dim=HIDDEN,
        intermediate_dim=64, max_sequence_length=MAX_LENGTH)
    gpt2.save_to_preset(str(tmp_path))
    (tmp_path / "model.weights.h5").unlink()  # refused before the weights are read
    with pytest.raises(ValueError, match="GPT2Backbone is a decoder-only.*only encoder"):
        load_hub_preset(tmp_path)


def test_continue_pretraining_a_hub_preset_with_tfptlm_objectives(bert_preset, tmp_path):
    from tfptlm.config import load_config
    from tfptlm.models.loading import load_keras_model
    from tfptlm.pretraining import run_pretraining

    sentence = "the quick brown fox jumps over the lazy dog ."
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("\n".join([sentence] * 3) for _ in range(8)) + "\n")
    config = load_config(None, [
        "objective=mlm_sop", f"model.hub_preset={bert_preset}", f"data.train_files={corpus}",
        "data.max_sequence_length=16", "data.max_predictions=3", "training.batch_size=4",
        "training.steps=2", "training.eval_batches=1", "training.checkpoint_every=2",
    ])
    metrics = run_pretraining(config, tmp_path / "run", verbose=0)
    assert metrics["steps"] == 2 and 0.0 <= metrics["sop_accuracy"] <= 1.0
    assert (tmp_path / "run" / "tokenizer" / "vocab.txt").read_text().split() == WORDS
    before = load_hub_preset(bert_preset).backbone.get_layer("token_embedding").get_weights()[0]
    trained = load_keras_model(tmp_path / "run" / "backbone.keras")
    assert isinstance(trained, HubBackbone)
    after = trained.backbone.get_layer("token_embedding").get_weights()[0]
    assert before.shape == after.shape and not np.allclose(before, after)
