"""load_records: the four formats, every kind of bad record, strict vs lenient, duplicates, real files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hust_sft.data import DataError, load_records
from hust_sft.data.records import Issue

ASSETS = Path(__file__).resolve().parents[1] / "hust_sft" / "assets"

# The same three conversations, written in each supported format.
EXPECTED = [
    [{"role": "system", "content": "你是校园助手。"},
     {"role": "user", "content": "图书馆几点开门？"},
     {"role": "assistant", "content": "早上8点。"}],
    [{"role": "user", "content": "宿舍几点关门？"},
     {"role": "assistant", "content": "晚上11点。"},
     {"role": "user", "content": "晚归怎么办？"},
     {"role": "assistant", "content": "在值班室登记。"}],
    [{"role": "user", "content": "把下面的句子翻译成英文\n校园卡丢了"},
     {"role": "assistant", "content": "I lost my campus card."}],
]
KEYWORDS = {"expected_keywords": ["8点"], "id": "lib-1"}


def _turns(messages, role_key="role", text_key="content", roles=None):
    roles = roles or {}
    return [{role_key: roles.get(m["role"], m["role"]), text_key: m["content"]} for m in messages]


def as_conversations():
    return [{"conversations": _turns(m), **(KEYWORDS if i == 0 else {})} for i, m in enumerate(EXPECTED)]


def as_messages():
    return [{"messages": _turns(m), **(KEYWORDS if i == 0 else {})} for i, m in enumerate(EXPECTED)]


def as_sharegpt():
    roles = {"user": "human", "assistant": "gpt", "system": "system"}
    return [{"conversations": _turns(m, "from", "value", roles), **(KEYWORDS if i == 0 else {})}
            for i, m in enumerate(EXPECTED)]


def as_alpaca():
    return [
        {"system": "你是校园助手。", "instruction": "图书馆几点开门？", "input": "", "output": "早上8点。",
         **KEYWORDS},
        {"instruction": "晚归怎么办？", "input": "", "output": "在值班室登记。",
         "history": [["宿舍几点关门？", "晚上11点。"]]},
        {"instruction": "把下面的句子翻译成英文", "input": "校园卡丢了", "output": "I lost my campus card."},
    ]


FORMATS = {"conversations": as_conversations, "messages": as_messages, "sharegpt": as_sharegpt,
           "alpaca": as_alpaca}


def write_jsonl(path: Path, rows) -> Path:
    """Rows are dicts (dumped as JSON) or raw str/bytes lines written as they are."""
    out = []
    for row in rows:
        if isinstance(row, bytes):
            out.append(row)
        elif isinstance(row, str):
            out.append(row.encode("utf-8"))
        else:
            out.append(json.dumps(row, ensure_ascii=False).encode("utf-8"))
    path.write_bytes(b"\n".join(out) + b"\n")
    return path


def error_lines(path) -> list[str]:
    """The English lines of the DataError that loading `path` raises."""
    with pytest.raises(DataError) as err:
        load_records(path)
    return err.value.text("en").splitlines()


@pytest.mark.parametrize("container", ["jsonl", "json-array", "json-data"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_all_formats_load_to_identical_conversations(tmp_path, fmt, container):
    rows = FORMATS[fmt]()
    if container == "jsonl":
        path = write_jsonl(tmp_path / "d.jsonl", rows)
    else:
        path = tmp_path / "d.json"
        path.write_text(json.dumps(rows if container == "json-array" else {"data": rows}, ensure_ascii=False,
                                   indent=2), encoding="utf-8")
    records, report = load_records(path)
    assert [r.messages for r in records] == EXPECTED
    assert report.format == fmt
    assert (report.total, report.kept, report.skipped, report.duplicates) == (3, 3, 0, 0)
    assert records[0].extra == KEYWORDS
    assert records[1].extra == {}
    assert [r.line for r in records] == [1, 2, 3]
    assert records[1].question == "宿舍几点关门？"
    assert records[1].answer == "在值班室登记。"


GOOD = {"conversations": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


def good(i):
    return {"conversations": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}],
            "id": i}


def conv(*turns):
    return {"conversations": [dict(zip(("role", "content"), t)) if isinstance(t, tuple) else t for t in turns]}


# (bad record on line 3 of a .jsonl file, expected field, code, expected English message)
BAD_CASES = {
    "bad_json": ('{"conversations": [}', "json", "bad_json", "invalid JSON at column 20: Expecting value"),
    "bad_utf8": (b'{"conversations": [{"role": "user", "content": "\xff"}]}', "encoding", "bad_utf8",
                 "not valid UTF-8: byte 0xff at byte offset 152 of the file (byte 49 of this line); "
                 "save the file as UTF-8"),
    "not_object": ("[1, 2]", "record", "not_object", "expected a JSON object {...}, got array"),
    "missing_conversations": ({"question": "q", "answer": "a"}, "conversations", "missing_field",
                              "missing; expected array of turns"),
    "conversations_not_list": ({"conversations": "q"}, "conversations", "wrong_type",
                               "expected array of turns, got string"),
    "turn_not_object": (conv(("user", "q"), "a"), "conversations[1]", "wrong_type",
                        "expected object with role and content, got string"),
    "unknown_role": (conv(("user", "q"), ("bot", "a")), "conversations[1].role", "unknown_role",
                     "unknown role 'bot'; expected one of: system, user, assistant"),
    "unknown_sharegpt_role": (conv(("user", "q"), {"from": "robot", "value": "a"}), "conversations[1].from",
                              "unknown_role",
                              "unknown role 'robot'; expected one of: human, user, gpt, assistant, system"),
    "missing_role": (conv(("user", "q"), {"content": "a"}), "conversations[1].role", "missing_role",
                     "this turn has no role; expected a 'role' (or ShareGPT 'from') key"),
    "role_not_string": (conv(("user", "q"), (1, "a")), "conversations[1].role", "wrong_type",
                        "expected string, got number"),
    "missing_content": (conv(("user", "q"), {"role": "assistant"}), "conversations[1].content",
                        "missing_field", "missing; expected string"),
    "empty_content": (conv(("user", "q"), ("assistant", " \n\t")), "conversations[1].content",
                      "empty_content", "empty or whitespace-only text"),
    "content_list": (conv(("user", ["q"]), ("assistant", "a")), "conversations[0].content", "wrong_type",
                     "expected string, got array"),
    "content_number": (conv(("user", "q"), ("assistant", 42)), "conversations[1].content", "wrong_type",
                       "expected string, got number"),
    "empty_conversation": ({"conversations": []}, "conversations", "empty_conversation",
                           "the conversation has no turns"),
    "no_assistant": (conv(("user", "q")), "conversations", "no_assistant",
                     "no assistant turn; a conversation needs at least one answer to learn from"),
    "no_user": (conv(("system", "s"), ("assistant", "a")), "conversations", "no_user",
                "no user turn; a conversation needs at least one question"),
    "not_alternating": (conv(("user", "q1"), ("user", "q2"), ("assistant", "a")), "conversations[1].role",
                        "not_alternating",
                        "expected a 'assistant' turn here, got 'user'; after an optional first system turn, "
                        "turns must alternate user, assistant, user, ..."),
    "starts_with_assistant": (conv(("assistant", "a"), ("user", "q"), ("assistant", "a")),
                              "conversations[0].role", "not_alternating",
                              "expected a 'user' turn here, got 'assistant'; after an optional first system "
                              "turn, turns must alternate user, assistant, user, ..."),
    "system_not_first": (conv(("user", "q"), ("system", "s"), ("assistant", "a")), "conversations[1].role",
                         "system_not_first", "a system turn is only allowed as the very first turn"),
    "ends_with_user": (conv(("user", "q"), ("assistant", "a"), ("user", "q2")), "conversations[2].role",
                       "last_not_assistant", "the conversation ends with a user turn that has no assistant answer"),
    "keywords_not_list": ({**GOOD, "expected_keywords": "a"}, "expected_keywords", "wrong_type",
                          "expected array of strings, got string"),
    "keywords_not_strings": ({**GOOD, "expected_keywords": ["a", 1]}, "expected_keywords", "wrong_type",
                             "expected array of strings, got array with number"),
    "system_not_string": ({**GOOD, "system": ["s"]}, "system", "wrong_type", "expected string, got array"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_each_bad_record_is_named_with_line_field_and_reason(tmp_path, case):
    bad, field, code, message = BAD_CASES[case]
    path = write_jsonl(tmp_path / "d.jsonl", [good(1), "", bad, good(2)])
    records, report = load_records(path)
    assert [r.extra["id"] for r in records] == [1, 2]
    assert (report.total, report.kept, report.skipped) == (3, 2, 1)
    assert len(report.issues) == 1
    issue = report.issues[0]
    assert (issue.line, issue.field, issue.code) == (3, field, code)
    assert issue.text("en") == f"{path}:3: {field}: {message}"
    assert report.counts == {code: 1}


# Alpaca-specific problems: (record, field, code, English message)
ALPACA_CASES = {
    "missing_output": ({"instruction": "q", "input": ""}, "output", "missing_field", "missing; expected string"),
    "empty_instruction": ({"instruction": "  ", "output": "a"}, "instruction", "empty_content",
                          "empty or whitespace-only text"),
    "output_number": ({"instruction": "q", "output": 3}, "output", "wrong_type", "expected string, got number"),
    "input_list": ({"instruction": "q", "input": ["x"], "output": "a"}, "input", "wrong_type",
                   "expected string, got array"),
    "history_pair": ({"instruction": "q", "output": "a", "history": [["q0"]]}, "history[0]", "wrong_type",
                     "expected [question, answer], got array of 1"),
    "history_empty_answer": ({"instruction": "q", "output": "a", "history": [["q0", ""]]}, "history[0][1]",
                             "empty_content", "empty or whitespace-only text"),
}


@pytest.mark.parametrize("case", list(ALPACA_CASES))
def test_alpaca_problems(tmp_path, case):
    bad, field, code, message = ALPACA_CASES[case]
    path = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "q", "input": "", "output": "a"}, bad])
    records, report = load_records(path)
    assert report.format == "alpaca" and len(records) == 1
    assert [i.text("en") for i in report.issues] == [f"{path}:2: {field}: {message}"]
    assert report.issues[0].code == code


def test_json_array_issues_count_records_and_say_so(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([good(1), good(2), conv(("user", "q"))]), encoding="utf-8")
    records, report = load_records(path)
    assert len(records) == 2
    issue = report.issues[0]
    assert (issue.line, issue.unit) == (3, "record")
    assert issue.text("en") == (f"{path}:3: conversations: record 3: no assistant turn; a conversation needs at "
                                "least one answer to learn from")
    assert issue.text("zh") == f"{path}:3: conversations: 第 3 条记录: 没有助手轮次；每段对话至少需要一个可供学习的回答"


def test_strict_raises_with_every_issue_lenient_skips(tmp_path):
    rows = [good(1), "{oops", conv(("user", "q")), good(2), conv(("user", "q"), ("bot", "a"))]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    records, report = load_records(path)
    assert len(records) == 2
    assert (report.total, report.kept, report.skipped, report.duplicates) == (5, 2, 3, 0)
    assert report.counts == {"bad_json": 1, "no_assistant": 1, "unknown_role": 1}
    with pytest.raises(DataError) as err:
        load_records(path, strict=True)
    lines = err.value.text("en").splitlines()
    assert lines[0] == f"{path}: 3 invalid record(s) (strict validation is on; turn it off to skip them instead):"
    assert [line.split(": ")[0] for line in lines[1:]] == [f"{path}:2", f"{path}:3", f"{path}:5"]
    assert [i.code for i in err.value.issues] == ["bad_json", "no_assistant", "unknown_role"]
    assert isinstance(err.value, ValueError)


def test_strict_passes_a_clean_file(tmp_path):
    records, report = load_records(write_jsonl(tmp_path / "d.jsonl", as_conversations()), strict=True)
    assert len(records) == 3 and report.issues == []


def test_exact_duplicates_are_removed_and_counted(tmp_path):
    other = conv(("user", "q "), ("assistant", "a"))  # differs by a space: not an exact duplicate
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD, GOOD, other, GOOD | {"id": 9}])
    records, report = load_records(path)
    assert [r.line for r in records] == [1, 3]
    assert (report.total, report.kept, report.skipped, report.duplicates) == (4, 2, 0, 2)
    assert report.duplicate_lines == [(2, 1), (4, 1)]


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        load_records(path)
    assert err.value.text("en") == (f"{path}: the file is empty; expected one JSON object per line (.jsonl) "
                                    "or a JSON array (.json)")


def test_zero_valid_records_lists_why(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [conv(("user", "q")), conv(("user", "q"), ("assistant", ""))])
    assert error_lines(path) == [
        f"{path}: none of the 2 records is valid:",
        f"{path}:1: conversations: no assistant turn; a conversation needs at least one answer to learn from",
        f"{path}:2: conversations[1].content: empty or whitespace-only text",
    ]


def test_broken_json_array_gives_line_and_column(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n  {"instruction": "q", "output": "a"},\n  {"instruction": "q2" "output": "a"}\n]\n',
                    encoding="utf-8")
    assert error_lines(path) == [
        f"{path}: the file cannot be read:",
        f"{path}:3: json: invalid JSON at column 24: Expecting ',' delimiter",
    ]


def test_non_utf8_json_array_names_line_and_byte(tmp_path):
    path = tmp_path / "d.json"
    path.write_bytes(b'[\n {"instruction": "q", "output": "a"},\n {"instruction": "' + b"\xe9t\xe9"
                     + b'", "output": "a"}\n]')
    with pytest.raises(DataError) as err:
        load_records(path)
    assert err.value.issues[0].text("en") == (
        f"{path}:3: encoding: not valid UTF-8: byte 0xe9 at byte offset 58 of the file (byte 19 of this line); "
        "save the file as UTF-8")


def test_unknown_format_names_the_keys_found(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"q": "a", "a": "b"}])
    with pytest.raises(DataError) as err:
        load_records(path)
    assert err.value.text("en") == (f"{path}: unknown format; expected records with 'conversations', 'messages', "
                                    "or 'instruction' + 'output' (the first object has the keys: a, q)")


def test_single_pretty_printed_object(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(as_sharegpt()[1], ensure_ascii=False, indent=2), encoding="utf-8")
    records, report = load_records(path)
    assert [r.messages for r in records] == [EXPECTED[1]] and report.format == "sharegpt"


def test_nothing_but_broken_lines(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ["{oops", "[1]"])
    assert error_lines(path) == [
        f"{path}: none of the 2 records is valid:",
        f"{path}:1: json: invalid JSON at column 2: Expecting property name enclosed in double quotes",
        f"{path}:2: record: expected a JSON object {{...}}, got array",
    ]


def test_top_level_system_field(tmp_path):
    row = {"system": "你是校园助手。", "conversations": as_sharegpt()[0]["conversations"][1:]}
    records, _ = load_records(write_jsonl(tmp_path / "d.jsonl", [row]))
    assert records[0].messages == EXPECTED[0]


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("q,a\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"\.csv"):
        load_records(path)


def test_jsonl_named_json_and_bom_and_crlf(tmp_path):
    """A JSON Lines file saved as .json by a Windows editor (BOM, CRLF) still loads line by line."""
    path = tmp_path / "d.json"
    body = "\r\n".join(json.dumps(r, ensure_ascii=False) for r in as_conversations())
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8") + b"\r\n")
    records, report = load_records(path)
    assert [r.messages for r in records] == EXPECTED


def test_issue_given_an_explicit_message_keeps_it():
    issue = Issue("f.jsonl", 7, "answer", "custom", "too long")
    assert str(issue) == "f.jsonl:7: answer: too long"


def test_report_summary_and_dict(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD, GOOD, conv(("user", "q"))])
    _, report = load_records(path, source="handbook.jsonl")
    assert report.summary("en").splitlines() == [
        "handbook.jsonl: conversations format, 3 records read, 1 kept, 1 skipped, 1 exact duplicates removed",
        "Problems by kind: no_assistant × 1",
        "handbook.jsonl:3: conversations: no assistant turn; a conversation needs at least one answer to learn from",
    ]
    assert report.summary("zh").splitlines()[0] == (
        "handbook.jsonl：conversations 格式，读取 3 条，保留 1 条，跳过 1 条，去除完全重复 1 条")
    d = report.to_dict("en")
    assert json.loads(json.dumps(d)) == d
    assert {k: d[k] for k in ("format", "total", "kept", "skipped", "duplicates", "counts")} == {
        "format": "conversations", "total": 3, "kept": 1, "skipped": 1, "duplicates": 1,
        "counts": {"no_assistant": 1}}
    assert d["issues"][0]["line"] == 3 and d["issues"][0]["field"] == "conversations"


def test_bjtu_alpaca_file(bjtu_path):
    records, report = load_records(bjtu_path)
    raw = json.loads(bjtu_path.read_text(encoding="utf-8"))
    assert report.format == "alpaca"
    assert (report.total, report.kept, report.skipped, report.duplicates) == (315, 315, 0, 0)
    with_input = [(r, row) for r, row in zip(records, raw) if row["input"]]
    assert len(with_input) == 9
    for record, row in with_input:
        assert record.question == row["instruction"] + "\n" + row["input"]
    assert records[0].messages == [{"role": "user", "content": raw[0]["instruction"]},
                                   {"role": "assistant", "content": raw[0]["output"]}]
    assert all(len(r.messages) == 2 for r in records)


def test_sample_handbook_fixture():
    records, report = load_records(ASSETS / "sample_handbook.jsonl", strict=True)
    assert report.format == "conversations"
    assert len(records) == 40
    assert sum(len(r.messages) > 2 for r in records) == 3
    assert sum("expected_keywords" in r.extra for r in records) == 10
