"""What to lower when training runs out of memory: the settings named, in order, with their next values.

`oom_advice(settings)` returns (does not raise) a `TrainingOutOfMemory` for the run's RunSettings; the
training loop catches `torch.OutOfMemoryError` and raises it `from` the original, so the CLI, the run's
run.json/events.jsonl and the Train tab name the setting to lower in the reader's language. The order is
cheapest-to-quality first: batch size (the effective batch kept by raising grad_accum), max length,
gradient checkpointing (slower, same result), 4-bit (QLoRA: a quarter of the base weights' memory).
"""
from __future__ import annotations

import dataclasses

from hust_sft.errors import LocalizedError
from hust_sft.i18n import t


class TrainingOutOfMemory(LocalizedError, MemoryError):
    """Training ran out of device memory; `.steps` are the (i18n key, params) of the settings to lower."""

    def __init__(self, steps: list[tuple[str, dict]], *, card: str | None = None, memory_gib: float | None = None):
        self.steps = steps  # before LocalizedError.__init__, which renders the text
        self.card, self.memory_gib = card, memory_gib
        super().__init__("oom.error", card=card, memory=memory_gib)

    @property
    def settings_to_lower(self) -> list[str]:
        """The settings named, in order ("batch_size", "max_length", "gradient_checkpointing", "quantization")."""
        return [key.rsplit(".", 1)[-1] for key, _ in self.steps if key != "oom.step.none"]

    def text(self, lang: str = "en") -> str:
        where = t("oom.where", lang, card=self.card, memory=self.memory_gib) if self.card else ""
        lines = [t("oom.error", lang, where=where)]
        lines += [f"{i}. {t(key, lang, **params)}" for i, (key, params) in enumerate(self.steps, 1)]
        lines.append(t("oom.resume", lang))
        return "\n".join(lines)


def oom_advice(settings, *, card: str | None = None, memory_gib: float | None = None) -> TrainingOutOfMemory:
    """The error to raise for an out-of-memory in training with `settings` (a RunSettings), naming what to
    lower from what it is now: batch_size → max_length → gradient_checkpointing → quantization '4bit'."""
    tr, mem, data = settings.train, settings.memory, settings.data
    steps: list[tuple[str, dict]] = []
    if tr.batch_size > 1:
        # The largest divisor at most half: the effective batch (batch × accumulation) stays exactly the same.
        lower = next(d for d in range(tr.batch_size // 2, 0, -1) if tr.batch_size % d == 0)
        accum_higher = mem.grad_accum * (tr.batch_size // lower)
        steps.append(("oom.step.batch_size", {"value": tr.batch_size, "lower": lower, "accum": mem.grad_accum,
                                              "accum_higher": accum_higher,
                                              "effective": tr.batch_size * mem.grad_accum}))
    # The field's own bounds (settings.DataSettings), so the advice never names a value the setting refuses.
    meta = next(f.metadata for f in dataclasses.fields(data) if f.name == "max_length")
    shortest, step = int(meta.get("min", 1)), int(meta.get("step", 1))
    if data.max_length > shortest:
        steps.append(("oom.step.max_length", {"value": data.max_length,
                                              "lower": max(shortest, data.max_length // 2 // step * step)}))
    if not mem.gradient_checkpointing:
        steps.append(("oom.step.gradient_checkpointing", {}))
    if mem.quantization != "4bit" and settings.model.device != "cpu":
        steps.append(("oom.step.quantization", {}))
    if not steps:
        steps.append(("oom.step.none", {}))
    return TrainingOutOfMemory(steps, card=card, memory_gib=memory_gib)
