"""The training job runner, against the real train.py on the tiny model: start, refuse a second start,
re-attach from a fresh process, stop with a saved adapter, and clean up after a trainer that vanished."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from helpers import job_settings, wait_for
from qa_data import write_qa_jsonl

from hust_sft import jobs, runs
from hust_sft.settings import to_dict

REPO = jobs.REPO_ROOT


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory):
    return write_qa_jsonl(tmp_path_factory.mktemp("data") / "qa.jsonl", 12)


@pytest.fixture(autouse=True)
def no_leftover_trainer(tmp_path):
    """Whatever a test does, it must not leave a trainer running."""
    yield
    job = jobs.active(tmp_path / "runs") if (tmp_path / "runs").is_dir() else None
    if job is not None:
        jobs.stop(tmp_path / "runs", grace_s=30, wait=True)


def test_completed_run(tmp_path, qa_file, tiny_model_dir):
    runs_dir = tmp_path / "runs"
    settings = job_settings(qa_file, tiny_model_dir, max_steps=3)
    job = jobs.start(settings, runs_dir, name="tiny ok")
    assert job.name == "tiny-ok" and job.run_dir == (runs_dir / "tiny-ok").resolve()
    saved = json.loads((job.run_dir / "settings.json").read_text(encoding="utf-8"))
    assert saved["train"]["output"] == str(job.run_dir) and saved["train"]["max_steps"] == 3
    assert {**saved, "train": {**saved["train"], "output": None, "runs_dir": "runs"}} == to_dict(settings)
    assert json.loads((runs_dir / ".active.json").read_text())["pid"] == job.pid

    assert job.wait(timeout=300), "the tiny run did not finish in 300 s"
    state = job.poll()
    assert state.status == "completed", state.log_tail
    assert (state.progress, state.step, state.total_steps, state.eta_s) == (1.0, 3, 3, 0.0)
    assert [e["step"] for e in state.events if e["type"] == "log"] == [1, 2, 3]
    assert runs.has_adapter(job.run_dir) and (job.run_dir / "train.log").stat().st_size > 0
    assert job.returncode() == 0
    assert jobs.active(runs_dir) is None and not (runs_dir / ".active.json").exists()
    [row] = runs.list_runs(runs_dir)
    assert (row.name, row.status, row.steps, row.has_adapter) == ("tiny-ok", "completed", 3, True)


def test_busy_reattach_and_stop(tmp_path, qa_file, tiny_model_dir):
    runs_dir = tmp_path / "runs"
    job = jobs.start(job_settings(qa_file, tiny_model_dir, max_steps=100000), runs_dir, name="long")

    with pytest.raises(jobs.JobBusy) as busy:
        jobs.start(job_settings(qa_file, tiny_model_dir, max_steps=3), runs_dir, name="second")
    assert "long" in str(busy.value) and "long" in busy.value.text("zh")
    assert [p.name for p in runs_dir.iterdir() if not p.name.startswith(".")] == ["long"]  # no 2nd folder

    # A fresh interpreter (a restarted Gradio worker) finds the same job through .active.json.
    code = ("import json, sys; from hust_sft import jobs; j = jobs.active(sys.argv[1]); "
            "print(json.dumps(None if j is None else [j.pid, str(j.run_dir)]))")
    out = subprocess.run([sys.executable, "-c", code, str(runs_dir)], cwd=REPO, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == [job.pid, str(job.run_dir)]

    state = wait_for(lambda: (s := job.poll()).step and s, 300, "the first logged step")
    assert state.status == "running" and state.total_steps == 100000 and 0 < state.progress < 0.01
    assert state.eta_s is not None and state.eta_s > 0

    stopped = jobs.stop(runs_dir, grace_s=120)  # returns at once, as the UI's Stop button needs
    assert stopped is not None and stopped.pid == job.pid
    assert (job.run_dir / "STOP").exists() and job.poll().status in ("stopping", "stopped")
    assert job.wait(timeout=180), "the trainer did not honour STOP"
    state = job.poll()
    assert state.status == "stopped", state.log_tail
    assert runs.has_adapter(job.run_dir) and job.returncode() == 0
    assert jobs.active(runs_dir) is None and jobs.stop(runs_dir) is None


def test_failed_trainer_reports_the_reason(tmp_path, qa_file, tiny_model_dir):
    runs_dir = tmp_path / "runs"
    missing = tmp_path / "no-such-file.jsonl"
    job = jobs.start(job_settings(missing, tiny_model_dir, max_steps=3), runs_dir)
    assert job.wait(timeout=300)
    state = job.poll()
    assert state.status == "failed" and "no-such-file.jsonl" in state.error
    assert job.returncode() != 0 and "no-such-file.jsonl" in state.log_tail
    assert jobs.active(runs_dir) is None


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("pid_of", ["dead", "someone_else", "corrupt"])
def test_stale_record_is_cleared_and_the_run_marked_failed(tmp_path, pid_of):
    runs_dir = tmp_path / "runs"
    run_dir = runs.new_run_dir(runs_dir, "crashed")
    runs.append_event(run_dir, {"type": "status", "status": "running"})
    runs.append_event(run_dir, {"type": "log", "step": 7, "total_steps": 50, "loss": 2.0})
    record = {"pid": _dead_pid() if pid_of == "dead" else os.getpid(), "run_dir": str(run_dir.resolve()),
              "started": time.time(), "create_time": None}
    (runs_dir / ".active.json").write_text("{broken" if pid_of == "corrupt" else json.dumps(record))

    assert jobs.active(runs_dir) is None
    assert not (runs_dir / ".active.json").exists()
    if pid_of != "corrupt":  # the record named the run, so its missing final status is filled in
        status = runs.read_events(run_dir)[-1]
        assert status["status"] == "failed" and "train.log" in status["message"]
        assert runs.run_status(run_dir) == "failed"
        assert runs.read_events(run_dir)[1]["step"] == 7  # earlier events kept
    assert jobs.active(runs_dir) is None  # idempotent: no second failed line
    assert sum(e["type"] == "status" for e in runs.read_events(run_dir)) == (1 if pid_of == "corrupt" else 2)


def test_existing_run_is_never_overwritten(tmp_path, qa_file, tiny_model_dir):
    runs_dir = tmp_path / "runs"
    old = runs.new_run_dir(runs_dir, "done")
    runs.append_event(old, {"type": "status", "status": "completed"})
    before = (old / "events.jsonl").read_bytes()
    settings = job_settings(qa_file, tiny_model_dir, output=str(old))
    with pytest.raises(runs.RunExistsError, match="already holds a run"):
        jobs.start(settings, runs_dir)
    assert (old / "events.jsonl").read_bytes() == before and not (old / "settings.json").exists()
    assert not (runs_dir / ".active.json").exists()


def test_resume_clears_the_stop_left_by_the_stopped_run(tmp_path, qa_file, tiny_model_dir):
    runs_dir = tmp_path / "runs"
    old = runs.new_run_dir(runs_dir, "stopped")
    runs.append_event(old, {"type": "status", "status": "stopped"})
    (old / "STOP").touch()  # the Stop button's request, already honoured
    job = jobs.start(job_settings(qa_file, tiny_model_dir, output=str(old), resume=True), runs_dir)
    assert job.run_dir == old.resolve() and not (old / "STOP").exists()
    assert job.wait(timeout=300)
    # No checkpoint to resume from: the trainer says so (it was not stopped at once), history kept.
    events = runs.read_events(old)
    assert [e.get("status") for e in events] == ["stopped", "running", "failed"]
    assert "checkpoint" in events[-1]["message"]

