"""Corpus cleaning (`tfptlm clean`): repairs, filters, exact and MinHash near-duplicate removal, report, CLI.

The corpora are hand-made, so every removal is known in advance: random
50-word documents share no 3-word shingle, a copy with one word changed has a
Jaccard similarity of 45/51 = 0.88 (word 3-grams), and a 100-character Chinese
text with one character changed has 91/101 = 0.90 (character 5-grams).
"""

from __future__ import annotations

import json
import random
import sys

import pytest

from tfptlm.cli import main
from tfptlm.data.cleaning import CleaningConfig, CorpusCleaner, SourceDocument, clean_corpus
from tfptlm.data.dedup import dedup_key, shingles
from tfptlm.data.text_cleaning import normalize_unicode, remove_control_characters, remove_markup, remove_urls
from tfptlm.data.unicode_scripts import count_words, script_of, script_shares

pytest.importorskip("datasketch")

VOCABULARY = [f"w{i}" for i in range(400)]
HAN = [chr(0x4E00 + i) for i in range(2000)]


def random_text(seed: int, length: int, alphabet: list[str], separator: str) -> str:
    rng = random.Random(seed)
    return separator.join(rng.choice(alphabet) for _ in range(length))


def change_one(text: str, index: int, replacement: str, separator: str) -> str:
    items = text.split(separator) if separator else list(text)
    items[index] = replacement
    return separator.join(items)


def clean_all(documents: list[list[str]], **options) -> tuple[list, CorpusCleaner]:
    """Runs the cleaner over documents given as lists of lines (numbered as in one file)."""
    cleaner = CorpusCleaner(CleaningConfig(**options), files=["c.txt"])
    kept, number = [], 1
    for lines in documents:
        result = cleaner.clean(SourceDocument("c.txt", [(number + i, line) for i, line in enumerate(lines)]))
        kept.append(result)
        number += len(lines) + 1
    return kept, cleaner


# --- line repairs ---------------------------------------------------------------------------------------------


def test_control_characters_removed_tab_and_joiners_kept():
    text = "a\x00b\x07c\rd\x0be\x1ff\u2028g\u00adh\u200bi\ufeffj\u202ek\tl\u200dm\u200cn\x7fo\x85p"
    assert remove_control_characters(text) == "abc d e f ghijk\tl\u200dm\u200cno p"
    assert remove_control_characters("plain text 中文") == "plain text 中文"


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        ("<p>Hello <b>world</b></p>", "Hello world"),
        ("line<br/>break", "line break"),
        ("a <!-- comment --> b", "a b"),
        ("Tom &amp; Jerry &lt;3 &eacute;t&#233; &#x4E2D;", "Tom & Jerry <3 été 中"),
        ("&lt;b&gt;not a tag&lt;/b&gt;", "<b>not a tag</b>"),
        ("see [[Paris|the capital]] and [[London]]", "see the capital and London"),
        ("x {{cite web|url=a|title={{nested}}}} y", "x y"),
        ("[[Category:Cities]][[File:a.png|thumb|A [[map]]]]Rome", "Rome"),
        ("[http://example.com the site] now", "the site now"),
        ("== History ==", "History"),
        (" = = Career = = ", "Career"),
        ("'''Bold''' and ''italic''", "Bold and italic"),
        ("数学-{zh-cn:软件;zh-tw:軟體}-研究", "数学软件研究"),
        ('<doc id="13" url="https://zh.wikipedia.org/wiki?curid=13" title="数学">', ""),
        ("the <unk> word </s>", "the <unk> word </s>"),
        ("if a < b and c > d", "if a < b and c > d"),
    ],
)
def test_markup_removed(raw, cleaned):
    assert remove_markup(raw) == cleaned


def test_unicode_normalization_and_urls():
    assert normalize_unicode("ＡＢＣ１２３ ﬁ", "NFKC") == "ABC123 fi"
    assert normalize_unicode("Cafe\u0301 ﬁ", "NFC") == "Café ﬁ"
    assert normalize_unicode("Cafe\u0301", "none") == "Cafe\u0301"
    assert remove_urls("go to https://a.b/c?d=1 or www.x.org now") == "go to or now"
    with pytest.raises(ValueError, match="unknown normalization 'NFX'"):
        normalize_unicode("a", "NFX")


def test_scripts_and_word_counts():
    assert [script_of(c) for c in "aЖα中あア한7 "] == [
        "latin", "cyrillic", "greek", "han", "hiragana", "katakana", "hangul", None, None]
    assert script_shares("abc 中文") == {"latin": 0.6, "han": 0.4}
    assert script_shares("123 !") == {}
    assert count_words("BERT 模型 is good") == 5
    assert count_words("日本語のテキスト") == 8


def test_dedup_key_and_shingles():
    assert dedup_key("The  Cat\tsat") == dedup_key("the cat sat")
    assert dedup_key("the cat sat") != dedup_key("the cat sat.")
    assert shingles("a b c d", "word", 3) == {"a b c", "b c d"}
    assert shingles("a b", "word", 3) == {"a b"}
    assert shingles("中文 文本", "char", 3) == {"中文文", "文文本"}


# --- filters --------------------------------------------------------------------------------------------------


def test_script_filter_per_line():
    lines = ["An English sentence.", "一个中文句子。", "Русское предложение.", "جملة عربية.",
             "Mostly English with 中文", "Короткое English", "12345 !!!"]
    kept, cleaner = clean_all([lines], keep_scripts=("latin", "han"), near_dedup=False)
    assert kept == [["An English sentence.", "一个中文句子。", "Mostly English with 中文", "12345 !!!"]]
    removed = [(r.line, r.reason) for r in cleaner.report.removals]
    assert removed == [(3, "script"), (4, "script"), (6, "script")]
    assert "mostly cyrillic" in cleaner.report.removals[0].detail


def test_script_filter_per_document_and_share():
    documents = [["English line.", "Русская строка."], ["Русская строка.", "Ещё одна строка."]]
    kept, cleaner = clean_all(documents, keep_scripts=("latin",), script_unit="document",
                              min_script_share=0.3, near_dedup=False)
    assert kept == [["English line.", "Русская строка."], None]
    assert [(r.unit, r.line, r.reason) for r in cleaner.report.removals] == [("document", 4, "script")]


def test_length_filters():
    documents = [["ok line here", "x"], ["a " * 30], ["short doc"], ["两个字", "很长的一行中文句子在这里"]]
    kept, cleaner = clean_all(documents, min_line_chars=2, max_line_words=20, min_doc_words=3, near_dedup=False)
    assert kept == [["ok line here"], None, None, ["两个字", "很长的一行中文句子在这里"]]
    removed = [(r.unit, r.line, r.reason, r.detail) for r in cleaner.report.removals]
    assert removed == [
        ("line", 2, "line_too_short", "1 chars < min_line_chars 2"),
        ("line", 4, "line_too_long", "30 words > max_line_words 20"),
        ("document", 6, "document_too_short", "2 words < min_doc_words 3"),
    ]
    assert cleaner.report.documents_emptied == 1


# --- duplicates -----------------------------------------------------------------------------------------------


def english_corpus() -> tuple[list[list[str]], dict]:
    a, b, c = (random_text(seed, 50, VOCABULARY, " ") for seed in (1, 2, 3))
    documents = [
        [a],                                                  # line 1: kept
        [b[:120], b[120:]],                                   # line 3: kept (two lines)
        ["  " + a.upper().replace(" ", "   ") + " "],         # line 6: exact duplicate of line 1
        [change_one(a, 25, "changed", " ")],                  # line 8: near duplicate of line 1
        [change_one(b[:120] + " " + b[120:], 0, "new", " ")],  # line 10: near duplicate of line 3
        [c],                                                  # line 12: kept
        [" ".join(a.split()[:25] + c.split()[:25])],          # line 14: half of a, half of c: kept
    ]
    expected = {6: ("exact_duplicate", 1), 8: ("near_duplicate", 1), 10: ("near_duplicate", 3)}
    return documents, expected


def test_exact_and_near_duplicates_removed_and_different_documents_kept():
    documents, expected = english_corpus()
    kept, cleaner = clean_all(documents, word_ngram=3, threshold=0.7, seed=7)
    assert [k is not None for k in kept] == [True, True, False, False, False, True, True]
    found = {r.line: (r.reason, r.duplicate_of["line"]) for r in cleaner.report.removals}
    assert found == expected
    near = [r for r in cleaner.report.removals if r.reason == "near_duplicate"]
    assert all(0.75 <= r.similarity < 1 for r in near)
    assert near[0].detail == "word 3-gram shingles"
    report = cleaner.finish()
    assert (report.exact_duplicate_groups, report.near_duplicate_clusters) == (1, 2)
    assert report.removed == {"exact_duplicate": 1, "near_duplicate": 2}


def test_switching_dedup_off_keeps_duplicates():
    documents, _ = english_corpus()
    kept, _ = clean_all(documents, exact_dedup=False, near_dedup=False)
    assert all(k is not None for k in kept)
    kept, cleaner = clean_all(documents, near_dedup=False)
    assert [r.reason for r in cleaner.report.removals] == ["exact_duplicate"]


def test_chinese_near_duplicates_found_with_character_shingles():
    a, b = random_text(11, 100, HAN, ""), random_text(12, 100, HAN, "")
    near = change_one(a, 50, "好", "")
    documents = [[a[:40], a[40:]], [b], [near]]
    kept, cleaner = clean_all(documents)  # defaults: auto shingles -> 5-character shingles, threshold 0.8
    assert [k is not None for k in kept] == [True, True, False]
    (removal,) = cleaner.report.removals
    assert (removal.reason, removal.line, removal.duplicate_of, removal.detail) == (
        "near_duplicate", 6, {"file": "c.txt", "line": 1}, "char 5-gram shingles")
    kept, _ = clean_all(documents, shingle="word")  # no spaces: one "word", so nothing is found
    assert all(k is not None for k in kept)


# --- files, report and CLI ------------------------------------------------------------------------------------


def write_corpus(path, documents: list[list[str]]) -> None:
    path.write_text("\n\n".join("\n".join(lines) for lines in documents) + "\n", encoding="utf-8")


def test_clean_corpus_files_report_and_removed_units(tmp_path):
    documents, expected = english_corpus()
    documents = documents + [["<doc id='1'>", "Real text here &amp; more.\x00"]]
    write_corpus(tmp_path / "raw.txt", documents)
    report = clean_corpus(tmp_path / "raw.txt", tmp_path / "clean.txt", CleaningConfig(word_ngram=3, threshold=0.7),
                          tmp_path / "report.json", tmp_path / "removed.jsonl", show_progress=False)
    cleaned = (tmp_path / "clean.txt").read_text(encoding="utf-8").split("\n\n")
    assert len(cleaned) == 5 and cleaned[-1] == "Real text here & more.\n"
    assert cleaned[1] == "\n".join(documents[1])
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert (data["documents_in"], data["documents_out"], data["lines_in"], data["lines_out"]) == (8, 5, 10, 6)
    assert data["removed"] == {"near_duplicate": 2, "exact_duplicate": 1, "empty_after_cleaning": 1}
    assert data["lines_changed"]["markup"] == 2 and data["lines_changed"]["control_characters"] == 1
    removed_documents = sum(n for reason, n in data["removed"].items() if reason != "empty_after_cleaning")
    assert data["documents_in"] == data["documents_out"] + removed_documents + data["documents_emptied"]
    assert {(r["line"], r["reason"]) for r in data["removals"]} == {
        (line, reason) for line, (reason, _) in expected.items()} | {(16, "empty_after_cleaning")}
    assert all("text" not in r for r in data["removals"])
    removed = [json.loads(line) for line in (tmp_path / "removed.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(removed) == len(report.removals) == 4
    assert removed[0]["text"] == documents[2][0].strip() and removed[0]["file"] == str(tmp_path / "raw.txt")
    removed_lines = sum(len(r["text"].split("\n")) for r in removed)
    assert data["lines_in"] == data["lines_out"] + removed_lines  # nothing is lost silently


def test_one_document_per_line(tmp_path):
    a = random_text(5, 50, VOCABULARY, " ")
    (tmp_path / "raw.txt").write_text(f"{a}\n\n{a}\nFirst. Second one here.\n", encoding="utf-8")
    report = clean_corpus([str(tmp_path / "raw.txt")], tmp_path / "out.txt", CleaningConfig(one_document_per_line=True),
                          show_progress=False)
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == f"{a}\nFirst. Second one here.\n"
    assert [(r.line, r.reason) for r in report.removals] == [(3, "exact_duplicate")]


def test_cli_end_to_end(tmp_path, capsys):
    documents, _ = english_corpus()
    write_corpus(tmp_path / "part1.txt", documents[:3])
    write_corpus(tmp_path / "part2.txt", documents[3:])
    output = tmp_path / "clean.txt"
    status = main(["clean", "--input", str(tmp_path / "part*.txt"), "--output", str(output),
                   "--removed", str(tmp_path / "removed.jsonl"), "--word-ngram", "3", "--threshold", "0.7",
                   "--keep-scripts", "latin", "--min-doc-words", "10", "--no-progress"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "Documents: 7 in, 4 out" in printed and "near_duplicate 2" in printed
    report = json.loads((tmp_path / "clean.txt.report.json").read_text(encoding="utf-8"))
    assert report["config"]["keep_scripts"] == ["latin"] and report["config"]["threshold"] == 0.7
    near = [r for r in report["removals"] if r["reason"] == "near_duplicate"]
    assert [(r["file"][-9:], r["line"], r["duplicate_of"]["file"][-9:], r["duplicate_of"]["line"]) for r in near] == [
        ("part2.txt", 1, "part1.txt", 1), ("part2.txt", 3, "part1.txt", 3)]
    assert len(output.read_text(encoding="utf-8").split("\n\n")) == 4


def run_cli(args, capsys) -> tuple[int, str]:
    status = main(["clean", "--no-progress", *args])
    return status, capsys.readouterr().err


def test_cli_bad_input_gives_one_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\n\nstill fine\nbroken \xff byte\n")
    out = tmp_path / "out.txt"
    status, error = run_cli(["--input", str(bad), "--output", str(out)], capsys)
    assert status == 1 and f"{bad}, line 4: invalid UTF-8" in error and error.count("\n") == 1
    assert not out.exists() and not (tmp_path / "out.txt.partial").exists()
    status, error = run_cli(["--input", str(tmp_path / "missing.txt"), "--output", str(out)], capsys)
    assert status == 1 and "missing.txt" in error
    good = tmp_path / "good.txt"
    good.write_text("text\n", encoding="utf-8")
    for options, message in [
        (["--threshold", "1.5"], "threshold (--threshold) must be in (0, 1], got 1.5"),
        (["--keep-scripts", "latin,elvish"], "unknown script 'elvish'"),
        (["--min-doc-words", "9", "--max-doc-words", "3"], "min_doc_words (--min-doc-words) is above max_doc_words"),
        (["--num-perm", "0"], "num_perm (--num-perm) must be at least 1"),
    ]:
        status, error = run_cli(["--input", str(good), "--output", str(out), *options], capsys)
        assert status == 1 and message in error, error
    status, error = run_cli(["--input", str(good), "--output", str(good)], capsys)
    assert status == 1 and "is also an input file" in error
    with pytest.raises(SystemExit) as exit_info:
        main(["clean", "--input", str(good), "--output", str(out), "--shingle", "bytes"])
    assert exit_info.value.code == 2 and "invalid choice: 'bytes'" in capsys.readouterr().err


def test_cli_without_datasketch_says_how_to_install(tmp_path, capsys, monkeypatch):
    (tmp_path / "good.txt").write_text("text\n", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "datasketch", None)
    status, error = run_cli(["--input", str(tmp_path / "good.txt"), "--output", str(tmp_path / "o.txt")], capsys)
    assert status == 1 and "pip install 'tfptlm[responsible]'" in error and "--no-near-dedup" in error
    assert main(["clean", "--input", str(tmp_path / "good.txt"), "--output", str(tmp_path / "o.txt"),
                 "--no-near-dedup", "--no-progress"]) == 0
