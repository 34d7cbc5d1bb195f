"""Train tab: data source + preview, every RunSettings knob (generated), Start/Stop, live progress, past runs.

Training runs only as a `hust_sft.jobs` subprocess; this tab reads the run directory (events.jsonl,
train.log) once a second, so a closed or reloaded page re-attaches to the run instead of owning it.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import gradio as gr

from hust_sft import runs
from hust_sft import settings as S
from hust_sft.i18n import t
from hust_sft.ui.common import AppConfig, Ctx, df_or_empty, error_text, lang_of, training_lock, widget_for

GROUPS: list[tuple[str, type]] = [("data", S.DataSettings), ("model", S.ModelSettings), ("lora", S.LoraSettings),
                                  ("memory", S.MemorySettings), ("train", S.TrainSettings),
                                  ("retrieval", S.RetrievalSettings)]
# Decided by the app, not the visitor: where runs go (the run name box picks the folder inside it).
NOT_SHOWN = {"runs_dir", "output"}
SOURCES = ("builtin", "upload", "hub", "url")
PREVIEW_ROWS = 5
LOG_TAIL_LINES = 40


def setting_names() -> list[str]:
    """Names of the generated widgets, in the order they are passed to the handlers."""
    return [name for _, cls in GROUPS for name, _, _ in S.fields_of(cls) if name not in NOT_SHOWN]


def collect(config: AppConfig, values: dict[str, Any], run_name: str | None = None) -> S.RunSettings:
    """Widget values → RunSettings (range-checked by settings.set_values; SettingsError on bad input)."""
    rs = config.default_run_settings()
    values = {k: (None if v == "" and k in ("data_file", "data_split") else v) for k, v in values.items()}
    S.set_values(rs, values)
    rs.train.runs_dir = str(config.runs_dir)
    if run_name and run_name.strip():
        rs.train.output = str(config.runs_dir / runs.sanitize_run_name(run_name))  # RunNameError: a SettingsError
    return rs


def preset_values(config: AppConfig, preset: str) -> list:
    """Widget values for a preset applied to this app's defaults."""
    rs = S.apply_preset(config.default_run_settings(), preset)
    return [S.get_value(rs, name) for name in setting_names()]


# ---------------------------------------------------------------------------------------------------
# Data source and preview

def resolve_source(config: AppConfig, source: str, upload: str | None, current: str) -> str:
    """What the dataset box should hold for a source choice."""
    if source == "builtin":
        return config.data
    if source == "upload":
        return str(keep_upload(config, upload)) if upload else ""
    return "" if current == config.data else current


def keep_upload(config: AppConfig, path: str | Path) -> Path:
    """Copy an uploaded file out of Gradio's temp cache into runs/uploads/, so the run can always reread it."""
    src = Path(path)
    dest_dir = config.runs_dir / "uploads"
    dest_dir.mkdir(parents=True, exist_ok=True)
    stem = runs.sanitize_run_name(src.stem) if src.stem.strip(".-_ ") else "upload"
    dest = dest_dir / f"{stem}{src.suffix.lower()}"
    if dest.resolve() != src.resolve():
        shutil.copyfile(src, dest)
    return dest


def preview_columns(lang: str):
    return df_or_empty([], [t("ui.train.col.split", lang), t("ui.train.col.question", lang),
                            t("ui.train.col.answer", lang)])


def preview(config: AppConfig, lang: str, values: dict[str, Any]):
    """(preview table, validation report markdown) of the chosen dataset; errors become the report text."""
    from hust_sft.data import DataError, load_data
    from hust_sft.data import preview as preview_records
    from hust_sft.data.sources import DataSourceError

    lang = lang_of(lang)
    cols = list(preview_columns(lang).columns)
    try:
        rs = collect(config, values)
        bundle = load_data(rs.data)
    except (S.SettingsError, DataError, DataSourceError, OSError) as e:
        return df_or_empty([], cols), t("ui.train.preview_error", lang, error=error_text(e, lang))
    rows = []
    for row in preview_records(bundle, PREVIEW_ROWS):
        rows.append(dict(zip(cols, (row["split"], row["question"], row["answer"]))))
    sizes = ", ".join(f"{t('ui.split.' + k, lang)} {n}" for k, n in bundle.split_sizes.items())
    report = bundle.report.summary(lang)
    text = t("ui.train.preview_report", lang, source=bundle.path, sha=bundle.sha256[:12], splits=sizes,
             report=report)
    return df_or_empty(rows, cols), text


# ---------------------------------------------------------------------------------------------------
# Start / stop / status

def start(config: AppConfig, profile: Any, lang: str, run_name: str, values: dict[str, Any]) -> str:
    """Start a training job; returns the status line. A running job or bad settings give a message."""
    from hust_sft import jobs

    lang = lang_of(lang)
    lock = training_lock(config, profile, lang)
    if lock:
        return lock
    if config.zero_gpu:
        return t("ui.train.zero_gpu", lang)
    try:
        rs = collect(config, values, run_name)
    except S.SettingsError as e:
        return t("ui.train.bad_settings", lang, error=error_text(e, lang))
    try:
        job = jobs.start(rs, config.runs_dir)
    except jobs.JobBusy as e:
        return t("ui.train.busy", lang, run=e.job.name)
    except (jobs.JobError, OSError, ValueError) as e:
        return t("ui.train.start_failed", lang, error=error_text(e, lang))
    return t("ui.train.started", lang, run=Path(job.run_dir).name)


def stop(config: AppConfig, profile: Any, lang: str) -> str:
    from hust_sft import jobs

    lang = lang_of(lang)
    lock = training_lock(config, profile, lang)
    if lock:
        return lock
    job = jobs.active(config.runs_dir)
    if job is None:
        return t("ui.train.nothing_running", lang)
    jobs.stop(config.runs_dir)
    return t("ui.train.stopping", lang, run=Path(job.run_dir).name)


def live_state(config: AppConfig) -> dict | None:
    """The running job's `poll()`, else the newest run read from disk (so a finished curve stays on screen)."""
    from hust_sft import jobs

    job = jobs.active(config.runs_dir)
    if job is not None:
        return job.poll(LOG_TAIL_LINES)
    listed = runs.list_runs(config.runs_dir)
    if not listed:
        return None
    run_dir = Path(listed[0].path)
    try:
        events = runs.read_events(run_dir)
        error = None
    except runs.RunFileError as e:
        events, error = [], str(e)
    final = next((e for e in reversed(events) if e.get("type") == "status"), {})
    return {"status": listed[0].status, "name": run_dir.name, "run_dir": str(run_dir), "events": events,
            "eta_s": None, "log_tail": jobs.tail(run_dir / runs.TRAIN_LOG, LOG_TAIL_LINES),
            "error": error or (final.get("message") if listed[0].status in ("failed", "stopped") else None)}


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def loss_frame(events: list[dict], lang: str):
    """Long-format (step, loss, series) rows: one series for training loss, one for validation loss."""
    train_name, val_name = t("ui.train.series.train", lang), t("ui.train.series.val", lang)
    rows = [{"step": e["step"], "loss": e["loss"], "series": train_name}
            for e in events if e.get("type") == "log" and e.get("loss") is not None and e.get("step") is not None]
    val_rows = [{"step": e["step"], "loss": e["eval_loss"], "series": val_name}
                for e in events if e.get("type") == "eval" and e.get("eval_loss") is not None
                and e.get("step") is not None]
    if rows or val_rows:
        # Gradio 6.31's LinePlot fixes its colour legend at the first frame it draws: a series that
        # appears later (training loss after the step-0 validation loss, or validation loss after the
        # first epoch) is never drawn (seen in Chromium). So both series are in every frame; one without
        # points yet holds a single NaN row, which Vega leaves undrawn. Training first: its colour is fixed.
        first = min(r["step"] for r in rows + val_rows)
        rows = (rows or [{"step": first, "loss": float("nan"), "series": train_name}]) + \
            (val_rows or [{"step": first, "loss": float("nan"), "series": val_name}])
    return df_or_empty(rows, ["step", "loss", "series"]).astype({"step": "int64", "loss": "float64"})


def progress_html(state: dict | None, lang: str) -> str:
    """Status line + a native <progress> bar + step/ETA/tokens per second/memory."""
    if state is None:
        return t("ui.train.no_runs", lang)
    status, events = state["status"], state["events"]
    logs = [e for e in events if e.get("type") == "log"]
    last = logs[-1] if logs else {}
    # The final status line carries the last step, which logging every N steps may not have reached.
    final_step = next((e.get("step") for e in reversed(events) if e.get("type") == "status"), None) or 0
    step, total = max(last.get("step") or 0, final_step), last.get("total_steps") or 0
    pct = 100.0 if status == "completed" else (100.0 * step / total if total else 0.0)
    live = status in ("starting", "running", "stopping")
    figures = t("ui.train.figures", lang, step=step, total=total or "?", pct=f"{pct:.0f}",
                eta=fmt_seconds(state.get("eta_s")) if live else "–",
                elapsed=fmt_seconds(last.get("elapsed_s")),
                tps=f"{last['tokens_per_s']:.0f}" if last.get("tokens_per_s") is not None else "–",
                mem=f"{last['peak_memory_mb']:.0f}" if last.get("peak_memory_mb") is not None else "–")
    message = state.get("error") or ""
    best = next((e for e in reversed(events) if e.get("type") == "best" and e.get("key")), None)
    kept = f'<div id="train-best">{_escape(t(best["key"], lang, **best.get("params", {})))}</div>' if best else ""
    return (f'<div id="train-progress" data-status="{status}" data-step="{step}" data-total="{total}">'
            f"<b>{_escape(state['name'])}</b> — {t(f'ui.status.{status}', lang)}"
            f'<progress max="100" value="{pct:.1f}" style="width:100%"></progress>'
            f"<div>{figures}</div>" + kept
            + (f"<pre>{_escape(message)}</pre>" if message else "") + "</div>")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def runs_table(config: AppConfig, lang: str):
    keys = ["name", "status", "started", "steps", "train_loss", "val_loss", "wall_time", "adapter", "eval"]
    cols = [t(f"ui.runs.col.{k}", lang) for k in keys]
    rows = []
    for r in runs.list_runs(config.runs_dir):
        rows.append(dict(zip(cols, [
            r.name, t(f"ui.status.{r.status}", lang), r.started or "",
            f"{r.steps}/{r.total_steps}" if r.steps is not None else "",
            round(r.train_loss, 4) if r.train_loss is not None else None,
            round(r.val_loss, 4) if r.val_loss is not None else None,
            fmt_seconds(r.wall_time_s) if r.wall_time_s is not None else "",
            "✓" if r.has_adapter else "", "✓" if r.has_eval else ""])))
    return df_or_empty(rows, cols)


def status(config: AppConfig, lang: str):
    """(progress html, loss frame, log tail, runs table) — the whole live view, polled every second."""
    lang = lang_of(lang)
    state = live_state(config)
    curve = loss_frame(state["events"] if state else [], lang)
    # None rather than an empty frame: Gradio 6.31's LinePlot never draws coloured lines once it was given
    # an empty frame (seen in Chromium), and a run's first seconds have no loss yet.
    return (progress_html(state, lang), curve if curve["loss"].notna().any() else None,
            state["log_tail"] if state else "", runs_table(config, lang))


# ---------------------------------------------------------------------------------------------------
# Layout and wiring

WIDE = {"data", "system_prompt", "model"}  # long text: a row of its own
PER_ROW = 3


def _rows(cls) -> list[list[tuple]]:
    """The group's shown fields in rows: wide text fields alone, the rest three to a row."""
    rows, current = [], []
    for item in S.fields_of(cls):
        if item[0] in NOT_SHOWN:
            continue
        if item[0] in WIDE:
            rows += [current, [item]] if current else [[item]]
            current = []
            continue
        current.append(item)
        if len(current) == PER_ROW:
            rows.append(current)
            current = []
    return rows + ([current] if current else [])

def build(ctx: Ctx) -> None:
    config, texts, lang0 = ctx.config, ctx.texts, "zh"
    names = setting_names()
    defaults = config.default_run_settings()
    widgets: dict[str, Any] = {}

    lock_md = gr.Markdown(visible=False, elem_id="train-lock")
    if config.zero_gpu:
        texts.add(gr.Markdown(t("ui.train.zero_gpu", lang0)), value="ui.train.zero_gpu")
    with gr.Row():
        preset = texts.add(gr.Dropdown(choices=list(S.PRESETS), value="recommended", label=t("ui.train.preset", lang0),
                                       info=t("field.preset.help", lang0), scale=1),
                           label="ui.train.preset", info="field.preset.help")
        run_name = texts.add(gr.Textbox(label=t("ui.train.run_name", lang0), info=t("ui.train.run_name_help", lang0),
                                        elem_id="run-name", scale=2),
                             label="ui.train.run_name", info="ui.train.run_name_help")

    def source_choices(lang):
        return [(t(f"ui.train.source.{s}", lang), s) for s in SOURCES]

    for group, cls in GROUPS:
        with texts.add(gr.Accordion(t(f"ui.train.group.{group}", lang0), open=group == "data"),
                       label=f"ui.train.group.{group}"):
            if group == "data":
                source = texts.add(gr.Radio(source_choices(lang0), value="builtin", label=t("ui.train.source", lang0)),
                                   label="ui.train.source", choices=source_choices)
                upload = texts.add(gr.File(label=t("ui.train.upload", lang0), file_types=[".jsonl", ".json"],
                                           type="filepath", visible=False, elem_id="data-upload"),
                                   label="ui.train.upload")
            for row in _rows(cls):
                with gr.Row(equal_height=False):
                    for name, f, tp in row:
                        widgets[name] = widget_for(name, f, tp, S.get_value(defaults, name), lang0, texts)
            if group == "data":
                preview_btn = texts.add(gr.Button(t("ui.train.preview", lang0), elem_id="preview-btn"),
                                        value="ui.train.preview")
                preview_df = gr.Dataframe(preview_columns(lang0), interactive=False, wrap=True,
                                          elem_id="preview-table")
                report_md = gr.Markdown(elem_id="preview-report")
    with gr.Row():
        start_btn = texts.add(gr.Button(t("ui.train.start", lang0), variant="primary", elem_id="train-start"),
                              value="ui.train.start")
        stop_btn = texts.add(gr.Button(t("ui.train.stop", lang0), variant="stop", elem_id="train-stop"),
                             value="ui.train.stop")
    message = gr.Markdown(elem_id="train-message")
    progress = gr.HTML(elem_id="train-progress-box")
    with gr.Row():
        # The heading is the chart's own title, as in the Evaluate tab: a block label would push the
        # legend (which line is training, which validation) out of the block.
        plot = texts.add(gr.LinePlot(x="step", y="loss", color="series", title=t("ui.train.loss_curve", lang0),
                                     show_label=False, color_title=t("ui.train.series.title", lang0),
                                     x_title=t("ui.train.axis.step", lang0), y_title=t("ui.train.axis.loss", lang0),
                                     height=340, y_axis_format=".3f", elem_id="loss-plot", scale=2),
                         title="ui.train.loss_curve", color_title="ui.train.series.title",
                         x_title="ui.train.axis.step", y_title="ui.train.axis.loss")
        log = texts.add(gr.Textbox(label=t("ui.train.log", lang0), lines=12, max_lines=12, interactive=False,
                                   elem_id="train-log", scale=1),
                        label="ui.train.log")
    texts.add(gr.Markdown("### " + t("ui.train.past_runs", lang0)), value=lambda l: "### " + t("ui.train.past_runs", l))
    runs_df = gr.Dataframe(runs_table(config, lang0), interactive=False, elem_id="runs-table")
    timer = gr.Timer(1.0)

    widget_list = [widgets[n] for n in names]
    lang = ctx.lang

    def _values(vals) -> dict[str, Any]:
        return dict(zip(names, vals))

    def on_source(src, up, current):
        return (gr.update(visible=src == "upload"),
                gr.update(value=resolve_source(config, src, up, current), interactive=src in ("hub", "url")))

    source.change(on_source, [source, upload, widgets["data"]], [upload, widgets["data"]], api_name=False)
    upload.upload(lambda up: str(keep_upload(config, up)) if up else "", upload, widgets["data"], api_name=False)

    def on_preset(p):
        try:
            return preset_values(config, p)
        except S.SettingsError as e:
            raise gr.Error(str(e)) from None
    preset.change(on_preset, preset, widget_list, api_name=False)

    def do_preview(lang_value, *vals):
        return preview(config, lang_value, _values(vals))
    preview_btn.click(do_preview, [lang, *widget_list], [preview_df, report_md], api_name="data_preview")

    def do_start(profile: gr.OAuthProfile | None, lang_value, name_value, *vals):
        return start(config, profile, lang_value, name_value, _values(vals))
    start_btn.click(do_start, [lang, run_name, *widget_list], message, api_name="train_start")

    def do_stop(profile: gr.OAuthProfile | None, lang_value):
        return stop(config, profile, lang_value)
    stop_btn.click(do_stop, [lang], message, api_name="train_stop")

    def do_status(lang_value):
        return status(config, lang_value)
    outs = [progress, plot, log, runs_df]
    timer.tick(do_status, lang, outs, api_name="train_status", show_progress="hidden", queue=False)
    ctx.shared["train_status"] = (do_status, outs)

    def do_lock(profile: gr.OAuthProfile | None, lang_value):
        reason = training_lock(config, profile, lang_of(lang_value))
        return (gr.update(value=reason or "", visible=bool(reason)), gr.update(interactive=reason is None),
                gr.update(interactive=reason is None))
    ctx.shared.setdefault("on_load", []).append((do_status, [lang], outs))
    ctx.shared["on_load"].append((do_lock, [lang], [lock_md, start_btn, stop_btn]))
