"""Held-out evaluation of "arms": answers, per-example scores, paired comparisons, "did it learn?".

An arm is one way of answering: (the base model or an adapter) × (with or without retrieval). The four
arms base, base+retrieval, tuned, tuned+retrieval run in one evaluation; each is compared with base, and
tuned+retrieval also with base+retrieval (does fine-tuning add anything on top of retrieval?). Retrieval
uses the run's own `retrieval/` index and k (the passages training used); a run trained without
retrieval gets an index built from its training split by the same function (`retrieval.for_answering`),
and a run trained with retrieval whose index is missing is refused, never answered without it. base+
retrieval searches the first adapter's index, so both retrieval arms read the same passages.

The test split is the one training never saw (same `split_of` rule and settings); an out-of-domain file
can be added whole, and a sample of training questions shows how much was memorised. All arms share one
copy of the base weights.

Nothing generated is ever lost: each batch's answers are scored and appended to `per_example.jsonl` (one
line per arm and question, keyed by arm + question id) as soon as they exist. A rerun with the same
settings reuses every line whose arm settings and prompt are unchanged and generates only the rest; a
line whose arm changed (other adapter weights, max_new_tokens, model, system prompt…) is dropped and
answered again. The reports — summary.json, summary.md, per_example.csv — are rendered afterwards FROM
per_example.jsonl, so a crash while reporting costs no answers: run the same command again.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hust_sft import metrics
from hust_sft.errors import LocalizedError
from hust_sft.fileio import write_text_atomic
from hust_sft.i18n import t
from hust_sft.retrieval import Asked
from hust_sft.settings import EvalSettings, TrainSettings, to_dict

BASE = "base"
RETRIEVAL_SUFFIX = "+retrieval"
BASE_RETRIEVAL = BASE + RETRIEVAL_SUFFIX
ARM_KINDS = ("base", "base+retrieval", "tuned", "tuned+retrieval")   # EvalSettings.arms choices
PER_EXAMPLE = "per_example.jsonl"
OUTPUT_FILES = (PER_EXAMPLE, "per_example.csv", "summary.json", "summary.md")
TRAIN_SPLIT = "train"    # the sample of training questions, for "did it learn?"
Progress = Callable[[float, str], None]


class EvalError(LocalizedError, ValueError):
    """Evaluation cannot run as asked; the message says what to change."""


@dataclass
class EvalReport:
    output_dir: Path
    summary: dict
    markdown: str
    rows: list[dict] = field(repr=False, default_factory=list)   # per_example.jsonl, one per arm × question

    @property
    def files(self) -> dict[str, Path]:
        return {name: self.output_dir / name for name in OUTPUT_FILES}


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


# ---------------------------------------------------------------------------------------------------
# Naming and locations

def is_run_dir(spec: str) -> bool:
    from hust_sft.runs import ADAPTER_DIR, RUN_JSON

    p = Path(spec)
    return (p / ADAPTER_DIR).is_dir() or (p / RUN_JSON).is_file()


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


@dataclass(frozen=True)
class Example:
    qid: str          # "<split>-<index in split>": with the prompt, what a per_example line is keyed by
    split: str
    record: object


def train_sample(records: list, n: int) -> list:
    """`n` training records picked by a hash of the question (stable, and unrelated to the split hash)."""
    key = (lambda r: hashlib.sha256(("train-sample\0" + r.question).encode("utf-8")).hexdigest())
    return sorted(records, key=key)[:n]


def load_examples(settings: EvalSettings) -> tuple[list[Example], dict, object]:
    """The test split (and "ood", and a training sample), each cut to `limit`; what data was used; the
    data bundle (its training split feeds retrieval)."""
    from hust_sft.data import fetch, file_sha256, load_data, load_records

    bundle = load_data(settings.data)
    cut = (lambda rs: rs[:settings.limit] if settings.limit else rs)
    test = cut(bundle.splits["test"])
    info = {"test": {**bundle.to_dict(), "n": len(test)}}
    parts = [("test", test)]
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


def prompt_messages(record) -> list[dict]:
    """The conversation up to (not including) its last assistant turn: what the model must answer."""
    last = max(i for i, m in enumerate(record.messages) if m["role"] == "assistant")
    return record.messages[:last]


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


# ---------------------------------------------------------------------------------------------------
# Retrieval for the arms that use it

def last_user(messages: list[dict]) -> str:
    """The question retrieval searches for: the last user turn (the one the template puts passages in)."""
    return next(m["content"] for m in reversed(messages) if m["role"] == "user")


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
# Identity of an arm: what must not change for a stored answer to be reused

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _adapter_identity(spec: str) -> dict:
    """The adapter's weights and config by content (a retrained run in the same folder is a new arm)."""
    from hust_sft.modeling import adapter_dir

    path = Path(adapter_dir(spec))
    if not path.is_dir():
        return {"hub": spec}
    files = sorted(f for f in path.iterdir() if f.is_file() and f.name.startswith("adapter_"))
    return {f.name: _sha256(f.read_bytes()) for f in files}


def arm_fingerprint(settings: EvalSettings, arm: Arm) -> str:
    """sha256 of everything besides the prompt that decides an arm's answers (not batch size, bootstrap
    or output folder: batched greedy decoding gives the same tokens, see generation.generate_batch)."""
    gen = settings.generation
    key = {"model": to_dict(settings.model), "max_new_tokens": gen.max_new_tokens,
           "temperature": gen.temperature, "repetition_penalty": gen.repetition_penalty,
           "arm": arm.to_dict(), "adapter": _adapter_identity(arm.adapter) if arm.adapter else None}
    return _sha256(json.dumps(key, sort_keys=True, ensure_ascii=False).encode("utf-8"))[:16]


def prompt_sha(ids: list[int]) -> str:
    return _sha256(json.dumps(ids).encode("ascii"))[:16]


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


def _keep_reusable(path: Path, wanted: dict[tuple[str, str], tuple[str, str]]) -> dict[tuple[str, str], dict]:
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


# ---------------------------------------------------------------------------------------------------
# Summary (from rows)

def by_arm(rows: list[dict], split: str) -> dict[str, dict[str, dict]]:
    """{arm: {qid: row}} of one split."""
    out: dict[str, dict[str, dict]] = {}
    for r in rows:
        if r["split"] == split:
            out.setdefault(r["arm"], {})[r["qid"]] = r
    return out


def summarize(rows: list[dict], arms: list[str], pairs: list[tuple[str, str]], n_boot: int,
              seed: int = 0) -> dict:
    """Per split: means per arm and metric, answer behaviour per arm, and each (arm, against) pair's
    mean difference with its paired-bootstrap 95% CI (over the questions both answered)."""
    out = {}
    for split in dict.fromkeys(r["split"] for r in rows):
        table = by_arm(rows, split)
        qids = list(dict.fromkeys(r["qid"] for r in rows if r["split"] == split))
        means = {a: {k: metrics.mean(r["scores"].get(k) for r in table.get(a, {}).values())
                     for k in metrics.METRICS} for a in arms}
        behaviour = {a: _behaviour(table.get(a, {})) for a in arms}
        compared = []
        for arm, against in pairs:
            both = [q for q in qids if q in table.get(arm, {}) and q in table.get(against, {})]
            entry = {"arm": arm, "against": against, "metrics": {},
                     "identical": (sum(_same(table[arm][q]["answer"], table[against][q]["answer"]) for q in both)
                                   / len(both)) if both else None}
            for k in metrics.METRICS:
                a = [table[against][q]["scores"].get(k) for q in both]
                b = [table[arm][q]["scores"].get(k) for q in both]
                diff, lo, hi = metrics.paired_bootstrap(a, b, n=n_boot, seed=seed)
                n = sum(x is not None and y is not None for x, y in zip(a, b))
                entry["metrics"][k] = {"diff": diff, "lo": lo, "hi": hi, "n": n}
            compared.append(entry)
        out[split] = {"n": len(qids), "means": means, "behaviour": behaviour, "comparisons": compared}
    return out


def _same(a: str, b: str) -> bool:
    return (a or "").strip() == (b or "").strip()


def _behaviour(rows: dict[str, dict]) -> dict:
    """Answers of one arm on one split: how many, how many loop, mean length (characters, tokens)."""
    answers = [r["answer"] or "" for r in rows.values()]
    n = len(answers)
    return {"n": n,
            "looping": sum(metrics.loops(a) for a in answers),
            "off_topic": sum(bool(r.get("off_topic")) for r in rows.values()),
            # off topic with off_topic "base": asked plainly (no passages), by the base model
            "answered_by_base": sum(bool(r.get("off_topic")) and r.get("passages") is None for r in rows.values()),
            "mean_chars": sum(len(a.strip()) for a in answers) / n if n else None,
            "mean_new_tokens": sum(r.get("new_tokens") or 0 for r in rows.values()) / n if n else None}


def resources(rows: list[dict], arms: list[Arm]) -> dict[str, dict]:
    """Per arm: generated tokens/s and seconds per answer (over the rows' own timings), peak memory."""
    out = {}
    for arm in arms:
        mine = [r for r in rows if r["arm"] == arm.name]
        seconds = sum(r.get("seconds") or 0.0 for r in mine)
        tokens = sum(r.get("new_tokens") or 0 for r in mine)
        peaks = [r["peak_memory_mb"] for r in mine if r.get("peak_memory_mb") is not None]
        res = {"answers": len(mine), "generated_tokens": tokens,
               "tokens_per_s": round(tokens / seconds, 2) if seconds else None,
               "mean_latency_s": round(seconds / len(mine), 4) if mine else None,
               "peak_memory_mb": max(peaks) if peaks else None}
        if arm.adapter:
            res.update(adapter_resources(arm.adapter))
        out[arm.name] = res
    return out


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


def did_it_learn(splits: dict, arms: list[str]) -> dict:
    """Per arm: held-out vs training-question score (token F1, key-phrase recall), share of answers
    identical to base's, looping answers, mean answer length — the signs of learning or of copying."""
    held = splits.get("test") or next((s for k, s in splits.items() if k != TRAIN_SPLIT), None)
    train = splits.get(TRAIN_SPLIT)
    out = {}
    for arm in arms:
        entry = {}
        for name, s in (("held_out", held), (TRAIN_SPLIT, train)):
            if s is None:
                entry[name] = None
                continue
            b = s["behaviour"][arm]
            entry[name] = {"n": b["n"], "token_f1": s["means"][arm]["token_f1"],
                           "key_phrase_recall": s["means"][arm]["key_phrase_recall"],
                           "identical_to_base": next((c["identical"] for c in s["comparisons"]
                                                      if c["arm"] == arm and c["against"] == BASE), None),
                           "looping": b["looping"], "mean_chars": b["mean_chars"]}
        out[arm] = entry
    return out


# ---------------------------------------------------------------------------------------------------
# Reports

def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _signed(v) -> str:
    return "–" if v is None else f"{100 * v:+.1f}"


def render_markdown(summary: dict, lang: str = "en") -> str:
    """summary.md from summary.json, in `lang` (the UI re-renders it in the user's language)."""
    arms = summary["arms"]
    lines = [f"# {t('eval.md.title', lang)}", ""]
    for key, params in summary.get("warnings", []):
        lines.append(f"> ⚠ {t(key, lang, **params)}")
    if summary.get("warnings"):
        lines.append("")
    for split, s in summary["splits"].items():
        lines += [f"## {t('eval.split.' + split, lang)} (n = {s['n']})", ""]
        head = [t("eval.md.metric", lang)] + arms
        for c in s["comparisons"]:
            head.append(t("eval.md.diff", lang, model=c["arm"], against=c["against"]))
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for k in summary["metrics"]:
            cells = [t(f"metric.{k}", lang)] + [_pct(s["means"][a][k]) for a in arms]
            for c in s["comparisons"]:
                d = c["metrics"][k]
                cells.append("–" if d["diff"] is None else
                             f"{_signed(d['diff'])} [{_signed(d['lo'])}, {_signed(d['hi'])}] (n={d['n']})")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        off = [(a, s["behaviour"][a]) for a in arms if (s["behaviour"][a].get("off_topic") or 0) > 0]
        if off:
            lines += [t("eval.md.off_topic", lang, arms=", ".join(
                t("eval.md.off_topic_arm", lang, arm=a, n=b["off_topic"], of=b["n"], base=b["answered_by_base"])
                for a, b in off)), ""]
    lines += _did_it_learn_markdown(summary, lang)
    lines += [f"## {t('eval.md.resources', lang)}", ""]
    cols = ["tokens_per_s", "mean_latency_s", "peak_memory_mb", "wall_time_s", "trainable_params",
            "adapter_size_mb"]
    lines += ["| " + " | ".join([t("eval.md.model", lang)] + [t(f"eval.res.{c}", lang) for c in cols]) + " |",
              "|" + "---|" * (len(cols) + 1)]
    for a in arms:
        res = summary["resources"][a]
        lines.append("| " + " | ".join([a] + [_fmt(res.get(c)) for c in cols]) + " |")
    lines += ["", t("eval.md.note", lang, device=summary.get("device", "?"), dtype=summary.get("dtype", "?"))]
    return "\n".join(lines) + "\n"


DID_IT_LEARN_COLUMNS = ("held_out.token_f1", "train.token_f1", "held_out.key_phrase_recall",
                        "train.key_phrase_recall", "held_out.identical_to_base", "held_out.looping",
                        "held_out.mean_chars")


def did_it_learn_rows(summary: dict, lang: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the did-it-learn table: one row per arm, cells as text."""
    head = [t("eval.md.model", lang)] + [t(f"eval.learn.{c}", lang) for c in DID_IT_LEARN_COLUMNS]
    rows = []
    for arm in summary["arms"]:
        entry = summary["did_it_learn"][arm]
        cells = [arm]
        for col in DID_IT_LEARN_COLUMNS:
            part, key = col.split(".", 1)
            e = entry.get(part)
            v = None if e is None else e.get(key)
            if v is None:
                cells.append("–")
            elif key == "looping":
                cells.append(f"{v} / {e['n']}")
            elif key == "mean_chars":
                cells.append(f"{v:.0f}")
            else:
                cells.append(_pct(v))
        rows.append(cells)
    return head, rows


def _did_it_learn_markdown(summary: dict, lang: str) -> list[str]:
    head, rows = did_it_learn_rows(summary, lang)
    lines = [f"## {t('eval.md.did_it_learn', lang)}", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    train = summary["data"].get(TRAIN_SPLIT)
    lines += ["", t("eval.md.learn_note", lang, n=train["n"] if train else 0, of=train["of"] if train else 0), ""]
    return lines


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"


QUESTION_FIELDS = ("split", "qid", "source_line", "question", "reference", "keywords")


def by_question(rows: list[dict], arms: list[str]) -> dict[str, dict]:
    """{qid: the question's fields (QUESTION_FIELDS) + "arms": {arm: its row}} over the rows of `arms`,
    questions in the order they first appear: what a table comparing the arms side by side shows."""
    questions: dict[str, dict] = {}
    for r in rows:
        if r["arm"] in arms:
            q = questions.setdefault(r["qid"], {**{k: r[k] for k in QUESTION_FIELDS}, "arms": {}})
            q["arms"][r["arm"]] = r
    return questions


def flat_rows(rows: list[dict], arms: list[str]) -> list[dict]:
    """One row per question with every arm's answer and scores as `answer:<arm>`, `<metric>:<arm>` columns:
    the CSV's wide layout (a spreadsheet compares arms side by side). Only the CSV is flat."""
    out = []
    for q in by_question(rows, arms).values():
        flat = {k: q[k] for k in QUESTION_FIELDS}
        mine = {a: q["arms"].get(a) for a in arms}
        flat.update({f"answer:{a}": r["answer"] if r else None for a, r in mine.items()})
        flat.update({f"loops:{a}": int(metrics.loops(r["answer"])) if r else None for a, r in mine.items()})
        flat.update({f"{k}:{a}": r["scores"].get(k) if r else None for a, r in mine.items() for k in metrics.METRICS})
        out.append(flat)
    return out


def write_csv(path: Path, rows: list[dict], arms: list[str]) -> None:
    flat = flat_rows(rows, arms)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(flat[0]) if flat else [], lineterminator="\n")
    writer.writeheader()
    for r in flat:
        writer.writerow({k: "; ".join(v) if isinstance(v, list) else ("" if v is None else v) for k, v in r.items()})
    write_text_atomic(path, buf.getvalue(), encoding="utf-8-sig", newline="")  # BOM: Excel reads UTF-8


def build_summary(rows: list[dict], arms: list[Arm], settings: EvalSettings, *, data_info: dict,
                  warnings: list, device: str, dtype: str, retrievers: dict | None = None) -> dict:
    names = [a.name for a in arms]
    splits = summarize(rows, names, comparisons(arms), settings.bootstrap)
    info = {a.name: {**a.to_dict(), "retrieval": (retrievers[a.name].to_dict() if a.retrieval else None)}
            for a in arms}
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "arms": names, "arm_info": info, "metrics": list(metrics.METRICS),
        "device": device, "dtype": dtype, "data": data_info, "settings": to_dict(settings),
        "warnings": [list(w) for w in warnings], "splits": splits, "did_it_learn": did_it_learn(splits, names),
        "resources": resources(rows, arms),
    }


def write_reports(out_dir: Path, rows: list[dict], summary: dict, lang: str) -> str:
    """summary.json, per_example.csv, summary.md (in that order, each atomically); returns the markdown."""
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, ensure_ascii=False, indent=2) + "\n",
                      newline="")
    write_csv(out_dir / "per_example.csv", rows, summary["arms"])
    markdown = render_markdown(summary, lang)
    write_text_atomic(out_dir / "summary.md", markdown, newline="")
    return markdown


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
    _check_settings(settings)
    _check_preloaded(settings, model, tokenizer, adapter_names)
    plan = plan_evaluation(settings, say)
    tok = tokenizer if tokenizer is not None else load_tokenizer(settings.model.model)
    prompts = plan_prompts(settings, plan, tok)

    plan.out_dir.mkdir(parents=True, exist_ok=True)
    path = plan.out_dir / PER_EXAMPLE
    done = _keep_reusable(path, {k: p.key for k, p in prompts.items()})
    answered_on = None
    if len(done) < len(prompts):
        answerer = load_answerer(settings, plan.arms, model, tok, adapter_names, answering, say)
        answer_missing(answerer, plan, prompts, done, path, settings, say)
        answered_on = (answerer.device, answerer.dtype)
    rows = table_rows(path, plan, rewrite=answered_on is not None)
    device, dtype = answered_on or _stored_device(rows)

    say(0.97, "eval.progress.writing", path=str(plan.out_dir))
    summary = build_summary(rows, plan.arms, settings, data_info=plan.data_info, warnings=plan.warnings,
                            device=device, dtype=dtype, retrievers=plan.retrievers)
    markdown = write_reports(plan.out_dir, rows, summary, lang)
    say(1.0, "eval.progress.done", path=str(plan.out_dir))
    return EvalReport(output_dir=plan.out_dir, summary=summary, markdown=markdown, rows=rows)


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

        check_data_unchanged(settings.adapter[0], data_info["test"]["path"], data_info["test"]["sha256"])
    arms = plan_arms(settings)
    warnings = _data_warnings(settings) + _base_warnings(settings, arms)
    say(0.01, "eval.progress.retrieval")
    retrievers = arm_retrievers(settings, arms, bundle)
    return Plan(out_dir, examples, data_info, arms, warnings, retrievers)


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

    @property
    def key(self) -> tuple[str, str]:
        return self.fingerprint, self.sha


def plan_prompts(settings: EvalSettings, plan: Plan, tokenizer) -> dict[tuple[str, str], Prompt]:
    """{(arm, qid): Prompt} for every arm and question."""
    from hust_sft.data.encoding import prompt_ids

    prompts = {}
    for arm in plan.arms:
        fp = arm_fingerprint(settings, arm)
        found = plan.retrievers.get(arm.name)
        for ex in plan.examples:
            msgs = prompt_messages(ex.record)
            asked = (Asked(None, bool(arm.adapter), False) if found is None
                     else found.ask(last_user(msgs), tuned=bool(arm.adapter)))
            ids = prompt_ids(tokenizer, msgs, settings.data.system_prompt, passages=asked.passages,
                             **({"passage_max_chars": found.passage_max_chars} if found else {}))
            prompts[(arm.name, ex.qid)] = Prompt(ids, asked, fp, prompt_sha(ids))
    return prompts


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


def _public_passage(p) -> dict:
    """A passage as stored with an answer (published, served to visitors): its source as a file name."""
    from hust_sft.retrieval import public_source

    return {**p.to_dict(), "source": public_source(p.source)}


def _row(arm: Arm, ex: Example, res, prompt: Prompt, peak_mb: float, device: str, dtype: str) -> dict:
    """One line of per_example.jsonl: the answer, its scores against the reference, what it cost."""
    record, asked = ex.record, prompt.asked
    keywords = record.extra.get("expected_keywords") or None
    return {"arm": arm.name, "qid": ex.qid, "split": ex.split, "source_line": record.line,
            "question": record.question, "reference": record.answer, "keywords": keywords,
            "answer": res.text, "scores": metrics.score(res.text, record.answer, keywords),
            "passages": None if asked.passages is None else [_public_passage(p) for p in asked.passages],
            "off_topic": asked.off_topic, "answered_by": arm.model if asked.use_adapter else BASE,
            "new_tokens": res.new_tokens, "seconds": round(res.seconds, 4), "peak_memory_mb": peak_mb,
            "device": device, "dtype": dtype, "fingerprint": prompt.fingerprint, "prompt_sha": prompt.sha}


def table_rows(path: Path, plan: Plan, *, rewrite: bool) -> list[dict]:
    """per_example.jsonl's rows of this plan in table order (arm, then question); `rewrite`: store them
    in that order (batches were appended longest prompt first)."""
    arm_pos = {a.name: i for i, a in enumerate(plan.arms)}
    q_pos = {ex.qid: i for i, ex in enumerate(plan.examples)}
    rows = sorted((r for r in read_rows(path) if r["arm"] in arm_pos and r["qid"] in q_pos),
                  key=lambda r: (arm_pos[r["arm"]], q_pos[r["qid"]]))
    if rewrite:
        write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), newline="")
    return rows


def _stored_device(rows: list[dict]) -> tuple[str, str]:
    """Nothing generated now: the device and dtype the stored answers were generated with."""
    return next(((r.get("device"), r.get("dtype")) for r in rows), ("?", "?"))
