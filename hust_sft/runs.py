"""Reading run directories (see docs/ARCHITECTURE.md, "Run directory") for the UI, jobs and publishing.

Everything here only reads, except `claim_run_dir` / `new_run_dir` (the one place that decides and prepares
a run's folder) and `append_event`. A run that is being written while we read it is normal: a half-written
last line of events.jsonl is skipped, not an error. `progress(run_dir)` is the one account of where a run
is (status, step, ETA, final message) that the Train tab, the job runner and the console read.
"""
from __future__ import annotations

import json
import math
import os
import re
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hust_sft.errors import LocalizedError
from hust_sft.settings import RunSettings, SettingsError, from_dict

FINAL_STATUSES = ("completed", "stopped", "failed")
MAX_NAME_LENGTH = 64

EVENTS, RUN_JSON, SETTINGS_JSON, STOP_FILE, TRAIN_LOG = ("events.jsonl", "run.json", "settings.json",
                                                         "STOP", "train.log")
ADAPTER_DIR, EVAL_DIR = "adapter", "eval"


class RunFileError(LocalizedError, ValueError):
    """A run file exists but cannot be read; the message names the file and line."""


class RunNameError(SettingsError):
    """A run name that cannot become a folder name (a SettingsError: the run name is a setting of the UI)."""


class RunDirError(LocalizedError, RuntimeError):
    """No run folder could be created."""


class RunExistsError(SettingsError):
    """The folder asked for (--output, or the Train tab's run name) already holds a run, and this is not a
    resume: training into it would overwrite its adapter. A SettingsError: the output is a setting."""


def sanitize_run_name(name: str) -> str:
    """A folder name safe on every OS: letters (any script), digits, '-', '_', '.'; no '/', no leading dot.

    Spaces and other characters become '-', so "LoRA r=16 (test)" -> "LoRA-r-16-test".
    """
    if not isinstance(name, str):
        raise RunNameError("runs.error.name_type", type=type(name).__name__)
    text = unicodedata.normalize("NFKC", name).strip()
    text = re.sub(r"[^\w.\-]+", "-", text)          # \w: letters and digits of any script, and '_'
    text = re.sub(r"\.{2,}", ".", text)             # no '..' anywhere
    text = re.sub(r"-{2,}", "-", text)
    text = text.lstrip(".-_").rstrip(".-")[:MAX_NAME_LENGTH].rstrip(".-")
    if not text:
        raise RunNameError("runs.error.bad_name", name=name)
    return text


def new_run_dir(runs_dir: str | Path, name: str | None = None) -> Path:
    """Create and return a fresh, empty run folder; never reuses an existing one (adds -2, -3, ...)."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    base = sanitize_run_name(name) if name else time.strftime("run-%Y%m%d-%H%M%S")
    for i in range(1, 10_000):
        candidate = runs_dir / (base if i == 1 else f"{base}-{i}")
        try:
            candidate.mkdir()  # atomic: two callers can never get the same folder
            return candidate
        except FileExistsError:
            continue
    raise RunDirError("runs.error.no_free_name", runs_dir=runs_dir, name=base)


def named_run_dir(runs_dir: str | Path, name: str) -> Path:
    """The folder a run name (the Train tab's box, `jobs.start(name=...)`) stands for: RUNS_DIR/<sanitized>."""
    return Path(runs_dir) / sanitize_run_name(name)


# Set by the job runner in the trainer's environment to the folder it claimed (under its lock) for that
# trainer, so the trainer's own `claim_run_dir` only checks it: claiming again would delete a STOP the Stop
# button wrote while the trainer was still starting.
CLAIMED_ENV = "HUST_SFT_CLAIMED_RUN_DIR"


def check_run_dir(run_dir: str | Path, resume: bool) -> None:
    """RunExistsError when `run_dir` holds a run (events.jsonl or run.json) and this is not a resume."""
    run_dir = Path(run_dir)
    if resume:
        return
    for name in (EVENTS, RUN_JSON):
        if (run_dir / name).exists():
            raise RunExistsError("runs.error.output_exists", path=run_dir, file=name)


def claim_run_dir(runs_dir: str | Path, output: str | Path | None = None, *, name: str | None = None,
                  resume: bool = False) -> Path:
    """The one decision of where a run goes; returns the folder, created and ready for a trainer.

    - `output` (--output, a resumed run): that folder; else `name`: `named_run_dir(runs_dir, name)`; else a
      fresh `new_run_dir(runs_dir)` (never one another run took).
    - A named folder that holds a run is refused (RunExistsError) unless resuming, except a run that failed
      or was stopped before its first step (`failed_before_first_step`): nothing to keep, so its records are
      removed and the corrected command simply runs.
    - A STOP file left there is removed: no trainer runs in the folder yet, so it asked an earlier one to stop
      (a stopped run being resumed must not stop at once).
    A folder the job runner already claimed for this process (CLAIMED_ENV) is only checked.
    """
    if output:
        run_dir = Path(output)
    elif name:
        run_dir = named_run_dir(runs_dir, name)
    else:
        return new_run_dir(runs_dir)
    if os.environ.get(CLAIMED_ENV) == str(run_dir.resolve()):
        check_run_dir(run_dir, resume)
        return run_dir
    if not resume and failed_before_first_step(run_dir):
        for file in (EVENTS, RUN_JSON, SETTINGS_JSON):
            (run_dir / file).unlink(missing_ok=True)
    check_run_dir(run_dir, resume)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / STOP_FILE).unlink(missing_ok=True)
    return run_dir


def read_events(run_dir: str | Path) -> list[dict]:
    """All events of a run, in order; [] when there are none yet.

    The trainer appends one line per event, so a reader may see the last line half written: it is skipped.
    A bad line anywhere else is corruption and raises RunFileError naming the line.
    """
    path = Path(run_dir) / EVENTS
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    events = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines):  # last piece without a trailing newline: still being written
                break
            raise RunFileError("runs.error.bad_line", path=path, line=i, reason=e.msg) from None
        if not isinstance(event, dict):
            raise RunFileError("runs.error.not_object", path=path, line=i, type=type(event).__name__)
        events.append(event)
    return events


class EventLog:
    """Appends one JSON object per line to events.jsonl and hands each to an optional in-process listener.

    The one writer of events.jsonl (the trainer's callback, and jobs for a trainer that died silently), so
    every line has the same shape: a float `time` (Unix seconds) and no NaN/inf, which JSON cannot hold.
    """

    def __init__(self, path: str | Path | None, on_event=None, enabled: bool = True):
        self.path = Path(path) if path else None
        self.on_event = on_event
        self.enabled = enabled

    def write(self, event: dict) -> dict:
        event = {**event, "time": event.get("time", round(time.time(), 3))}
        if not self.enabled:
            return event
        clean = _finite(event)  # the console sees what the file holds: plain JSON numbers, null for NaN/inf
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(clean, ensure_ascii=False) + "\n")
                f.flush()
        if self.on_event is not None:
            self.on_event(clean)
        return event

    def status(self, status: str, message: str = "", **extra) -> dict:
        return self.write({"type": "status", "status": status, "message": message, **extra})

    def notify(self, event: dict) -> None:
        """Hand `event` to the listener only, not to events.jsonl (a `step` tick for train.py's progress bar)."""
        if self.enabled and self.on_event is not None:
            self.on_event(_finite(event))


def _finite(event: dict) -> dict:
    """JSON has no NaN/inf; a diverged loss is written as null rather than breaking every reader."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in event.items()}


def append_event(run_dir: str | Path, event: dict) -> None:
    """Append one event line (used by jobs to record the end of a trainer that died without saying so)."""
    EventLog(Path(run_dir) / EVENTS).write(event)


def read_json(path: str | Path) -> dict | None:
    """A JSON object file, or None when it does not exist."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunFileError("runs.error.bad_json", path=path, reason=str(e)) from None
    if not isinstance(data, dict):
        raise RunFileError("runs.error.not_object_file", path=path, type=type(data).__name__)
    return data


def read_run_json(run_dir: str | Path) -> dict | None:
    return read_json(Path(run_dir) / RUN_JSON)


def read_settings_json(run_dir: str | Path) -> dict | None:
    return read_json(Path(run_dir) / SETTINGS_JSON)


def load_settings(run_dir: str | Path) -> RunSettings | None:
    """The settings a run trained with: run.json's "settings" block, else settings.json; None when the folder
    has neither. Keys a run did not write take today's defaults (`settings.from_dict`).

    run.json first: training rewrites its block on every start (a `--resume` with a changed flag included),
    while settings.json is written once, before the first start; it is all a pending run has.
    Raises RunFileError for an unreadable file, SettingsError for a value that is no longer valid.
    """
    data = settings_block(run_dir)
    return from_dict(RunSettings, data) if data is not None else None


def settings_block(run_dir: str | Path) -> dict | None:
    """The settings a run trained with as written (run.json's "settings" block, else settings.json), before
    today's defaults fill the gaps: what `load_settings` parses, for a caller that must also see which groups
    a run did not write (`retrieval.for_run`: a run from before retrieval existed trained without it)."""
    data = (read_run_json(run_dir) or {}).get("settings")
    if not isinstance(data, dict):
        data = read_settings_json(run_dir)
    return data if isinstance(data, dict) else None


def _last_status_event(events: list[dict]) -> dict | None:
    return next((e for e in reversed(events) if e.get("type") == "status"), None)


def run_status(run_dir: str | Path, events: list[dict] | None = None) -> str:
    """'completed' / 'stopped' / 'failed' / 'running' / 'pending' (settings written, trainer not started
    yet) / 'unknown'. A final status in events.jsonl or run.json wins over 'running'."""
    run_dir = Path(run_dir)
    events = read_events(run_dir) if events is None else events
    last = _last_status_event(events)
    if last and last.get("status") in FINAL_STATUSES:
        return last["status"]
    run = read_run_json(run_dir) or {}
    if run.get("status") in FINAL_STATUSES:
        return run["status"]
    if last or events or run:
        return "running"
    if (run_dir / SETTINGS_JSON).is_file():
        return "pending"
    return "unknown"


def has_adapter(run_dir: str | Path) -> bool:
    return (Path(run_dir) / ADAPTER_DIR / "adapter_config.json").is_file()


def checkpoint_complete(path: Path) -> bool:
    """The Trainer writes a checkpoint's trainer_state.json last: a process killed while saving (a Space
    restart, the OOM killer) leaves a folder without it, or with half of it, which cannot be resumed from."""
    try:
        json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        return True
    except (OSError, ValueError):
        return False


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """RUN_DIR/checkpoints/checkpoint-N with the largest N that was saved completely, or None.

    transformers' get_last_checkpoint takes the largest N whatever state it is in, so a run killed while
    saving could not be resumed at all.
    """
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return None
    found = [(int(p.name.split("-")[-1]), p) for p in folder.iterdir()
             if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]
    for _, path in sorted(found, reverse=True):
        if checkpoint_complete(path):
            return path
    return None


def failed_before_first_step(run_dir: str | Path) -> bool:
    """A run that failed (a mistyped --data, a missing package) or was stopped before its first step, leaving
    nothing to keep:
    no logged step, no checkpoint, no adapter. Training into its folder again starts it afresh."""
    run_dir = Path(run_dir)
    if has_adapter(run_dir) or latest_checkpoint(run_dir) is not None:
        return False
    try:
        events = read_events(run_dir)
        status = run_status(run_dir, events)
    except RunFileError:
        return False
    # "stopped" too: a run stopped while its data or model were loading never reached a step either.
    return status in ("failed", "stopped") and not any(e.get("type") in ("log", "eval") for e in events)


PERSISTENT_ROOT = Path("/data")  # a Hugging Face Space's persistent storage, when the Space has it


def default_runs_dir(environ=None, persistent_root: Path = PERSISTENT_ROOT) -> Path:
    """HUST_SFT_RUNS, else /data/runs when persistent storage is mounted (a Space restart wipes everything
    else), else ./runs."""
    environ = os.environ if environ is None else environ
    if environ.get("HUST_SFT_RUNS"):
        return Path(environ["HUST_SFT_RUNS"])
    if persistent_root.is_dir() and os.access(persistent_root, os.W_OK):
        return persistent_root / "runs"
    return Path("runs")


def is_persistent(runs_dir: str | Path, persistent_root: Path = PERSISTENT_ROOT) -> bool:
    """Whether `runs_dir` lies on the persistent storage (survives a Space restart)."""
    try:
        return Path(runs_dir).resolve().is_relative_to(persistent_root.resolve()) and persistent_root.is_dir()
    except OSError:
        return False


def resumable(run_dir: str | Path) -> bool:
    """A run that was interrupted (its process died in a restart or a crash: status 'running' with nobody
    running it, or 'failed'; or stopped on request) and left a checkpoint to continue from."""
    try:
        status = run_status(run_dir)
    except RunFileError:
        return False
    return status in ("running", "failed", "stopped") and latest_checkpoint(run_dir) is not None


LIVE_STATUSES = ("starting", "running", "stopping")
LOG_TAIL_LINES = 40


@dataclass
class RunProgress:
    """Where a run is, from its folder: what the Train tab draws and the job runner reports.

    `status` is `run_status`'s; with `alive` (a trainer process is known to run in the folder, which only
    `jobs` can tell) it is "starting" (no event yet), "running" or "stopping" (STOP written).
    """
    name: str
    run_dir: str
    status: str
    alive: bool = False
    step: int | None = None          # the last logged step, or the final status line's when that is later
    total_steps: int | None = None
    progress: float | None = None    # step / total_steps in [0, 1]; 1.0 once completed
    eta_s: float | None = None       # while alive; 0.0 once the run is over; None when nobody knows
    elapsed_s: float | None = None
    loss: float | None = None
    tokens_per_s: float | None = None
    peak_memory_mb: float | None = None
    error: str | None = None         # the final message of a failed or stopped run, or an unreadable file
    unreadable: bool = False         # `error` is an unreadable events.jsonl's or run.json's, not the run's
    best: dict | None = None         # the last "best" event: which adapter was kept and why
    events: list[dict] = field(default_factory=list, repr=False)
    log_tail: str = ""

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


def tail(path: Path, n: int = LOG_TAIL_LINES, max_bytes: int = 256 * 1024) -> str:
    """Last `n` lines of a log; a progress bar's carriage-return redraws collapse to their last state."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
            data = f.read()
    except FileNotFoundError:
        return ""
    lines = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in data.decode("utf-8", "replace").split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines[-n:])


def progress(run_dir: str | Path, *, alive: bool = False, log_lines: int = LOG_TAIL_LINES) -> RunProgress:
    """The one derivation of a run's status and progress from events.jsonl, run.json, STOP and train.log.

    `alive`: whether a trainer process runs in the folder (`jobs.Job.poll` knows; a folder alone cannot
    tell a running trainer from a killed one). An unreadable events.jsonl gives no events and its error.
    `log_lines=0`: no train.log tail (the runs table reads every run's progress).
    """
    run_dir = Path(run_dir)
    error = None
    try:
        events = read_events(run_dir)
    except RunFileError as e:
        events, error = [], str(e)
    if alive:
        status = "stopping" if (run_dir / STOP_FILE).exists() else ("running" if events else "starting")
    else:
        try:
            status = run_status(run_dir, events)
        except RunFileError as e:
            status, error = "unknown", error or str(e)
    unreadable = error is not None
    logs = [e for e in events if e.get("type") == "log"]
    last = logs[-1] if logs else {}
    final = _last_status_event(events) or {}
    # The final status line carries the last step, which logging every N steps may not have reached.
    steps = [s for s in (last.get("step"), final.get("step")) if s is not None]
    step, total = (max(steps) if steps else None), last.get("total_steps")
    fraction = 1.0 if status == "completed" else (min(step / total, 1.0) if step and total else None)
    if alive:
        eta = last.get("eta_s")
        if eta is None and fraction and last.get("elapsed_s"):
            eta = last["elapsed_s"] * (1 - fraction) / fraction
    else:
        eta = 0.0 if status in FINAL_STATUSES else None
    if error is None and status in ("failed", "stopped"):
        error = final.get("message")
    best = next((e for e in reversed(events) if e.get("type") == "best" and e.get("key")), None)
    elapsed, peak, tps = last.get("elapsed_s"), last.get("peak_memory_mb"), last.get("tokens_per_s")
    if not alive and status in FINAL_STATUSES:
        # A run over before its first logging step has no log line: its figures are run.json's, so a
        # finished run never reads "Step 2 / ? (0%) · elapsed –" beside "completed".
        try:
            record = read_run_json(run_dir) or {}
        except RunFileError:
            record = {}
        step = step if step is not None else record.get("global_step")
        total = total or record.get("total_steps") or (step if status == "completed" else None)
        fraction = 1.0 if status == "completed" else (min(step / total, 1.0) if step and total else fraction)
        elapsed = record.get("wall_time_s") if record.get("wall_time_s") is not None else elapsed
        peak = record.get("peak_memory_mb") if record.get("peak_memory_mb") is not None else peak
        seen, runtime = record.get("tokens_seen"), record.get("train_runtime_s")
        if tps is None and seen and runtime:
            tps = round(seen / runtime, 1)
    return RunProgress(name=run_dir.name, run_dir=str(run_dir), status=status, alive=alive, step=step,
                       total_steps=total, progress=fraction, eta_s=eta, elapsed_s=elapsed,
                       loss=last.get("loss"), tokens_per_s=tps,
                       peak_memory_mb=peak, error=error, unreadable=unreadable, best=best,
                       events=events, log_tail=tail(run_dir / TRAIN_LOG, log_lines) if log_lines else "")


@dataclass
class RunSummary:
    name: str
    path: str
    status: str
    started: str | None = None
    steps: int | None = None
    total_steps: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    wall_time_s: float | None = None
    has_adapter: bool = False
    has_eval: bool = False
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC).astimezone().isoformat(timespec="seconds")
    return str(value)


def summarize_run(run_dir: str | Path) -> RunSummary:
    """One row of the runs table: run.json's final figures where the trainer wrote them, else the run's
    progress (`progress`: the latest events.jsonl lines, so a running or killed run still shows where it is)."""
    run_dir = Path(run_dir)
    row = RunSummary(name=run_dir.name, path=str(run_dir), status="unknown", has_adapter=has_adapter(run_dir),
                     has_eval=(run_dir / EVAL_DIR / "summary.json").is_file())
    now = progress(run_dir, log_lines=0)
    if now.unreadable:
        row.error = now.error
        return row
    try:
        run = read_run_json(run_dir) or {}
    except RunFileError as e:
        row.error = str(e)
        return row
    events = now.events
    evals = [e for e in events if e.get("type") == "eval" and e.get("eval_loss") is not None]

    def pick(key, fallback):
        return run[key] if run.get(key) is not None else fallback

    row.status = now.status
    row.started = pick("started_at", _iso(events[0].get("time")) if events else None)
    row.steps = pick("global_step", now.step)
    row.total_steps = pick("total_steps", now.total_steps)
    row.train_loss = pick("train_loss", now.loss)
    row.val_loss = pick("eval_loss", evals[-1]["eval_loss"] if evals else None)
    row.wall_time_s = pick("wall_time_s", now.elapsed_s)
    if row.status == "failed":
        row.error = run.get("error") or now.error
    if row.started is None and (run_dir / SETTINGS_JSON).is_file():
        row.started = _iso((run_dir / SETTINGS_JSON).stat().st_mtime)
    return row


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".") and any(
        (path / f).exists() for f in (SETTINGS_JSON, EVENTS, RUN_JSON, ADAPTER_DIR))


def list_runs(runs_dir: str | Path) -> list[RunSummary]:
    """Every run under `runs_dir`, newest first; a run with unreadable files is listed with `error` set."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    rows = [summarize_run(p) for p in runs_dir.iterdir() if is_run_dir(p)]
    return sorted(rows, key=_started_ts, reverse=True)


def _started_ts(row: RunSummary) -> float:
    try:
        started = datetime.fromisoformat(row.started)
        return (started if started.tzinfo else started.astimezone()).timestamp()
    except (TypeError, ValueError):
        return Path(row.path).stat().st_mtime


class DataChangedError(RunFileError):
    """The data file at the path a run was trained on is not the file it was trained on."""


def check_data_unchanged(run_dir: str | Path, path: str | Path, sha256: str) -> None:
    """Raise DataChangedError when `path` is the file run.json recorded (data.path) but its sha256 is not
    the recorded data.sha256: a file replaced after training would put other questions in the test split.
    Runs without a record, or evaluated on another file, pass."""
    try:
        recorded = (read_run_json(run_dir) or {}).get("data") or {}
    except RunFileError:
        return
    rec_path, rec_sha = recorded.get("path"), recorded.get("sha256")
    if not rec_path or not rec_sha or rec_sha == sha256:
        return
    try:
        same = Path(rec_path).resolve() == Path(path).resolve()
    except OSError:
        same = False
    if same:
        raise DataChangedError("access.error.data_changed", run=Path(run_dir).name, path=Path(path).name,
                               recorded=rec_sha[:12], now=sha256[:12])
