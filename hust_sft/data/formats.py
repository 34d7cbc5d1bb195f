"""Read a Q&A file in any of the four common chat formats into validated `Record`s.

Formats (detected per file from the first record that has one of the keys):
  conversations  {"conversations": [{"role": "user", "content": ...}, ...]}   (the HUST handbook)
  sharegpt       {"conversations": [{"from": "human"|"gpt"|"system", "value": ...}, ...]}
  messages       {"messages": [{"role": ..., "content": ...}, ...]}           (OpenAI)
  alpaca         {"instruction", "input", "output", "system"?, "history"?: [[q, a], ...]}
A top-level "system" string becomes the first turn in every format; "expected_keywords" (a list of
strings, used by evaluation) and any other field are kept in `Record.extra`.

Written by hand: `datasets.load_dataset("json")` would parse the file, but it stops at the first bad line
without a line number and coerces mixed types, and users need every bad record named with its line,
field and what was expected.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hust_sft.data.records import MAX_ISSUES, DataError, Issue, IssueLog, Record, ValidationReport

SUFFIXES = (".jsonl", ".json", ".txt", "")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system"}
ROLE_NAMES = ("system", "user", "assistant")
ARRAY_KEYS = ("data", "train")
ALPACA_KEYS = ("instruction", "input", "output", "system", "history")
# Deepest nesting accepted in one record. A chat record is 3-4 levels deep; much deeper only costs memory
# and stack (Python's json raises RecursionError near 1000 levels), so it is reported, never parsed on.
MAX_JSON_DEPTH = 64


def json_type(value: Any) -> str:
    """JSON's own name for a value's type, which is what a user sees in the file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


class _Checker:
    """Collects the issues of one record; `unit` says whether `line` counts lines or array records."""

    def __init__(self, source: str, line: int, unit: str):
        self.source, self.line, self.unit = source, line, unit
        self.issues: list[Issue] = []

    def add(self, field: str, code: str, **params) -> None:
        self.issues.append(Issue(self.source, self.line, field, code, params=params, unit=self.unit))

    def text(self, value: Any, field: str, *, required: bool = True) -> str | None:
        """A non-empty string, or None after recording what is wrong with it."""
        if value is None and not required:
            return None
        if not isinstance(value, str):
            self.add(field, "wrong_type", expected="string", got=json_type(value))
            return None
        if required and not value.strip():
            self.add(field, "empty_content")
            return None
        return value


# ---------------------------------------------------------------------------------------------------
# Reading the file into (line, object) entries.

def _read_entries(path: Path, source: str) -> tuple[list[tuple[int, Any]], IssueLog, str]:
    """(line or record number, parsed value) per record, the line-level issues, and the unit."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if not raw.strip():
        raise DataError("data.error.empty_file", source=source)
    looks_array = raw.lstrip()[:1] == b"["
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if looks_array:
            line = raw.count(b"\n", 0, e.start) + 1
            raise DataError("data.error.bad_file", [_utf8_issue(source, line, raw, e.start)],
                            source=source) from None
        return _read_lines(raw, source)
    try:
        value = json.loads(text)
    except RecursionError:  # nested too deep for Python's parser: name the line rather than crash
        if looks_array or path.suffix.lower() == ".json":
            raise DataError("data.error.bad_file", [_deep_issue(source, text)], source=source) from None
        return _read_lines(raw, source)
    except json.JSONDecodeError as e:
        if looks_array or (path.suffix.lower() == ".json" and not e.msg.startswith("Extra data")):
            issue = Issue(source, e.lineno, "json", "bad_json", params={"col": e.colno, "error": e.msg})
            raise DataError("data.error.bad_file", [issue], source=source) from None
        return _read_lines(raw, source)
    if isinstance(value, dict):
        for key in ARRAY_KEYS:
            if isinstance(value.get(key), list):
                value = value[key]
                break
    if isinstance(value, list):
        entries, issues = [], IssueLog()
        for number, obj in enumerate(value, 1):
            if _depth(obj) > MAX_JSON_DEPTH:
                issues.append(Issue(source, number, "json", "too_deep", params={"max": MAX_JSON_DEPTH},
                                    unit="record"))
                obj = _BAD
            entries.append((number, obj))
        return entries, issues, "record"
    if isinstance(value, dict):  # one object, on one line or pretty-printed over several
        if _depth(value) > MAX_JSON_DEPTH:
            raise DataError("data.error.bad_file", [_deep_issue(source, text)], source=source)
        return [(1, value)], IssueLog(), "line"
    return _read_lines(raw, source)


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion; stops past the limit."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        obj, level = stack.pop()
        if isinstance(obj, (list, dict)):
            deepest = max(deepest, level)
            if deepest > MAX_JSON_DEPTH:
                return deepest
            stack.extend((child, level + 1) for child in (obj.values() if isinstance(obj, dict) else obj))
    return deepest


def _deep_issue(source: str, text: str) -> Issue:
    """The issue for JSON nested past MAX_JSON_DEPTH, at the line where the nesting passes the limit."""
    depth, in_string, escaped, line = 0, False, False, 1
    for ch in text:
        if ch == "\n":
            line += 1
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                break
        elif ch in "]}":
            depth -= 1
    return Issue(source, line, "json", "too_deep", params={"max": MAX_JSON_DEPTH})


def _utf8_issue(source: str, line: int, raw: bytes, offset: int) -> Issue:
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return Issue(source, line, "encoding", "bad_utf8",
                 params={"byte": f"{raw[offset]:02x}", "offset": offset, "col": offset - line_start + 1})


def _read_lines(raw: bytes, source: str) -> tuple[list[tuple[int, Any]], IssueLog, str]:
    entries, issues, start = [], IssueLog(), 0
    for number, chunk in enumerate(raw.split(b"\n"), 1):
        line_start, start = start, start + len(chunk) + 1
        if not chunk.strip():
            continue
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as e:
            issues.append(_utf8_issue(source, number, raw, line_start + e.start))
            entries.append((number, _BAD))
            continue
        try:
            value = json.loads(text)
        except RecursionError:
            value = None
            too_deep = True
        except json.JSONDecodeError as e:
            issues.append(Issue(source, number, "json", "bad_json", params={"col": e.colno, "error": e.msg}))
            entries.append((number, _BAD))
            continue
        else:
            too_deep = _depth(value) > MAX_JSON_DEPTH
        if too_deep:
            issues.append(Issue(source, number, "json", "too_deep", params={"max": MAX_JSON_DEPTH}))
            value = _BAD
        entries.append((number, value))
    return entries, issues, "line"


_BAD = object()  # an entry whose line already has an issue (bad JSON or bytes)


# ---------------------------------------------------------------------------------------------------
# Format detection and conversion of one record to messages.

def detect_format(obj: dict) -> str | None:
    for key in ("conversations", "messages"):
        turns = obj.get(key)
        if turns is not None:
            first = next((x for x in turns if isinstance(x, dict)), {}) if isinstance(turns, list) else {}
            return "sharegpt" if key == "conversations" and "from" in first and "role" not in first else key
    if "instruction" in obj and "output" in obj:
        return "alpaca"
    return None


def _turns(obj: dict, key: str, check: _Checker) -> list[tuple[str, str, str]] | None:
    """(role, content, field path) of each turn of a conversations/messages list."""
    turns = obj.get(key)
    if turns is None:
        check.add(key, "missing_field", expected="array of turns")
        return None
    if not isinstance(turns, list):
        check.add(key, "wrong_type", expected="array of turns", got=json_type(turns))
        return None
    out = []
    for i, turn in enumerate(turns):
        where = f"{key}[{i}]"
        if not isinstance(turn, dict):
            check.add(where, "wrong_type", expected="object with role and content", got=json_type(turn))
            continue
        role_key, text_key = ("role", "content") if "role" in turn or "from" not in turn else ("from", "value")
        role = turn.get(role_key)
        role_ok = True
        if role is None:
            check.add(f"{where}.{role_key}", "missing_role")
            role_ok = False
        elif not isinstance(role, str):
            check.add(f"{where}.{role_key}", "wrong_type", expected="string", got=json_type(role))
            role_ok = False
        else:
            mapped = SHAREGPT_ROLES.get(role) if role_key == "from" else role
            if mapped not in ROLE_NAMES:
                allowed = ", ".join(SHAREGPT_ROLES if role_key == "from" else ROLE_NAMES)
                check.add(f"{where}.{role_key}", "unknown_role", role=role, allowed=allowed)
                role_ok = False
            role = mapped
        if text_key not in turn:
            check.add(f"{where}.{text_key}", "missing_field", expected="string")
            continue
        content = check.text(turn[text_key], f"{where}.{text_key}")
        if role_ok and content is not None:
            out.append((role, content, f"{where}.{role_key}"))
    return out


def _alpaca_turns(obj: dict, check: _Checker) -> list[tuple[str, str, str]]:
    out = []
    history = obj.get("history")
    if history is not None:
        if not isinstance(history, list):
            check.add("history", "wrong_type", expected="array of [question, answer] pairs",
                      got=json_type(history))
        else:
            for i, pair in enumerate(history):
                if not (isinstance(pair, list) and len(pair) == 2):
                    got = f"array of {len(pair)}" if isinstance(pair, list) else json_type(pair)
                    check.add(f"history[{i}]", "wrong_type", expected="[question, answer]", got=got)
                    continue
                q = check.text(pair[0], f"history[{i}][0]")
                a = check.text(pair[1], f"history[{i}][1]")
                out += [("user", q, f"history[{i}][0]"), ("assistant", a, f"history[{i}][1]")]
    for key in ("instruction", "output"):
        if key not in obj:
            check.add(key, "missing_field", expected="string")
    instruction = check.text(obj.get("instruction"), "instruction") if "instruction" in obj else None
    extra_input = check.text(obj.get("input"), "input", required=False)
    output = check.text(obj.get("output"), "output") if "output" in obj else None
    if instruction is not None and extra_input and extra_input.strip():
        instruction = f"{instruction}\n{extra_input}"
    out += [("user", instruction, "instruction"), ("assistant", output, "output")]
    return [turn for turn in out if turn[1] is not None]


def _check_structure(turns: list[tuple[str, str, str]], check: _Checker, key: str) -> None:
    """Optional system first, then user/assistant alternating, starting with user, ending with assistant."""
    roles = [role for role, _, _ in turns]
    if not turns:
        check.add(key, "empty_conversation")
    elif "user" not in roles:
        check.add(key, "no_user")
    elif "assistant" not in roles:
        check.add(key, "no_assistant")
    else:
        for i, (role, _, where) in enumerate(turns):
            if role == "system":
                if i != 0:
                    check.add(where, "system_not_first")
                    return
                continue
            expected = "user" if (i - (roles[0] == "system")) % 2 == 0 else "assistant"
            if role != expected:
                check.add(where, "not_alternating", expected=expected, got=role)
                return
        if roles[-1] != "assistant":
            check.add(turns[-1][2], "last_not_assistant")


def _to_record(obj: Any, fmt: str, check: _Checker) -> Record | None:
    if not isinstance(obj, dict):
        check.add("record", "not_object", got=json_type(obj))
        return None
    if fmt == "alpaca":
        turns, key, consumed = _alpaca_turns(obj, check), "instruction", set(ALPACA_KEYS)
    else:
        key = "messages" if fmt == "messages" else "conversations"
        turns, consumed = _turns(obj, key, check), {key, "system"}
        if turns is None:
            return None
    system = check.text(obj.get("system"), "system", required=False)
    if system is not None and system.strip():
        turns.insert(0, ("system", system, "system"))
    extra = {k: v for k, v in obj.items() if k not in consumed}
    keywords = extra.get("expected_keywords")
    if keywords is not None and not (isinstance(keywords, list) and all(isinstance(k, str) for k in keywords)):
        got = json_type(keywords) if not isinstance(keywords, list) else "array with " + ", ".join(
            sorted({json_type(k) for k in keywords if not isinstance(k, str)}))
        check.add("expected_keywords", "wrong_type", expected="array of strings", got=got)
    if check.issues:
        return None
    _check_structure(turns, check, key)
    if check.issues:
        return None
    messages = [{"role": role, "content": content} for role, content, _ in turns]
    return Record(messages=messages, source=check.source, line=check.line, extra=extra)


# ---------------------------------------------------------------------------------------------------

def load_records(path: str | Path, *, strict: bool = False, source: str | None = None,
                 quote_keys: bool = True) -> tuple[list[Record], ValidationReport]:
    """Validated, de-duplicated records and the report of what was skipped and why.

    `source` is the name used in messages (default: the path). Lenient mode skips bad records;
    strict mode raises `DataError` listing every issue. No valid record at all always raises.
    `quote_keys=False` (a file fetched from a URL) keeps the file's keys out of the unknown-format message.
    """
    path = Path(path)
    source = source or str(path)
    if path.suffix.lower() not in SUFFIXES:
        raise DataError("data.error.unsupported_file", source=source, suffix=path.suffix)
    entries, issues, unit = _read_entries(path, source)
    fmt = next((f for _, obj in entries if isinstance(obj, dict) and (f := detect_format(obj))), None)
    first = next((obj for _, obj in entries if isinstance(obj, dict)), None)
    if fmt is None and first is not None:
        if not quote_keys:
            raise DataError("data.error.unknown_format_unquoted", source=source)
        raise DataError("data.error.unknown_format", issues, source=source, keys=", ".join(sorted(first)))
    # With no object at all every entry fails below (bad JSON, not an object) and "no valid record" is raised.
    report = ValidationReport(source=source, format=fmt or "", total=len(entries))
    records, seen, record_issues = [], {}, IssueLog()
    for line, obj in entries:
        if obj is _BAD:
            report.skipped += 1
            continue
        check = _Checker(source, line, unit)
        record = _to_record(obj, fmt, check)
        record_issues.extend(check.issues)
        if record is None:
            report.skipped += 1
            continue
        key = json.dumps(record.messages, ensure_ascii=False)
        if key in seen:
            report.duplicates += 1
            if len(report.duplicate_lines) < MAX_ISSUES:
                report.duplicate_lines.append((line, seen[key]))
            continue
        seen[key] = line
        records.append(record)
    # Both logs are in line order: the first MAX_ISSUES of their union are among each one's first.
    issues = IssueLog.merged(issues, record_issues)
    report.issues, report.dropped_issues, report.kept = issues.kept, issues.dropped, len(records)
    report.issue_counts = dict(issues.counts)
    if strict and issues:
        raise DataError("data.error.strict", issues, source=source, n=report.skipped)
    if not records:
        raise DataError("data.error.no_valid", issues, source=source, total=report.total)
    return records, report
