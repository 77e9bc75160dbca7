"""Generation metrics (perplexity, BLEU, ROUGE) by hand, and sandboxed code execution."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from tfptlm.metrics import (
    CJKAwareTokenizer,
    CodeResult,
    bleu,
    pass_share,
    perplexity,
    rouge,
    run_code_tests,
)

approx = pytest.approx

# --------------------------------------------------------------------------
# Perplexity
# --------------------------------------------------------------------------


@pytest.mark.parametrize("vocabulary_size", [2, 100, 50257])
def test_perplexity_of_uniform_guess_is_vocabulary_size(vocabulary_size):
    assert perplexity(math.log(vocabulary_size)) == approx(vocabulary_size)


def test_perplexity_edges():
    assert perplexity(0.0) == 1.0
    assert perplexity(np.float32(math.log(8))) == approx(8, rel=1e-6)
    assert perplexity(1e4) == math.inf  # exp would overflow
    with pytest.raises(ValueError, match=">= 0"):
        perplexity(-0.5)
    with pytest.raises(ValueError):
        perplexity(float("nan"))


# --------------------------------------------------------------------------
# BLEU
# --------------------------------------------------------------------------


def test_bleu_identical_and_disjoint():
    same = bleu(["the cat sat on the mat", "a dog ran"], ["the cat sat on the mat", "a dog ran"])
    assert same["bleu"] == 1.0
    assert same["precisions"] == [1.0, 1.0, 1.0, 1.0] and same["brevity_penalty"] == 1.0
    assert "tok:13a" in same["signature"]
    assert bleu(["one two three four"], ["five six seven eight"])["bleu"] == 0.0


def test_bleu_brevity_penalty_by_hand():
    # All n-grams of the 6-token prediction match; the reference has 7 tokens:
    # BLEU = BP = exp(1 - 7/6).
    scores = bleu(["the cat sat on the mat"], ["the cat sat on the mat today"])
    assert scores["bleu"] == approx(math.exp(1 - 7 / 6))


def test_bleu_chinese_is_scored_per_character():
    # zh tokenizer: 6 vs 7 characters, all matching -> exp(1 - 7/6). Without it
    # each sentence is one token and nothing matches.
    prediction, reference = ["今天天气很好"], ["今天天气很好啊"]
    detected = bleu(prediction, reference)
    assert detected["bleu"] == approx(math.exp(1 - 7 / 6))
    assert "tok:zh" in detected["signature"]
    assert bleu(prediction, reference, language="zh")["bleu"] == detected["bleu"]
    assert bleu(prediction, reference, language="en")["bleu"] == 0.0


def test_bleu_several_references_per_example():
    predictions = ["the cat sat on the mat", "a dog ran in the park"]
    references = [["a cat is on a mat", "the cat sat on the mat"], "a dog ran in the park"]
    assert bleu(predictions, references)["bleu"] == approx(1.0)


def test_bleu_and_rouge_check_their_inputs():
    for metric in (bleu, rouge):
        with pytest.raises(ValueError, match="2 predictions but 1 references"):
            metric(["a", "b"], ["a"])
        with pytest.raises(ValueError, match="empty"):
            metric([], [])
        with pytest.raises(TypeError, match="not one string"):
            metric("a b", ["a b"])
        with pytest.raises(ValueError, match=r"references\[0\] has no reference"):
            metric(["a"], [[]])


# --------------------------------------------------------------------------
# ROUGE
# --------------------------------------------------------------------------


def test_rouge_english_by_hand():
    # unigrams: P 3/3, R 3/4 -> F 6/7; bigrams: P 2/2, R 2/3 -> F 0.8; LCS 3 -> 6/7.
    scores = rouge(["The cat sat."], ["the cat sat down"])
    assert scores["rouge1"] == approx(6 / 7)
    assert scores["rouge2"] == approx(0.8)
    assert scores["rougeL"] == approx(6 / 7)
    assert scores["language"] == "en"


def test_rouge_chinese_by_hand():
    # 我 爱 北 京 vs 我 爱 上 海: 2 of 4 characters shared -> F 0.5;
    # bigrams {我爱, 爱北, 北京} vs {我爱, 爱上, 上海}: 1 of 3 -> F 1/3;
    # longest common subsequence 我爱 -> F 0.5.
    scores = rouge(["我爱北京。"], ["我爱上海！"])
    assert scores == approx({"rouge1": 0.5, "rouge2": 1 / 3, "rougeL": 0.5, "language": "zh"})
    # rouge-score's own tokenizer keeps only [a-z0-9]: every Chinese text is empty.
    assert rouge(["我爱北京"], ["我爱上海"], language="en")["rouge1"] == 0.0


def test_rouge_means_examples_and_takes_best_reference():
    scores = rouge(["a b", "c d"], ["a b", "x y"])
    assert scores["rouge1"] == approx(0.5)
    assert rouge(["a b"], [["x y", "a b"]])["rouge1"] == approx(1.0)


def test_cjk_aware_tokenizer_keeps_ascii_words_whole():
    tokens = CJKAwareTokenizer().tokenize("我用TensorFlow 2训练模型，很快! Über_all")
    assert tokens == ["我", "用", "tensorflow", "2", "训", "练", "模", "型", "很", "快", "über", "all"]


# --------------------------------------------------------------------------
# Code execution
# --------------------------------------------------------------------------

ADD = "def add(a, b):\n    return a + b\n"


def test_correct_code_passes_all_tests():
    tests = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add('a', 'b') == 'ab'"]
    result = run_code_tests(ADD, tests)
    assert result == CodeResult(passed=3, total=3, error=None)
    assert result.all_passed


def test_wrong_code_fails_each_test_separately():
    result = run_code_tests(
        "def add(a, b):\n    return a * b\n",
        ["assert add(2, 2) == 4", "assert add(1, 2) == 3", "assert add(0, 5) == 5"],
    )
    assert (result.passed, result.total) == (1, 3)
    assert result.error == "test 2: AssertionError"
    result = run_code_tests(ADD, ["assert add(1, 2) == 3", "assert missing(1)"])
    assert result.passed == 1 and "test 2: NameError" in result.error


def test_syntax_error_and_exit_are_reported():
    result = run_code_tests("def add(a, b)\n    return a + b\n", ["assert add(1, 2) == 3"])
    assert result.passed == 0 and result.total == 1
    assert result.error.startswith("SyntaxError") and "line 1" in result.error
    assert run_code_tests("raise SystemExit(3)", ["assert True"]).error == "SystemExit: 3"


def test_setup_code_runs_before_the_tests():
    setup = "import math\nPOINTS = [(3, 4), (6, 8)]"
    tests = [
        "assert [add(x, y) for x, y in POINTS] == [7, 14]",
        "assert math.isclose(add(0.1, 0.2), 0.3)",
    ]
    assert run_code_tests(ADD, tests, setup_code=setup).passed == 2


def test_infinite_loop_times_out_and_keeps_earlier_results():
    code = "def f(n):\n    while n:\n        pass\n    return 1\n"
    result = run_code_tests(code, ["assert f(0) == 1", "assert f(1) == 1"], timeout=1.0)
    assert result == CodeResult(passed=1, total=2, error="timed out after 1 s")


def test_reading_outside_the_work_folder_is_blocked():
    code = "def secret():\n    return open('/etc/passwd').read()\n"
    result = run_code_tests(code, ["assert secret()"])
    assert result.passed == 0
    assert "PermissionError" in result.error and "/etc/passwd" in result.error
    listing = run_code_tests("import os", ["assert os.listdir('/')"])
    assert listing.passed == 0 and "os.listdir" in listing.error


def test_files_in_the_work_folder_are_allowed_and_outside_blocked(tmp_path):
    code = (
        "import os\n"
        "def roundtrip(text):\n"
        "    with open('notes.txt', 'w') as f:\n"
        "        f.write(text)\n"
        "    with open(os.path.join(os.getcwd(), 'notes.txt')) as f:\n"
        "        return f.read()\n"
    )
    outside = tmp_path / "escape.txt"
    tests = [
        "assert roundtrip('hi') == 'hi'",
        f"assert os.getcwd() != {os.getcwd()!r}",
        f"open({str(outside)!r}, 'w').write('x')",
        f"os.remove({str(tmp_path)!r})",
    ]
    result = run_code_tests(code, tests)
    assert result.passed == 2 and "test 3: PermissionError" in result.error
    assert not outside.exists() and tmp_path.exists()


@pytest.mark.parametrize(
    "statement, event",
    [
        ("socket.socket()", "socket"),
        ("socket.create_connection(('127.0.0.1', 80))", "socket"),
        ("os.system('echo hi')", "os.system"),
        ("subprocess.run(['echo', 'hi'])", "subprocess.Popen"),
        ("os.fork()", "os.fork"),
        ("os.kill(os.getppid(), 9)", "os.kill"),
    ],
)
def test_network_and_new_processes_are_blocked(statement, event):
    result = run_code_tests("import os, socket, subprocess", [statement])
    assert result.passed == 0
    assert "PermissionError" in result.error and event in result.error


def test_memory_limit_and_standard_library_imports():
    code = "import collections, heapq, itertools, json, re\ndef f():\n    return bytearray(2**33)\n"
    result = run_code_tests(code, ["assert f()", "assert re.sub('a', 'b', 'aa') == 'bb'"])
    assert (result.passed, result.error) == (1, "test 1: MemoryError")


def test_pass_share_and_argument_checks():
    results = [CodeResult(3, 3), CodeResult(1, 3, "test 2: AssertionError"), CodeResult(0, 0)]
    assert pass_share(results) == approx(4 / 6)
    assert [result.all_passed for result in results] == [True, False, False]
    for no_tests in ([], [CodeResult(0, 0)]):
        with pytest.raises(ValueError, match="no tests"):
            pass_share(no_tests)
    with pytest.raises(TypeError, match="not one string"):
        run_code_tests(ADD, "assert add(1, 2) == 3")
    with pytest.raises(ValueError, match="timeout"):
        run_code_tests(ADD, [], timeout=0)
