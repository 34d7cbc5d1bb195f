"""Issue 9, items 11-13: bad input is bounded, named and visible.

- a file with 50,000 bad lines keeps 200 Issue objects and counts the rest, in memory, in the run.json
  block and in every message;
- NaN/inf settings are refused by name; JSON nested thousands deep gets a named error, not RecursionError;
- train.py in lenient mode prints the skipped records (first 20, then a count) and kept/total before training.
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hust_sft import settings as S
from hust_sft.data import DataError, load_data, load_records
from hust_sft.data.formats import MAX_JSON_DEPTH
from hust_sft.data.records import MAX_ISSUES, Issue
from hust_sft.settings import DataSettings, RunSettings

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"messages": [{"role": "user", "content": "Where is the library?"},
                     {"role": "assistant", "content": "North of the main gate."}]}
N_BAD = 50_000


def qa(i: int) -> str:
    return json.dumps({"messages": [{"role": "user", "content": f"Question number {i}?"},
                                    {"role": "assistant", "content": f"Answer number {i}."}]})


def live_issues() -> int:
    gc.collect()
    return sum(isinstance(o, Issue) for o in gc.get_objects())


@pytest.fixture(scope="module")
def flood(tmp_path_factory) -> Path:
    """~1.2 MB: 40 good records, then 50,000 lines that each break in one field, then 1,000 duplicates."""
    path = tmp_path_factory.mktemp("flood") / "flood.jsonl"
    lines = [qa(i) for i in range(40)] + ['{"messages": 7}'] * N_BAD + [qa(0)] * 1000
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_flood_of_bad_lines_keeps_a_bounded_report(flood):
    before = live_issues()
    records, report = load_records(flood)
    assert live_issues() - before == MAX_ISSUES  # the 49,800 others were never kept
    assert len(records) == 40 and report.total == 40 + N_BAD + 1000
    assert (report.kept, report.skipped, report.duplicates) == (40, N_BAD, 1000)
    assert len(report.issues) == MAX_ISSUES == 200
    assert report.dropped_issues == N_BAD - 200 and report.total_issues == N_BAD
    assert report.counts == {"wrong_type": N_BAD}  # counted in full, kept in part
    assert [i.line for i in report.issues[:2]] == [41, 42] and report.issues[-1].line == 240
    assert len(report.duplicate_lines) == 200

    # Messages: the summary and run.json's block stay small however many lines are bad.
    text = report.summary("en")
    lines = text.splitlines()
    assert len(lines) == 2 + 20 + 1 and lines[-1] == f"… and {N_BAD - 20} more"
    assert lines[2] == f"{flood}:41: messages: expected array of turns, got number"
    assert len(text) < 4000 and len(report.summary("zh")) < 4000
    block = json.dumps(report.to_dict("en"))
    assert json.loads(block)["dropped_issues"] == N_BAD - 200 and len(block) < 60_000


def test_strict_mode_error_is_bounded_too(flood):
    with pytest.raises(DataError) as err:
        load_data(DataSettings(data=str(flood), strict=True))
    e = err.value
    assert len(e.issues) == 200 and e.dropped_issues == N_BAD - 200
    text = e.text("en")
    assert text.splitlines()[0] == f"{flood}: {N_BAD} invalid record(s) (strict validation is on; turn it off " \
                                   "to skip them instead):"
    assert text.splitlines()[-1] == f"… and {N_BAD - 200} more"
    assert len(text.splitlines()) == 1 + 200 + 1 and len(text) < 30_000


@pytest.mark.parametrize("name,raw", [("val_ratio", "nan"), ("val_ratio", float("nan")), ("test_ratio", "inf"),
                                      ("lr", float("-inf")), ("lr", "NaN"), ("weight_decay", "Infinity")])
def test_non_finite_settings_are_refused_by_name(name, raw):
    with pytest.raises(S.SettingsError) as err:
        S.set_values(RunSettings(), {name: raw})
    assert str(err.value) == f"{name}: expected a finite number, got {float(raw)}"


def test_non_finite_values_in_a_config_file_are_refused(tmp_path):
    """Python's json reads NaN and Infinity; a settings.json carrying them is refused, not trained on."""
    config = tmp_path / "settings.json"
    config.write_text('{"data": {"val_ratio": NaN}}', encoding="utf-8")
    from train import build_parser

    with pytest.raises(S.SettingsError) as err:
        S.from_args(RunSettings, build_parser().parse_args(["--config", str(config)]))
    assert "val_ratio: expected a finite number, got nan" in str(err.value)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000, 200_000])
def test_deep_nesting_is_a_named_issue_per_line(depth, tmp_path):
    path = tmp_path / "deep.jsonl"
    deep = '{"messages": ' + "[" * depth + "]" * depth + "}"
    path.write_text("\n".join([qa(1), deep, qa(2)]) + "\n", encoding="utf-8")
    records, report = load_records(path)
    assert len(records) == 2
    assert [i.text("en") for i in report.issues] == [
        f"{path}:2: json: nested deeper than {MAX_JSON_DEPTH} levels; a record is an object of turns with text, "
        "a few levels deep"]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000])
def test_deep_nesting_in_a_json_file_names_the_line(depth, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("{\n\n" + '"x": ' + "[" * depth + "]" * depth + "}", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_records(path)
    assert err.value.text("en") == (
        f"{path}: the file cannot be read:\n{path}:3: json: nested deeper than {MAX_JSON_DEPTH} levels; a record "
        "is an object of turns with text, a few levels deep")


def test_nesting_at_the_limit_is_fine(tmp_path):
    path = tmp_path / "ok.jsonl"
    nested = {"messages": GOOD["messages"], "meta": json.loads("[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1))}
    path.write_text(json.dumps(nested) + "\n", encoding="utf-8")
    records, report = load_records(path)
    assert len(records) == 1 and report.issues == []


def test_train_cli_prints_skipped_records_before_training(tmp_path, tiny_model_dir):
    data = tmp_path / "handbook.jsonl"
    lines = [qa(i) for i in range(6)] + ["{not json"] * 3 + ['{"messages": [{"role": "user", "content": "q"}]}'] * 22
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    cmd = [sys.executable, "train.py", "--data", str(data), "--model", str(tiny_model_dir), "--output", str(out),
           "--system-prompt", "S", "--val-ratio", "0", "--test-ratio", "0", "--max-length", "64",
           "--batch-size", "2", "--grad-accum", "1", "--logging-steps", "1", "--max-steps", "1"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = proc.stdout.splitlines()
    start = printed.index(f"{data}: messages format, 31 records read, 6 kept, 25 skipped, "
                          "0 exact duplicates removed")
    assert printed[start + 1] == "Problems by kind: no_assistant × 22, bad_json × 3"
    assert printed[start + 2] == f"{data}:7: json: invalid JSON at column 2: Expecting property name enclosed in " \
                                 "double quotes"
    assert printed[start + 5] == f"{data}:10: messages: no assistant turn; a conversation needs at least one " \
                                 "answer to learn from"
    assert printed[start + 22] == "… and 5 more"
    # Before training: the report comes first, the closing summary (after it) names the adapter.
    assert any("adapter" in line for line in printed[start + 23:])
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["data"]["validation"]["skipped"] == 25 and record["data"]["validation"]["dropped_issues"] == 0
