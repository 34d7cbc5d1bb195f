"""Trainer callbacks that make a run observable and stoppable from outside the process.

`EventsCallback` writes the `events.jsonl` lines of the run-directory contract (docs/ARCHITECTURE.md),
one flushed JSON object per logging step or evaluation, so the UI can tail the file while training runs.
`StopCallback` turns a `RUN_DIR/STOP` file (the UI's Stop button, via hust_sft.jobs) or SIGTERM into
the Trainer's own stop-and-save control flags.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from transformers import TrainerCallback

from hust_sft.modeling import peak_memory_bytes
from hust_sft.runs import EventLog


class EventsCallback(TrainerCallback):
    """One `log` line per logging step and one `eval` line per evaluation (main process only)."""

    def __init__(self, log: EventLog, device: str):
        self.log, self.device = log, device
        self.start_time = self.start_step = self.start_tokens = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start_time = time.perf_counter()
        self.start_step = state.global_step  # > 0 after resuming from a checkpoint
        self.start_tokens = state.num_input_tokens_seen

    def on_step_end(self, args, state, control, **kwargs):
        """Every optimizer step, to the listener only (train.py's bar moves each step, not each log line)."""
        if state.is_world_process_zero and self.start_time is not None:
            self.log.notify({"type": "step", "step": state.global_step, "total_steps": state.max_steps,
                             "elapsed_s": round(time.perf_counter() - self.start_time, 2)})

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or self.start_time is None:
            return
        elapsed = time.perf_counter() - self.start_time
        base = {"step": state.global_step, "epoch": _round(state.epoch, 4), "elapsed_s": round(elapsed, 2)}
        if "eval_loss" in logs:
            self.log.write({"type": "eval", **base, "eval_loss": logs["eval_loss"],
                            **{k: v for k, v in logs.items() if k.startswith("eval_") and k != "eval_loss"}})
        elif "loss" in logs:
            done = state.global_step - self.start_step
            eta = elapsed / done * (state.max_steps - state.global_step) if done > 0 else None
            tokens = state.num_input_tokens_seen - self.start_tokens
            self.log.write({
                "type": "log", **base, "total_steps": state.max_steps, "loss": logs["loss"],
                "learning_rate": logs.get("learning_rate"), "grad_norm": logs.get("grad_norm"),
                "tokens_per_s": round(tokens / elapsed, 1) if elapsed > 0 else None,
                "eta_s": _round(eta, 1), "peak_memory_mb": round(peak_memory_bytes(self.device) / 2**20, 1)})


def _round(x, n):
    return None if x is None else round(float(x), n)


class StopRequested(BaseException):
    """A stop arrived before training began (data, tokenizer or model still loading): leave at once.
    A BaseException, like KeyboardInterrupt, so a library's `except Exception` cannot swallow it."""


class StopCallback(TrainerCallback):
    """Stop at the next step boundary, saving a checkpoint, when RUN_DIR/STOP exists or SIGTERM arrives.

    Before the Trainer starts there is no step boundary: loading a model can take minutes. Then SIGTERM
    raises `StopRequested` in the main thread, and a watcher thread turns a STOP file into that SIGTERM,
    so a stop works from the moment `install_signal_handler` runs.
    """

    POLL_S = 0.5

    def __init__(self, stop_file: str | Path):
        self.stop_file = Path(stop_file)
        self.requested = False
        self.training = False
        self._previous = None
        self._done = threading.Event()  # set once training begins or the handler is removed
        self._watcher = None

    def install_signal_handler(self):
        """Catch SIGTERM (main thread only; Python allows handlers nowhere else). Undo with `restore`."""
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_signal)
            self._watcher = threading.Thread(target=self._watch_while_loading, name="stop-watch", daemon=True)
            self._watcher.start()

    def restore(self):
        self._done.set()
        if self._watcher is not None:  # it may be sending its SIGTERM right now: let that land on our handler
            self._watcher.join(timeout=5)
            self._watcher = None
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _watch_while_loading(self):
        while not self._done.wait(self.POLL_S):
            if self.stop_file.exists():
                os.kill(os.getpid(), signal.SIGTERM)  # handled in the main thread, which is the one loading
                return

    def _on_signal(self, signum, frame):
        first, self.requested = not self.requested, True
        # Once, and only while loading: a second SIGTERM must not interrupt the clean exit.
        if first and not self.training and not self._done.is_set():
            raise StopRequested()

    def on_train_begin(self, args, state, control, **kwargs):
        self.training = True
        self._done.set()

    def on_step_end(self, args, state, control, **kwargs):
        stop = self.requested or self.stop_file.exists()
        if args.world_size > 1:  # every process must leave the loop at the same step, or DDP hangs
            stop = _any_process(stop, args.device)
        if stop:
            self.requested = True
            control.should_training_stop = True
            control.should_save = True
        return control

    def on_substep_end(self, args, state, control, **kwargs):
        # Between micro-batches of one accumulation: only note it; the Trainer acts at the step's end.
        if self.stop_file.exists():
            self.requested = True


def _any_process(flag: bool, device) -> bool:
    import torch
    import torch.distributed as dist

    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
