"""Held-out evaluation of "arms": answers, per-example scores, paired comparisons, "did it learn?".

`evaluate()` below is the whole evaluation as a sequence of named steps; each step lives in the file
that holds its concern, and the files only import downwards (none imports this one):

- `arms.py`: what an arm is (base or an adapter × with or without retrieval), which arms run, which pairs
  are compared;
- `plan.py`: the question sets, the output folder, the warnings, each retrieval arm's index, and every
  (arm, question)'s prompt with the identity a stored answer must match to be reused;
- `answering.py`: the model loaded once for all arms, answers generated batch by batch and appended to
  per_example.jsonl at once, stored rows reused on a rerun;
- `scoring.py`: means, answer behaviour, paired-bootstrap comparisons, did-it-learn and resources, all
  computed from the rows;
- `reports.py`: summary.json, summary.md and per_example.csv, rendered from the rows afterwards.

Nothing generated is ever lost: a crash while answering keeps every finished batch, a crash while
reporting costs no answers; run the same command again.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hust_sft.evaluation.answering import (
    Answerer,
    answer_arm,
    answer_missing,
    keep_reusable,
    load_answerer,
    read_rows,
    store_rows,
    stored_device,
    table_rows,
)
from hust_sft.evaluation.arms import (
    ARM_KINDS,
    BASE,
    BASE_RETRIEVAL,
    RETRIEVAL_SUFFIX,
    Arm,
    EvalError,
    comparisons,
    is_run_dir,
    model_names,
    plan_arms,
)
from hust_sft.evaluation.plan import (
    OUTPUT_FILES,
    PER_EXAMPLE,
    TRAIN_SPLIT,
    Example,
    Plan,
    Prompt,
    arm_fingerprint,
    arm_retrievers,
    check_settings,
    default_output_dir,
    last_user,
    load_examples,
    plan_evaluation,
    plan_prompts,
    prompt_messages,
    prompt_sha,
    train_sample,
)
from hust_sft.evaluation.reports import (
    DID_IT_LEARN_COLUMNS,
    build_summary,
    did_it_learn_rows,
    flat_rows,
    render_markdown,
    write_csv,
    write_reports,
)
from hust_sft.evaluation.scoring import (
    QUESTION_FIELDS,
    SCORED,
    account_facts,
    adapter_resources,
    by_arm,
    by_question,
    did_it_learn,
    resources,
    summarize,
)
from hust_sft.i18n import t
from hust_sft.settings import EvalSettings

__all__ = [
    "ARM_KINDS", "BASE", "BASE_RETRIEVAL", "DID_IT_LEARN_COLUMNS", "OUTPUT_FILES", "PER_EXAMPLE",
    "QUESTION_FIELDS", "RETRIEVAL_SUFFIX", "SCORED", "TRAIN_SPLIT", "account_facts", "adapter_resources",
    "answer_arm", "answer_missing", "Answerer", "Arm", "arm_fingerprint", "arm_retrievers", "build_summary",
    "by_arm", "by_question", "check_settings", "comparisons", "default_output_dir", "did_it_learn",
    "did_it_learn_rows", "EvalError", "EvalReport", "evaluate", "Example", "flat_rows", "is_run_dir",
    "keep_reusable", "last_user", "load_answerer", "load_examples", "model_names", "passage_clips", "Plan",
    "plan_arms", "plan_evaluation", "plan_prompts", "Progress", "Prompt", "prompt_messages", "prompt_sha",
    "read_rows", "render_markdown", "resources", "store_rows", "stored_device", "summarize", "table_rows",
    "train_sample", "write_csv", "write_reports",
]

Progress = Callable[[float, str], None]


@dataclass
class EvalReport:
    output_dir: Path
    summary: dict
    markdown: str
    rows: list[dict] = field(repr=False, default_factory=list)   # per_example.jsonl, one per arm × question

    @property
    def files(self) -> dict[str, Path]:
        return {name: self.output_dir / name for name in OUTPUT_FILES}


# ---------------------------------------------------------------------------------------------------
# The evaluation, step by step: plan (questions, arms, prompts) → answer what is missing, one arm at a
# time → read the rows back in table order → summarise and write the reports.

def evaluate(settings: EvalSettings, *, progress: Progress | None = None, lang: str = "en", model=None,
             tokenizer=None, adapter_names: list[str] | None = None, answering=None) -> EvalReport:
    """Answer every example with every arm (resuming from per_example.jsonl), then write the reports.

    `model`/`tokenizer`: an already loaded model of `settings.model.model` (the Space's serving cache),
    with `settings.adapter[i]` loaded under the PEFT name `adapter_names[i]`; then no second copy of the
    weights is loaded. Without them the weights are loaded only if some answer is still missing.
    `answering(peft name or None)`: a context around each batch that makes the model answer as that
    adapter (None: the base) and keeps other generations off it meanwhile (the Space's
    `serving.Held.batch`, which takes the model lock per batch); default `generation.answer_with`.
    """
    from hust_sft.modeling import load_tokenizer

    say = _reporter(progress, lang)
    check_settings(settings)
    _check_preloaded(settings, model, tokenizer, adapter_names)
    plan = plan_evaluation(settings, say)
    tok = tokenizer if tokenizer is not None else load_tokenizer(settings.model.model)
    prompts = plan_prompts(settings, plan, tok)

    plan.out_dir.mkdir(parents=True, exist_ok=True)
    path = plan.out_dir / PER_EXAMPLE
    done = keep_reusable(path, {k: p.key for k, p in prompts.items()})
    answered_on = None
    if len(done) < len(prompts):
        answerer = load_answerer(settings, plan.arms, model, tok, adapter_names, answering, say)
        answer_missing(answerer, plan, prompts, done, path, settings, say)
        answered_on = (answerer.device, answerer.dtype)
    rows = table_rows(path, plan)
    if account_facts(rows, passage_clips(plan)) or answered_on is not None:
        store_rows(path, rows)
    device, dtype = answered_on or stored_device(rows)

    say(0.97, "eval.progress.writing", path=str(plan.out_dir))
    summary = build_summary(rows, plan.arms, settings, data_info=plan.data_info, warnings=plan.warnings,
                            device=device, dtype=dtype, retrievers=plan.retrievers)
    markdown = write_reports(plan.out_dir, rows, summary, lang)
    say(1.0, "eval.progress.done", path=str(plan.out_dir))
    return EvalReport(output_dir=plan.out_dir, summary=summary, markdown=markdown, rows=rows)


def passage_clips(plan: Plan) -> dict[str, int]:
    """{retrieval arm: the characters each passage was clipped to in its prompts}."""
    return {name: found.passage_max_chars for name, found in plan.retrievers.items()}


def _reporter(progress: Progress | None, lang: str) -> Callable[..., None]:
    """say(fraction, i18n key, **params): the progress callback in the user's language (or nothing)."""
    def say(fraction: float, key: str, **params) -> None:
        if progress is not None:
            progress(min(1.0, fraction), t(key, lang, **params))
    return say


def _check_preloaded(settings: EvalSettings, model, tokenizer, adapter_names: list[str] | None) -> None:
    if (model is None) != (tokenizer is None) or (model is not None and
                                                  len(adapter_names or []) != len(settings.adapter)):
        raise ValueError("evaluate(): pass model and tokenizer together, with one adapter name per "
                         f"settings.adapter ({len(settings.adapter)}), got {adapter_names!r}")
