"""Issue 9, item 15 and "Prove it": faults that must not lose work or duplicate it.

- kill -9 mid-epoch, then --resume: no step lost beyond the last checkpoint; run.json keeps its first
  started_at and adds one segment per process;
- Stop works while the run is still loading, and escalates STOP -> SIGTERM -> SIGKILL for a stuck trainer;
- two simultaneous jobs.start calls make exactly one run;
- 300 concurrent votes from 6 processes make 300 rows.
Everything runs the real train.py / jobs / SQLite code on the tiny model; signals are real.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from helpers import job_settings, wait_for
from qa_data import write_qa_jsonl

from hust_sft import jobs, runs
from hust_sft.i18n import t
from hust_sft.settings import RunSettings
from hust_sft.training import TIME_FORMAT, train

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)}


def make_settings(data, model, **overrides) -> RunSettings:
    return job_settings(data, model, **{"batch_size": 2, **overrides})


def log_steps(run_dir: Path) -> list[int]:
    try:
        return [e["step"] for e in runs.read_events(run_dir) if e.get("type") == "log"]
    except (OSError, runs.RunFileError):
        return []


def statuses(run_dir: Path) -> list[dict]:
    return [e for e in runs.read_events(run_dir) if e.get("type") == "status"]


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory):
    return write_qa_jsonl(tmp_path_factory.mktemp("data") / "qa.jsonl", 40)


@pytest.fixture
def runs_dir(tmp_path):
    """A runs folder whose trainer, if a test leaves one, is killed at the end."""
    folder = tmp_path / "runs"
    yield folder
    job = jobs.active(folder) if folder.is_dir() else None
    if job is not None:
        jobs.stop(folder, grace_s=0, kill_grace_s=5, wait=True)


# ---- kill -9 mid-epoch, then resume --------------------------------------------------------------

def test_kill_9_mid_epoch_then_resume_loses_no_checkpointed_step(tmp_path, qa_file, tiny_model_dir):
    out = tmp_path / "run"
    cmd = [sys.executable, "train.py", "--data", str(qa_file), "--model", str(tiny_model_dir), "--output",
           str(out), "--system-prompt", "S", "--val-ratio", "0", "--test-ratio", "0", "--max-length", "64",
           "--batch-size", "2", "--grad-accum", "1", "--logging-steps", "1", "--epochs", "1",
           "--save-steps", "3", "--no-eval-each-epoch", "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # 40 records / batch 2 = about 20 steps in the one epoch (with the default retrieval training a record
        # whose passages make it longer than --max-length is dropped, so the run's own total is read below).
        # Freeze the trainer the moment it is past the second checkpoint, then kill it: mid-epoch, with
        # unsaved steps after checkpoint-6.
        wait_for(lambda: max(log_steps(out), default=0) >= 7 or proc.poll() is not None, 600, "step 7",
                 interval=0.02)
        os.kill(proc.pid, signal.SIGSTOP)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = log_steps(out)
    total = next(e["total_steps"] for e in runs.read_events(out) if e.get("type") == "log")
    assert 18 <= total <= 20
    last_ckpt = max(int(p.name.split("-")[1]) for p in (out / "checkpoints").glob("checkpoint-*"))
    assert 6 <= last_ckpt < max(before) < total  # killed mid-epoch, with steps after the last checkpoint
    first = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert first["status"] == "running"  # a hard kill writes nothing more

    resumed = subprocess.run([sys.executable, "train.py", "--config", str(out / "settings.json"), "--output",
                              str(out), "--resume"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = log_steps(out)[len(before):]
    assert after == list(range(last_ckpt + 1, total + 1))  # continues right after the checkpoint, to the end
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "completed" and record["global_step"] == total
    assert record["resumed_from"].endswith(f"checkpoint-{last_ckpt}")
    assert record["started_at"] == first["started_at"]
    segments = record["segments"]
    assert [s["status"] for s in segments] == ["killed", "completed"]
    assert segments[0]["started_at"] == first["started_at"]
    assert record["wall_time_s"] == pytest.approx(sum(s["wall_s"] for s in segments), abs=0.011)
    for seg in segments:
        begin, end = (datetime.strptime(seg[k], TIME_FORMAT) for k in ("started_at", "ended_at"))
        assert begin <= end and seg["wall_s"] >= 0
    assert datetime.strptime(segments[0]["ended_at"], TIME_FORMAT) <= datetime.strptime(
        segments[1]["started_at"], TIME_FORMAT)


# ---- stop while loading, and escalation ------------------------------------------------------------

def test_stop_file_while_loading_stops_before_training(tmp_path, qa_file, tiny_model_dir):
    """In-process: the STOP file appears while 'the model loads' (a slow on_data); training never starts."""
    out = tmp_path / "run"
    settings = make_settings(qa_file, tiny_model_dir, max_steps=3)

    def slow_loading(bundle):
        (out / runs.STOP_FILE).touch()
        time.sleep(30)  # the watcher turns STOP into SIGTERM within half a second and interrupts this
        raise AssertionError("the stop did not interrupt loading")

    handler = signal.getsignal(signal.SIGTERM)
    result = train(settings, run_dir=out, on_data=slow_loading)
    assert signal.getsignal(signal.SIGTERM) == handler  # train() put the previous handler back
    assert result.status == "stopped" and result.adapter_dir is None and result.global_step == 0
    assert not (out / runs.ADAPTER_DIR).exists() and log_steps(out) == []
    assert statuses(out)[-1] == {"type": "status", "status": "stopped",
                                 "message": t("training.status.stopped_loading", "en"),
                                 "time": statuses(out)[-1]["time"]}
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "stopped" and [s["status"] for s in record["segments"]] == ["stopped"]


def test_jobs_stop_right_after_start_stops_the_loading_run(runs_dir, qa_file, tiny_model_dir):
    job = jobs.start(make_settings(qa_file, tiny_model_dir, max_steps=3), runs_dir, name="early")
    assert jobs.stop(runs_dir, grace_s=120, kill_grace_s=30, wait=True) is not None
    assert not job.alive() and job.returncode() == 0  # left by itself, on the STOP file
    assert log_steps(job.run_dir) == []  # never trained
    assert statuses(job.run_dir)[-1]["status"] == "stopped"
    assert jobs.active(runs_dir) is None


def test_a_stuck_trainer_is_killed_after_the_grace_periods(runs_dir, qa_file, tiny_model_dir):
    """SIGSTOP freezes the trainer so it can neither see STOP nor handle SIGTERM: only SIGKILL ends it."""
    job = jobs.start(make_settings(qa_file, tiny_model_dir, save_steps=2, epochs=50.0), runs_dir, name="stuck")
    wait_for(lambda: (job.run_dir / "checkpoints" / "checkpoint-2").is_dir(), 600, "checkpoint-2", interval=0.2)
    os.kill(job.pid, signal.SIGSTOP)
    jobs.stop(runs_dir, grace_s=1, kill_grace_s=1, wait=True)
    assert not job.alive() and job.returncode() == -signal.SIGKILL
    assert jobs.active(runs_dir) is None  # the record is cleared and the death written down, once
    final = statuses(job.run_dir)[-1]
    assert final["status"] == "stopped"
    assert final["message"] == t("jobs.killed", "en", code=-signal.SIGKILL)
    assert runs.run_status(job.run_dir) == "stopped"
    assert list((job.run_dir / "checkpoints").glob("checkpoint-*"))  # resumable from there


# ---- one run at a time ---------------------------------------------------------------------------

STARTER = """
import sys, time
from pathlib import Path
from hust_sft import jobs
from hust_sft.settings import RunSettings, set_values
runs_dir, data, model, go = sys.argv[1:5]
settings = set_values(RunSettings(), {"data": data, "model": model, "system_prompt": "S", "val_ratio": 0.0,
    "test_ratio": 0.0, "max_length": 64, "batch_size": 2, "max_steps": 2, "device": "cpu",
    "eval_each_epoch": False})
while not Path(go).exists():
    time.sleep(0.001)
try:
    job = jobs.start(settings, runs_dir)
    print("started", job.pid, job.run_dir)
except jobs.JobBusy as e:
    print("busy", e.job.pid)
"""


def test_two_simultaneous_starts_make_exactly_one_run(runs_dir, tmp_path, qa_file, tiny_model_dir):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", STARTER, str(runs_dir), str(qa_file), str(tiny_model_dir),
                               str(go)], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    time.sleep(3)  # both are importing and waiting for the signal
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    lines = sorted(out.strip().splitlines()[-1] for out, _ in outs)
    assert [line.split()[0] for line in lines] == ["busy", "started"], outs
    busy_pid, started_pid = int(lines[0].split()[1]), int(lines[1].split()[1])
    assert busy_pid == started_pid  # the refused call names the run that did start
    assert [p.name for p in runs_dir.iterdir() if p.is_dir()] == [Path(lines[1].split()[2]).name]
    job = jobs.active(runs_dir)
    if job is not None:
        assert job.pid == started_pid
        job.wait(300)


# ---- votes ---------------------------------------------------------------------------------------

VOTER = """
import sys, time
from pathlib import Path
from hust_sft.arena import Arena
db, go, voter, ids = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
arena = Arena(db)
while not Path(go).exists():
    time.sleep(0.001)
for i, pair_id in enumerate(ids):
    arena.vote(pair_id, ("A", "B", "tie", "both_bad")[i % 4], voter)
print(len(ids))
"""


def test_300_concurrent_votes_from_6_processes_make_300_rows(tmp_path):
    from hust_sft.arena import Arena

    db = tmp_path / "arena.sqlite"
    arena = Arena(db)
    ids = [arena.create_pair(f"q{i}", "base", "tuned", base_name="base", tuned_name="tuned", adapter="run-1",
                             seed=i).id for i in range(300)]
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", VOTER, str(db), str(go), f"voter-{k}",
                               ",".join(ids[k::6])], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in range(6)]
    time.sleep(2)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err[-1000:] for _, err in outs]
    assert [int(out) for out, _ in outs] == [50] * 6
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*), COUNT(DISTINCT pair_id) FROM votes").fetchone() == (300, 300)
        per_voter = dict(con.execute("SELECT voter, COUNT(*) FROM votes GROUP BY voter").fetchall())
    assert per_voter == {f"voter-{k}": 50 for k in range(6)}
    assert arena.results()[0]["votes"] == 300
