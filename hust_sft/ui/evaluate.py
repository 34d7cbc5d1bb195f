"""Evaluate tab: base vs tuned on the run's own test split (+ optional out-of-domain file), with CIs.

Everything shown is read back from the files `hust_sft.evaluation` writes (summary.json, per_example.csv),
so what the page shows and what a user downloads cannot disagree.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import gradio as gr

from hust_sft import runs
from hust_sft import settings as S
from hust_sft.i18n import t
from hust_sft.ui.common import AppConfig, Ctx, df_or_empty, error_text, gpu, lang_of, widget_for
from hust_sft.ui.chat import adapter_choices, pick_adapter

SHOWN = ("limit", "batch_size", "bootstrap", "max_new_tokens")


def eval_settings(config: AppConfig, run_dir: str | None, hub_id: str | None, ood: str | None,
                  values: dict[str, Any]) -> S.EvalSettings:
    """EvalSettings for a run: its own data settings (so the test split is the one it never trained on)
    and base model; a Hub adapter is evaluated on this app's default data."""
    adapter = pick_adapter(run_dir, hub_id)
    if not adapter:
        raise S.SettingsError("adapter: pick a run or type a Hub id")
    es = S.EvalSettings()
    trained = (runs.read_settings_json(run_dir) or {}) if run_dir and adapter == run_dir else {}
    defaults = config.default_run_settings()
    es.data = S.from_dict(S.DataSettings, trained.get("data") or S.to_dict(defaults.data))
    es.model.model = (trained.get("model") or {}).get("model") or defaults.model.model
    es.adapter = [adapter]
    es.ood = ood or None
    if adapter != run_dir:
        es.output = str(config.runs_dir / time.strftime("eval-%Y%m%d-%H%M%S"))
    values = {k: (None if v in ("", 0) and k == "limit" else v) for k, v in values.items()}
    S.set_values(es, values)
    return es


def summary_frame(summary: dict, lang: str):
    """One row per (split, metric): each model's mean and each adapter's difference with its 95% CI."""
    models = summary["models"]
    rows = []
    for split, s in summary["splits"].items():
        for k in summary.get("metrics", []):
            row = {t("ui.eval.col.split", lang): t(f"eval.split.{split}", lang),
                   t("ui.eval.col.metric", lang): t(f"metric.{k}", lang)}
            for m in models:
                v = s["means"][m][k]
                row[m] = None if v is None else round(100 * v, 1)
            for m in models[1:]:
                d = s["vs_base"][m][k]
                row[t("ui.eval.col.diff", lang, model=m)] = (
                    "–" if d["diff"] is None else
                    f"{100 * d['diff']:+.1f} [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}]")
            row["n"] = s["n"]
            rows.append(row)
    return df_or_empty(rows, list(rows[0]) if rows else [])


def bar_frame(summary: dict, lang: str, split: str = "test"):
    """(metric, model, value %) rows for the bar chart; x is "metric · model" so bars stand side by side."""
    s = summary["splits"].get(split) or next(iter(summary["splits"].values()), None)
    rows = []
    if s:
        for k in summary.get("metrics", []):
            for m in summary["models"]:
                v = s["means"][m][k]
                if v is not None:
                    rows.append({"bar": f"{t(f'metric.{k}', lang)} · {m}", "model": m, "value": round(100 * v, 1)})
    return df_or_empty(rows, ["bar", "model", "value"])


def per_example_frame(out_dir: Path, summary: dict, lang: str, metric: str = "token_f1"):
    """Question, reference, each model's answer and score: sortable in the browser."""
    rows = []
    path = out_dir / "per_example.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            row = {t("ui.eval.col.split", lang): t(f"eval.split.{r['split']}", lang),
                   t("ui.eval.col.question", lang): r["question"], t("ui.eval.col.reference", lang): r["reference"]}
            for m in summary["models"]:
                row[t("ui.eval.col.answer", lang, model=m)] = r.get(f"answer:{m}", "")
            for m in summary["models"]:
                v = r.get(f"{metric}:{m}")
                row[f"{t(f'metric.{metric}', lang)} · {m}"] = None if v is None else round(100 * v, 1)
            rows.append(row)
    return df_or_empty(rows, list(rows[0]) if rows else [])


def show(out_dir: str | Path | None, lang: str):
    """(markdown, summary table, bar frame, per-question table, csv path) of an eval/ folder."""
    from hust_sft.evaluation import render_markdown

    lang = lang_of(lang)
    empty = df_or_empty([], [])
    if not out_dir or not (Path(out_dir) / "summary.json").is_file():
        return t("ui.eval.none_yet", lang), empty, df_or_empty([], ["bar", "model", "value"]), empty, None
    out_dir = Path(out_dir)
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    csv = out_dir / "per_example.csv"
    return (render_markdown(summary, lang), summary_frame(summary, lang), bar_frame(summary, lang),
            per_example_frame(out_dir, summary, lang), str(csv) if csv.is_file() else None)


def run_eval(config: AppConfig, lang: str, run_dir: str | None, hub_id: str | None, ood: str | None,
             values: dict[str, Any], progress=None):
    """Run the evaluation and show its files; bad settings or data become a visible error, never a crash."""
    from hust_sft.evaluation import evaluate

    lang = lang_of(lang)
    try:
        es = eval_settings(config, run_dir, hub_id, ood, values)
        report = evaluate(es, lang=lang,
                          progress=(lambda f, text: progress(f, desc=text)) if progress is not None else None)
    except Exception as e:  # noqa: BLE001 - data, model, settings and Hub errors all end here, shown as is
        raise gr.Error(t("ui.eval.failed", lang, error=error_text(e, lang))) from None
    return show(report.output_dir, lang)


def build(ctx: Ctx) -> None:
    config, texts, lang0 = ctx.config, ctx.texts, "zh"
    fields = {n: (f, tp) for n, f, tp in S.fields_of(S.EvalSettings)}
    defaults = S.EvalSettings()
    with gr.Row():
        run = texts.add(gr.Dropdown(choices=adapter_choices(config), label=t("ui.chat.run", lang0),
                                    info=t("ui.eval.run_help", lang0), elem_id="eval-run", scale=2),
                        label="ui.chat.run", info="ui.eval.run_help")
        hub = texts.add(gr.Textbox(label=t("ui.chat.hub", lang0), info=t("ui.chat.hub_help", lang0),
                                   elem_id="eval-hub", scale=2), label="ui.chat.hub", info="ui.chat.hub_help")
        refresh = texts.add(gr.Button(t("ui.refresh", lang0), scale=0), value="ui.refresh")
    with gr.Row():
        widgets = [widget_for(n, fields[n][0], fields[n][1], S.get_value(defaults, n), lang0, texts) for n in SHOWN]
        ood = texts.add(gr.File(label=t("field.ood.label", lang0), file_types=[".jsonl", ".json"], type="filepath",
                                elem_id="eval-ood"), label="field.ood.label")  # gr.File has no `info`
    go = texts.add(gr.Button(t("ui.eval.run", lang0), variant="primary", elem_id="eval-go"), value="ui.eval.run")
    md = gr.Markdown(elem_id="eval-summary-md")
    with gr.Row():
        table = texts.add(gr.Dataframe(interactive=False, label=t("ui.eval.summary", lang0), elem_id="eval-summary",
                                       scale=3), label="ui.eval.summary")
        bars = texts.add(gr.BarPlot(x="bar", y="value", color="model", label=t("ui.eval.chart", lang0),
                                    x_label_angle=-40, height=360, sort=None, elem_id="eval-bars", scale=2),
                         label="ui.eval.chart")
    per_q = texts.add(gr.Dataframe(interactive=False, wrap=True, label=t("ui.eval.per_question", lang0),
                                   max_height=500, elem_id="eval-per-question"), label="ui.eval.per_question")
    csv = texts.add(gr.File(label=t("ui.eval.download", lang0), interactive=False, elem_id="eval-csv"),
                    label="ui.eval.download")

    def refresh_runs():
        return gr.update(choices=adapter_choices(config))
    refresh.click(refresh_runs, None, run, api_name=False)
    ctx.shared.setdefault("on_load", []).append((refresh_runs, [], [run]))
    outs = [md, table, bars, per_q, csv]
    run.change(lambda r, lang: show(Path(r) / runs.EVAL_DIR if r else None, lang), [run, ctx.lang], outs,
               api_name=False)

    # Explicit parameters: Gradio injects gr.Progress only into positional parameters, not after *args.
    def do_eval(lang_value, r, h, o, limit, batch_size, bootstrap, max_new_tokens, progress=gr.Progress()):
        vals = (limit, batch_size, bootstrap, max_new_tokens)
        return run_eval(config, lang_value, r, h, o, dict(zip(SHOWN, vals)), progress=progress)
    go.click(gpu(config, do_eval, duration=600), [ctx.lang, run, hub, ood, *widgets], outs, api_name="evaluate")
