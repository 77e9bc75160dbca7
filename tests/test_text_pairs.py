"""Text-pair readers: parallel files, pair columns, DailyDialog dialogues and MBPP tasks."""

from __future__ import annotations

import gzip
import json

import pytest

from tfptlm.data import (
    CodeTask,
    DataFileError,
    TextPair,
    read_dialogues,
    read_mbpp,
    read_pair_columns,
    read_parallel_files,
)


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    data = text.encode(encoding)
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(DataFileError) as info:
        call(*args, **kwargs)
    return str(info.value)


# ---------------------------------------------------------------- parallel files


def test_parallel_files_gzip_bom_crlf_and_trailing_blank_lines(tmp_path):
    source = write(tmp_path, "val.en.gz", "A man sleeps.\n Two dogs play. \n")
    target_text = "Ein Mann schläft.\r\nZwei Hunde spielen.\r\n\r\n"
    target = write(tmp_path, "val.de", target_text, "utf-8-sig")
    data = read_parallel_files(source, target)
    assert data.examples == [
        TextPair("A man sleeps.", "Ein Mann schläft.", 1),
        TextPair("Two dogs play.", "Zwei Hunde spielen.", 2),
    ]
    assert data.skipped == 0


def test_parallel_files_with_different_line_counts_name_both(tmp_path):
    source = write(tmp_path, "src.txt", "a\nb\nc\n")
    target = write(tmp_path, "tgt.txt", "x\ny\n")
    message = error_of(read_parallel_files, source, target, skip_bad_rows=True)
    assert f"{source} has 3 lines" in message and f"{target} has 2" in message


def test_parallel_files_empty_lines_are_bad_rows(tmp_path):
    source = write(tmp_path, "src.txt", "a\n\nc\nd\n \n")
    target = write(tmp_path, "tgt.txt", "x\ny\n\nw\n\t\n")
    message = error_of(read_parallel_files, source, target)
    assert message.startswith(f"{source}:2: empty source line") and f"{target}:2" in message
    data = read_parallel_files(source, target, skip_bad_rows=True)
    assert data.examples == [TextPair("a", "x", 1), TextPair("d", "w", 4)]
    assert data.skipped == 2
    assert data.skipped_examples[1].startswith(f"{target}:3: empty target line")
    # A blank line in both files at the end is trailing; inside it is bad.
    both = write(tmp_path, "both.txt", "a\n\nb\n")
    message = error_of(read_parallel_files, both, both)
    assert f"{both}:2: empty line, also in {both}:2" in message


def test_parallel_files_missing_undecodable_and_broken_gzip(tmp_path):
    good = write(tmp_path, "good.txt", "a\n")
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_parallel_files(tmp_path / "nope.txt", good)
    bad_bytes = tmp_path / "bad.gz"
    bad_bytes.write_bytes(gzip.compress(b"ok\n\xff\n"))
    message = error_of(read_parallel_files, bad_bytes, good)
    assert f"{bad_bytes}:2:" in message and "UTF-8" in message
    broken = tmp_path / "broken.gz"
    broken.write_bytes(b"not gzip at all")
    assert f"{broken}: cannot decompress" in error_of(read_parallel_files, broken, good)
    empty = write(tmp_path, "empty.txt", "\n")
    assert "no usable pairs" in error_of(read_parallel_files, empty, empty)


# ---------------------------------------------------------------- pair columns


def test_pair_columns_tsv_without_header_like_anki(tmp_path):
    text = "Hi.\t嗨。\tCC-BY 2.0 #1\r\nRun!\t你用跑的。\tCC-BY 2.0 #2\r\n\r\n"
    path = write(tmp_path, "cmn.txt", text, "utf-8-sig")
    data = read_pair_columns(path, 0, 1, file_format="tsv", has_header=False)
    assert data.examples == [TextPair("Hi.", "嗨。", 1), TextPair("Run!", "你用跑的。", 2)]
    sources = read_pair_columns(path, 0, None, file_format="tsv", has_header=False)
    assert sources.examples == [TextPair("Hi.", "", 1), TextPair("Run!", "", 2)]


def test_pair_columns_csv_header_and_jsonl_keys(tmp_path):
    path = write(tmp_path, "sum.csv", 'id,article,summary\n1,"Long, long text",short\n')
    assert read_pair_columns(path, "article", "summary").examples == [
        TextPair("Long, long text", "short", 2)
    ]
    path = write(tmp_path, "mt.jsonl", '{"en": "cat", "zh": "猫"}\n\n{"en": "dog", "zh": "狗"}\n')
    assert read_pair_columns(path, "en", "zh").examples == [
        TextPair("cat", "猫", 1),
        TextPair("dog", "狗", 3),
    ]


def test_pair_columns_bad_rows_name_line_and_column(tmp_path):
    path = write(tmp_path, "p.tsv", "src\ttgt\na\tx\nb\t \nc\n")
    message = error_of(read_pair_columns, path, "src", "tgt")
    assert message == f"{path}:3: empty target (column 'tgt')"
    data = read_pair_columns(path, "src", "tgt", skip_bad_rows=True)
    assert data.examples == [TextPair("a", "x", 2)] and data.skipped == 2
    assert data.skipped_examples[1].startswith(f"{path}:4: too few fields")
    message = error_of(read_pair_columns, path, "source", "tgt")
    assert f"{path}:1:" in message and "no source column 'source'" in message
    with pytest.raises(ValueError, match="file_format"):
        read_pair_columns(tmp_path / "pairs.txt", 0, 1)


# ---------------------------------------------------------------- dialogues

DIALOGUE_EN = "Hi , Tom . __eou__ Hello ! __eou__ How are you ? __eou__\n"
DIALOGUE_ZH = "你好。__eou__你好！__eou__\t1\t1 1\t0 0\n"


def test_dialogues_turn_into_context_response_pairs(tmp_path):
    path = write(tmp_path, "dialogues.txt", DIALOGUE_EN + "\n" + DIALOGUE_ZH)
    data = read_dialogues(path)
    assert data.examples == [
        TextPair("A: Hi , Tom .", "Hello !", 1),
        TextPair("A: Hi , Tom .\nB: Hello !", "How are you ?", 1),
        TextPair("A: 你好。", "你好！", 3),
    ]


def test_dialogues_max_turns_and_separator_tokens(tmp_path):
    path = write(tmp_path, "d.txt.gz", "a __eou__ b __eou__ c __eou__ d")
    data = read_dialogues(path, speakers=("", ""), turn_separator=" [SEP] ", max_turns=2)
    assert [(pair.source, pair.target) for pair in data.examples] == [
        ("a", "b"),
        ("a [SEP] b", "c"),
        ("b [SEP] c", "d"),
    ]
    data = read_dialogues(path, speakers=("<user> ", "<bot> ", "<other> "), max_turns=1)
    assert data.examples[-1].source == "<other> c"
    with pytest.raises(ValueError, match="max_turns"):
        read_dialogues(path, max_turns=0)


def test_dialogues_bad_lines(tmp_path):
    path = write(tmp_path, "d.txt", "a __eou__ __eou__ b __eou__\nonly one __eou__\n" + DIALOGUE_EN)
    assert error_of(read_dialogues, path) == f"{path}:1: utterance 2 is empty"
    data = read_dialogues(path, skip_bad_rows=True)
    assert len(data.examples) == 2 and data.skipped == 2
    assert data.skipped_examples[1].startswith(f"{path}:2: a dialogue needs at least 2 utterances")
    single = write(tmp_path, "s.txt", "just one __eou__\n")
    assert "no usable dialogues" in error_of(read_dialogues, single, skip_bad_rows=True)


# ---------------------------------------------------------------- MBPP


def mbpp_line(task_id, **changes):
    record = {
        "text": f"Write a function to add {task_id} to a number.",
        "code": f"def add_{task_id}(x):\r\n\treturn x + {task_id}",
        "task_id": task_id,
        "test_setup_code": "",
        "test_list": [
            f"assert add_{task_id}(1) == {1 + task_id}",
            f"assert add_{task_id}(0) == {task_id}",
        ],
        "challenge_test_list": [],
    }
    record.update(changes)
    return json.dumps({key: value for key, value in record.items() if value is not None})


def test_mbpp_tasks_prompt_and_newlines(tmp_path):
    lines = [
        mbpp_line(1),
        mbpp_line(2, test_setup_code="import math\r\n", test_list=["assert add_2(0) == 2"]),
    ]
    path = write(tmp_path, "mbpp.jsonl", "\n".join(lines))  # no final newline, as the real file
    tasks = read_mbpp(path)
    assert tasks[0] == CodeTask(
        1,
        "Write a function to add 1 to a number.\nassert add_1(1) == 2",
        "def add_1(x):\n\treturn x + 1",
        ["assert add_1(1) == 2", "assert add_1(0) == 1"],
        "",
    )
    assert tasks[1].setup_code == "import math\n" and tasks[1].tests == ["assert add_2(0) == 2"]
    prompt = read_mbpp(path, task_ids=[1], prompt_tests=3)[0].prompt
    assert prompt.splitlines()[1:] == ["assert add_1(1) == 2", "assert add_1(0) == 1"]


def test_mbpp_task_ids_and_missing_setup_code(tmp_path):
    lines = [mbpp_line(i, test_setup_code=None) for i in range(1, 6)]
    path = write(tmp_path, "mbpp.jsonl", "\n".join(lines))
    assert [task.task_id for task in read_mbpp(path, task_ids=range(2, 4))] == [2, 3]
    message = error_of(read_mbpp, path, task_ids=[3, 9, 11])
    assert f"{path}: no task with task_id 9, 11" in message


def test_mbpp_errors_name_line_and_key(tmp_path):
    cases = [
        (mbpp_line(2, code=None), "missing key 'code'"),
        (mbpp_line(2, test_list="assert True"), "key 'test_list'"),
        (mbpp_line(2).replace('"task_id": 2', '"task_id": "2"'), "'task_id' must be an integer"),
        (mbpp_line(2, text=""), "key 'text' is empty"),
        (mbpp_line(1), "task_id 1 again (first on line 1)"),
        ('{"text": "broken', "not valid JSON"),
    ]
    for number, (line, expected) in enumerate(cases):
        path = write(tmp_path, f"mbpp{number}.jsonl", mbpp_line(1) + "\n" + line + "\n")
        message = error_of(read_mbpp, path)
        assert message.startswith(f"{path}:2: ") and expected in message, message
