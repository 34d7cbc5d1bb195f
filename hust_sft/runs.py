"""Reading run directories (see docs/ARCHITECTURE.md, "Run directory") for the UI, jobs and publishing.

Everything here only reads, except `new_run_dir` (creates an empty folder) and `append_event`. A run that is
being written while we read it is normal: a half-written last line of events.jsonl is skipped, not an error.
"""
from __future__ import annotations

import json
import math
import re
import time
import unicodedata
from dataclasses import asdict, dataclass
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
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(_finite(event), ensure_ascii=False) + "\n")
                f.flush()
        if self.on_event is not None:
            self.on_event(event)
        return event

    def status(self, status: str, message: str = "", **extra) -> dict:
        return self.write({"type": "status", "status": status, "message": message, **extra})


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
    data = (read_run_json(run_dir) or {}).get("settings")
    if not isinstance(data, dict):
        data = read_settings_json(run_dir)
    if not isinstance(data, dict):
        return None
    return from_dict(RunSettings, data)


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
    import os

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
    """One row of the runs table: run.json's final figures where the trainer wrote them, else the latest
    events.jsonl lines (so a running or killed run still shows its progress)."""
    run_dir = Path(run_dir)
    row = RunSummary(name=run_dir.name, path=str(run_dir), status="unknown", has_adapter=has_adapter(run_dir),
                     has_eval=(run_dir / EVAL_DIR / "summary.json").is_file())
    try:
        events = read_events(run_dir)
        run = read_run_json(run_dir) or {}
        row.status = run_status(run_dir, events)
    except RunFileError as e:
        row.error = str(e)
        return row
    logs = [e for e in events if e.get("type") == "log"]
    evals = [e for e in events if e.get("type") == "eval" and e.get("eval_loss") is not None]
    losses = [e["loss"] for e in logs if e.get("loss") is not None]
    last_log = logs[-1] if logs else {}
    last_status = _last_status_event(events) or {}

    def pick(key, fallback):
        return run[key] if run.get(key) is not None else fallback

    row.started = pick("started_at", _iso(events[0].get("time")) if events else None)
    row.steps = pick("global_step", last_log.get("step"))
    row.total_steps = pick("total_steps", last_log.get("total_steps"))
    row.train_loss = pick("train_loss", losses[-1] if losses else None)
    row.val_loss = pick("eval_loss", evals[-1]["eval_loss"] if evals else None)
    row.wall_time_s = pick("wall_time_s", last_log.get("elapsed_s"))
    if row.status == "failed":
        row.error = run.get("error") or last_status.get("message")
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
