"""Train tab: data source + preview, every RunSettings knob (generated), Start/Stop, live progress, past runs.

Training runs only as a `hust_sft.jobs` subprocess; this tab reads the run directory (events.jsonl,
train.log) once a second, so a closed or reloaded page re-attaches to the run instead of owning it.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gradio as gr

from hust_sft import access, precision, runs
from hust_sft import settings as S
from hust_sft.console import fmt_duration, progress_figures, readable_log
from hust_sft.i18n import DEFAULT_LANG, t
from hust_sft.ui import knowledge as knowledge_upload
from hust_sft.ui.common import AppConfig, Ctx, df_or_empty, error_text, lang_of, tr, training_lock, widget_for

GROUPS: list[tuple[str, type]] = [("data", S.DataSettings), ("model", S.ModelSettings), ("lora", S.LoraSettings),
                                  ("memory", S.MemorySettings), ("train", S.TrainSettings),
                                  ("retrieval", S.RetrievalSettings)]
# Decided by the app, not the visitor: where runs go (the run name box picks the folder inside it).
NOT_SHOWN = {"runs_dir", "output"}
SOURCES = ("builtin", "upload", "hub", "url")
PREVIEW_ROWS = 5


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
        rs.train.output = str(runs.named_run_dir(config.runs_dir, run_name))  # RunNameError: a SettingsError
    return rs


def preset_values(config: AppConfig, preset: str) -> list:
    """Widget values for a preset applied to this app's defaults."""
    rs = S.apply_preset(config.default_run_settings(), preset)
    return [S.get_value(rs, name) for name in setting_names()]


# ---------------------------------------------------------------------------------------------------
# Data source and preview

def resolve_source(config: AppConfig, source: str, upload: str | None, current: str, profile: Any = None) -> str:
    """What the dataset box should hold for a source choice."""
    if source == "builtin":
        return config.data
    if source == "upload":
        kept = keep_upload(config, upload, profile) if upload else None
        return str(kept) if kept else ""
    return "" if current == config.data else current


def keep_upload(config: AppConfig, path: str | Path, profile: Any = None) -> Path | None:
    """Copy an uploaded file out of Gradio's temp cache into runs/uploads/ under a new unique name, so the
    run can always reread it and a second upload never replaces the first. None when this visitor may not
    upload (`access.visitor_may`)."""
    if access.visitor_may(config, profile, "upload") is not None:
        return None
    dest = access.unique_upload_path(config, Path(path).name)
    shutil.copyfile(path, dest)
    return dest


def preview_columns(lang: str):
    return df_or_empty([], [t("ui.train.col.split", lang), t("ui.train.col.question", lang),
                            t("ui.train.col.answer", lang)])


def preview(config: AppConfig, lang: str, values: dict[str, Any], profile: Any = None):
    """(preview table, validation report markdown) of the chosen dataset; errors become the report text.

    An owner action on a public Space: reading a data source is a server-side request."""
    from hust_sft.data import DataError, load_data
    from hust_sft.data import preview as preview_records
    from hust_sft.data.sources import DataSourceError

    lang = lang_of(lang)
    cols = list(preview_columns(lang).columns)
    refused = access.visitor_may(config, profile, "data_preview", lang)
    if refused:
        return df_or_empty([], cols), refused
    try:
        rs = collect(config, values)
        refused = (access.data_source_refusal(config, profile, rs.data.data, lang)
                   or access.local_paths_refusal(config, profile, rs, lang))
        if refused:
            return df_or_empty([], cols), refused
        bundle = load_data(rs.data)
    except (S.SettingsError, DataError, DataSourceError, OSError) as e:
        return df_or_empty([], cols), t("ui.train.preview_error", lang,
                                        error=access.public_text(config, error_text(e, lang)))
    rows = []
    for row in preview_records(bundle, PREVIEW_ROWS):
        rows.append(dict(zip(cols, (row["split"], row["question"], row["answer"]))))
    sizes = ", ".join(f"{t('ui.split.' + k, lang)} {n}" for k, n in bundle.split_sizes.items())
    report = bundle.report.summary(lang)
    text = t("ui.train.preview_report", lang, source=access.public_text(config, str(bundle.path)),
             sha=bundle.sha256[:12], splits=sizes, report=access.public_text(config, report))
    if rs.retrieval.retrieval != "off":  # what the passages will be, derived from these training pairs
        from hust_sft import passage_size

        text += "\n\n" + passage_size.describe(
            passage_size.resolve(rs.retrieval, bundle.splits["train"], rs.data), lang)
    return df_or_empty(rows, cols), text


# ---------------------------------------------------------------------------------------------------
# Start / stop / status

def refusal(config: AppConfig, profile: Any, lang: str) -> str | None:
    """Why this visitor cannot start training here (the owner lock, a ZeroGPU Space), or None."""
    return training_lock(config, profile, lang) or (t("ui.train.zero_gpu", lang) if config.zero_gpu else None)


def launch(config: AppConfig, rs: S.RunSettings, lang: str, env: dict[str, str] | None = None):
    """`jobs.start` for Start and Resume: the Job, or the message saying why it did not start."""
    from hust_sft import jobs

    try:
        return jobs.start(rs, config.runs_dir, env=env)
    except jobs.JobBusy as e:
        return t("ui.train.busy", lang, run=e.job.name)
    except (jobs.JobError, OSError, ValueError) as e:  # RunExistsError and RunFileError are ValueErrors
        return start_failed(config, e, lang)


def start_failed(config: AppConfig, error: Exception, lang: str) -> str:
    return t("ui.train.start_failed", lang, error=access.public_text(config, error_text(error, lang)))


def start(config: AppConfig, profile: Any, lang: str, run_name: str, values: dict[str, Any]) -> str:
    """Start a training job; returns the status line. A running job or bad settings give a message."""
    lang = lang_of(lang)
    refused = refusal(config, profile, lang)
    if refused:
        return refused
    try:
        rs = collect(config, values, run_name)
        precision.plan_for(rs)  # a precision the card cannot run is refused before a job starts
    except (S.SettingsError, precision.PrecisionError) as e:
        return t("ui.train.bad_settings", lang, error=access.public_text(config, error_text(e, lang)))
    refused = (access.data_source_refusal(config, profile, rs.data.data, lang)
               or access.local_paths_refusal(config, profile, rs, lang)
               or access.knowledge_files_refusal(config, profile, rs.retrieval.knowledge_files, lang))
    if refused:
        return refused
    job = launch(config, rs, lang, env=access.training_env(config, profile))
    return job if isinstance(job, str) else t("ui.train.started", lang, run=Path(job.run_dir).name)


# The settings the hardware line (elem_id train-hardware) is computed from, in its handler's order.
HARDWARE_SETTINGS = ("device", "dtype", "mixed_precision", "quantization")


def hardware_text(lang: str, device: str = "auto", dtype: str = "auto", mixed_precision: str = "auto",
                  quantization: str = "none") -> str:
    """The card, its memory and the precision a run with these settings gets (or why it cannot run)."""
    lang = lang_of(lang)
    try:
        info = precision.detect(device)
    except precision.PrecisionError as e:  # device 'cuda' asked for on a machine without one
        return precision.describe_error(e, precision.detect("auto"), lang)
    try:
        return precision.describe(precision.plan_precision(info, dtype, mixed_precision, quantization), lang)
    except precision.PrecisionError as e:
        return precision.describe_error(e, info, lang)


def runs_location(config: AppConfig, lang: str) -> str:
    """Where runs are kept, and whether they survive a restart of the Space."""
    key = "ui.train.runs_persistent" if runs.is_persistent(config.runs_dir) else "ui.train.runs_ephemeral"
    return t(key, lang, path=config.runs_dir.resolve())


def resumable_choices(config: AppConfig) -> list[tuple[str, str]]:
    """(label, run name) of interrupted runs with a checkpoint (not the one training now), newest first.
    Names, not paths: the choices are sent to every visitor's page."""
    from hust_sft import jobs

    job = jobs.active(config.runs_dir)
    running = Path(job.run_dir).resolve() if job is not None else None
    out = []
    for row in runs.list_runs(config.runs_dir):
        path = Path(row.path)
        if path.resolve() == running or not runs.resumable(path):
            continue
        checkpoint = runs.latest_checkpoint(path)
        out.append((f"{row.name} ({row.status}, {checkpoint.name})", row.name))
    return out


def resume(config: AppConfig, profile: Any, lang: str, run: str | None) -> str:
    """Continue an interrupted run (`run`: its name under the runs folder) from its last checkpoint, with the
    settings it was started with."""
    lang = lang_of(lang)
    refused = refusal(config, profile, lang)
    if refused:
        return refused
    run_dir = Path(config.runs_dir) / run if run else None
    if not run_dir or not runs.resumable(run_dir) or run_dir.resolve().parent != config.runs_dir.resolve():
        return t("ui.train.nothing_to_resume", lang)
    try:
        rs = runs.load_settings(run_dir)
    except (S.SettingsError, runs.RunFileError) as e:
        return start_failed(config, e, lang)
    if rs is None:
        return t("ui.train.nothing_to_resume", lang)
    rs.train.resume, rs.train.output, rs.train.runs_dir = True, str(run_dir), str(config.runs_dir)
    job = launch(config, rs, lang)
    return job if isinstance(job, str) else t("ui.train.resumed", lang, run=Path(job.run_dir).name,
                                              checkpoint=runs.latest_checkpoint(job.run_dir).name)


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


def live_state(config: AppConfig, listed: list | None = None) -> runs.RunProgress | None:
    """The running job's progress, else the newest run's read from disk (so a finished curve stays on screen).
    `listed`: runs.list_runs of the runs folder, when the caller has it already."""
    from hust_sft import jobs

    job = jobs.active(config.runs_dir)
    if job is not None:
        return job.poll()
    listed = runs.list_runs(config.runs_dir) if listed is None else listed
    return runs.progress(listed[0].path) if listed else None


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


def progress_html(state: runs.RunProgress | None, lang: str) -> str:
    """Status line + a native <progress> bar + the figures line (`console.progress_figures`) + which adapter
    was kept + the final message."""
    if state is None:
        return t("ui.train.no_runs", lang)
    best = state.best
    kept = f'<div id="train-best">{_escape(t(best["key"], lang, **best.get("params", {})))}</div>' if best else ""
    message = state.error or ""
    return (f'<div id="train-progress" data-status="{state.status}" data-step="{state.step or 0}" '
            f'data-total="{state.total_steps or 0}">'
            f"<b>{_escape(state.name)}</b> — {t(f'ui.status.{state.status}', lang)}"
            f'<progress max="100" value="{100.0 * (state.progress or 0.0):.1f}" style="width:100%"></progress>'
            f"<div>{progress_figures(state, lang)}</div>" + kept
            + (f"<pre>{_escape(message)}</pre>" if message else "") + "</div>")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def runs_table(config: AppConfig, lang: str, listed: list | None = None):
    keys = ["name", "status", "started", "steps", "train_loss", "val_loss", "wall_time", "adapter", "eval"]
    cols = [t(f"ui.runs.col.{k}", lang) for k in keys]
    rows = []
    for r in runs.list_runs(config.runs_dir) if listed is None else listed:
        rows.append(dict(zip(cols, [
            r.name, t(f"ui.status.{r.status}", lang), r.started or "",
            f"{r.steps}/{r.total_steps}" if r.steps is not None else "",
            round(r.train_loss, 4) if r.train_loss is not None else None,
            round(r.val_loss, 4) if r.val_loss is not None else None,
            fmt_duration(r.wall_time_s) if r.wall_time_s is not None else "",
            "✓" if r.has_adapter else "", "✓" if r.has_eval else ""])))
    return df_or_empty(rows, cols)


def status(config: AppConfig, lang: str):
    """(progress html, loss frame, log tail, runs table) — the whole live view, polled every second."""
    lang = lang_of(lang)
    listed = runs.list_runs(config.runs_dir)  # once per poll, for the progress and the table
    state = live_state(config, listed)
    curve = loss_frame(state.events if state else [], lang)
    # None rather than an empty frame: Gradio 6.31's LinePlot never draws coloured lines once it was given
    # an empty frame (seen in Chromium), and a run's first seconds have no loss yet.
    if state is not None:  # what every visitor sees: no absolute server paths (hust_sft.access.public_text)
        state = replace(state, error=access.public_text(config, state.error) or None,
                        log_tail=access.public_text(config, state.log_tail))
    return (progress_html(state, lang), curve if curve["loss"].notna().any() else None,
            readable_log(state.log_tail, lang) if state else "", runs_table(config, lang, listed))


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


@dataclass
class Form:
    """The settings form: preset, run name, data source and preview, one widget per shown setting."""
    preset: Any
    run_name: Any
    source: Any
    upload: Any
    widgets: dict[str, Any]
    preview_btn: Any
    preview_df: Any
    report_md: Any
    knowledge: knowledge_upload.KnowledgeUpload | None = None

    def widget_list(self) -> list:
        return [self.widgets[n] for n in setting_names()]


@dataclass
class Controls:
    """Start / Stop / Resume and the live view of the run."""
    lock_md: Any
    start_btn: Any
    stop_btn: Any
    resume_run: Any
    resume_btn: Any
    message: Any
    progress: Any
    plot: Any
    log: Any
    runs_df: Any
    timer: Any


def build(ctx: Ctx) -> None:
    lock_md = gr.Markdown(visible=False, elem_id="train-lock")
    form = build_form(ctx)
    hardware_md = gr.Markdown(elem_id="train-hardware")  # before Start: the card and the precision chosen
    controls = build_controls(ctx, lock_md)
    wire_hardware(ctx, form, hardware_md)
    wire_form(ctx, form)
    knowledge_upload.wire(ctx, form.knowledge, form.widgets)
    wire_controls(ctx, form, controls)


def build_form(ctx: Ctx) -> Form:
    """Where runs live, the preset and run name, then one accordion per settings group (data first, with
    the source choice, upload and preview)."""
    config, texts = ctx.config, ctx.texts
    defaults = config.default_run_settings()
    widgets: dict[str, Any] = {}

    texts.make(gr.Markdown, value=tr(lambda lang: runs_location(config, lang)), elem_id="runs-location")
    if config.zero_gpu:
        texts.make(gr.Markdown, value=tr("ui.train.zero_gpu"))
    with gr.Row():
        preset = texts.make(gr.Dropdown, choices=list(S.PRESETS), value="recommended", label=tr("ui.train.preset"),
                            info=tr("field.preset.help"), scale=1)
        run_name = texts.make(gr.Textbox, label=tr("ui.train.run_name"), info=tr("ui.train.run_name_help"),
                              elem_id="run-name", scale=2)

    def source_choices(lang):
        return [(t(f"ui.train.source.{s}", lang), s) for s in SOURCES]

    for group, cls in GROUPS:
        with texts.make(gr.Accordion, label=tr(f"ui.train.group.{group}"), open=group == "data"):
            if group == "data":
                source = texts.make(gr.Radio, choices=tr(source_choices), value="builtin", label=tr("ui.train.source"))
                upload = texts.make(gr.File, label=tr("ui.train.upload"), file_types=[".jsonl", ".json"],
                                    type="filepath", visible=False, elem_id="data-upload")
            for row in _rows(cls):
                with gr.Row(equal_height=False):
                    for name, f, tp in row:
                        widgets[name] = widget_for(name, f, tp, S.get_value(defaults, name), texts)
            if group == "data":
                preview_btn = texts.make(gr.Button, value=tr("ui.train.preview"), elem_id="preview-btn")
                # Registered for the switch: its column heads follow the page's language (a switch
                # empties it; Preview fills it again in the new language).
                preview_df = texts.make(gr.Dataframe, value=tr(preview_columns), interactive=False, wrap=True,
                                        elem_id="preview-table")
                report_md = gr.Markdown(elem_id="preview-report")
            if group == "retrieval":
                knowledge = knowledge_upload.build(texts)
    return Form(preset=preset, run_name=run_name, source=source, upload=upload, widgets=widgets,
                preview_btn=preview_btn, preview_df=preview_df, report_md=report_md, knowledge=knowledge)


def build_controls(ctx: Ctx, lock_md) -> Controls:
    """Start / Stop, the Resume picker, the message line, the progress box, loss curve, log and past runs."""
    config, texts = ctx.config, ctx.texts
    with gr.Row():
        start_btn = texts.make(gr.Button, value=tr("ui.train.start"), variant="primary", elem_id="train-start")
        stop_btn = texts.make(gr.Button, value=tr("ui.train.stop"), variant="stop", elem_id="train-stop")
    with gr.Row():
        resume_run = texts.make(gr.Dropdown, choices=resumable_choices(config), value=None,
                                label=tr("ui.train.resume_run"), info=tr("ui.train.resume_help"),
                                elem_id="resume-run", scale=3)
        resume_btn = texts.make(gr.Button, value=tr("ui.train.resume"), elem_id="train-resume", scale=1)
    message = gr.Markdown(elem_id="train-message")
    progress = gr.HTML(elem_id="train-progress-box")
    with gr.Row():
        # The heading is the chart's own title, as in the Evaluate tab: a block label would push the
        # legend (which line is training, which validation) out of the block.
        plot = texts.make(gr.LinePlot, x="step", y="loss", color="series", title=tr("ui.train.loss_curve"),
                          show_label=False, color_title=tr("ui.train.series.title"), x_title=tr("ui.train.axis.step"),
                          y_title=tr("ui.train.axis.loss"), height=340, y_axis_format=".3f", elem_id="loss-plot",
                          scale=2)
        log = texts.make(gr.Textbox, label=tr("ui.train.log"), lines=12, max_lines=12, interactive=False,
                         elem_id="train-log", scale=1)
    texts.make(gr.Markdown, value=tr(lambda lang: "### " + t("ui.train.past_runs", lang)))
    runs_df = gr.Dataframe(runs_table(config, DEFAULT_LANG), interactive=False, elem_id="runs-table")
    return Controls(lock_md=lock_md, start_btn=start_btn, stop_btn=stop_btn, resume_run=resume_run,
                    resume_btn=resume_btn, message=message, progress=progress, plot=plot, log=log,
                    runs_df=runs_df, timer=gr.Timer(1.0))


def wire_form(ctx: Ctx, form: Form) -> None:
    """Source choice → upload box and dataset box; upload → kept copy; preset → widgets; preview."""
    config, lang = ctx.config, ctx.lang
    names, widget_list, data = setting_names(), form.widget_list(), form.widgets["data"]

    def on_source(profile: gr.OAuthProfile | None, src, up, current):
        return (gr.update(visible=src == "upload"),
                gr.update(value=resolve_source(config, src, up, current, profile), interactive=src in ("hub", "url")))

    form.source.change(on_source, [form.source, form.upload, data], [form.upload, data], api_name=False)

    def on_upload(profile: gr.OAuthProfile | None, lang_value, up):
        refused = access.visitor_may(config, profile, "upload", lang_of(lang_value))
        if refused:
            gr.Warning(refused)
            return ""
        kept = keep_upload(config, up, profile) if up else None
        return str(kept) if kept else ""
    form.upload.upload(on_upload, [lang, form.upload], data, api_name="data_upload")

    def on_preset(p):
        try:
            return preset_values(config, p)
        except S.SettingsError as e:
            raise gr.Error(str(e)) from None
    form.preset.change(on_preset, form.preset, widget_list, api_name=False)

    def do_preview(profile: gr.OAuthProfile | None, lang_value, *vals):
        return preview(config, lang_value, dict(zip(names, vals)), profile)
    form.preview_btn.click(do_preview, [lang, *widget_list], [form.preview_df, form.report_md],
                           api_name="data_preview")


def wire_hardware(ctx: Ctx, form: Form, hardware_md) -> None:
    """The hardware line follows the language and the device / dtype / mixed precision / quantization widgets."""
    inputs = [ctx.lang, *(form.widgets[name] for name in HARDWARE_SETTINGS)]
    for trigger in inputs:
        trigger.change(hardware_text, inputs, hardware_md, api_name=False, queue=False)
    ctx.on_load(hardware_text, inputs, [hardware_md])


def wire_controls(ctx: Ctx, form: Form, c: Controls) -> None:
    """Start / Resume / Stop, the once-a-second status poll, and what a page load refreshes."""
    config, lang = ctx.config, ctx.lang
    names, widget_list = setting_names(), form.widget_list()

    def do_start(profile: gr.OAuthProfile | None, lang_value, name_value, *vals):
        return start(config, profile, lang_value, name_value, dict(zip(names, vals)))
    c.start_btn.click(do_start, [lang, form.run_name, *widget_list], c.message, api_name="train_start")

    def do_resume(profile: gr.OAuthProfile | None, lang_value, run_value):
        text = resume(config, profile, lang_value, run_value)
        return text, gr.update(choices=resumable_choices(config), value=None)
    c.resume_btn.click(do_resume, [lang, c.resume_run], [c.message, c.resume_run], api_name="train_resume")

    def do_stop(profile: gr.OAuthProfile | None, lang_value):
        return stop(config, profile, lang_value)
    c.stop_btn.click(do_stop, [lang], c.message, api_name="train_stop")

    def do_status(lang_value):
        return status(config, lang_value)
    outs = [c.progress, c.plot, c.log, c.runs_df]
    c.timer.tick(do_status, lang, outs, api_name="train_status", show_progress="hidden", queue=False)

    def do_lock(profile: gr.OAuthProfile | None, lang_value):
        reason = training_lock(config, profile, lang_of(lang_value))
        return (gr.update(value=reason or "", visible=bool(reason)), gr.update(interactive=reason is None),
                gr.update(interactive=reason is None), gr.update(interactive=reason is None))
    ctx.on_load(do_status, [lang], outs)
    ctx.on_load(do_lock, [lang], [c.lock_md, c.start_btn, c.stop_btn, c.resume_btn])
    ctx.on_load(lambda: gr.update(choices=resumable_choices(config)), [], [c.resume_run])
