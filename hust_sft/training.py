"""LoRA fine-tuning of a chat model on a Q&A set, writing a run directory (docs/ARCHITECTURE.md).

`train(settings)` is the single entry point behind `train.py`, the UI (through hust_sft.jobs) and the
benchmark. It is `transformers.Trainer` with our choices, each of which the usual tutorial gets wrong:
labels only on the answers (hust_sft.data.encoding), dynamic padding (PadCollator), batches grouped by
length, the LM head evaluated only where a label is learned (hust_sft.trainer), and bf16/fp16/fp32
picked for the device (hust_sft.modeling). Everything a run did is recorded in run.json and
events.jsonl; under `accelerate launch` only the main process writes them.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
import traceback
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hust_sft import runs
from hust_sft import settings as S
from hust_sft.callbacks import EventsCallback, StopCallback, StopRequested
from hust_sft.fileio import write_json_atomic
from hust_sft.i18n import t
from hust_sft.oom import oom_advice
from hust_sft.precision import PrecisionPlan, plan_for, torch_dtype
from hust_sft.precision import detect as detect_device
from hust_sft.runs import EventLog
from hust_sft.settings import RunSettings, SettingsError

# Experiment trackers (settings.train.report_to): the package each needs and where it writes inside RUN_DIR.
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb"}
TRACKER_DIRS = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb"}
TRACKIO_PROJECT = "hust-sft"

# Checkpoints kept in RUN_DIR/checkpoints: the latest for resuming plus one before it. Not a user setting:
# each holds optimizer state, and a finished run's result is adapter/, not a checkpoint.
SAVE_TOTAL_LIMIT = 2
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


@dataclass
class RunResult:
    run_dir: Path
    adapter_dir: Path | None
    status: str  # "completed" | "stopped"
    global_step: int
    train_loss: float | None
    eval_loss: float | None
    record: dict = field(default_factory=dict)  # what run.json holds
    model: Any = field(default=None, repr=False)  # the trained PeftModel, for in-process callers


def is_main_process() -> bool:
    """Rank 0 under `accelerate launch`/torchrun (which set RANK), or a plain single process."""
    return int(os.environ.get("RANK", "0")) == 0


class RunRecord(dict):
    """run.json as a dict, rewritten atomically on every change (`record[k] = v`, `update`, `setdefault`,
    `pop`, `del`, ...) so a crash never leaves half a file and no assignment is silently unsaved.

    Only top-level changes are seen: mutating a nested value in place (`record["data"]["x"] = 1`) is not;
    assign the key again to save it.
    """

    def __init__(self, path: Path, enabled: bool = True):
        super().__init__()
        self.path, self.enabled = path, enabled

    def save(self) -> None:
        if self.enabled:
            write_json_atomic(self.path, dict(self))

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self.save()

    def __delitem__(self, key):
        super().__delitem__(key)
        self.save()

    def __ior__(self, other):
        super().__ior__(other)
        self.save()
        return self

    def update(self, *args, **kwargs):
        super().update(*args, **kwargs)
        self.save()

    def setdefault(self, key, default=None):
        if key in self:
            return self[key]
        self[key] = default
        return default

    def pop(self, key, *default):
        had = key in self
        value = super().pop(key, *default)
        if had:
            self.save()
        return value

    def popitem(self):
        item = super().popitem()
        self.save()
        return item

    def clear(self):
        super().clear()
        self.save()


def library_versions() -> dict[str, str]:
    import accelerate
    import datasets
    import peft
    import torch
    import transformers

    return {m.__name__: m.__version__ for m in (torch, transformers, peft, accelerate, datasets)}


def to_dataset(features: list[dict]):
    """A datasets.Dataset with the "length" column the Trainer's length-grouped sampler reads."""
    from datasets import Dataset

    return Dataset.from_list([{**f, "length": len(f["input_ids"])} for f in features])


def training_arguments(settings: RunSettings, run_dir: Path, device: str, mixed_precision: str,
                       has_eval: bool):
    from transformers import TrainingArguments

    tr, mem = settings.train, settings.memory
    evaluating = has_eval and tr.eval_each_epoch
    return TrainingArguments(**keep_best_arguments(settings, has_eval),
        output_dir=str(run_dir / "checkpoints"),
        num_train_epochs=tr.epochs, max_steps=tr.max_steps,
        per_device_train_batch_size=tr.batch_size, per_device_eval_batch_size=tr.batch_size,
        gradient_accumulation_steps=mem.grad_accum,
        learning_rate=tr.lr, lr_scheduler_type=tr.lr_scheduler, weight_decay=tr.weight_decay,
        warmup_steps=tr.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio of the total steps
        bf16=mixed_precision == "bf16", fp16=mixed_precision == "fp16", use_cpu=device == "cpu",
        train_sampling_strategy="group_by_length" if tr.group_by_length else "random",
        length_column_name="length",
        eval_strategy="epoch" if evaluating else "no",
        # The untrained model's validation loss: the point the curve has to fall from.
        eval_on_start=evaluating and not tr.resume,
        prediction_loss_only=True,  # never gather 151,936-wide eval logits; eval_loss is all we report
        save_strategy="steps" if tr.save_steps > 0 else "epoch", save_steps=max(tr.save_steps, 1),
        save_total_limit=SAVE_TOTAL_LIMIT,
        logging_strategy="steps", logging_steps=tr.logging_steps,
        include_num_input_tokens_seen="non_padding",
        seed=tr.seed, data_seed=tr.seed,
        # Trackers get the run folder's name; trackio keeps to the local store (no Space, no static copy).
        report_to=tr.report_to, run_name=run_dir.name, project=TRACKIO_PROJECT, trackio_static_space_id=False,
        remove_unused_columns=False,
        disable_tqdm=True,  # progress goes to events.jsonl; train.log gets one plain line per log step
        # Features are pre-tokenised: worker processes would only fork the model's memory on a CPU.
        dataloader_num_workers=0, dataloader_pin_memory=device == "cuda",
        ddp_find_unused_parameters=False,  # every LoRA weight is used in every step
    )


def keeps_best(settings: RunSettings, has_eval: bool) -> bool:
    """Whether the adapter written is the epoch with the lowest validation loss (Trainer's
    `load_best_model_at_end`): needs a validation loss each epoch and a checkpoint at each of them, which
    checkpoints every `save_steps` steps would not line up with."""
    return has_eval and settings.train.eval_each_epoch and settings.train.save_steps == 0


def keep_best_arguments(settings: RunSettings, has_eval: bool) -> dict:
    """TrainingArguments for keeping the best epoch. The Trainer always keeps the best checkpoint besides the
    newest ones (`save_total_limit` counts them together, so with our limit of 2 the best and the latest
    stay); the validation loss before training (`eval_on_start`) is not a candidate: it has no checkpoint."""
    if not keeps_best(settings, has_eval):
        return {}
    return {"load_best_model_at_end": True, "metric_for_best_model": "eval_loss", "greater_is_better": False}


def best_epoch(settings: RunSettings, has_eval: bool, state) -> dict:
    """run.json's account of which adapter was kept: best_step/best_epoch/best_eval_loss and a sentence why."""
    evals = [e for e in state.log_history if "eval_loss" in e and e.get("step", 0) > 0]
    none = {"best_step": None, "best_epoch": None, "best_eval_loss": None, "best_kept": False}
    if not keeps_best(settings, has_eval):
        key = ("training.best.save_steps" if has_eval and settings.train.eval_each_epoch
               else "training.best.no_validation")
        return {**none, "best_reason_key": key, "best_reason_params": {"save_steps": settings.train.save_steps}}
    step = getattr(state, "best_global_step", None)
    if not state.best_model_checkpoint or not step:
        return {**none, "best_reason_key": "training.best.none_saved", "best_reason_params": {}}
    entry = next(e for e in evals if e["step"] == step)
    key = "training.best.is_last" if step == state.global_step else "training.best.kept"
    loss = float(state.best_metric)
    params = {"step": step, "epoch": entry.get("epoch") or 0, "loss": loss, "n": len(evals),
              "last": evals[-1]["eval_loss"]}
    return {"best_step": step, "best_epoch": entry.get("epoch"), "best_eval_loss": loss, "best_kept": True,
            "best_reason_key": key, "best_reason_params": params}


def check_tracker(report_to: str) -> None:
    """A tracker whose package is missing fails here, before any data or model is loaded."""
    import importlib.util

    package = TRACKER_PACKAGES.get(report_to)
    if package and importlib.util.find_spec(package) is None:
        raise SettingsError("training.error.tracker_missing", tracker=report_to, package=package)


@contextmanager
def tracker_environment(report_to: str, run_dir: Path):
    """Point the chosen tracker at RUN_DIR/<tracker>/ while the Trainer (and its tracker callback) is built.

    transformers' TensorBoardCallback reads TENSORBOARD_LOGGING_DIR when it is created; trackio reads
    TRACKIO_DIR when it is first imported (TrackioCallback's constructor imports it); wandb reads WANDB_DIR
    when its run starts. A variable the user set already is left alone (and recorded as where it wrote).
    """
    names = {"tensorboard": "TENSORBOARD_LOGGING_DIR", "trackio": "TRACKIO_DIR", "wandb": "WANDB_DIR"}
    name = names.get(report_to)
    if name is None:
        yield
        return
    previous = os.environ.get(name)
    if previous is None:
        os.environ[name] = str(run_dir / TRACKER_DIRS[report_to])
        Path(os.environ[name]).mkdir(parents=True, exist_ok=True)
    if report_to == "wandb":
        os.environ.setdefault("WANDB_PROJECT", TRACKIO_PROJECT)
    try:
        yield
    finally:
        if previous is None and report_to != "wandb":  # wandb reads it later, when the run starts
            os.environ.pop(name, None)


def tracker_record(report_to: str, run_dir: Path) -> dict | None:
    """run.json's `tracking`: which tracker, where it wrote, and how to look at it."""
    if report_to == "none":
        return None
    if report_to == "tensorboard":
        where = os.environ.get("TENSORBOARD_LOGGING_DIR") or str(run_dir / TRACKER_DIRS["tensorboard"])
        return {"report_to": report_to, "dir": where, "view": f"tensorboard --logdir {where}"}
    if report_to == "trackio":
        import trackio.utils

        where = str(trackio.utils.TRACKIO_DIR)  # fixed when trackio was first imported in this process
        return {"report_to": report_to, "dir": where, "project": TRACKIO_PROJECT, "run": run_dir.name,
                "view": f"TRACKIO_DIR={where} trackio show --project {TRACKIO_PROJECT}"}
    where = os.environ.get("WANDB_DIR") or str(run_dir / TRACKER_DIRS["wandb"])
    return {"report_to": report_to, "dir": where, "project": os.environ.get("WANDB_PROJECT", TRACKIO_PROJECT),
            "run": run_dir.name}


def _last(log_history: list[dict], key: str, *, first: bool = False) -> tuple[Any, int | None]:
    for entry in (log_history if first else reversed(log_history)):
        if key in entry:
            return entry[key], entry.get("step")
    return None, None


def train(settings: RunSettings, *, run_dir: str | Path | None = None,
          on_event: Callable[[dict], None] | None = None, on_data: Callable[[Any], None] | None = None) -> RunResult:
    """Train, write RUN_DIR (events.jsonl, run.json, adapter/, checkpoints/) and return what happened.

    RUN_DIR is `run_dir`, else `--output`, else a fresh folder under `runs_dir`, as `runs.claim_run_dir`
    decides (a finished run there is refused with RunExistsError unless resuming).

    `on_data(bundle)` is called with the loaded `DataBundle` before the model is loaded (train.py prints
    its validation report there).

    A STOP file or SIGTERM ends training at the next step with a checkpoint and a saved adapter
    (status "stopped"); any error is recorded as status "failed" and re-raised.
    """
    main = is_main_process()
    tr = settings.train
    if main:  # the folder and its policies (name, a run already there, a stale STOP) are runs' to decide
        run_dir = runs.claim_run_dir(tr.runs_dir, run_dir or tr.output, resume=tr.resume)
    else:  # ranks > 0 start later and would see rank 0's fresh events.jsonl; they write nothing there
        run_dir = Path(run_dir or tr.output or Path(tr.runs_dir) / time.strftime("run-%Y%m%d-%H%M%S"))
        run_dir.mkdir(parents=True, exist_ok=True)
    if main and not (run_dir / runs.SETTINGS_JSON).exists():
        write_json_atomic(run_dir / runs.SETTINGS_JSON, S.to_dict(settings))
    events = EventLog(run_dir / runs.EVENTS, on_event, enabled=main)
    record = RunRecord(run_dir / runs.RUN_JSON, enabled=main)
    stop = StopCallback(run_dir / runs.STOP_FILE)
    started = time.time()
    stop.install_signal_handler()  # first: a stop must work while data and model are still loading
    try:
        # A resumed run keeps its first started_at and adds a segment; wall_time_s sums the segments.
        first_started_at, segments = earlier_segments(run_dir) if settings.train.resume else (None, [])
        segments.append({"started_at": _timestamp(started), "ended_at": None, "wall_s": None,
                         "status": "running"})
        record.update(status="running", error=None, settings=S.to_dict(settings), versions=library_versions(),
                      started_at=first_started_at or _timestamp(started), segments=segments)
        events.status("running", t("training.status.running", "en"))
        plan = plan_for(settings)  # a setting the card cannot run: refused here, before anything loads
        record.update(precision=plan.to_dict())
        return _train(settings, plan, _Run(run_dir, events, record, stop, started), on_data)
    except StopRequested:  # stopped before the Trainer began: nothing trained in this segment
        _finish(record, started, record.get("device"), status="stopped")
        events.status("stopped", t("training.status.stopped_loading", "en"))
        return RunResult(run_dir=run_dir, adapter_dir=None, status="stopped", global_step=0, train_loss=None,
                         eval_loss=None, record=dict(record))
    except BaseException as e:
        message = str(e) or type(e).__name__
        _finish(record, started, record.get("device"), status="failed", error=message,
                error_type=type(e).__name__, traceback=traceback.format_exc(limit=20))
        events.status("failed", message, error_type=type(e).__name__)
        raise
    finally:
        stop.restore()


def _timestamp(t_s: float) -> str:
    return time.strftime(TIME_FORMAT, time.localtime(t_s))


def earlier_segments(run_dir: Path) -> tuple[str | None, list[dict]]:
    """(first started_at, segments) of the run.json a resumed run continues. A segment that ended without
    writing its end (killed) ends at the last line written to events.jsonl, with status "killed"."""
    try:
        old = json.loads((run_dir / runs.RUN_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, []
    if not isinstance(old, dict):
        return None, []
    started_at = old.get("started_at") if isinstance(old.get("started_at"), str) else None
    segments = [dict(seg) for seg in old.get("segments") or [] if isinstance(seg, dict)]
    if not segments and started_at:  # a run.json written before segments existed: one segment
        segments = [{"started_at": started_at, "ended_at": old.get("finished_at"),
                     "wall_s": old.get("wall_time_s"), "status": old.get("status")}]
    for seg in segments:
        if seg.get("ended_at") is None:
            try:
                begin = datetime.strptime(seg["started_at"], TIME_FORMAT).timestamp()
                end = max(begin, (run_dir / runs.EVENTS).stat().st_mtime)
            except (KeyError, TypeError, ValueError, OSError):
                continue
            seg.update(ended_at=_timestamp(end), wall_s=round(end - begin, 2), status="killed")
    return started_at, segments


def trainer_callbacks(settings: RunSettings, has_eval: bool, events: EventLog, device: str, stop: StopCallback) -> list:
    """Events and STOP handling, plus transformers' EarlyStoppingCallback when a patience is set."""
    out = [EventsCallback(events, device), stop]
    patience = settings.train.early_stopping_patience
    if patience > 0 and keeps_best(settings, has_eval):
        from transformers import EarlyStoppingCallback

        out.append(EarlyStoppingCallback(early_stopping_patience=patience))
    return out


def size_passages(settings: RunSettings, bundle, tokenizer, record: RunRecord, events: EventLog) -> RunSettings:
    """`settings` with the passage count and lengths derived from the training pairs where they are 0
    (hust_sft.passage_size), recorded in run.json: `passage_sizes` says how each was derived, and the
    settings block holds the derived values, which every answering path reads (runs.load_settings)."""
    from hust_sft import passage_size

    sizes = passage_size.resolve(settings.retrieval, bundle.splits["train"], settings.data, tokenizer)
    settings = dataclasses.replace(settings, retrieval=passage_size.resolved(settings.retrieval, sizes))
    record.update(passage_sizes=sizes.to_dict(), settings=S.to_dict(settings))
    if settings.retrieval.retrieval != "off":
        events.write({"type": "passage_sizes", **sizes.to_dict(), "message": passage_size.describe(sizes, "en")})
    return settings


def prepare_retrieval(settings: RunSettings, bundle, run_dir: Path, record: RunRecord, events: EventLog,
                      main: bool) -> tuple[list | None, list | None]:
    """Build and save RUN_DIR/retrieval/ (retrieval "answer" or "train") from the TRAINING split and the
    knowledge files; for "train", the passages each training sample (RAFT) and validation sample is
    encoded with. (None, None) when retrieval is off."""
    rs = settings.retrieval
    if rs.retrieval == "off":
        record.update(retrieval={"mode": "off"})
        return None, None
    from hust_sft import retrieval as R
    from hust_sft.passage_size import chunk_chars

    retriever = R.Retriever.build(bundle.splits["train"], rs.knowledge_files,
                                  chunk_chars=chunk_chars(rs.passage_max_chars, rs.answer_passage_chars),
                                  settings={**S.to_dict(rs), "seed": settings.train.seed,
                                            "passage_sizes": (record.get("passage_sizes") or {})})
    if main:
        retriever.save(R.retrieval_dir(run_dir))
    train_passages = val_passages = None
    raft = {"samples": len(bundle.splits["train"]), "with_own_pair": 0}
    if rs.retrieval == "train":
        train_passages, raft = R.training_passages(retriever, bundle.splits["train"], rs.retrieval_k,
                                                   rs.raft_oracle_ratio, settings.train.seed, rs.min_relevance)
        val_passages = R.validation_passages(retriever, bundle.splits["validation"], rs.retrieval_k,
                                             rs.min_relevance)
    summary = {"mode": rs.retrieval, "index": R.RETRIEVAL_DIR, "k": rs.retrieval_k,
               "passage_max_chars": rs.passage_max_chars, "answer_k": rs.answer_k,
               "answer_passage_chars": rs.answer_passage_chars, "raft_oracle_ratio": rs.raft_oracle_ratio,
               "min_relevance": rs.min_relevance, "off_topic": rs.off_topic,
               "passages": len(retriever), "sha256": retriever.sha256,
               "knowledge_files": retriever.meta["knowledge_files"],
               "train_samples_with_own_pair": raft["with_own_pair"],
               "train_samples_without_passages": raft.get("without_passages", 0)}
    record.update(retrieval=summary)
    events.write({"type": "retrieval", **summary,
                  "message": t("training.retrieval.summary", "en", mode=rs.retrieval, passages=len(retriever),
                               path=R.retrieval_dir(run_dir), k=rs.retrieval_k, with_own=raft["with_own_pair"],
                               samples=raft["samples"])})
    return train_passages, val_passages


def _finish(record: RunRecord, started: float, device: str | None, **fields) -> None:
    """Close this segment and sum every segment's wall time into wall_time_s."""
    from hust_sft.modeling import peak_memory_bytes

    now = time.time()
    segments = [dict(seg) for seg in record.get("segments") or []]
    if segments:
        segments[-1].update(ended_at=_timestamp(now), wall_s=round(now - started, 2),
                            status=fields.get("status", "failed"))
    fields.update(segments=segments, finished_at=_timestamp(now),
                  wall_time_s=round(sum(seg.get("wall_s") or 0.0 for seg in segments) if segments
                                    else now - started, 2))
    if device:
        fields["peak_memory_mb"] = round(peak_memory_bytes(device) / 2**20, 1)
    record.update(fields)


# ---------------------------------------------------------------------------------------------------
# The run, step by step: device and precision → what to resume from → data and passages → features →
# model → Trainer → train → record. Each step writes its part of run.json / events.jsonl as it goes, so a
# run that fails at any step leaves the record of every step before it.

@dataclass
class _Run:
    """What every step writes to or asks: the folder, its events and record, the stop, this segment's start."""
    dir: Path
    events: EventLog
    record: RunRecord
    stop: StopCallback
    started: float


@dataclass
class _Precision:
    device: str            # "cuda" | "mps" | "cpu"
    mixed: str             # "bf16" | "fp16" | "no"
    dtype: Any             # the torch.dtype the base model is loaded in


@dataclass
class _Data:
    bundle: Any                    # data.DataBundle: the splits and their report
    tokenizer: Any
    train_passages: list | None    # per training sample, retrieval "train" only
    val_passages: list | None


@dataclass
class _Features:
    train: list[dict]
    validation: list[dict]

    @property
    def has_eval(self) -> bool:
        return bool(self.validation)


def _train(settings: RunSettings, plan: PrecisionPlan, run: _Run,
           on_data: Callable[[Any], None] | None = None) -> RunResult:
    """The steps of a run in order; `train` around it records a stop while loading or a failure."""
    _quiet_known_warnings()
    precision = _pick_precision(plan, run.record)
    checkpoint = _check_before_loading(settings, run)
    settings, data = _load_data_and_passages(settings, run, on_data)
    features = _encode(settings, data, run.record)
    model = _build_model(settings, precision, run.record)
    trainer = _build_trainer(settings, run, model, data.tokenizer, features, precision)
    train_output = _fit(trainer, checkpoint, settings)
    return _record_result(settings, run, trainer, train_output, features, precision, model)


def _quiet_known_warnings() -> None:
    """transformers 5.23 warns about its own deprecated name (called by PEFT) on every run: noise in the
    log tail a newcomer reads on the Train tab."""
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def _pick_precision(plan: PrecisionPlan, record: RunRecord) -> _Precision:
    """Device, mixed precision and the base's load dtype, read from the run's precision plan (the one
    run.json's `precision` holds) and recorded first: every later step, and a failure's record, depends on
    where the run is."""
    from hust_sft.cpu_memory import cap_heap_fragmentation

    if plan.device == "cpu":
        cap_heap_fragmentation()
    dtype = torch_dtype(plan.load_dtype)
    record.update(device=plan.device, dtype=str(dtype).removeprefix("torch."), mixed_precision=plan.autocast,
                  world_size=int(os.environ.get("WORLD_SIZE", "1")))
    return _Precision(plan.device, plan.autocast, dtype)


def _check_before_loading(settings: RunSettings, run: _Run) -> str | None:
    """The tracker's package and, when resuming, the checkpoint to continue from: mistakes that cost nothing
    to find, so they fail before minutes of loading data and weights. Returns that checkpoint (or None)."""
    check_tracker(settings.train.report_to)
    if not settings.train.resume:
        return None
    latest = runs.latest_checkpoint(run.dir)  # the newest complete one: a kill may interrupt a save
    if latest is None:
        raise SettingsError("training.error.no_checkpoint", path=run.dir / "checkpoints")
    run.record.update(resumed_from=str(latest))
    return str(latest)


def _load_data_and_passages(settings: RunSettings, run: _Run,
                            on_data: Callable[[Any], None] | None) -> tuple[RunSettings, _Data]:
    """The data first (a bad data file is the likeliest mistake and the cheapest check; `on_data` shows its
    report before anything slow), then the tokenizer, the passage sizes derived from the pairs and the
    retrieval index with each sample's passages. Returns the settings with the derived sizes filled in."""
    from hust_sft.data import load_data
    from hust_sft.modeling import load_tokenizer

    bundle = load_data(settings.data)
    if on_data is not None:
        on_data(bundle)
    tokenizer = load_tokenizer(settings.model.model)
    settings = size_passages(settings, bundle, tokenizer, run.record, run.events)
    train_passages, val_passages = prepare_retrieval(settings, bundle, run.dir, run.record, run.events,
                                                     is_main_process())
    return settings, _Data(bundle, tokenizer, train_passages, val_passages)


def _encode(settings: RunSettings, data: _Data, record: RunRecord) -> _Features:
    """Token ids with labels on the answers only (hust_sft.data.encoding), each split with its passages;
    the encoding report goes into run.json's `data` before a run with nothing left to learn is refused."""
    from hust_sft.data import DataError
    from hust_sft.data.encoding import encode_records

    max_chars = settings.retrieval.passage_max_chars
    train, train_report = encode_records(data.bundle.splits["train"], data.tokenizer, settings.data,
                                         passages=data.train_passages, passage_max_chars=max_chars)
    validation, val_report = encode_records(data.bundle.splits["validation"], data.tokenizer, settings.data,
                                            passages=data.val_passages, passage_max_chars=max_chars)
    record.update(data={**data.bundle.to_dict(), "encoding": {"train": train_report.to_dict(),
                                                              "validation": val_report.to_dict()}})
    if not train:
        raise DataError("training.error.no_examples", source=data.bundle.source,
                        max_length=settings.data.max_length, dropped=train_report.dropped_too_long)
    return _Features(train, validation)


def _build_model(settings: RunSettings, precision: _Precision, record: RunRecord):
    """The base (quantised if asked) with LoRA attached, after the data: loading weights is the slow step,
    worth starting only once the data is known to be usable. The seed is set just before LoRA's random A
    matrices are drawn, so the same settings start from the same adapter."""
    from transformers import set_seed

    from hust_sft.modeling import attach_lora, load_base_model

    quantization = settings.memory.quantization
    model = load_base_model(settings.model, quantization=quantization, dtype=precision.dtype)
    set_seed(settings.train.seed)  # LoRA's random A matrices are drawn here, before the Trainer seeds
    model = attach_lora(model, settings.lora, quantized=quantization != "none",
                        gradient_checkpointing=settings.memory.gradient_checkpointing)
    trainable, total = model.get_nb_trainable_parameters()
    record.update(trainable_params=int(trainable), total_params=int(total))
    return model


def _build_trainer(settings: RunSettings, run: _Run, model, tokenizer, features: _Features,
                   precision: _Precision):
    """The Trainer with our arguments, collator and callbacks (the answer-only head unless turned off), built
    while the chosen tracker's environment points into the run folder; run.json's `tracking` says where."""
    from transformers import PrinterCallback, Trainer

    from hust_sft.data.collator import PadCollator
    from hust_sft.trainer import AnswerOnlyHeadTrainer

    has_eval = features.has_eval
    args = training_arguments(settings, run.dir, precision.device, precision.mixed, has_eval)
    trainer_cls = AnswerOnlyHeadTrainer if settings.memory.answer_only_head else Trainer
    report_to = settings.train.report_to if is_main_process() else "none"
    with tracker_environment(report_to, run.dir):
        trainer = trainer_cls(
            model=model, args=args, train_dataset=to_dataset(features.train),
            eval_dataset=to_dataset(features.validation) if has_eval else None,
            data_collator=PadCollator(tokenizer.pad_token_id), processing_class=tokenizer,
            callbacks=trainer_callbacks(settings, has_eval, run.events, precision.device, run.stop))
        run.record.update(tracking=tracker_record(report_to, run.dir))
    # The Trainer's printer writes each log as a dict of strings ({'loss': '3.174'}); events.jsonl, and
    # train.py's console (hust_sft.console, fed from the same events), carry the numbers instead.
    trainer.remove_callback(PrinterCallback)
    return trainer


def _fit(trainer, checkpoint: str | None, settings: RunSettings):
    """`trainer.train`, from `checkpoint` when resuming; it ends with the best epoch loaded.

    CUDA running out of memory ends the run with what to lower (`oom.oom_advice`) instead of a 40-line
    traceback; the checkpoints and events.jsonl written so far stay, so `train` records it as failed and
    the run resumes from its last checkpoint once a setting is lowered. The failed step's tensors are let go
    and CUDA's cache emptied first, so an in-process caller (a notebook, the benchmark) gets the memory back.
    """
    import torch

    try:
        return trainer.train(resume_from_checkpoint=checkpoint)
    except torch.OutOfMemoryError as e:
        e.__traceback__ = None  # its frames hold the failed step's activations; the message is kept as the cause
        torch.cuda.empty_cache()
        card = detect_device("cuda") if torch.cuda.is_available() else None  # names the card in the advice
        raise oom_advice(settings, card=card.name if card else None,
                         memory_gib=card.memory_gib if card else None) from e


def _record_result(settings: RunSettings, run: _Run, trainer, train_output, features: _Features,
                   precision: _Precision, model) -> RunResult:
    """The final validation loss (measured once more when the last step has none), the adapter saved, and
    run.json, the `best` event and the final status written from the Trainer's state."""
    import torch

    state, has_eval, device = trainer.state, features.has_eval, precision.device
    status = "stopped" if run.stop.requested else "completed"
    eval_loss, eval_step = _last(state.log_history, "eval_loss")
    best = best_epoch(settings, has_eval, state)
    best["best_reason"] = t(best["best_reason_key"], "en", **best["best_reason_params"])
    if (status == "completed" and has_eval and settings.train.eval_each_epoch and eval_step != state.global_step
            and not best["best_kept"]):  # with the best epoch loaded this would measure that one again
        eval_loss = trainer.evaluate()["eval_loss"]  # logged as an eval event by EventsCallback
    adapter = run.dir / runs.ADAPTER_DIR
    trainer.save_model(str(adapter))  # adapter weights + config + tokenizer, main process only
    train_loss, _ = _last(state.log_history, "loss")
    mean_loss, _ = _last(state.log_history, "train_loss")
    start_eval_loss, start_step = _last(state.log_history, "eval_loss", first=True)
    if device == "cuda":
        torch.cuda.synchronize()
    _finish(run.record, run.started, device, status=status, global_step=state.global_step,
            total_steps=state.max_steps, epoch=state.epoch, train_loss=train_loss, train_loss_mean=mean_loss,
            eval_loss=eval_loss, eval_loss_start=start_eval_loss if start_step == 0 else None,
            adapter=runs.ADAPTER_DIR, tokens_seen=state.num_input_tokens_seen,
            train_runtime_s=round(train_output.metrics.get("train_runtime", 0.0), 3), **best)
    # The Train tab shows this line in the page's language from key + params.
    run.events.write({"type": "best", "step": best["best_step"], "epoch": best["best_epoch"],
                      "eval_loss": best["best_eval_loss"], "kept": best["best_kept"],
                      "message": best["best_reason"], "key": best["best_reason_key"],
                      "params": best["best_reason_params"]})
    key = "training.status.stopped" if status == "stopped" else "training.status.completed"
    run.events.status(status, t(key, "en", step=state.global_step, adapter=adapter), step=state.global_step)
    return RunResult(run_dir=run.dir, adapter_dir=adapter, status=status, global_step=state.global_step,
                     train_loss=train_loss, eval_loss=eval_loss, record=dict(run.record), model=model)
