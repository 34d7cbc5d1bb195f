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


# ---------------------------------------------------------------------------------------------------
# claim_run_dir: the one place that decides a run's folder (jobs, train() and so train.py all use it)

def test_claim_without_output_or_name_never_shares_a_folder(tmp_path):
    first, second = runs.claim_run_dir(tmp_path), runs.claim_run_dir(tmp_path)  # same second, same base name
    assert first != second and first.is_dir() and second.name == first.name + "-2"


def test_claim_by_name_is_the_sanitised_folder_and_removes_a_stale_stop(tmp_path):
    run_dir = runs.claim_run_dir(tmp_path, name="LoRA r=16 (test)")
    assert run_dir == tmp_path / "LoRA-r-16-test" and run_dir.is_dir()
    (run_dir / "STOP").touch()  # left by nobody running here: it would stop the next trainer at once
    (run_dir / "settings.json").write_text("{}")  # a pending run (jobs writes it before starting)
    assert runs.claim_run_dir(tmp_path, str(run_dir)) == run_dir
    assert sorted(p.name for p in run_dir.iterdir()) == ["settings.json"]
    with pytest.raises(runs.RunNameError, match="run name"):
        runs.claim_run_dir(tmp_path, name="../..")


@pytest.mark.parametrize("file", ["events.jsonl", "run.json"])
def test_claim_refuses_a_folder_holding_a_run_unless_resuming(tmp_path, file):
    from hust_sft.i18n import t

    run_dir = tmp_path / "done"
    run_dir.mkdir()
    (run_dir / file).write_text('{"type": "status", "status": "completed"}\n' if file == "events.jsonl"
                                else '{"status": "completed"}')
    (run_dir / "STOP").touch()
    with pytest.raises(runs.RunExistsError) as err:
        runs.claim_run_dir(tmp_path, name="done")
    assert str(err.value) == (f"{run_dir} already holds a run ({file} exists); training into it would overwrite "
                              "its adapter. Choose another run name (--output), or resume that run (--resume, "
                              "or Resume on the Train tab).")
    assert err.value.text("zh") == t("runs.error.output_exists", "zh", path=run_dir, file=file)
    assert "--resume" in err.value.text("zh") and isinstance(err.value, ValueError)
    assert sorted(p.name for p in run_dir.iterdir()) == ["STOP", file]  # refused: nothing touched
    assert runs.claim_run_dir(tmp_path, run_dir, resume=True) == run_dir
    assert sorted(p.name for p in run_dir.iterdir()) == [file]          # resumed: only the stale STOP goes


@pytest.mark.parametrize("status", ["failed", "stopped"])
def test_claim_starts_afresh_a_run_that_ended_before_its_first_step(tmp_path, status):
    run_dir = tmp_path / "typo"
    _write_events(run_dir, [{"type": "status", "status": "running"}, {"type": "status", "status": status}])
    (run_dir / "run.json").write_text(json.dumps({"status": status}))
    (run_dir / "settings.json").write_text("{}")
    (run_dir / "train.log").write_text("error: no such file\n")
    assert runs.claim_run_dir(tmp_path, run_dir) == run_dir
    assert sorted(p.name for p in run_dir.iterdir()) == ["train.log"]  # the log of the mistake is kept
    # One logged step is something to keep: the same folder is refused.
    _write_events(run_dir, [{"type": "status", "status": "running"}, {"type": "log", "step": 1},
                            {"type": "status", "status": status}])
    with pytest.raises(runs.RunExistsError):
        runs.claim_run_dir(tmp_path, run_dir)


def test_a_folder_the_job_runner_claimed_is_only_checked(tmp_path, monkeypatch):
    run_dir = runs.claim_run_dir(tmp_path, name="job")
    (run_dir / "STOP").touch()  # the Stop button, pressed while the trainer was still starting
    monkeypatch.setenv(runs.CLAIMED_ENV, str(run_dir.resolve()))
    assert runs.claim_run_dir(tmp_path, run_dir) == run_dir and (run_dir / "STOP").exists()
    _write_events(run_dir, [{"type": "status", "status": "completed"}])
    with pytest.raises(runs.RunExistsError):
        runs.claim_run_dir(tmp_path, run_dir)


# ---------------------------------------------------------------------------------------------------
# progress: the one account of where a run is

def test_progress_of_a_finished_run(tmp_path):
    _write_events(tmp_path, [
        {"type": "status", "status": "running"},
        {"type": "log", "step": 10, "total_steps": 20, "loss": 2.0, "tokens_per_s": 800.0, "elapsed_s": 60,
         "eta_s": 60, "peak_memory_mb": 1540.0},
        {"type": "best", "key": "training.best.no_validation", "params": {}},
        {"type": "status", "status": "completed", "step": 12, "message": "done"}])
    (tmp_path / "train.log").write_text("a\nb\nc\n")
    p = runs.progress(tmp_path, log_lines=2)
    assert (p.name, p.status, p.alive, p.live, p.step, p.total_steps, p.progress, p.eta_s) == (
        tmp_path.name, "completed", False, False, 12, 20, 1.0, 0.0)
    assert (p.elapsed_s, p.loss, p.tokens_per_s, p.peak_memory_mb, p.error) == (60, 2.0, 800.0, 1540.0, None)
    assert p.best["key"] == "training.best.no_validation" and p.log_tail == "b\nc" and len(p.events) == 4


def test_progress_of_a_live_run_depends_on_the_trainer_being_alive(tmp_path):
    assert runs.progress(tmp_path, alive=True).status == "starting"
    _write_events(tmp_path, [{"type": "status", "status": "running"},
                             {"type": "log", "step": 5, "total_steps": 20, "elapsed_s": 30.0}])
    live = runs.progress(tmp_path, alive=True)
    assert (live.status, live.progress, live.eta_s) == ("running", 0.25, 90.0)  # from elapsed when not logged
    (tmp_path / "STOP").touch()
    assert runs.progress(tmp_path, alive=True).status == "stopping"
    # From the folder alone a killed trainer looks like a running one: no ETA is made up for it.
    dead = runs.progress(tmp_path)
    assert (dead.status, dead.live, dead.eta_s) == ("running", True, None)


def test_progress_names_the_failure_or_the_unreadable_file(tmp_path):
    _write_events(tmp_path, [{"type": "status", "status": "failed", "message": "no such file: qa.jsonl"}])
    assert runs.progress(tmp_path).error == "no such file: qa.jsonl"
    (tmp_path / "events.jsonl").write_text('{"type": "log"}\nnot json\n{"type": "log"}\n', encoding="utf-8")
    broken = runs.progress(tmp_path)
    assert broken.events == [] and "events.jsonl, line 2" in broken.error


def test_the_runs_table_row_is_the_progress_the_train_tab_shows(tmp_path):
    """summarize_run takes status, step, loss and time from `progress` (one derivation): a run stopped between
    two log lines shows the step its final status line recorded, and reading it skips the train.log tail."""
    run = tmp_path / "stopped"
    _write_events(run, [{"type": "status", "status": "running", "time": 1_700_000_000.0},
                        {"type": "log", "step": 10, "total_steps": 40, "loss": 2.5, "elapsed_s": 30.0},
                        {"type": "status", "status": "stopped", "step": 13, "message": "stopped at step 13"}])
    (run / "train.log").write_text("a\nb\n")
    now, [row] = runs.progress(run), runs.list_runs(tmp_path)
    assert (row.status, row.steps, row.total_steps, row.train_loss, row.wall_time_s) == ("stopped", 13, 40, 2.5, 30.0)
    assert (now.status, now.step, now.total_steps, now.loss, now.elapsed_s) == ("stopped", 13, 40, 2.5, 30.0)
    assert row.error is None and now.error == "stopped at step 13"   # the table names only a failure's reason
    assert now.log_tail == "a\nb" and runs.progress(run, log_lines=0).log_tail == ""
    (run / "events.jsonl").write_text('{"type": "log"}\nnot json\n', encoding="utf-8")
    [row] = runs.list_runs(tmp_path)
    assert row.status == "unknown" and "events.jsonl, line 2" in row.error and row.steps is None


def test_log_tail(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)) + "step 1/9\rstep 5/9\rstep 9/9\n")
    assert runs.tail(log, 3) == "line 98\nline 99\nstep 9/9"
    assert runs.tail(tmp_path / "missing.log") == ""


def test_event_log_hands_the_console_what_the_file_holds(tmp_path):
    seen = []
    log = runs.EventLog(tmp_path / "events.jsonl", on_event=seen.append)
    log.write({"type": "eval", "step": 3, "eval_loss": float("nan"), "time": 1.0})
    assert seen == [{"type": "eval", "step": 3, "eval_loss": None, "time": 1.0}]
    assert runs.read_events(tmp_path) == seen
