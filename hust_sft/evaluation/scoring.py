"""The numbers a report shows, computed from per_example.jsonl's rows alone (pure: no model, no writing).

`summarize` gives per split the mean of each metric per arm, each arm's answer behaviour (looping,
off-topic, length) and each compared pair's mean difference with its paired-bootstrap CI; `did_it_learn`
reads held-out against training questions off that; `resources` adds speed, memory and the adapter's
training cost. `by_arm` / `by_question` are the views of the rows the summary, the CSV and the Evaluate
tab's table share. Because everything here is a function of the rows, a report can always be rebuilt
without generating again.
"""
from __future__ import annotations

from pathlib import Path

from hust_sft import facts, metrics
from hust_sft.evaluation.arms import BASE, Arm, is_run_dir
from hust_sft.evaluation.plan import TRAIN_SPLIT

# ---------------------------------------------------------------------------------------------------
# Views of the rows

def by_arm(rows: list[dict], split: str) -> dict[str, dict[str, dict]]:
    """{arm: {qid: row}} of one split."""
    out: dict[str, dict[str, dict]] = {}
    for r in rows:
        if r["split"] == split:
            out.setdefault(r["arm"], {})[r["qid"]] = r
    return out


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


# ---------------------------------------------------------------------------------------------------
# Where each answer's facts went (hust_sft.facts), from the row alone

SCORED = metrics.METRICS + facts.FACT_METRICS   # every per-answer score a summary averages and compares


def account_row(row: dict, clip_chars: int | None = None) -> bool:
    """Give one row its fact accounting (`facts`, and the four FACT_METRICS among its scores) from what it
    stores: the passages as the prompt showed them (clipped at the row's `passage_chars`, else
    `clip_chars`), the question and the reference. Returns whether the row changed."""
    from hust_sft.data.encoding import clip

    chars = row.get("passage_chars") or clip_chars or 0
    shown = None if row.get("passages") is None else [clip(p["text"], chars) for p in row["passages"]]
    acc = facts.account(row["answer"] or "", row["reference"] or "", question=row.get("question") or "",
                        passages=shown, keywords=row.get("keywords"))
    entry, scores = acc.to_dict(), {**row["scores"], **acc.scores()}
    if row.get("facts") == entry and row["scores"] == scores:
        return False
    row["facts"], row["scores"] = entry, scores
    return True


def account_facts(rows: list[dict], clips: dict[str, int | None]) -> bool:
    """`account_row` for every row (`clips[arm]`: the arm's passage length, for rows stored before rows
    recorded it), so answers reused from an earlier run are accounted for too. Returns whether any row
    changed (then per_example.jsonl is written again)."""
    return sum(account_row(r, clips.get(r["arm"])) for r in rows) > 0


# ---------------------------------------------------------------------------------------------------
# Per split: means, behaviour, paired comparisons

def summarize(rows: list[dict], arms: list[str], pairs: list[tuple[str, str]], n_boot: int,
              seed: int = 0) -> dict:
    """Per split: means per arm and metric, answer behaviour per arm, and each (arm, against) pair's
    mean difference with its paired-bootstrap 95% CI (over the questions both answered)."""
    out = {}
    for split in dict.fromkeys(r["split"] for r in rows):
        table = by_arm(rows, split)
        qids = list(dict.fromkeys(r["qid"] for r in rows if r["split"] == split))
        means = {a: {k: metrics.mean(r["scores"].get(k) for r in table.get(a, {}).values())
                     for k in SCORED} for a in arms}
        behaviour = {a: _behaviour(table.get(a, {})) for a in arms}
        compared = []
        for arm, against in pairs:
            both = [q for q in qids if q in table.get(arm, {}) and q in table.get(against, {})]
            entry = {"arm": arm, "against": against, "metrics": {},
                     "identical": (sum(_same(table[arm][q]["answer"], table[against][q]["answer"]) for q in both)
                                   / len(both)) if both else None}
            for k in SCORED:
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
            # answers stating at least one specific they were not shown (hust_sft.facts)
            "with_invented": sum(bool((r.get("facts") or {}).get("invented")) for r in rows.values()),
            "mean_chars": sum(len(a.strip()) for a in answers) / n if n else None,
            "mean_new_tokens": sum(r.get("new_tokens") or 0 for r in rows.values()) / n if n else None}


# ---------------------------------------------------------------------------------------------------
# Did it learn? (read off the split summaries)

def did_it_learn(splits: dict, arms: list[str]) -> dict:
    """Per arm: held-out vs training-question score (token F1, key-phrase recall), share of answers
    identical to base's, looping answers, mean answer length — the signs of learning or of copying."""
    held = splits.get("test") or splits.get("validation") or next(
        (s for k, s in splits.items() if k != TRAIN_SPLIT), None)
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
# What each arm cost

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


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and "adapter" in f.name) if path.is_dir() else 0
