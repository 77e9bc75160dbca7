"""Tests for word-level tokenization with offsets, packing and the task preprocessors."""

import pytest
import tensorflow as tf

from tfptlm.data.classification_inputs import TextClassificationPreprocessor
from tfptlm.data.packing import pack_segments
from tfptlm.data.question_answering_inputs import QuestionAnsweringPreprocessor
from tfptlm.data.token_classification_inputs import TokenClassificationPreprocessor
from tfptlm.tokenizers import WordPieceTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
    "the", "cat", "sat", "on", "mat", "eu", "re", "##jects", "german", "u", "s", ".",  # 5-16
    "where", "?", "is", "paris", "cafe", "世", "界", ",", "hello", "a", "b",  # 17-28
]
ID = {token: i for i, token in enumerate(VOCAB)}
CLS, SEP, PAD = ID["[CLS]"], ID["[SEP]"], ID["[PAD]"]


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer(VOCAB)


TEXTS = [
    "The cat sat on the mat.",
    "  Héllo,世界\t cafe\u200b!  ",
    "EU rejects German U.S. mat",
    "",
    "\u00e9\u0301 Café\x00 ,,",
]


def test_tokenize_with_offsets_gives_the_same_ids_as_tokenize(tokenizer):
    ids, _, _ = tokenizer.tokenize_with_offsets(TEXTS)
    assert ids.to_list() == tokenizer.tokenize(TEXTS).to_list()


def test_offsets_are_the_word_spans_of_the_original_text(tokenizer):
    text = "  Héllo,世界 cafe rejects"
    ids, starts, ends = tokenizer.tokenize_with_offsets([text])
    encoded = text.encode("utf-8")
    spans = [encoded[s:e].decode() for s, e in zip(starts[0].numpy(), ends[0].numpy())]
    # "Héllo" normalizes to "hello"; "rejects" is two pieces sharing one word span.
    assert [VOCAB[i] for i in ids[0].numpy()] == ["hello", ",", "世", "界", "cafe", "re", "##jects"]
    assert spans == ["Héllo", ",", "世", "界", "cafe", "rejects", "rejects"]


def test_tokenize_words_keeps_word_boundaries_and_fills_empty_words(tokenizer):
    pieces = tokenizer.tokenize_words([["EU", "rejects", "U.S."], ["\u200b", "mat"]])
    assert pieces.to_list() == [
        [[ID["eu"]], [ID["re"], ID["##jects"]], [ID["u"], ID["."], ID["s"], ID["."]]],
        [[ID["[UNK]"]], [ID["mat"]]],
    ]


def test_too_long_words_become_unknown_counting_characters():
    tokenizer = WordPieceTokenizer(VOCAB + ["é", "##é"], max_chars_per_word=3, strip_accents=False)
    # 3 characters but 6 bytes: still split into pieces; 4 characters: unknown.
    e, suffix_e = len(VOCAB), len(VOCAB) + 1
    assert tokenizer.tokenize(["ééé éééé"]).to_list() == [[e, suffix_e, suffix_e, ID["[UNK]"]]]


def test_pack_segments_trims_round_robin_and_pads():
    a = tf.ragged.constant([[10, 11, 12, 13, 14], [20]])
    b = tf.ragged.constant([[30, 31], [40, 41, 42, 43, 44, 45]])
    packed = pack_segments([a, b], sequence_length=8, cls_id=CLS, sep_id=SEP, pad_id=PAD)
    assert packed["token_ids"].numpy().tolist() == [
        [CLS, 10, 11, 12, SEP, 30, 31, SEP],
        [CLS, 20, SEP, 40, 41, 42, 43, SEP],
    ]
    assert packed["segment_ids"].numpy().tolist() == [[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]]
    assert packed["padding_mask"].numpy().min() == 1


def test_pack_segments_pads_to_the_batch_rounded_to_eight():
    a = tf.ragged.constant([[5] * 3, [5] * 9])
    packed = pack_segments([a], sequence_length=64, cls_id=CLS, sep_id=SEP, pad_id=PAD, pad_to_batch=True)
    assert packed["token_ids"].shape == (2, 16)  # longest row 11 -> 16
    assert packed["padding_mask"].numpy().sum(axis=1).tolist() == [5, 11]
    assert packed["token_ids"].numpy()[0, 5:].tolist() == [PAD] * 11


def test_classification_preprocessor_packs_pairs(tokenizer):
    inputs = TextClassificationPreprocessor(tokenizer, 16)(["the cat"], ["on the mat"])
    assert inputs["token_ids"].numpy()[0, :8].tolist() == [
        CLS, ID["the"], ID["cat"], SEP, ID["on"], ID["the"], ID["mat"], SEP
    ]
    assert inputs["segment_ids"].numpy()[0, :8].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_token_classification_labels_only_first_pieces(tokenizer):
    preprocessor = TokenClassificationPreprocessor(tokenizer, sequence_length=16)
    words = tf.ragged.constant([["EU", "rejects", "German"], ["U.S.", "mat"]])
    tags = tf.ragged.constant([[1, 0, 2], [3, 0]])
    features = {k: v.numpy() for k, v in preprocessor(words, tags).items()}
    # [CLS] eu re ##jects german [SEP]      / [CLS] u . s . mat [SEP]
    assert features["token_ids"][0, :6].tolist() == [CLS, ID["eu"], ID["re"], ID["##jects"], ID["german"], SEP]
    assert features["first_piece"][0, :8].tolist() == [0, 1, 1, 0, 1, 0, 0, 0]
    assert features["labels"][0, :6].tolist() == [0, 1, 0, 0, 2, 0]
    assert features["word_ids"][0, :7].tolist() == [-1, 0, 1, 1, 2, -1, -1]
    assert features["first_piece"][1, :8].tolist() == [0, 1, 0, 0, 0, 1, 0, 0]
    assert features["labels"][1, :7].tolist() == [0, 3, 3, 3, 3, 0, 0]
    assert features["words_kept"].tolist() == [3, 2]
    assert features["token_ids"].shape == (2, 8)


def test_token_classification_truncation_drops_whole_words(tokenizer):
    preprocessor = TokenClassificationPreprocessor(tokenizer, sequence_length=5)
    features = preprocessor(tf.ragged.constant([["the", "rejects", "mat"]]), pad_to_batch=False)
    # room for 3 pieces: the re ##jects; "mat" does not fit
    assert features["word_ids"].numpy().tolist() == [[-1, 0, 1, 1, -1]]
    assert features["words_kept"].numpy().tolist() == [2]


def qa_windows(tokenizer, question, context, answer, **options):
    preprocessor = QuestionAnsweringPreprocessor(tokenizer, **options)
    start = context.index(answer)
    begin = len(context[:start].encode())
    windows = preprocessor.windows(question, context, begin, begin + len(answer.encode()))
    return {k: v.numpy() for k, v in windows.items()}


def test_qa_windows_cover_the_context_and_point_at_the_answer(tokenizer):
    context = "the cat sat on the mat . where is paris ? the cat is on the mat"
    windows = qa_windows(
        tokenizer, "where is paris ?", context, "paris", sequence_length=16, doc_stride=4, max_question_length=8
    )
    # question has 4 tokens -> 9 context tokens per window; 17 context tokens -> 3 windows
    assert windows["token_ids"].shape == (3, 16)
    seen = set()
    for k in range(3):
        starts = windows["start_offsets"][k]
        seen.update(starts[starts >= 0].tolist())
        assert windows["token_ids"][k, :6].tolist() == [CLS, ID["where"], ID["is"], ID["paris"], ID["?"], SEP]
    context_starts = [i for i, c in enumerate(context) if c != " " and (i == 0 or context[i - 1] == " ")]
    assert sorted(seen) == context_starts
    encoded = context.encode()
    for k in range(3):
        if windows["has_answer"][k]:
            s, e = windows["start_positions"][k], windows["end_positions"][k]
            span = encoded[windows["start_offsets"][k][s] : windows["end_offsets"][k][e]]
            assert span == b"paris"
        else:
            assert windows["start_positions"][k] == windows["end_positions"][k] == 0
    # "paris" is context token 9; windows hold tokens 0-8, 4-12 and 8-16
    assert windows["has_answer"].tolist() == [False, True, True]


def test_qa_answer_split_across_windows_is_only_labelled_where_whole(tokenizer):
    context = "the cat sat on the mat the cat sat"
    windows = qa_windows(
        tokenizer, "where", context, "on the mat", sequence_length=8, doc_stride=2, max_question_length=2
    )
    # 5 context tokens per window, starting at tokens 0, 2, 4
    for k, has in enumerate(windows["has_answer"]):
        window_tokens = set(range(2 * k, 2 * k + 5))
        assert has == ({3, 4, 5} <= window_tokens)


def test_qa_without_answer_is_never_labelled(tokenizer):
    preprocessor = QuestionAnsweringPreprocessor(tokenizer, sequence_length=16, max_question_length=4)
    windows = preprocessor.windows("where", "the cat sat")
    assert windows["has_answer"].numpy().tolist() == [False]
    assert windows["start_positions"].numpy().tolist() == [0]


def test_qa_settings_are_checked(tokenizer):
    with pytest.raises(ValueError, match="no room"):
        QuestionAnsweringPreprocessor(tokenizer, sequence_length=16, max_question_length=13)
    with pytest.raises(ValueError, match="doc_stride"):
        QuestionAnsweringPreprocessor(tokenizer, doc_stride=0)
