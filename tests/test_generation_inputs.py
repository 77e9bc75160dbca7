"""Seq2Seq and causal-LM preprocessors: shifts, eos, truncation and loss weights on hand-made inputs."""

import numpy as np
import tensorflow as tf

from tfptlm.data.generation_inputs import CausalLMPreprocessor, Seq2SeqPreprocessor


class WordIdTokenizer:
    """Each whitespace word 'wN' is token N; pad 0, eos 1."""

    pad_id, eos_id = 0, 1

    def tokenize(self, texts):
        words = tf.strings.split(texts)
        return tf.strings.to_number(tf.strings.substr(words, 1, 10), tf.int32)


def test_seq2seq_inputs_shift_the_target_after_the_start_token():
    preprocessor = Seq2SeqPreprocessor(WordIdTokenizer(), source_length=4, target_length=3, decoder_start_id=0)
    features, labels, weights = preprocessor(["w5 w6", "w7 w8 w9 w10 w11"], ["w20", "w21 w22 w23"])
    # Sources: cut to 3 tokens + eos; padded to a multiple of 8.
    np.testing.assert_array_equal(features["encoder_token_ids"][:, :5], [[5, 6, 1, 0, 0], [7, 8, 9, 1, 0]])
    np.testing.assert_array_equal(features["encoder_padding_mask"][:, :5], [[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    assert features["encoder_token_ids"].shape[1] == 8
    np.testing.assert_array_equal(labels[:, :3], [[20, 1, 0], [21, 22, 1]])
    np.testing.assert_array_equal(features["decoder_token_ids"][:, :3], [[0, 20, 0], [0, 21, 22]])
    np.testing.assert_array_equal(features["decoder_padding_mask"][:, :3], [[1, 1, 0], [1, 1, 1]])
    np.testing.assert_array_equal(weights[:, :3], [[1, 1, 0], [1, 1, 1]])
    assert float(tf.reduce_sum(weights)) == 5


def test_seq2seq_sources_alone_give_encoder_inputs():
    preprocessor = Seq2SeqPreprocessor(WordIdTokenizer(), source_length=8, target_length=8)
    features = preprocessor(["w3"])
    assert sorted(features) == ["encoder_padding_mask", "encoder_token_ids"]
    np.testing.assert_array_equal(features["encoder_token_ids"][0, :2], [3, 1])


def test_causal_lm_inputs_weight_only_the_response():
    preprocessor = CausalLMPreprocessor(WordIdTokenizer(), sequence_length=8)
    features, labels, weights = preprocessor(["w5 w6"], ["w7 w8"])
    # sequence: eos 5 6 7 8 eos -> inputs drop the last token, labels the first
    np.testing.assert_array_equal(features["token_ids"][0, :5], [1, 5, 6, 7, 8])
    np.testing.assert_array_equal(labels[0, :5], [5, 6, 7, 8, 1])
    np.testing.assert_array_equal(weights[0, :5], [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(features["padding_mask"][0], [1, 1, 1, 1, 1, 0, 0, 0])


def test_causal_lm_long_prompts_lose_their_oldest_tokens():
    preprocessor = CausalLMPreprocessor(WordIdTokenizer(), sequence_length=6)
    prompt = " ".join(f"w{i}" for i in range(10, 20))
    features, labels, weights = preprocessor([prompt], ["w7 w8 w9 w30 w31"])
    # response cut to 6 // 2 = 3 tokens + eos; 7 - 1 - 4 = 2 prompt tokens kept (the last two)
    np.testing.assert_array_equal(features["token_ids"][0, :6], [1, 18, 19, 7, 8, 9])
    np.testing.assert_array_equal(labels[0, :6], [18, 19, 7, 8, 9, 1])
    np.testing.assert_array_equal(weights[0, :6], [0, 0, 1, 1, 1, 1])
