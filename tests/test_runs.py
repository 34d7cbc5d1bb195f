"""Run-directory helpers: safe names, unique folders, tolerant event reading, the runs table."""
from __future__ import annotations

import json

import pytest

from hust_sft import runs


@pytest.mark.parametrize("raw, expected", [
    ("hust-lora", "hust-lora"),
    ("LoRA r=16 (test)", "LoRA-r-16-test"),
    ("../../etc/passwd", "etc-passwd"),
    ("..", None),
    (".hidden", "hidden"),
    ("a/../b", "a-.-b"),
    ("华科 手册", "华科-手册"),
    ("ｒｕｎ１", "run1"),          # full-width letters and digits normalised
    ("a" * 100, "a" * runs.MAX_NAME_LENGTH),
    ("  ///  ", None),
    ("v1..2", "v1.2"),
])
def test_sanitize_run_name(raw, expected):
    if expected is None:
        with pytest.raises(ValueError, match="at least one letter or digit"):
            runs.sanitize_run_name(raw)
    else:
        got = runs.sanitize_run_name(raw)
        assert got == expected
        assert "/" not in got and not got.startswith(".") and ".." not in got


def test_new_run_dir_is_unique_and_never_reuses(tmp_path):
    a = runs.new_run_dir(tmp_path, "exp")
    (a / "run.json").write_text("{}")
    b = runs.new_run_dir(tmp_path, "exp")
    c = runs.new_run_dir(tmp_path, "exp")
    assert [p.name for p in (a, b, c)] == ["exp", "exp-2", "exp-3"]
    assert (a / "run.json").read_text() == "{}"
    default = runs.new_run_dir(tmp_path)
    assert default.name.startswith("run-") and default.is_dir()


def _write_events(run_dir, events, tail=""):
    run_dir.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(e) + "\n" for e in events) + tail
    (run_dir / "events.jsonl").write_text(text, encoding="utf-8")


def test_read_events_skips_half_written_last_line(tmp_path):
    events = [{"type": "status", "status": "running"}, {"type": "log", "step": 1, "loss": 2.5}]
    _write_events(tmp_path, events, tail='{"type": "log", "st')
    assert runs.read_events(tmp_path) == events
    assert runs.read_events(tmp_path / "missing") == []


def test_read_events_names_a_corrupt_middle_line(tmp_path):
    (tmp_path / "events.jsonl").write_text('{"type": "log"}\nnot json\n{"type": "log"}\n', encoding="utf-8")
    with pytest.raises(runs.RunFileError, match=r"events.jsonl, line 2: expected one JSON object"):
        runs.read_events(tmp_path)


def test_run_status(tmp_path):
    assert runs.run_status(tmp_path) == "unknown"
    (tmp_path / "settings.json").write_text("{}")
    assert runs.run_status(tmp_path) == "pending"
    _write_events(tmp_path, [{"type": "status", "status": "running"}])
    assert runs.run_status(tmp_path) == "running"
    _write_events(tmp_path, [{"type": "status", "status": "running"},
                             {"type": "status", "status": "stopped", "message": "stopped at step 3"}])
    assert runs.run_status(tmp_path) == "stopped"


def test_list_runs_summarises_each_run(tmp_path):
    done = tmp_path / "done"
    _write_events(done, [
        {"type": "status", "status": "running", "time": 1_700_000_000.0},
        {"type": "log", "step": 5, "total_steps": 10, "loss": 2.0, "elapsed_s": 10.0},
        {"type": "log", "step": 10, "total_steps": 10, "loss": 1.5, "elapsed_s": 20.0},
        {"type": "eval", "step": 10, "eval_loss": 1.75},
        {"type": "status", "status": "completed"},
    ])
    (done / "run.json").write_text(json.dumps({"status": "completed", "wall_time_s": 25.5,
                                               "started_at": "2023-11-14T22:13:20+0000"}))
    (done / "adapter").mkdir()
    (done / "adapter" / "adapter_config.json").write_text("{}")
    (done / "eval").mkdir()
    (done / "eval" / "summary.json").write_text("{}")

    live = tmp_path / "live"
    _write_events(live, [{"type": "status", "status": "running", "time": 1_800_000_000.0},
                         {"type": "log", "step": 3, "total_steps": 40, "loss": 3.25, "elapsed_s": 6.0}],
                  tail='{"type": "lo')
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    (tmp_path / ".active.json").write_text("{}")
    (tmp_path / "not-a-run").mkdir()

    rows = {r.name: r for r in runs.list_runs(tmp_path)}
    assert set(rows) == {"done", "live", "broken"}
    d = rows["done"]
    assert (d.status, d.steps, d.total_steps, d.train_loss, d.val_loss, d.wall_time_s) == \
        ("completed", 10, 10, 1.5, 1.75, 25.5)
    assert d.started == "2023-11-14T22:13:20+0000" and d.has_adapter and d.has_eval
    lv = rows["live"]
    assert (lv.status, lv.steps, lv.train_loss, lv.val_loss, lv.has_adapter) == ("running", 3, 3.25, None, False)
    assert "run.json" in rows["broken"].error
    # newest first: live (started 2027), broken (no start recorded: folder time, now), done (2023)
    assert [r.name for r in runs.list_runs(tmp_path)] == ["live", "broken", "done"]


def test_append_event_writes_the_trainers_line_shape(tmp_path, monkeypatch):
    # jobs' "died" line and the trainer's lines share one writer: float Unix time, NaN as null.
    monkeypatch.setattr(runs.time, "time", lambda: 1_700_000_000.12345)
    runs.append_event(tmp_path, {"type": "log", "step": 3, "loss": float("nan")})
    runs.append_event(tmp_path, {"type": "status", "status": "failed", "time": 5.0})
    assert (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines() == [
        '{"type": "log", "step": 3, "loss": null, "time": 1700000000.123}',
        '{"type": "status", "status": "failed", "time": 5.0}',
    ]


def test_atomic_json_write_replaces_whole_and_leaves_no_temp_file(tmp_path):
    from hust_sft.fileio import write_json_atomic

    target = tmp_path / "run.json"
    write_json_atomic(target, {"status": "running", "path": tmp_path / "x"})
    write_json_atomic(target, {"status": "完成"})
    assert json.loads(target.read_text(encoding="utf-8")) == {"status": "完成"}
    (tmp_path / "adapter").mkdir()
    with pytest.raises(OSError):  # os.replace onto a folder fails: the half-done temp file must not linger
        write_json_atomic(tmp_path / "adapter", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "run.json"]


def test_load_settings_reads_run_json_else_settings_json_else_none(tmp_path):
    from hust_sft.settings import RunSettings, to_dict

    assert runs.load_settings(tmp_path) is None                    # neither file: nothing to read
    written = RunSettings()
    written.data.system_prompt, written.model.model = "from settings.json", "org/base-b"
    (tmp_path / "settings.json").write_text(json.dumps(to_dict(written)), encoding="utf-8")
    assert to_dict(runs.load_settings(tmp_path)) == to_dict(written)   # a pending run: settings.json

    (tmp_path / "run.json").write_text(json.dumps(
        {"status": "completed", "settings": {"data": {"system_prompt": "from run.json"},
                                             "model": {"model": "org/base-a"}}}), encoding="utf-8")
    loaded = runs.load_settings(tmp_path)                          # what training wrote wins
    assert isinstance(loaded, RunSettings)
    assert (loaded.data.system_prompt, loaded.model.model) == ("from run.json", "org/base-a")
    assert loaded.train.lr == RunSettings().train.lr               # missing keys: today's defaults

    (tmp_path / "run.json").write_text('{"status": "running"}', encoding="utf-8")   # no settings block yet
    assert runs.load_settings(tmp_path).model.model == "org/base-b"
    (tmp_path / "run.json").write_text("{", encoding="utf-8")
    with pytest.raises(runs.RunFileError, match="run.json"):
        runs.load_settings(tmp_path)
