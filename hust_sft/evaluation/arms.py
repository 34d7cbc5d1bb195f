"""The arms of an evaluation and which of them are compared: the vocabulary every other file here uses.

An arm is one way of answering: (the base model or an adapter) × (with or without retrieval). The four
kinds base, base+retrieval, tuned, tuned+retrieval are picked by `EvalSettings.arms`; each arm is
compared with base, and tuned+retrieval also with base+retrieval (does fine-tuning add anything on top of
retrieval?). This file knows names only (no data, weights or files), so it sits below all the others.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from hust_sft.errors import LocalizedError
from hust_sft.settings import EvalSettings

BASE = "base"
RETRIEVAL_SUFFIX = "+retrieval"
BASE_RETRIEVAL = BASE + RETRIEVAL_SUFFIX
ARM_KINDS = ("base", "base+retrieval", "tuned", "tuned+retrieval")   # EvalSettings.arms choices


class EvalError(LocalizedError, ValueError):
    """Evaluation cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class Arm:
    """One way of answering. `model` is "base" or the adapter's table name; `adapter` its spec;
    `retrieval`: the prompt carries retrieved passages."""
    name: str
    model: str = BASE
    adapter: str | None = None
    retrieval: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def plan_arms(settings: EvalSettings) -> list[Arm]:
    """The arms `settings.arms` asks for, in table order: base, base+retrieval, then per adapter
    <run>, <run>+retrieval. "tuned" kinds without an adapter give no arm; no arm at all is an error."""
    kinds = set(settings.arms)
    arms = [a for a in (Arm(BASE), Arm(BASE_RETRIEVAL, retrieval=True)) if a.name in kinds]
    for name, spec in zip(model_names(settings.adapter), settings.adapter):
        if "tuned" in kinds:
            arms.append(Arm(name, name, spec))
        if "tuned+retrieval" in kinds:
            arms.append(Arm(name + RETRIEVAL_SUFFIX, name, spec, retrieval=True))
    if not arms:
        raise EvalError("eval.error.no_arms", arms=", ".join(settings.arms) or "–")
    return arms


def model_names(specs: list[str]) -> list[str]:
    """Table names: the run-dir name (or adapter folder / Hub repo name), unique, never "base"."""
    names, taken = [], {BASE, BASE_RETRIEVAL}
    for spec in specs:
        p = Path(spec.rstrip("/\\"))
        stem = (p.parent.name if p.name == "adapter" and p.parent.name else p.name) or "adapter"
        name, k = stem, 2
        while name in taken:
            name, k = f"{stem}-{k}", k + 1
        taken.add(name)
        names.append(name)
    return names


def comparisons(arms: list[Arm]) -> list[tuple[str, str]]:
    """(arm, against) pairs the summary compares with a paired-bootstrap CI: every arm against base, and
    every tuned+retrieval arm against base+retrieval (what fine-tuning adds on top of retrieval)."""
    names = {a.name for a in arms}
    out = []
    for a in arms:
        if a.name != BASE and BASE in names:
            out.append((a.name, BASE))
        if a.adapter and a.retrieval and BASE_RETRIEVAL in names:
            out.append((a.name, BASE_RETRIEVAL))
    return out


def is_run_dir(spec: str) -> bool:
    """`spec` is a run folder (adapter/ or run.json in it), not a bare adapter folder or a Hub id."""
    from hust_sft.runs import ADAPTER_DIR, RUN_JSON

    p = Path(spec)
    return (p / ADAPTER_DIR).is_dir() or (p / RUN_JSON).is_file()
