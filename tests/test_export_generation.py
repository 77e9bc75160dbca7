"""SavedModel export of GPT, T5 and BART: prompt strings in, the TextGenerator's text out."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from test_export import run_with_tensorflow_only
from tfptlm.cli import main
from tfptlm.config import FinetuneDataConfig, PretrainConfig, dump_config
from tfptlm.export import export_generator, export_saved_model
from tfptlm.export.generation import is_generative
from tfptlm.finetuning.run import RECIPES, save_finetuned
from tfptlm.generation.text import TextGenerator, load_generator
from tfptlm.models.bart import BartBackbone
from tfptlm.models.gpt import GPTBackbone
from tfptlm.models.t5 import T5Backbone
from tfptlm.tasks.causal_lm import CausalLM
from tfptlm.tasks.seq2seq_lm import Seq2SeqLM, decoder_start_id
from tfptlm.tokenizers import WordPieceTokenizer, load_tokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "the a film was great dull cast sang where does alice live in paris rome . , ? ! "
    "北 京 中 国 bob visited today é"
).split()
CONTEXT = 32  # GPT and BART positions
MAX_NEW_TOKENS = 6
PROMPTS = ["the film was", "", "北京 bob visited", "emoji 🎬🍿 é", "where does alice live ? " * 40]
INVALID_UTF8 = b"the film \xff\xfe was \xc3 dull"


def make_generative_dir(directory, family: str, tokenizer, seed: int = 1):
    """A tiny fine-tuned GPT (causal_lm) or T5/BART (seq2seq) directory."""
    keras.utils.set_random_seed(seed)
    size = dict(vocabulary_size=tokenizer.vocabulary_size, num_layers=2, hidden_dim=32, num_heads=2,
                intermediate_dim=64)
    if family == "gpt":
        model, recipe = CausalLM(GPTBackbone(max_sequence_length=CONTEXT, **size)), RECIPES["causal_lm"]
    else:
        backbone = T5Backbone(**size) if family == "t5" else BartBackbone(max_sequence_length=CONTEXT, **size)
        model, recipe = Seq2SeqLM(backbone, decoder_start_id=decoder_start_id(backbone, tokenizer)), RECIPES["seq2seq"]
    if family == "bart":
        # BART starts decoding from </s>; with its tied random embeddings it would end at once.
        table = backbone.token_embedding.embeddings
        table.assign(tf.tensor_scatter_nd_update(table, [[tokenizer.eos_id]], tf.zeros([1, 32])))
    data = FinetuneDataConfig(sequence_length=16, target_length=8)
    save_finetuned(model, tokenizer, recipe, data, directory)
    return directory


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """GPT through `export_saved_model` (checked), T5 through `export_generator` (unchecked)."""
    base = tmp_path_factory.mktemp("generation_export")
    gpt = make_generative_dir(base / "gpt", "gpt", WordPieceTokenizer(VOCAB))
    t5 = make_generative_dir(base / "t5", "t5", WordPieceTokenizer(VOCAB))
    return {
        "gpt": (gpt, export_saved_model(gpt, base / "gpt_export", max_new_tokens=MAX_NEW_TOKENS)),
        "t5": (t5, export_generator(t5, base / "t5_export", max_new_tokens=MAX_NEW_TOKENS, check=False)),
    }


@pytest.fixture(scope="module")
def generators(exports):
    """The eager (XLA) `TextGenerator` of each exported model directory."""
    return {name: load_generator(model_dir) for name, (model_dir, _) in exports.items()}


@pytest.fixture(scope="module")
def tensorflow_only_outputs(exports):
    """What each export writes in one fresh process that imports only TF and tensorflow_text."""
    return run_with_tensorflow_only(
        {name: (path, {"prompt": PROMPTS + [INVALID_UTF8]}) for name, (_, path) in exports.items()}
    )


@pytest.mark.filterwarnings("ignore:prompt 5 has")  # the long prompt is cut to fit, by design
@pytest.mark.parametrize("name", ["gpt", "t5"])
def test_export_writes_what_the_text_generator_writes(exports, generators, tensorflow_only_outputs, name):
    _, export_path = exports[name]
    assert export_path.name == "1"
    assert (export_path / "assets.extra" / "task.json").is_file()
    settings = json.loads((export_path / "assets.extra" / "generation.json").read_text())
    assert settings == {"max_new_tokens": MAX_NEW_TOKENS, "strategy": "greedy"}
    out = tensorflow_only_outputs[name]
    expected = generators[name].generate(PROMPTS, max_new_tokens=MAX_NEW_TOKENS)
    assert out["text"][: len(PROMPTS)] == expected
    assert any(expected), "the tiny model should write something"
    # token_ids/lengths are the new tokens of the text.
    new = tf.RaggedTensor.from_tensor(tf.constant(out["token_ids"], tf.int32), lengths=out["lengths"])
    assert [t.decode() for t in generators[name].tokenizer.detokenize(new).numpy()] == out["text"]
    assert np.array(out["token_ids"]).shape == (len(PROMPTS) + 1, MAX_NEW_TOKENS)


@pytest.mark.filterwarnings("ignore:prompt 5 has")
@pytest.mark.parametrize("name", ["gpt", "t5"])
def test_cached_and_recomputed_decoding_agree_after_the_refactor(generators, name):
    generator = TextGenerator(generators[name].model, generators[name].preprocessor, jit_compile=False)
    cached = generator.generate(PROMPTS, max_new_tokens=MAX_NEW_TOKENS)
    assert cached == generator.generate(PROMPTS, max_new_tokens=MAX_NEW_TOKENS, use_cache=False)


def test_too_many_new_tokens_for_the_context_fails_before_writing(exports, tmp_path):
    model_dir, _ = exports["gpt"]
    with pytest.raises(ValueError, match="leaves no room"):
        export_generator(model_dir, tmp_path, max_new_tokens=CONTEXT)
    assert not (tmp_path / "1").exists()
    with pytest.raises(ValueError, match="at least 1"):
        export_generator(model_dir, tmp_path, max_new_tokens=0)


def test_generative_directories_are_recognized(exports, tmp_path):
    assert is_generative(exports["gpt"][0]) and is_generative(exports["t5"][0])
    for objective, family, expected in [("clm", "gpt", True), ("text_infilling", "bart", True),
                                        ("mlm_nsp", "bert", False)]:
        run = tmp_path / objective
        run.mkdir()
        config = PretrainConfig(objective=objective)
        config.model.family = family
        dump_config(config, run / "config.yaml")
        assert is_generative(run) is expected


def test_cli_passes_max_new_tokens_to_the_export(monkeypatch, tmp_path, capsys):
    import tfptlm.export

    calls = []
    monkeypatch.setattr(tfptlm.export, "export_saved_model", lambda *a, **kw: calls.append(kw) or tmp_path)
    assert main(["export", "--model", "runs/gpt", "--output", str(tmp_path), "--max-new-tokens", "12"]) == 0
    assert calls == [{"version": None, "max_new_tokens": 12}]
    assert "Exported runs/gpt" in capsys.readouterr().out


def test_bart_with_a_sentencepiece_tokenizer(tmp_path):
    from tfptlm.tokenizers import train_sentencepiece

    corpus = tmp_path / "corpus.txt"
    lines = ["the film was great", "我们 学习 自然 语言", "where does alice live", "今天 天气 很 好",
             "bob visited paris today"]
    corpus.write_text("\n".join(lines * 20) + "\n", encoding="utf-8")
    tokenizer = train_sentencepiece(str(corpus), 120, num_sentinels=0)
    model_dir = make_generative_dir(tmp_path / "bart", "bart", tokenizer)
    # check=True: the reloaded export must write what TextGenerator writes on the probe prompts.
    export_path = export_generator(model_dir, tmp_path / "exports", max_new_tokens=4)
    loaded = tf.saved_model.load(str(export_path))
    prompts = tf.constant(["我们 学习", "the film", ""])
    assert any(loaded.signatures["serving_default"](prompt=prompts)["text"].numpy())
    tokenized = loaded.signatures["tokenize"](prompt=prompts)
    # A fresh tokenizer: keras.utils.set_random_seed (in make_generative_dir) clears TF's
    # kernel cache, which holds the SentencePiece resource of `tokenizer`.
    tokenizer = load_tokenizer(model_dir / "tokenizer")
    expected = tokenizer.tokenize(prompts)  # the source then </s>
    assert tokenized["lengths"].numpy().tolist() == (expected.row_lengths().numpy() + 1).tolist()
    ids = tokenized["token_ids"].numpy()
    assert ids[2, 0] == tokenizer.eos_id and (ids[2, 1:] == tokenizer.pad_id).all()
