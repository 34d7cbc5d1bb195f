"""What `train.py` prints while it trains: a progress bar on a terminal, one JSON line per logging step elsewhere.

It listens to the same events training writes to events.jsonl (`train(..., on_event=ConsoleReport(...))`),
so the console, the run directory and the Train tab never disagree. On a terminal: a tqdm bar (steps, loss,
elapsed and ETA) with validation losses written above it. Not on a terminal (the Space's subprocess writing
train.log, CI): one line per logging step, a JSON object whose numbers are numbers — the Trainer's own printer
writes `{'loss': '3.174'}`, strings, which no tool can plot. At the end, `summary` gives the adapter path, the
best validation loss and the wall time. `fmt_duration` and `progress_figures` are the one text rendering of
durations and of a run's progress (`runs.RunProgress`), here and on the Train tab.
"""
from __future__ import annotations

import json
import sys
from typing import TextIO

from hust_sft.i18n import t
from hust_sft.runs import RunProgress

# events.jsonl keys that say nothing to a person reading the console
_HIDDEN = {"type", "time"}


def fmt_duration(seconds: float | None) -> str:
    """"1:02:05" / "1:01" / "–": every duration train.py and the Train tab print."""
    if seconds is None:
        return "–"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def progress_figures(p: RunProgress, lang: str) -> str:
    """A run's progress as one line of figures: step / total (%), ETA (only while it runs), elapsed time,
    tokens per second, peak memory. The Train tab wraps this line in its HTML. A finished run's line says
    what it took, with no ETA and no figure nobody measured."""
    if not p.live and p.status in ("completed", "stopped", "failed"):
        parts = [t("ui.train.figures_done.steps", lang, step=p.step or 0, total=p.total_steps or p.step or 0,
                   pct=f"{100.0 * (p.progress or 0.0):.0f}")]
        if p.elapsed_s is not None:
            parts.append(t("ui.train.figures_done.took", lang, elapsed=fmt_duration(p.elapsed_s)))
        if p.tokens_per_s is not None:
            parts.append(t("ui.train.figures_done.tps", lang, tps=f"{p.tokens_per_s:.0f}"))
        if p.peak_memory_mb is not None:
            parts.append(t("ui.train.figures_done.mem", lang, mem=f"{p.peak_memory_mb:.0f}"))
        return " · ".join(parts)
    return t("ui.train.figures", lang, step=p.step or 0, total=p.total_steps or "?",
             pct=f"{100.0 * (p.progress or 0.0):.0f}", eta=fmt_duration(p.eta_s) if p.live else "–",
             elapsed=fmt_duration(p.elapsed_s),
             tps=f"{p.tokens_per_s:.0f}" if p.tokens_per_s is not None else "–",
             mem=f"{p.peak_memory_mb:.0f}" if p.peak_memory_mb is not None else "–")


def event_text(event: dict, lang: str) -> str | None:
    """One logged event (a `log` or `eval` line of events.jsonl / train.log) as a person reads it; None for
    any other event."""
    kind = event.get("type")
    if kind == "eval" and event.get("eval_loss") is not None:
        return t("train.cli.eval", lang, step=event.get("step"), epoch=event.get("epoch"), loss=event["eval_loss"])
    if kind != "log":
        return None

    def num(key: str, fmt: str) -> str:
        v = event.get(key)
        return "–" if v is None else format(v, fmt)
    return t("train.cli.log_line", lang, step=event.get("step", "?"), total=event.get("total_steps") or "?",
             loss=num("loss", ".4f"), lr=num("learning_rate", ".2e"), tps=num("tokens_per_s", ".0f"),
             eta=fmt_duration(event.get("eta_s")), mem=num("peak_memory_mb", ".0f"))


def readable_log(text: str, lang: str) -> str:
    """A log's text with its JSON event lines (what train.py prints off a terminal, i.e. into train.log)
    rendered as `event_text`, as the terminal shows them; every other line as it is."""
    out = []
    for line in text.splitlines():
        shown = None
        if line.startswith("{"):
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            shown = event_text(event, lang) if isinstance(event, dict) else None
        out.append(line if shown is None else shown)
    return "\n".join(out)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed, or not a file
        return False


class ConsoleReport:
    """Call with each event dict; `tty=None` asks the stream whether it is a terminal."""

    def __init__(self, lang: str = "en", stream: TextIO | None = None, tty: bool | None = None,
                 bar_stream: TextIO | None = None):
        self.lang = lang
        self.stream = stream or sys.stdout
        # The bar goes to stderr, like every progress bar (stdout stays for results and JSON lines), and only
        # when stderr is a terminal; `stream` given alone (tests) carries the bar too.
        self.bar_stream = bar_stream or (self.stream if stream is not None else sys.stderr)
        self.tty = _isatty(self.bar_stream) if tty is None else tty
        # JSON lines whenever stdout is not a terminal (`train.py > log`, the Space's train.log, CI)
        self.json_lines = not (self.tty if stream is not None or tty is not None else _isatty(self.stream))
        self.bar = None
        self.evals: list[dict] = []

    def __call__(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "eval" and event.get("eval_loss") is not None:
            self.evals.append(event)
        if self.tty:
            self._bar_event(kind, event)
        if self.json_lines and kind in ("log", "eval"):
            line = {k: v for k, v in event.items() if k not in _HIDDEN}
            self.stream.write(json.dumps({"type": kind, **line}, ensure_ascii=False) + "\n")
            self.stream.flush()

    def _bar_event(self, kind: str | None, event: dict) -> None:
        from tqdm import tqdm

        if kind in ("log", "step"):
            total = event.get("total_steps") or None
            if self.bar is None:
                self.bar = tqdm(total=total, desc=t("train.cli.bar", self.lang), unit="step", file=self.bar_stream,
                                ncols=self._size()[0], nrows=self._size()[1], mininterval=0)
            self.bar.update(max(0, event["step"] - self.bar.n))
            if event.get("loss") is not None:
                self.bar.set_postfix_str(t("train.cli.bar_loss", self.lang, loss=event["loss"]), refresh=True)
        elif kind == "eval":
            text = t("train.cli.eval", self.lang, step=event.get("step"), epoch=event.get("epoch"),
                     loss=event["eval_loss"])
            if self.bar is not None:
                self.bar.write(text, file=self.bar_stream)
            else:
                self.stream.write(text + "\n")
        elif kind == "status" and event.get("status") in ("completed", "stopped", "failed"):
            self.close()

    def _size(self) -> tuple[int, int]:
        """(columns, rows) of the terminal; 100 × 24 for one that reports 0 × 0 (a pty nobody sized), where
        tqdm would otherwise draw nothing."""
        import os

        try:
            size = os.get_terminal_size(self.bar_stream.fileno())
            return size.columns or 100, size.lines or 24
        except (OSError, ValueError, AttributeError):
            return 100, 24

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def best_eval(self) -> dict | None:
        return min(self.evals, key=lambda e: e["eval_loss"]) if self.evals else None

    def summary(self, result) -> str:
        """A few lines for the end of a run: status, adapter, best validation loss, wall time."""
        self.close()
        record = result.record or {}
        lines = []
        best = self.best_eval()
        if best is not None:
            lines.append(t("train.cli.best", self.lang, loss=f"{best['eval_loss']:.4f}", step=best.get("step"),
                           epoch=best.get("epoch")))
        else:
            lines.append(t("train.cli.no_eval", self.lang))
        lines.append(t("train.cli.wall", self.lang, wall=fmt_duration(record.get("wall_time_s")),
                       steps=result.global_step, loss=f"{result.train_loss:.4f}"
                       if result.train_loss is not None else "–"))
        # Last, where scripts and people look for it: the adapter path.
        lines.append(t("training.cli.done", self.lang, status=result.status, adapter=result.adapter_dir,
                       run_dir=result.run_dir))
        return "\n".join(lines)


class ProgressLines:
    """evaluate()'s `progress(fraction, text)` on a console (evaluate.py: stderr, stdout keeps the report): a
    line per new step, percent first; on a terminal the line is redrawn in place. Minutes of answering are
    never silent. (train.py's bar is ConsoleReport's: it draws the trainer's events, not fractions.)"""

    def __init__(self, stream):
        # The first step (loading the data, seconds) is held back until the next one: a bad --data file then
        # fails with its one error line alone, as train.py's does.
        self.stream, self.last, self.held = stream, None, None
        self.tty = _isatty(stream)

    def __call__(self, fraction: float, text: str) -> None:
        line = f"[{100 * fraction:3.0f}%] {text}"
        if line == self.last:
            return
        first, self.last = self.last is None, line
        if first and fraction < 1:
            self.held = fraction, line
            return
        if self.held:
            self._write(*self.held)
            self.held = None
        self._write(fraction, line)

    def _write(self, fraction: float, line: str) -> None:
        self.stream.write(("\r\033[K" + line + ("\n" if fraction >= 1 else "")) if self.tty else line + "\n")
        self.stream.flush()
