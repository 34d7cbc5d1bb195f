"""Evaluate tab: base vs tuned on the run's own test split (+ optional out-of-domain file), with CIs.

Everything shown is read back from the files `hust_sft.evaluation` writes (summary.json, per_example.csv),
so what the page shows and what a user downloads cannot disagree.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from hust_sft import access, limits, runs
from hust_sft import settings as S
from hust_sft.adapters import AdapterRef
from hust_sft.i18n import t
from hust_sft.ui.common import (
    EVAL_CONCURRENCY,
    EVAL_QUEUE,
    AppConfig,
    Ctx,
    df_or_empty,
    error_text,
    gpu,
    lang_of,
    run_dir_of,
    run_picker,
    tr,
    visitor_ranges,
    widget_for,
)

# "arms" last: /evaluate keeps its earlier parameters in their places for API callers.
SHOWN = ("limit", "batch_size", "bootstrap", "max_new_tokens", "train_sample", "arms")
EVAL_WIDGET_MIN_WIDTH = 260  # px: a Chinese label and help line and a slider's number box side by side


def eval_settings(config: AppConfig, run: str | None, hub_id: str | None, ood: str | None,
                  values: dict[str, Any], profile: Any = None) -> tuple[S.EvalSettings, AdapterRef]:
    """(EvalSettings, adapter) for a run picked by name or a Hub id: the run's own data settings (so the
    test split is the one it never trained on) and base model; a Hub adapter is evaluated on this app's
    default data. A visitor's values are held to the public limits (hust_sft.limits); only the owner's
    evaluation of a listed run writes into the run (`access.eval_output_dir`)."""
    ref = access.resolve_adapter(config, run, hub_id)
    if ref is None:
        raise S.SettingsError("eval.error.no_adapter")
    es = S.EvalSettings()
    trained = runs.load_settings(ref.run_dir) if ref.run_dir is not None else None
    defaults = config.default_run_settings()
    es.data = (trained or defaults).data
    es.model.model = access.base_model_of(config, ref)  # the base Chat and Blind A/B load too
    es.adapter = [ref.spec]
    es.ood = ood or None
    values = {k: (None if v in ("", 0) and k == "limit" else v) for k, v in values.items()}
    S.set_values(es, values)
    limits.enforce_public(es, owner=access.is_owner(config, profile))
    out = access.eval_output_dir(config, profile, ref, es.limit)
    if out is not None:
        es.output = str(out)
    return es, ref


def summary_frame(summary: dict, lang: str):
    """One row per (split, metric): each arm's mean and each comparison's difference with its 95% CI."""
    arms = summary["arms"]
    rows = []
    for split, s in summary["splits"].items():
        for k in summary.get("metrics", []):
            row = {t("ui.eval.col.split", lang): t(f"eval.split.{split}", lang),
                   t("ui.eval.col.metric", lang): t(f"metric.{k}", lang)}
            for a in arms:
                v = s["means"][a][k]
                row[a] = None if v is None else round(100 * v, 1)
            for c in s["comparisons"]:
                d = c["metrics"][k]
                row[t("ui.eval.col.diff", lang, model=c["arm"], against=c["against"])] = (
                    "–" if d["diff"] is None else
                    f"{100 * d['diff']:+.1f} [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}]")
            row["n"] = s["n"]
            rows.append(row)
        from hust_sft.evaluation.reports import fact_diff, fact_value

        for k in summary.get("fact_metrics", []):   # shares ×100; invented as specifics per answer
            row = {t("ui.eval.col.split", lang): t(f"eval.split.{split}", lang),
                   t("ui.eval.col.metric", lang): t(f"metric.{k}", lang)}
            row.update({a: fact_value(k, s["means"][a].get(k)) for a in arms})
            for c in s["comparisons"]:
                row[t("ui.eval.col.diff", lang, model=c["arm"], against=c["against"])] = (
                    fact_diff(k, c["metrics"][k]).split(" (n=")[0] if k in c["metrics"] else "–")
            row["n"] = s["n"]
            rows.append(row)
    return df_or_empty(rows, list(rows[0]) if rows else [])


def learn_frame(summary: dict, lang: str):
    """The "did it learn?" table of summary.json: one row per arm (the same cells as summary.md)."""
    from hust_sft.evaluation import did_it_learn_rows

    head, rows = did_it_learn_rows(summary, lang)
    return df_or_empty([dict(zip(head, r)) for r in rows], head)


BAR_COLUMNS = ["metric", "model", "value"]
MAX_BAR_MODELS = 6  # arms the chart orders; the tab evaluates at most four (base, tuned, ± retrieval)


def bar_x(metric: str, position: int, lang: str) -> str:
    """A bar's x value: the metric's name followed by `position` zero-width spaces.

    gr.BarPlot (Vega-Lite) stacks bars that share an x value and Gradio 6.31 exposes no x offset to
    group them, so each model's bar gets its own x that still reads as the metric; the colour says
    the model. The values depend only on the metric and the model's position, so their order can be
    fixed once (`bar_order`) instead of Vega-Lite's alphabetical default.
    """
    return t(f"metric.{metric}", lang) + "\u200b" * position


def bar_order() -> list[str]:
    """Every possible x value, metric-major in the summary table's order (values not shown are ignored)."""
    from hust_sft.i18n import LANGS
    from hust_sft.metrics import METRICS

    # Metric-major across languages: a name both languages share ("BLEU-4") keeps its place in each.
    return list(dict.fromkeys(bar_x(k, i, lang) for k in METRICS for lang in LANGS for i in range(MAX_BAR_MODELS)))


def bar_frame(summary: dict, lang: str, split: str = "test"):
    """(metric, model, mean %) rows, one bar per model and metric; None (no chart) when there are none.

    Never an empty frame: its columns have no dtype, the chart is drawn with a categorical y axis and
    Gradio's plot can keep that stale axis when the real data arrives (seen in Gradio 6.31).
    """
    s = summary["splits"].get(split) or next(iter(summary["splits"].values()), None)
    rows = []
    if s:
        for k in summary.get("metrics", []):
            for i, a in enumerate(summary["arms"][:MAX_BAR_MODELS]):
                v = s["means"][a][k]
                if v is not None:
                    rows.append({"metric": bar_x(k, i, lang), "model": a, "value": round(100 * v, 1)})
    return pd.DataFrame(rows, columns=BAR_COLUMNS) if rows else None


def facts_cell(row: dict | None, lang: str) -> str:
    """Where one answer's facts went, in a line: how many of the reference's facts the passages showed and
    the answer stated, which shown ones it lost, which specifics it invented."""
    f = (row or {}).get("facts")
    if not f:
        return ""
    shown = "–" if f["in_passages"] is None else f"{len(f['in_passages'])}/{len(f['facts'])}"
    return t("ui.eval.facts_cell", lang, shown=shown, said=f"{len(f['in_answer'])}/{len(f['facts'])}",
             lost="、".join(f["lost"]) or "–", invented="、".join(f["invented"]) or "–")


def per_example_frame(out_dir: Path, summary: dict, lang: str, metric: str = "token_f1"):
    """Question, reference, each arm's answer, score and facts (`facts_cell`), one row per question:
    sortable in the browser."""
    from hust_sft.evaluation import PER_EXAMPLE, by_question, read_rows

    arms = summary["arms"]
    answer_col = {a: t("ui.eval.col.answer", lang, model=a) for a in arms}
    score_col = {a: f"{t(f'metric.{metric}', lang)} · {a}" for a in arms}
    facts_col = {a: t("ui.eval.col.facts", lang, model=a) for a in arms}
    rows = []
    for q in by_question(read_rows(out_dir / PER_EXAMPLE), arms).values():
        row = {t("ui.eval.col.split", lang): t(f"eval.split.{q['split']}", lang),
               t("ui.eval.col.question", lang): q["question"], t("ui.eval.col.reference", lang): q["reference"]}
        mine = {a: q["arms"].get(a) for a in arms}
        # stripped for display only; the files keep the raw answers
        row.update({answer_col[a]: (r["answer"] or "").strip() if r else "" for a, r in mine.items()})
        for a, r in mine.items():
            v = r["scores"].get(metric) if r else None
            row[score_col[a]] = None if v is None else round(100 * v, 1)
        row.update({facts_col[a]: facts_cell(r, lang) for a, r in mine.items()})
        rows.append(row)
    return df_or_empty(rows, list(rows[0]) if rows else [])


def column_widths(n_models: int) -> list[str]:
    """Per-question table widths (%): set, question, reference, then one answer, one score and one facts
    cell per model (`n_models` counts base too).

    Fixed shares with wrap=True keep long answers on a laptop screen instead of one very wide row.
    """
    score, split = 5, 6
    # question 2 parts, reference and answers 3 each, facts 2 each
    part = (100 - split - score * n_models) / (2 + 3 * (1 + n_models) + 2 * n_models)
    return ([f"{split}%", f"{2 * part:.1f}%"] + [f"{3 * part:.1f}%"] * (1 + n_models) + [f"{score}%"] * n_models
            + [f"{2 * part:.1f}%"] * n_models)


def show(out_dir: str | Path | None, lang: str, config: AppConfig | None = None):
    """(markdown, summary table, did-it-learn table, chart frame, per-question update, csv path) of an
    eval/ folder.

    The CSV is offered from the app's public folder (`access.publish_file`): nothing under the runs
    folder is ever served."""
    from hust_sft.evaluation import render_markdown

    lang = lang_of(lang)
    empty = df_or_empty([], [])
    if not out_dir or not (Path(out_dir) / "summary.json").is_file():
        return (t("ui.eval.none_yet", lang), empty, empty, None,
                gr.update(value=empty, column_widths=[]), None)
    out_dir = Path(out_dir)
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    if "arms" not in summary:  # written by an older version of this app
        return (t("ui.eval.old_format", lang), empty, empty, None, gr.update(value=empty, column_widths=[]), None)
    csv = out_dir / "per_example.csv"
    per_q = gr.update(value=per_example_frame(out_dir, summary, lang),
                      column_widths=column_widths(len(summary["arms"])))
    csv_shown = (access.publish_file(config, csv) if config is not None else str(csv)) if csv.is_file() else None
    return (render_markdown(summary, lang), summary_frame(summary, lang), learn_frame(summary, lang),
            bar_frame(summary, lang), per_q, csv_shown)


def run_eval(config: AppConfig, cache, lang: str, run: str | None, hub_id: str | None, ood: str | None,
             values: dict[str, Any], progress=None, profile: Any = None, shown: dict | None = None):
    """Run the evaluation on the cached model Chat and Blind A/B use (one copy of the weights), taking its
    lock per batch (a chat waits for one batch, not the whole evaluation), and show its files; bad
    settings or data become a visible error, never a crash."""
    from hust_sft.evaluation import evaluate

    lang = lang_of(lang)
    try:
        es, ref = eval_settings(config, run, hub_id, ood, values, profile)
        with cache.hold(es.model.model, [ref]) as held:
            report = evaluate(es, lang=lang, model=held.model, tokenizer=held.tokenizer, adapter_names=held.names,
                              answering=held.batch,
                              progress=(lambda f, text: progress(f, desc=text)) if progress is not None else None)
    except Exception as e:  # noqa: BLE001 - data, model, settings and Hub errors all end here, shown as is
        raise gr.Error(t("ui.eval.failed", lang, error=access.public_text(config, error_text(e, lang)))) from None
    if shown is not None:  # which folder the page shows, for the language switch
        shown["dir"] = str(report.output_dir)
    return show(report.output_dir, lang, config)


def build(ctx: Ctx) -> None:
    config, texts = ctx.config, ctx.texts
    fields = {n: (f, tp) for n, f, tp in S.fields_of(S.EvalSettings)}
    defaults = S.EvalSettings()
    with gr.Row():
        picker = run_picker(ctx, "eval", info="ui.eval.run_help", refresh_api="eval_runs")
    run, hub = picker.run, picker.hub
    # Two rows, never one: seven widgets in one row squeezed the Chinese labels to a character per line
    # and clipped the sliders' maxima. min_width lets a narrow screen wrap them instead of squeezing.
    widgets = []
    for names in (SHOWN[:4], SHOWN[4:]):
        with gr.Row(equal_height=False):
            for n in names:
                widgets.append(widget_for(n, fields[n][0], fields[n][1], S.get_value(defaults, n), texts))
                widgets[-1].min_width = EVAL_WIDGET_MIN_WIDTH
            if n == SHOWN[-1]:
                ood = texts.make(gr.File, label=tr("field.ood.label"), file_types=[".jsonl", ".json"],
                                 type="filepath", elem_id="eval-ood", min_width=EVAL_WIDGET_MIN_WIDTH)
    go = texts.make(gr.Button, value=tr("ui.eval.run"), variant="primary", elem_id="eval-go")
    md = gr.Markdown(elem_id="eval-summary-md")
    table = texts.make(gr.Dataframe, interactive=False, label=tr("ui.eval.summary"), elem_id="eval-summary")
    # Full width: 2 bars per metric with their names below. y on the full 0-100 % scale (Gradio's plots
    # do not start at zero by themselves, and an all-zero demo result would leave an empty [0, 0] domain).
    # The heading is the chart's own title: a block label would push the legend out of the block's height.
    learn = texts.make(gr.Dataframe, interactive=False, label=tr("ui.eval.learn"), elem_id="eval-learn")
    bars = texts.make(gr.BarPlot, x="metric", y="value", color="model", title=tr("ui.eval.chart"), show_label=False,
                      x_title=tr("ui.eval.col.metric"), y_title=tr("ui.eval.chart_y"), color_title=tr("eval.md.model"),
                      y_lim=[0, 100], x_label_angle=-30, sort=bar_order(), height=420, elem_id="eval-bars")
    per_q = texts.make(gr.Dataframe, interactive=False, wrap=True, label=tr("ui.eval.per_question"), max_height=500,
                       elem_id="eval-per-question")
    csv = texts.make(gr.File, label=tr("ui.eval.download"), interactive=False, elem_id="eval-csv")

    bounded = {n: w for n, w in zip(SHOWN, widgets) if n in limits.public_maxima(S.EvalSettings)}

    def on_load(profile: gr.OAuthProfile | None):
        return visitor_ranges(config, profile, bounded, S.EvalSettings)
    ctx.on_load(on_load, [], list(bounded.values()))
    outs = [md, table, learn, bars, per_q, csv]

    # The folder shown (a gr.State, not part of the API): the zh/en switch renders it again in the new language.
    shown = gr.State(None)

    def on_run(r, lang_value):
        run_dir = run_dir_of(config, r)
        folder = str(run_dir / runs.EVAL_DIR) if run_dir else None
        return (*show(folder, lang_value, config), folder)
    run.change(on_run, [run, ctx.lang], [*outs, shown], api_name=False)
    ctx.on_lang(lambda lang_value, folder: show(folder, lang_value, config), [shown], outs)

    # Explicit parameters: Gradio injects gr.Progress only into positional parameters, not after *args.
    def do_eval(profile: gr.OAuthProfile | None, lang_value, r, h, o, limit, batch_size, bootstrap, max_new_tokens,
                train_sample, arms, progress=gr.Progress()):
        vals = (limit, batch_size, bootstrap, max_new_tokens, train_sample, arms)
        kept: dict = {}
        result = run_eval(config, ctx.cache, lang_value, r, h, o, dict(zip(SHOWN, vals)), progress=progress,
                          profile=profile, shown=kept)
        return (*result, kept.get("dir"))
    # Evaluations wait for their turn in `admission` (a bounded number; more are refused at once), not in
    # Gradio's queue, whose size is shared with every chat (hust_sft.limits.Admission).
    admission, evaluate_on_gpu = limits.Admission(EVAL_CONCURRENCY), gpu(config, do_eval, duration=600)

    @functools.wraps(do_eval)
    def admitted(profile, lang_value, *args, **kwargs):
        try:
            with admission.admit():
                return evaluate_on_gpu(profile, lang_value, *args, **kwargs)
        except limits.Busy as e:
            raise gr.Error(e.text(lang_of(lang_value))) from None
    go.click(admitted, [ctx.lang, run, hub, ood, *widgets], [*outs, shown], api_name="evaluate",
             concurrency_id=EVAL_QUEUE, concurrency_limit=None)
