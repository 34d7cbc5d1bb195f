"""The files a reader opens: summary.json, per_example.csv and summary.md, all rendered from the rows.

`build_summary` puts scoring's numbers together with what was evaluated (arms and their retrieval, data,
settings, warnings, device) into summary.json's dict; `write_reports` writes the three files, each
atomically. They come after per_example.jsonl and only from it, so a crash while reporting costs no
answers: run the same command again. The markdown is rendered from summary.json alone, so the UI can
render it again in the reader's language.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

from hust_sft import facts, metrics
from hust_sft.evaluation.arms import Arm, comparisons
from hust_sft.evaluation.plan import TRAIN_SPLIT
from hust_sft.evaluation.scoring import QUESTION_FIELDS, by_question, did_it_learn, resources, summarize
from hust_sft.fileio import write_text_atomic
from hust_sft.i18n import t
from hust_sft.settings import EvalSettings, to_dict


def build_summary(rows: list[dict], arms: list[Arm], settings: EvalSettings, *, data_info: dict,
                  warnings: list, device: str, dtype: str, retrievers: dict | None = None) -> dict:
    names = [a.name for a in arms]
    splits = summarize(rows, names, comparisons(arms), settings.bootstrap)
    info = {a.name: {**a.to_dict(), "retrieval": (retrievers[a.name].to_dict() if a.retrieval else None)}
            for a in arms}
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "arms": names, "arm_info": info, "metrics": list(metrics.METRICS), "fact_metrics": list(facts.FACT_METRICS),
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
# summary.md

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
        lines += _facts_markdown(summary, s, lang)
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


def fact_value(metric: str, v) -> str:
    """A fact figure as a table shows it: shares ×100, invented as specifics per answer."""
    if v is None:
        return "–"
    return f"{v:.2f}" if metric == "invented" else f"{100 * v:.1f}"


def fact_diff(metric: str, d: dict) -> str:
    if d["diff"] is None:
        return "–"
    if metric == "invented":
        return f"{d['diff']:+.2f} [{d['lo']:+.2f}, {d['hi']:+.2f}] (n={d['n']})"
    return f"{_signed(d['diff'])} [{_signed(d['lo'])}, {_signed(d['hi'])}] (n={d['n']})"


def _facts_markdown(summary: dict, s: dict, lang: str) -> list[str]:
    """Where one split's facts went, per arm: shown by the passages, stated, kept of those shown, invented."""
    names = summary.get("fact_metrics")
    if not names:   # a summary.json written before fact accounting
        return []
    arms = summary["arms"]
    head = [t("eval.md.metric", lang)] + arms + [t("eval.md.diff", lang, model=c["arm"], against=c["against"])
                                                 for c in s["comparisons"]]
    lines = [f"### {t('eval.md.facts', lang)}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in names:
        cells = [t(f"metric.{k}", lang)] + [fact_value(k, s["means"][a].get(k)) for a in arms]
        cells += [fact_diff(k, c["metrics"][k]) if k in c["metrics"] else "–" for c in s["comparisons"]]
        lines.append("| " + " | ".join(cells) + " |")
    with_invented = ", ".join(f"{a} {s['behaviour'][a].get('with_invented', 0)} / {s['behaviour'][a]['n']}"
                              for a in arms)
    return lines + ["", t("eval.md.facts_note", lang, with_invented=with_invented), ""]


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
    if train and train.get("n"):
        lines += ["", t("eval.md.learn_note", lang, n=train["n"], of=train["of"]), ""]
    else:  # no training question was answered (train_sample 0): never "0 of the 0 questions"
        lines += ["", t("eval.md.learn_note_none", lang), ""]
    return lines


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _signed(v) -> str:
    return "–" if v is None else f"{100 * v:+.1f}"


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"


# ---------------------------------------------------------------------------------------------------
# per_example.csv

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
        flat.update({f"{k}:{a}": r["scores"].get(k) if r else None for a, r in mine.items()
                     for k in facts.FACT_METRICS})
        for part in ("lost", "invented"):   # the facts themselves, so a reader sees which were lost or added
            flat.update({f"{part}_facts:{a}": (r.get("facts") or {}).get(part) if r else None
                         for a, r in mine.items()})
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
