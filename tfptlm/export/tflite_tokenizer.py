"""A TFLite-convertible twin of `WordPieceTokenizer`, built from the same vocabulary and options.

TFLite has no kernels for the regex and ICU ops that `WordPieceTokenizer`
normalizes and splits with, but tensorflow-text ships TFLite kernels for
`FastBertTokenizer`: a `FastBertNormalizer` (a codepoint -> string table) followed by
`FastWordpieceTokenizer` with BERT pre-tokenization built in (split on Unicode
White_Space, keep every punctuation mark and CJK ideograph as its own word).
Its stock tables (``lower_case_nfd_strip_accents=True``) apply NFKC case folding
("ﬁ" -> "fi", "，" -> ",", "ß" -> "ss") and turn control characters into spaces, which
BERT's and tfptlm's rules do not. So this module builds the normalizer table
itself: every codepoint is mapped to what tfptlm's own `normalize` makes of it
(tabs/newlines -> space, control/format/private-use characters and U+FFFD
deleted, optional lowercasing, NFD + accent stripping or NFC), and the table
is written in the normalizer's flatbuffer format (a darts-clone trie keyed by
the UTF-8 bytes of each changed codepoint).

Measured on every codepoint (``"a" + chr(cp) + "b"``), on SST-2 and
ChnSentiCorp dev texts and on awkward strings, the result tokenizes exactly
like `WordPieceTokenizer` (all four lowercase/strip_accents settings) except:

* two rules that look at neighbouring characters, which a per-codepoint
  table cannot: with lowercasing, a capital sigma ending a word becomes final
  "ς" (ICU's context rule) in tfptlm but "σ" here; with
  ``strip_accents=False``, NFC composes a letter and a following combining
  mark ("e" + U+0301 -> "é") in tfptlm but not here (text that is already
  NFC, nearly all text, is unaffected);
* characters in the supplementary private-use planes (U+F0000-U+10FFFF)
  are kept instead of deleted (they would need a quarter of a million table
  entries);
* word-length limit: FastWordpiece counts UTF-8 bytes, tfptlm characters, so
  a word of more than ``max_chars_per_word`` bytes but not characters (only
  possible outside ASCII) becomes ``[UNK]`` here;
* 13 punctuation marks new in Unicode 16 (e.g. U+1B4E, U+16D6D) split words
  in tfptlm (TensorFlow's RE2 knows them) but not here (tensorflow-text's
  ICU tables predate them).

Invalid UTF-8 bytes become a space here (tfptlm's exports and
`tfptlm.export.tflite.TFLiteClassifier` first replace them with U+FFFD,
which the normalizer deletes).

Example:

>>> tokenizer = WordPieceTokenizer.load("runs/sst2/tokenizer")        # doctest: +SKIP
>>> lite = tflite_tokenizer(tokenizer)                                  # doctest: +SKIP
>>> lite.tokenize(tf.constant(["Crème brûlée!"])).to_list()             # doctest: +SKIP
[[...same ids as tokenizer.tokenize...]]
"""

from __future__ import annotations

import collections
import functools

import flatbuffers
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from tfptlm.tokenizers.normalization import normalize

#: Encoding of a table entry (see tensorflow-text's fast_bert_normalizer.h):
#: bit 30 = "the codepoint changes", bits 6-29 = offset in the string pool,
#: bits 0-5 = UTF-8 length of the replacement.
_CHANGED = 0x40000000
_LENGTH_BITS = 6
_MAX_REPLACEMENT_BYTES = (1 << _LENGTH_BITS) - 1
_MAX_POOL_OFFSET = (1 << (30 - _LENGTH_BITS)) - 1

#: Codepoints whose replacement the table holds: everything except surrogates
#: (not encodable in UTF-8) and the two supplementary private-use planes.
_LAST_CODEPOINT = 0xEFFFF

#: How many partly filled blocks the trie builder tries before opening a new one.
_BLOCKS_TRIED = 16
_MISSES_ALLOWED = 64


@functools.lru_cache(maxsize=4)
def codepoint_replacements(lowercase: bool, strip_accents: bool) -> dict[int, bytes]:
    """``{codepoint: UTF-8 replacement}`` for every codepoint tfptlm's `normalize` changes.

    Computed by running `normalize` on each codepoint on its own (about
    a million one-character strings, a few seconds).
    """
    codepoints = np.concatenate(
        [np.arange(1, 0xD800), np.arange(0xE000, _LAST_CODEPOINT + 1)]
    ).astype(np.int32)
    characters = tf.strings.unicode_encode(tf.reshape(codepoints, [-1, 1]), "UTF-8")
    normalized = normalize(characters, lowercase, strip_accents).numpy()
    originals = characters.numpy()
    replacements = {
        int(cp): out for cp, out, original in zip(codepoints, normalized, originals) if out != original
    }
    replacements[0] = normalize(tf.constant(["\x00"]), lowercase, strip_accents).numpy()[0]
    return replacements


def build_darts_trie(keys: list[bytes], values: list[int]) -> np.ndarray:
    """A darts-clone double-array trie (uint32 units) mapping each byte key to its value.

    Layout, as tensorflow-text's ``DartsCloneTrieWrapper`` reads it: unit
    bits 0-7 = the label of the edge into the node, bit 8 = "has a value",
    bits 10-30 = XOR offset to the children (child = node ^ offset ^ label;
    the value sits at node ^ offset with the top bit set). Every node gets
    its own base (node ^ offset), so a child slot belongs to one parent only.
    Keys must be non-empty and prefix-free (UTF-8 codepoints are).
    """
    if not keys:
        keys, values = [b"\xff"], [0]  # never matched by valid UTF-8
    root: dict = {}
    for key, value in zip(keys, values):
        node = root
        for byte in key[:-1]:
            node = node.setdefault(byte, {})
        node[key[-1]] = int(value)  # a leaf holds its value

    capacity = 256
    units = np.zeros(capacity, np.uint32)
    used_slots = np.zeros(capacity, bool)
    used_slots[0] = True  # the root
    used_bases = np.zeros(capacity, bool)
    within_block = np.arange(256)
    queue = collections.deque([(root, 0)])
    open_blocks = [0]  # blocks with free slots, oldest first
    misses = collections.Counter()  # a block that keeps missing is given up on
    while queue:
        node, node_id = queue.popleft()
        has_value = isinstance(node, int)
        labels = [0] if has_value else sorted(node)
        # base ^ label stays in base's 256-slot block: look for a base in the
        # first few open blocks, else open a new block at the end.
        slots_in_block = within_block[:, None] ^ np.array(labels)[None, :]
        base = None
        for block in open_blocks[:_BLOCKS_TRIED]:
            free = ~used_slots[block : block + 256]
            fits = free[slots_in_block].all(axis=1) & ~used_bases[block : block + 256]
            if fits.any():
                base = block + int(np.argmax(fits))
                break
            misses[block] += 1
        open_blocks = [block for block in open_blocks if misses[block] < _MISSES_ALLOWED]
        if base is None:
            block = capacity
            units = np.concatenate([units, np.zeros(256, np.uint32)])
            used_slots = np.concatenate([used_slots, np.zeros(256, bool)])
            used_bases = np.concatenate([used_bases, np.zeros(256, bool)])
            capacity += 256
            open_blocks.append(block)
            base = block + int(np.argmax(~used_slots[block:][slots_in_block].any(axis=1)))
        used_bases[base] = True
        offset = node_id ^ base
        if offset >= 1 << 21:
            raise ValueError("normalizer table too large for the darts-clone offset encoding")
        units[node_id] |= np.uint32((offset << 10) | (0x100 if has_value else 0))
        for label in labels:
            used_slots[base ^ label] = True
        if used_slots[block : block + 256].all() and block in open_blocks:
            open_blocks.remove(block)
        if has_value:
            units[base] = np.uint32(0x80000000 | node)
            continue
        for label in labels:
            units[base ^ label] = np.uint32(label)
            queue.append((node[label], base ^ label))
    last = int(np.max(np.nonzero(used_slots)[0])) + 1
    return units[:last].copy()


def _darts_lookup(units: np.ndarray, key: bytes) -> int:
    """Reads a value back like ``DartsCloneTrieWrapper`` does (0 if absent); for tests."""
    def offset(unit):
        return (unit >> 10) << ((unit & 0x200) >> 6)

    node_id = 0
    unit = int(units[0])
    for byte in key:
        node_id ^= offset(unit) ^ byte
        if node_id >= len(units):
            return 0
        unit = int(units[node_id])
        if unit & 0x800000FF != byte:
            return 0
    if not unit & 0x100:
        return 0
    value_id = node_id ^ offset(unit)
    return int(units[value_id]) & 0x7FFFFFFF if value_id < len(units) else 0


def normalizer_model(lowercase: bool, strip_accents: bool) -> bytes:
    """A `FastBertNormalizer` model flatbuffer that normalizes like tfptlm's `normalize`."""
    pool = bytearray()
    pool_offsets: dict[bytes, int] = {}
    data: dict[int, int] = {}
    for codepoint, replacement in sorted(codepoint_replacements(lowercase, strip_accents).items()):
        entry = _CHANGED
        if replacement:
            if len(replacement) > _MAX_REPLACEMENT_BYTES:
                raise ValueError(f"U+{codepoint:04X} normalizes to more than 63 bytes")
            if replacement not in pool_offsets:
                pool_offsets[replacement] = len(pool)
                pool += replacement
            if pool_offsets[replacement] > _MAX_POOL_OFFSET:
                raise ValueError("normalizer string pool too large")
            entry |= len(replacement) | (pool_offsets[replacement] << _LENGTH_BITS)
        data[codepoint] = entry
    zero = data.pop(0, 0)
    keys = [chr(cp).encode("utf-8") for cp in data]
    trie = build_darts_trie(keys, list(data.values()))

    builder = flatbuffers.Builder(len(trie) * 4 + len(pool) + 1024)
    pool_vector = builder.CreateNumpyVector(np.frombuffer(bytes(pool) or b"\x00", np.uint8))
    trie_vector = builder.CreateNumpyVector(trie.astype("<u4"))
    # table FastBertNormalizerModel { lower_case_nfd_strip_accents: bool;
    #   trie_array: [uint32]; data_for_codepoint_zero: int32;
    #   normalized_string_pool: [ubyte]; }
    builder.StartObject(4)
    builder.PrependUOffsetTRelativeSlot(3, pool_vector, 0)
    builder.PrependInt32Slot(2, zero, 0)
    builder.PrependUOffsetTRelativeSlot(1, trie_vector, 0)
    builder.PrependBoolSlot(0, False, False)
    builder.Finish(builder.EndObject())
    return bytes(builder.Output())


class UnsupportedTokenizerError(ValueError):
    """The tokenizer has settings the TFLite tokenizer cannot reproduce."""


def tflite_tokenizer(tokenizer) -> tf_text.FastBertTokenizer:
    """A `FastBertTokenizer` (TFLite-convertible) that tokenizes like ``tokenizer``.

    Args:
        tokenizer: a tfptlm `WordPieceTokenizer`.

    Returns:
        A `tensorflow_text.FastBertTokenizer` returning int32 ids; its
        ``tokenize`` takes a string tensor `[N]` and returns `[N, (tokens)]`.

    Raises:
        UnsupportedTokenizerError: for settings that cannot be reproduced
            (an empty suffix indicator).
    """
    if not tokenizer.suffix_indicator:
        raise UnsupportedTokenizerError(
            "the TFLite tokenizer needs a non-empty suffix_indicator (FastWordpiece requires one)"
        )
    return tf_text.FastBertTokenizer(
        vocab=tokenizer.vocabulary,
        suffix_indicator=tokenizer.suffix_indicator,
        max_bytes_per_word=tokenizer.max_chars_per_word,
        token_out_type=tf.int32,
        unknown_token=tokenizer.unknown_token,
        no_pretokenization=False,
        support_detokenization=False,
        fast_bert_normalizer_model_buffer=normalizer_model(tokenizer.lowercase, tokenizer.strip_accents),
    )
