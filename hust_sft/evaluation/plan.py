"""What one evaluation will answer, decided before any weights are loaded: the `Plan` and its `Prompt`s.

The plan holds the output folder, the question sets, the arms, the warnings for the summary and each
retrieval arm's index. The test split is the one training never saw (same `split_of` rule and settings);
an out-of-domain file can be added whole, and a sample of training questions shows how much was
memorised. Retrieval uses the run's own `retrieval/` index and k (the passages training used); a run
trained without retrieval gets an index built from its training split by the same function
(`retrieval.for_answering`), and a run trained with retrieval whose index is missing is refused, never
answered without it. base+retrieval searches the first adapter's index, so both retrieval arms read the
same passages.

`plan_prompts` then turns every (arm, question) into the token ids it is asked with, plus the identity a
stored answer must match to be reused (the arm's fingerprint and the prompt's sha): everything that
decides an answer is settled here, so answering.py only generates.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hust_sft.evaluation.arms import Arm, EvalError, is_run_dir, plan_arms
from hust_sft.retrieval import Asked
from hust_sft.settings import EvalSettings, TrainSettings, to_dict

TRAIN_SPLIT = "train"    # the sample of training questions, for "did it learn?"
PER_EXAMPLE = "per_example.jsonl"
OUTPUT_FILES = (PER_EXAMPLE, "per_example.csv", "summary.json", "summary.md")


@dataclass
class Plan:
    """What one evaluation answers, decided before any weights are loaded."""
    out_dir: Path
    examples: list[Example]
    data_info: dict
    arms: list[Arm]
    warnings: list
    retrievers: dict     # {arm name: retrieval.AnswerRetrieval} of the retrieval arms


def plan_evaluation(settings: EvalSettings, say: Callable[..., None]) -> Plan:
    """The question sets (checked against the file the run trained on), the arms, the warnings for the
    summary, and each retrieval arm's index."""
    out_dir = default_output_dir(settings)
    say(0.0, "eval.progress.data")
    examples, data_info, bundle = load_examples(settings)
    if settings.adapter and is_run_dir(settings.adapter[0]):  # the file the run recorded, unchanged?
        from hust_sft.runs import check_data_unchanged

        held = data_info[settings.split]
        check_data_unchanged(settings.adapter[0], held["path"], held["sha256"])
    arms = plan_arms(settings)
    warnings = _data_warnings(settings) + _base_warnings(settings, arms)
    say(0.01, "eval.progress.retrieval")
    retrievers = arm_retrievers(settings, arms, bundle)
    return Plan(out_dir, examples, data_info, arms, warnings, retrievers)


def check_settings(settings: EvalSettings) -> None:
    """Greedy decoding only: answers must be reproducible to be reused and compared."""
    gen = settings.generation
    if gen.temperature > 0:
        raise EvalError("eval.error.sampling", value=gen.temperature)
    if gen.repetition_penalty != 1.0:
        raise EvalError("eval.error.repetition_penalty", value=gen.repetition_penalty)


def default_output_dir(settings: EvalSettings) -> Path:
    from hust_sft.runs import EVAL_DIR

    if settings.output:
        return Path(settings.output)
    if settings.adapter and is_run_dir(settings.adapter[0]):
        # A quick look at the first N questions never replaces the run's full evaluation (which the
        # runs table, the Evaluate tab and the published model card read from eval/).
        name = f"{EVAL_DIR}-first{settings.limit}" if settings.limit else EVAL_DIR
        return Path(settings.adapter[0]) / name
    return Path(TrainSettings().runs_dir) / time.strftime("eval-%Y%m%d-%H%M%S")


# ---------------------------------------------------------------------------------------------------
# The questions

@dataclass(frozen=True)
class Example:
    qid: str          # "<split>-<index in split>": with the prompt, what a per_example line is keyed by
    split: str
    record: object


def load_examples(settings: EvalSettings) -> tuple[list[Example], dict, object]:
    """The held-out split (`settings.split`: test, or validation to choose settings) and "ood", and a
    training sample, each cut to `limit`; what data was used; the data bundle (its training split feeds
    retrieval)."""
    from hust_sft.data import fetch, file_sha256, load_data, load_records

    bundle = load_data(settings.data)
    cut = (lambda rs: rs[:settings.limit] if settings.limit else rs)
    held = cut(bundle.splits[settings.split])
    info = {settings.split: {**bundle.to_dict(), "n": len(held)}}
    parts = [(settings.split, held)]
    if settings.ood:
        path = fetch(settings.ood)
        ood, report = load_records(path, source=settings.ood)
        ood = cut(ood)
        info["ood"] = {"source": settings.ood, "path": str(path), "sha256": file_sha256(path), "n": len(ood),
                       "validation": report.to_dict()}
        parts.append(("ood", ood))
    if not any(rs for _, rs in parts):
        raise EvalError("eval.error.no_examples", source=bundle.source, test_ratio=settings.data.test_ratio)
    sample = cut(train_sample(bundle.splits["train"], settings.train_sample))
    if sample:
        info[TRAIN_SPLIT] = {"n": len(sample), "of": len(bundle.splits["train"])}
        parts.append((TRAIN_SPLIT, sample))
    examples = [Example(f"{split}-{i}", split, r) for split, rs in parts for i, r in enumerate(rs)]
    return examples, info, bundle


def train_sample(records: list, n: int) -> list:
    """`n` training records picked by a hash of the question (stable, and unrelated to the split hash)."""
    key = (lambda r: hashlib.sha256(("train-sample\0" + r.question).encode("utf-8")).hexdigest())
    return sorted(records, key=key)[:n]


# ---------------------------------------------------------------------------------------------------
# Warnings for the summary

def _data_warnings(settings: EvalSettings) -> list:
    """Differences from the first run's data settings: they would move questions between splits."""
    from hust_sft.runs import load_settings

    if not settings.adapter or not is_run_dir(settings.adapter[0]):
        return []
    try:
        run = load_settings(settings.adapter[0])
    except ValueError:
        return []
    if run is None:
        return []
    out = []
    for key in ("data", "data_file", "val_ratio", "test_ratio", "system_prompt"):
        trained, now = getattr(run.data, key), getattr(settings.data, key)
        if trained != now:
            out.append(("eval.warn.data_differs", {"key": key, "run": trained, "now": now}))
    return out


def _base_warnings(settings: EvalSettings, arms: list[Arm]) -> list:
    """Adapters trained on another base model than the one they are evaluated on."""
    from hust_sft.modeling import base_model_of_adapter

    out = []
    for arm in arms:
        trained_on = base_model_of_adapter(arm.adapter) if arm.adapter else None
        if trained_on and trained_on != settings.model.model:
            out.append(("eval.warn.base_differs", {"model": arm.name, "trained": trained_on,
                                                   "now": settings.model.model}))
    return out


# ---------------------------------------------------------------------------------------------------
# Retrieval for the arms that use it

def arm_retrievers(settings: EvalSettings, arms: list[Arm], bundle) -> dict:
    """{arm name: retrieval.AnswerRetrieval} for every retrieval arm.

    A tuned arm uses its own run's index; base+retrieval the first adapter's (the same passages as the
    tuned arm it is compared with), or, without adapters, one built from this data's training split.
    Every adapter's index is checked even for its plain arm: a run trained with retrieval whose
    retrieval/ is missing stops the evaluation with RetrievalError (never answered without its passages).
    """
    from hust_sft import retrieval

    train = bundle.splits["train"]
    specs = list(dict.fromkeys(a.adapter for a in arms if a.adapter))
    if any(a.retrieval and not a.adapter for a in arms) and settings.adapter:
        specs = list(dict.fromkeys([settings.adapter[0]] + specs))
    found = {spec: retrieval.for_answering(spec, train_records=train) for spec in specs}
    out = {}
    for arm in arms:
        if not arm.retrieval:
            continue
        spec = arm.adapter or (settings.adapter[0] if settings.adapter else None)
        out[arm.name] = found[spec] if spec else retrieval.for_answering(None, train_records=train)
    return out


# ---------------------------------------------------------------------------------------------------
# The prompts: what each arm is asked for each question

@dataclass(frozen=True)
class Prompt:
    """What one arm is asked for one question: token ids, how they were asked (`asked`: the passages, and
    whether the adapter answers — an off-topic question on a tuned retrieval arm goes to the base model,
    retrieval.AnswerRetrieval.ask), and the identity a stored answer must match to be reused (the plain
    prompt an off-topic question gets differs from every retrieval prompt, so `sha` tells the two apart)."""
    ids: list[int]
    asked: Asked
    fingerprint: str
    sha: str
    passage_chars: int | None = None   # the characters each passage was clipped to (retrieval arms)

    @property
    def key(self) -> tuple[str, str]:
        return self.fingerprint, self.sha


def plan_prompts(settings: EvalSettings, plan: Plan, tokenizer) -> dict[tuple[str, str], Prompt]:
    """{(arm, qid): Prompt} for every arm and question.

    Retrieval arms that read the same index (base+retrieval and the first adapter's tuned+retrieval) share
    its search: one per (index, question). Each arm still decides off-topic handling for itself
    (`AnswerRetrieval.asked`: only a tuned arm has an adapter to hand the question away from).
    """
    from hust_sft.data.encoding import prompt_ids

    searched: dict[tuple[int, str], list] = {}   # (id of the AnswerRetrieval, question): its passages

    def search(found, question: str) -> list:
        key = (id(found), question)   # plan.retrievers keeps every index alive, so an id is never reused
        if key not in searched:
            searched[key] = found.search(question)
        return searched[key]

    prompts = {}
    for arm in plan.arms:
        fp = arm_fingerprint(settings, arm)
        found = plan.retrievers.get(arm.name)
        for ex in plan.examples:
            msgs = prompt_messages(ex.record)
            asked = (Asked(None, bool(arm.adapter), False) if found is None
                     else found.asked(search(found, last_user(msgs)), tuned=bool(arm.adapter)))
            ids = prompt_ids(tokenizer, msgs, settings.data.system_prompt, passages=asked.passages,
                             **({"passage_max_chars": found.passage_max_chars} if found else {}))
            prompts[(arm.name, ex.qid)] = Prompt(ids, asked, fp, prompt_sha(ids),
                                                 found.passage_max_chars if found else None)
    return prompts


def prompt_messages(record) -> list[dict]:
    """The conversation up to (not including) its last assistant turn: what the model must answer."""
    last = max(i for i, m in enumerate(record.messages) if m["role"] == "assistant")
    return record.messages[:last]


def last_user(messages: list[dict]) -> str:
    """The question retrieval searches for: the last user turn (the one the template puts passages in)."""
    return next(m["content"] for m in reversed(messages) if m["role"] == "user")


# ---------------------------------------------------------------------------------------------------
# Identity of an arm: what must not change for a stored answer to be reused

def arm_fingerprint(settings: EvalSettings, arm: Arm) -> str:
    """sha256 of everything besides the prompt that decides an arm's answers (not batch size, bootstrap
    or output folder: batched greedy decoding gives the same tokens, see generation.generate_batch)."""
    gen = settings.generation
    key = {"model": to_dict(settings.model), "max_new_tokens": gen.max_new_tokens,
           "temperature": gen.temperature, "repetition_penalty": gen.repetition_penalty,
           "arm": arm.to_dict(), "adapter": _adapter_identity(arm.adapter) if arm.adapter else None}
    return _sha256(json.dumps(key, sort_keys=True, ensure_ascii=False).encode("utf-8"))[:16]


def _adapter_identity(spec: str) -> dict:
    """The adapter's weights and config by content (a retrained run in the same folder is a new arm)."""
    from hust_sft.modeling import adapter_dir

    path = Path(adapter_dir(spec))
    if not path.is_dir():
        return {"hub": spec}
    files = sorted(f for f in path.iterdir() if f.is_file() and f.name.startswith("adapter_"))
    return {f.name: _sha256(f.read_bytes()) for f in files}


def prompt_sha(ids: list[int]) -> str:
    return _sha256(json.dumps(ids).encode("ascii"))[:16]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
