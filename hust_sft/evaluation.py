"""Held-out evaluation of the base model and each adapter: answers, per-example scores, paired comparison.

The test split is the one training never saw (same `split_of` rule and settings); an out-of-domain file can
be added whole. All models share one copy of the base weights. Outputs (in `<run>/eval/` by default):
per_example.jsonl / .csv (one row per question, every model's answer and scores), summary.json and
summary.md (means per model and split; adapter − base with a paired-bootstrap 95% CI; speed and memory).
"""
from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hust_sft import metrics
from hust_sft.errors import LocalizedError
from hust_sft.fileio import write_text_atomic
from hust_sft.i18n import t
from hust_sft.settings import EvalSettings, TrainSettings, to_dict

BASE = "base"
Progress = Callable[[float, str], None]


class EvalError(LocalizedError, ValueError):
    """Evaluation cannot run as asked; the message says what to change."""


@dataclass
class EvalReport:
    output_dir: Path
    summary: dict
    markdown: str
    rows: list[dict] = field(repr=False, default_factory=list)

    @property
    def files(self) -> dict[str, Path]:
        return {name: self.output_dir / name for name in OUTPUT_FILES}


OUTPUT_FILES = ("per_example.jsonl", "per_example.csv", "summary.json", "summary.md")


# ---------------------------------------------------------------------------------------------------
# Naming and locations

def is_run_dir(spec: str) -> bool:
    from hust_sft.runs import ADAPTER_DIR, RUN_JSON

    p = Path(spec)
    return (p / ADAPTER_DIR).is_dir() or (p / RUN_JSON).is_file()


def model_names(specs: list[str]) -> list[str]:
    """Table names: the run-dir name (or adapter folder / Hub repo name), unique, never "base"."""
    names, taken = [], {BASE}
    for spec in specs:
        p = Path(spec.rstrip("/\\"))
        stem = (p.parent.name if p.name == "adapter" and p.parent.name else p.name) or "adapter"
        name, k = stem, 2
        while name in taken:
            name, k = f"{stem}-{k}", k + 1
        taken.add(name)
        names.append(name)
    return names


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
# Inputs

def _check_settings(settings: EvalSettings) -> None:
    gen = settings.generation
    if gen.temperature > 0:
        raise EvalError("eval.error.sampling", value=gen.temperature)
    if gen.repetition_penalty != 1.0:
        raise EvalError("eval.error.repetition_penalty", value=gen.repetition_penalty)


def load_examples(settings: EvalSettings) -> tuple[list[tuple[str, object]], dict]:
    """[(split, Record)] for the test split (and "ood"), each cut to `limit`; plus what data was used."""
    from hust_sft.data import fetch, file_sha256, load_data, load_records

    bundle = load_data(settings.data)
    test = bundle.splits["test"][:settings.limit] if settings.limit else bundle.splits["test"]
    info = {"test": {**bundle.to_dict(), "n": len(test)}}
    examples = [("test", r) for r in test]
    if settings.ood:
        path = fetch(settings.ood)
        ood, report = load_records(path, source=settings.ood)
        ood = ood[:settings.limit] if settings.limit else ood
        info["ood"] = {"source": settings.ood, "path": str(path), "sha256": file_sha256(path), "n": len(ood),
                       "validation": report.to_dict()}
        examples += [("ood", r) for r in ood]
    if not examples:
        raise EvalError("eval.error.no_examples", source=bundle.source, test_ratio=settings.data.test_ratio)
    return examples, info


def prompt_messages(record) -> list[dict]:
    """The conversation up to (not including) its last assistant turn: what the model must answer."""
    last = max(i for i, m in enumerate(record.messages) if m["role"] == "assistant")
    return record.messages[:last]


def _data_warnings(settings: EvalSettings) -> list[str]:
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


# ---------------------------------------------------------------------------------------------------
# Resources

def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and "adapter" in f.name) if path.is_dir() else 0


def adapter_resources(spec: str) -> dict:
    """Training wall time and trainable parameters from run.json, adapter weights' size on disk."""
    from hust_sft.modeling import adapter_dir
    from hust_sft.runs import read_run_json

    out: dict = {}
    path = Path(adapter_dir(spec))
    if path.is_dir():
        out["adapter_size_mb"] = round(_dir_size(path) / 2 ** 20, 3)
    if is_run_dir(spec):
        try:
            run = read_run_json(spec) or {}
        except ValueError:
            run = {}
        for key in ("wall_time_s", "trainable_params", "total_params", "peak_memory_mb"):
            if run.get(key) is not None:
                out[("train_" + key) if key == "peak_memory_mb" else key] = run[key]
    return out


# ---------------------------------------------------------------------------------------------------
# Summary

def summarize(rows: list[dict], models: list[str], n_boot: int, seed: int = 0) -> dict:
    """Means per split and model; each adapter − base per metric with its paired-bootstrap 95% CI."""
    out = {}
    for split in dict.fromkeys(r["split"] for r in rows):
        part = [r for r in rows if r["split"] == split]
        means = {m: {k: metrics.mean(r[f"{k}:{m}"] for r in part) for k in metrics.METRICS} for m in models}
        vs_base = {}
        for m in models[1:]:
            vs_base[m] = {}
            for k in metrics.METRICS:
                a, b = [r[f"{k}:{BASE}"] for r in part], [r[f"{k}:{m}"] for r in part]
                diff, lo, hi = metrics.paired_bootstrap(a, b, n=n_boot, seed=seed)
                n = sum(x is not None and y is not None for x, y in zip(a, b))
                vs_base[m][k] = {"diff": diff, "lo": lo, "hi": hi, "n": n}
        out[split] = {"n": len(part), "means": means, "vs_base": vs_base}
    return out


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _signed(v) -> str:
    return "–" if v is None else f"{100 * v:+.1f}"


def render_markdown(summary: dict, lang: str = "en") -> str:
    """summary.md from summary.json, in `lang` (the UI re-renders it in the user's language)."""
    models = summary["models"]
    lines = [f"# {t('eval.md.title', lang)}", ""]
    for key, params in summary.get("warnings", []):
        lines.append(f"> ⚠ {t(key, lang, **params)}")
    if summary.get("warnings"):
        lines.append("")
    for split, s in summary["splits"].items():
        lines += [f"## {t('eval.split.' + split, lang)} (n = {s['n']})", ""]
        head = [t("eval.md.metric", lang)] + models
        for m in models[1:]:
            head.append(t("eval.md.diff", lang, model=m))
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for k in metrics.METRICS:
            cells = [t(f"metric.{k}", lang)] + [_pct(s["means"][m][k]) for m in models]
            for m in models[1:]:
                d = s["vs_base"][m][k]
                cells.append("–" if d["diff"] is None else
                             f"{_signed(d['diff'])} [{_signed(d['lo'])}, {_signed(d['hi'])}] (n={d['n']})")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += [f"## {t('eval.md.resources', lang)}", ""]
    cols = ["tokens_per_s", "mean_latency_s", "peak_memory_mb", "wall_time_s", "trainable_params",
            "adapter_size_mb"]
    lines += ["| " + " | ".join([t("eval.md.model", lang)] + [t(f"eval.res.{c}", lang) for c in cols]) + " |",
              "|" + "---|" * (len(cols) + 1)]
    for m in models:
        res = summary["resources"][m]
        lines.append("| " + " | ".join([m] + [_fmt(res.get(c)) for c in cols]) + " |")
    lines += ["", t("eval.md.note", lang, device=summary.get("device", "?"), dtype=summary.get("dtype", "?"))]
    return "\n".join(lines) + "\n"


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"


# ---------------------------------------------------------------------------------------------------
# Files

def write_outputs(out_dir: Path, rows: list[dict], summary: dict, markdown: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "per_example.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                      newline="")
    import io

    buf = io.StringIO()
    columns = list(rows[0]) if rows else []
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "; ".join(v) if isinstance(v, list) else ("" if v is None else v) for k, v in r.items()})
    # BOM: Excel reads UTF-8
    write_text_atomic(out_dir / "per_example.csv", buf.getvalue(), encoding="utf-8-sig", newline="")
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, ensure_ascii=False, indent=2) + "\n", newline="")
    write_text_atomic(out_dir / "summary.md", markdown, newline="")


# ---------------------------------------------------------------------------------------------------

def evaluate(settings: EvalSettings, *, progress: Progress | None = None, lang: str = "en", model=None,
             tokenizer=None, adapter_names: list[str] | None = None) -> EvalReport:
    """Generate with the base model and every adapter, score each answer, write the four output files.

    `model`/`tokenizer`: an already loaded model of `settings.model.model` (the Space's serving cache),
    with `settings.adapter[i]` loaded under the PEFT name `adapter_names[i]`; then no second copy of the
    weights is loaded. The caller must keep other generations off that model until this returns.
    """
    import torch
    from tqdm.auto import tqdm

    from hust_sft.data.encoding import prompt_ids
    from hust_sft.generation import answer_with, generate_batch
    from hust_sft.modeling import (
        base_model_of_adapter,
        load_adapters,
        load_base_model,
        load_tokenizer,
        peak_memory_bytes,
    )

    def report(fraction: float, key: str, **params):
        if progress is not None:
            progress(min(1.0, fraction), t(key, lang, **params))

    _check_settings(settings)
    if (model is None) != (tokenizer is None) or (model is not None and
                                                  len(adapter_names or []) != len(settings.adapter)):
        raise ValueError("evaluate(): pass model and tokenizer together, with one adapter name per "
                         f"settings.adapter ({len(settings.adapter)}), got {adapter_names!r}")
    out_dir = default_output_dir(settings)
    report(0.0, "eval.progress.data")
    examples, data_info = load_examples(settings)
    names = model_names(settings.adapter)
    models = [BASE] + names
    warnings = _data_warnings(settings)

    report(0.02, "eval.progress.model")
    if model is None:
        tokenizer = load_tokenizer(settings.model.model)
        base = load_base_model(settings.model)
        peft_names = [f"adapter{i}" for i in range(len(names))]  # PEFT keys may not contain "."
        model = load_adapters(base, settings.adapter, peft_names) if settings.adapter else base
    else:
        peft_names = list(adapter_names or [])
    param = next(model.parameters())
    device, dtype = param.device.type, str(param.dtype).replace("torch.", "")
    adapters = {}
    for name, spec in zip(names, settings.adapter):
        trained_on = base_model_of_adapter(spec)
        adapters[name] = {"spec": spec, "base_model": trained_on}
        if trained_on and trained_on != settings.model.model:
            warnings.append(("eval.warn.base_differs", {"model": name, "trained": trained_on,
                                                        "now": settings.model.model}))

    prompts = [prompt_ids(tokenizer, prompt_messages(r), settings.data.system_prompt) for _, r in examples]
    total = len(prompts) * len(models)
    answers, resources = {}, {}
    bar = tqdm(total=total, desc="evaluate", unit="answer")
    for k, (name, peft_name) in enumerate(zip(models, [None] + peft_names)):
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        report(0.05 + 0.9 * k / len(models), "eval.progress.generating", model=name, done=0, total=len(prompts))

        def on_batch(done, n, k=k, name=name):
            bar.update(done - on_batch.last)
            on_batch.last = done
            report(0.05 + 0.9 * (k + done / n) / len(models), "eval.progress.generating", model=name,
                   done=done, total=n)
        on_batch.last = 0
        with answer_with(model, peft_name):
            results = generate_batch(model, tokenizer, prompts, max_new_tokens=settings.generation.max_new_tokens,
                                     batch_size=settings.batch_size, progress=on_batch)
        answers[name] = results
        seconds = sum(r.seconds for r in results)
        tokens = sum(r.new_tokens for r in results)
        resources[name] = {"answers": len(results), "generated_tokens": tokens,
                           "tokens_per_s": round(tokens / seconds, 2) if seconds else None,
                           "mean_latency_s": round(seconds / len(results), 4) if results else None,
                           "peak_memory_mb": round(peak_memory_bytes(device) / 2 ** 20, 1)}
        if name != BASE:
            resources[name].update(adapter_resources(adapters[name]["spec"]))
    bar.close()

    report(0.96, "eval.progress.scoring")
    rows = []
    for i, (split, record) in enumerate(examples):
        keywords = record.extra.get("expected_keywords") or None
        row = {"split": split, "index": i, "source_line": record.line, "question": record.question,
               "reference": record.answer, "keywords": keywords}
        for name in models:
            row[f"answer:{name}"] = answers[name][i].text
        for name in models:
            row.update({f"{k}:{name}": v for k, v in metrics.score(answers[name][i].text, record.answer,
                                                                    keywords).items()})
        rows.append(row)

    summary = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": models, "adapters": adapters, "metrics": list(metrics.METRICS),
        "device": device, "dtype": dtype,
        "data": data_info, "settings": to_dict(settings), "warnings": warnings,
        "splits": summarize(rows, models, settings.bootstrap), "resources": resources,
    }
    markdown = render_markdown(summary, lang)
    report(0.98, "eval.progress.writing", path=str(out_dir))
    write_outputs(out_dir, rows, summary, markdown)
    report(1.0, "eval.progress.done", path=str(out_dir))
    return EvalReport(output_dir=out_dir, summary=summary, markdown=markdown, rows=rows)
