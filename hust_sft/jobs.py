"""Start, watch, stop and re-attach to the one training subprocess a Space runs at a time.

Training runs as `python train.py --config RUN_DIR/settings.json --output RUN_DIR` in its own session, so a
page reload or a Gradio worker restart never kills it; the UI finds it again through `<runs_dir>/.active.json`
(pid + process start time + run dir), written under an fcntl lock so two clicks cannot start two runs.
No library does this single-job bookkeeping for a detached process, so it is written here by hand on psutil.
"""
from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from hust_sft import runs
from hust_sft.errors import LocalizedError
from hust_sft.fileio import write_json_atomic
from hust_sft.i18n import t
from hust_sft.settings import RunSettings, to_dict

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO_ROOT / "train.py"
ACTIVE_FILE, LOCK_FILE = ".active.json", ".active.lock"
STOP_GRACE_S = 30.0     # seconds between writing STOP and sending SIGTERM
KILL_GRACE_S = 30.0     # seconds between SIGTERM and SIGKILL

_children: dict[int, subprocess.Popen] = {}  # processes this interpreter started, so they can be reaped


class JobError(LocalizedError, RuntimeError):
    """A job cannot start; str() is English, `.text(lang)` any language the UI shows."""


class JobBusy(JobError):
    def __init__(self, job: Job):
        self.job = job
        super().__init__("jobs.busy", run=job.name, pid=job.pid)


@contextmanager
def _locked(runs_dir: Path):
    """Exclusive lock over .active.json across processes (fcntl) and threads (one open file each)."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    with open(runs_dir / LOCK_FILE, "a") as f:
        try:
            import fcntl
        except ImportError:  # not POSIX: Spaces are Linux; elsewhere, single-process use is still safe
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass
class Job:
    pid: int
    run_dir: Path
    started: float
    create_time: float | None
    runs_dir: Path

    @property
    def name(self) -> str:
        return self.run_dir.name

    def record(self) -> dict:
        return {"pid": self.pid, "run_dir": str(self.run_dir), "started": self.started,
                "create_time": self.create_time}

    def returncode(self) -> int | None:
        child = _children.get(self.pid)
        return child.poll() if child is not None else None

    def alive(self) -> bool:
        """True while our trainer runs: same pid, same start time, a cmdline naming train.py and this run."""
        child = _children.get(self.pid)
        if child is not None:  # started by this interpreter: the exit code is the truth (and reaps it)
            return child.poll() is None
        try:
            proc = psutil.Process(self.pid)
            if proc.status() == psutil.STATUS_ZOMBIE:  # exited; its parent has not collected it yet
                return False
            if self.create_time is not None and abs(proc.create_time() - self.create_time) > 1.0:
                return False  # the pid was reused by another process
            cmdline = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False
        return any(Path(a).name == TRAIN_SCRIPT.name for a in cmdline) and str(self.run_dir) in cmdline

    def wait(self, timeout: float | None = None, interval: float = 0.2) -> bool:
        """Wait until the trainer exits; False if it is still running after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.alive():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(interval)
        return True

    def poll(self, log_lines: int = runs.LOG_TAIL_LINES) -> runs.RunProgress:
        """What the Train tab shows: `runs.progress` of the run folder, told whether the trainer lives (a
        trainer that died without a final status gets one first)."""
        alive = self.alive()
        if not alive:
            _record_silent_death(self.run_dir, self.returncode())
        return runs.progress(self.run_dir, alive=alive, log_lines=log_lines)


def _record_silent_death(run_dir: Path, returncode: int | None) -> None:
    """A trainer killed hard (OOM killer, SIGKILL, Space restart) writes no final status: add one, once."""
    try:
        if runs.run_status(run_dir) in runs.FINAL_STATUSES:
            return
    except runs.RunFileError:
        pass
    code = "?" if returncode is None else returncode
    if (run_dir / runs.STOP_FILE).exists():  # asked to stop, then ended by SIGTERM/SIGKILL before saving
        runs.append_event(run_dir, {"type": "status", "status": "stopped",
                                    "message": t("jobs.killed", "en", code=code)})
        return
    runs.append_event(run_dir, {"type": "status", "status": "failed",
                                "message": t("jobs.died", "en", code=code, log=run_dir / runs.TRAIN_LOG)})


def _read_active(runs_dir: Path) -> Job | None:
    try:
        rec = json.loads((runs_dir / ACTIVE_FILE).read_text(encoding="utf-8"))
        return Job(pid=int(rec["pid"]), run_dir=Path(rec["run_dir"]), started=float(rec["started"]),
                   create_time=rec.get("create_time"), runs_dir=runs_dir)
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):  # a corrupt record cannot name a live job: treat as stale
        (runs_dir / ACTIVE_FILE).unlink(missing_ok=True)
        return None


def _active_locked(runs_dir: Path) -> Job | None:
    job = _read_active(runs_dir)
    if job is None:
        return None
    if job.alive():
        return job
    (runs_dir / ACTIVE_FILE).unlink(missing_ok=True)
    if job.run_dir.is_dir():
        _record_silent_death(job.run_dir, job.returncode())
    return None


def active(runs_dir: str | Path) -> Job | None:
    """The running job, found again after a page reload or in a fresh process; clears a stale record."""
    runs_dir = Path(runs_dir).resolve()
    with _locked(runs_dir):
        return _active_locked(runs_dir)


def start(settings: RunSettings, runs_dir: str | Path, *, name: str | None = None,
          env: dict[str, str] | None = None) -> Job:
    """Launch train.py on `settings` in the folder `runs.claim_run_dir` gives (`settings.train.output`, else
    RUNS_DIR/`name`, else a fresh one; RunExistsError for a finished run); JobBusy if one runs.

    `env`: extra environment variables of the training process (the owner's token, `access.training_env`)."""
    runs_dir = Path(runs_dir).resolve()
    if not TRAIN_SCRIPT.is_file():
        raise JobError("jobs.no_script", path=TRAIN_SCRIPT)
    with _locked(runs_dir):
        current = _active_locked(runs_dir)
        if current is not None:
            raise JobBusy(current)
        run_dir = runs.claim_run_dir(runs_dir, settings.train.output, name=name,
                                     resume=settings.train.resume).resolve()
        settings = copy.deepcopy(settings)
        settings.train.output, settings.train.runs_dir = str(run_dir), str(runs_dir)
        config = run_dir / runs.SETTINGS_JSON
        write_json_atomic(config, to_dict(settings))
        cmd = [sys.executable, str(TRAIN_SCRIPT), "--config", str(config), "--output", str(run_dir)]
        env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1", runs.CLAIMED_ENV: str(run_dir)}
        with open(run_dir / runs.TRAIN_LOG, "ab") as log:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        _children[proc.pid] = proc
        try:
            create_time = psutil.Process(proc.pid).create_time()
        except psutil.NoSuchProcess:  # already gone: the record is stale at once and cleared on next look
            create_time = None
        job = Job(pid=proc.pid, run_dir=run_dir, started=time.time(), create_time=create_time,
                  runs_dir=runs_dir)
        write_json_atomic(runs_dir / ACTIVE_FILE, job.record())
        return job


def _signal(job: Job, sig: int) -> None:
    """Send `sig` to the trainer's process group (its own session: pgid == pid), if it is still ours."""
    if not job.alive():  # never signal a pid that now belongs to another process
        return
    try:
        os.killpg(job.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(job.pid, sig)
        except ProcessLookupError:
            pass


def stop(runs_dir: str | Path, *, grace_s: float = STOP_GRACE_S, kill_grace_s: float = KILL_GRACE_S,
         wait: bool = False) -> Job | None:
    """Ask the running trainer to save and exit, escalating: STOP file, then SIGTERM after `grace_s`,
    then SIGKILL after `kill_grace_s` more.

    STOP and SIGTERM both let the trainer save a checkpoint and its adapter (while it is still loading
    they end it at once, status "stopped"); SIGKILL is for a trainer stuck where neither is noticed, and
    loses the steps since the last checkpoint. With wait=False the escalation runs in a background thread
    so the UI returns at once; returns the job, or None when nothing was running.
    """
    job = active(runs_dir)
    if job is None:
        return None
    (job.run_dir / runs.STOP_FILE).touch()

    def escalate():
        if job.wait(grace_s):
            return
        _signal(job, signal.SIGTERM)
        if job.wait(kill_grace_s):
            return
        _signal(job, signal.SIGKILL)
        job.wait(10.0)

    if wait:
        escalate()
    else:
        threading.Thread(target=escalate, name=f"stop-{job.name}", daemon=True).start()
    return job
