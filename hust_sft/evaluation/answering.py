"""Answering the planned prompts, and per_example.jsonl: the one file where answers are kept.

Nothing generated is ever lost: each batch's answers are scored and appended to `per_example.jsonl` (one
line per arm and question, keyed by arm + question id) as soon as they exist. A rerun with the same
settings reuses every line whose arm settings and prompt are unchanged (`keep_reusable`) and generates
only the rest; a line whose arm changed (other adapter weights, max_new_tokens, model, system prompt…) is
dropped and answered again. All arms share one copy of the base weights (`Answerer`), loaded only when
some answer is still missing. The reports are rendered afterwards from the rows `table_rows` reads back.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hust_sft import metrics
from hust_sft.evaluation.arms import BASE, Arm
from hust_sft.evaluation.plan import Example, Plan, Prompt
from hust_sft.evaluation.scoring import account_row
from hust_sft.fileio import write_text_atomic
from hust_sft.settings import EvalSettings

# ---------------------------------------------------------------------------------------------------
# The model the arms answer with

@dataclass
class Answerer:
    """The loaded model as the arms use it: each adapter's PEFT name, the context that makes a batch
    answer as one adapter (`answering(peft name or None)`), and where it runs."""
    model: object
    tokenizer: object
    peft_of: dict[str, str]
    answering: Callable
    device: str
    dtype: str


def load_answerer(settings: EvalSettings, arms: list[Arm], model, tokenizer, adapter_names: list[str] | None,
                  answering, say: Callable[..., None]) -> Answerer:
    """The given model (the Space's cache), or the base weights with every adapter loaded once."""
    from hust_sft.generation import answer_with
    from hust_sft.modeling import load_adapters, load_base_model

    say(0.02, "eval.progress.model")
    if model is None:
        base = load_base_model(settings.model)
        peft_names = [f"adapter{i}" for i in range(len(settings.adapter))]  # PEFT keys may not contain "."
        model = load_adapters(base, settings.adapter, peft_names) if any(a.adapter for a in arms) else base
    else:
        peft_names = list(adapter_names or [])
    if answering is None:
        answering = (lambda name: answer_with(model, name))
    param = next(model.parameters())
    return Answerer(model, tokenizer, dict(zip(settings.adapter, peft_names)), answering,
                    param.device.type, str(param.dtype).replace("torch.", ""))


# ---------------------------------------------------------------------------------------------------
# Answering what is missing, arm by arm, batch by batch

@dataclass
class _Tally:
    """Answers so far over all arms: the progress fraction and the console bar."""
    say: Callable[..., None]
    bar: object
    total: int
    answered: int

    def starting(self, arm: Arm, done: int, of: int) -> None:
        self.say(0.05 + 0.9 * self.answered / self.total, "eval.progress.generating", model=arm.name, done=done,
                 total=of)

    def answered_batch(self, n: int) -> None:
        self.answered += n
        self.bar.update(n)


def answer_missing(answerer: Answerer, plan: Plan, prompts: dict[tuple[str, str], Prompt], done: dict,
                   path: Path, settings: EvalSettings, say: Callable[..., None]) -> None:
    """Every (arm, question) not in `done`, arm by arm, appended to `path` batch by batch."""
    from tqdm.auto import tqdm

    with tqdm(total=len(prompts), initial=len(done), desc="evaluate", unit="answer") as bar:
        tally = _Tally(say, bar, len(prompts), len(done))
        for arm in plan.arms:
            todo = [ex for ex in plan.examples if (arm.name, ex.qid) not in done]
            if todo:
                answer_arm(answerer, arm, todo, prompts, path, settings, tally)


def answer_arm(answerer: Answerer, arm: Arm, todo: list[Example], prompts: dict[tuple[str, str], Prompt],
               path: Path, settings: EvalSettings, tally: _Tally) -> None:
    """One arm's questions in batches; each batch is scored and on disk before the next starts."""
    from hust_sft.generation import generate_batch

    reset_peak_memory(answerer.device)
    # Longest prompts first, so an out-of-memory shows up at once; similar lengths share a batch. Off-topic
    # questions a tuned arm hands to the base model come first, in batches of their own.
    prompt = {ex.qid: prompts[(arm.name, ex.qid)] for ex in todo}
    batches = []
    for use_adapter in (False, True):
        group = sorted((ex for ex in todo if prompt[ex.qid].asked.use_adapter == use_adapter),
                       key=lambda ex: -len(prompt[ex.qid].ids))
        batches += [group[i:i + settings.batch_size] for i in range(0, len(group), settings.batch_size)]
    done = 0
    for batch in batches:
        tally.starting(arm, done, len(todo))
        done += len(batch)
        peft = answerer.peft_of.get(arm.adapter) if prompt[batch[0].qid].asked.use_adapter else None
        with answerer.answering(peft) as answering_model:
            results = generate_batch(answering_model, answerer.tokenizer, [prompt[ex.qid].ids for ex in batch],
                                     max_new_tokens=settings.generation.max_new_tokens, batch_size=len(batch))
        peak = peak_memory_mb(answerer.device)
        _append_rows(path, [_row(arm, ex, res, prompt[ex.qid], peak, answerer.device, answerer.dtype)
                            for ex, res in zip(batch, results)])
        tally.answered_batch(len(batch))


def reset_peak_memory(device: str) -> None:
    """Each arm's peak memory is its own (CUDA keeps one running peak otherwise)."""
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()


def peak_memory_mb(device: str) -> float:
    from hust_sft.modeling import peak_memory_bytes

    return round(peak_memory_bytes(device) / 2 ** 20, 1)


def _row(arm: Arm, ex: Example, res, prompt: Prompt, peak_mb: float, device: str, dtype: str) -> dict:
    """One line of per_example.jsonl: the answer, its scores against the reference (and where its facts
    went, scoring.account_row), what it cost."""
    record, asked = ex.record, prompt.asked
    keywords = record.extra.get("expected_keywords") or None
    row = {"arm": arm.name, "qid": ex.qid, "split": ex.split, "source_line": record.line,
           "question": record.question, "reference": record.answer, "keywords": keywords,
           "answer": res.text, "scores": metrics.score(res.text, record.answer, keywords),
           "passages": None if asked.passages is None else [_public_passage(p) for p in asked.passages],
           "passage_chars": prompt.passage_chars if asked.passages is not None else None,
           "off_topic": asked.off_topic, "answered_by": arm.model if asked.use_adapter else BASE,
           "new_tokens": res.new_tokens, "seconds": round(res.seconds, 4), "peak_memory_mb": peak_mb,
           "device": device, "dtype": dtype, "fingerprint": prompt.fingerprint, "prompt_sha": prompt.sha}
    account_row(row)
    return row


def _public_passage(p) -> dict:
    """A passage as stored with an answer (published, served to visitors): its source as a file name (and
    the page or section of a knowledge file: "handbook.pdf p.12")."""
    from hust_sft.retrieval import cite

    return {**p.to_dict(), "source": cite(p)}


# ---------------------------------------------------------------------------------------------------
# per_example.jsonl: written as answers are produced, read back for every report

def read_rows(path: Path) -> list[dict]:
    """The lines of per_example.jsonl; a half-written last line (a crash mid-append) is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "arm" in row and "qid" in row:
            rows.append(row)
    return rows


def _append_rows(path: Path, rows: list[dict]) -> None:
    """One write + flush + fsync per batch: the answers are on disk before the next batch starts."""
    import os

    with open(path, "a", encoding="utf-8", newline="") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())


def keep_reusable(path: Path, wanted: dict[tuple[str, str], tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """Rows still valid for this evaluation, by (arm, qid); per_example.jsonl is rewritten to hold only them.

    `wanted[(arm, qid)] = (fingerprint, prompt sha)`. A row of an arm that is no longer asked for, or
    whose arm settings or prompt changed, is dropped (that part starts fresh).
    """
    rows = read_rows(path)
    kept: dict[tuple[str, str], dict] = {}
    for r in rows:
        key = (r["arm"], r["qid"])
        if wanted.get(key) == (r.get("fingerprint"), r.get("prompt_sha")):
            kept[key] = r
    if path.is_file():  # also ends a half-written last line, which the next append would be glued to
        write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept.values()),
                          newline="")
    return kept


def table_rows(path: Path, plan: Plan) -> list[dict]:
    """per_example.jsonl's rows of this plan in table order (arm, then question)."""
    arm_pos = {a.name: i for i, a in enumerate(plan.arms)}
    q_pos = {ex.qid: i for i, ex in enumerate(plan.examples)}
    return sorted((r for r in read_rows(path) if r["arm"] in arm_pos and r["qid"] in q_pos),
                  key=lambda r: (arm_pos[r["arm"]], q_pos[r["qid"]]))


def store_rows(path: Path, rows: list[dict]) -> None:
    """per_example.jsonl rewritten whole (atomically) with `rows`: in table order after answering (batches
    were appended longest prompt first), and with what the report pass added to each row."""
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), newline="")


def stored_device(rows: list[dict]) -> tuple[str, str]:
    """Nothing generated now: the device and dtype the stored answers were generated with."""
    return next(((r.get("device"), r.get("dtype")) for r in rows), ("?", "?"))
