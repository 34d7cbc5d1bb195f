"""Train tab functions and the shared UI helpers: generated widgets, settings round trip, live view, locks."""
import json
import re
from pathlib import Path

import gradio as gr
import pytest

from hust_sft import i18n
from hust_sft import settings as S
from hust_sft.ui import common, train
from hust_sft.ui.common import AppConfig, Texts, training_lock

SAMPLE = common.SAMPLE_DATA


def meta(name: str) -> dict:
    """A setting's range metadata, read from hust_sft.settings (tests never restate defaults or ranges)."""
    return next(f.metadata for n, f, _ in S.fields_of(S.RunSettings) if n == name)


@pytest.fixture
def config(tmp_path):
    return AppConfig(runs_dir=tmp_path / "runs", data=str(SAMPLE), model="some/model")


def test_every_string_exists_in_both_languages_with_the_same_placeholders():
    """Every key of the two tables (page, settings, errors, reports, CLI help), not only ui.*/field.*."""
    import string

    def names(text):
        return sorted({f for _, f, _, _ in string.Formatter().parse(text) if f})
    messages = i18n.MESSAGES
    assert [k for k, v in messages.items() if set(v) != set(i18n.LANGS)] == [] and len(messages) > 400
    assert set(i18n.EN) == set(i18n.ZH) == set(messages)
    assert len({k for k in messages if k.startswith("ui.")}) > 100
    assert [k for k, v in messages.items() if len({tuple(names(v[lang])) for lang in i18n.LANGS}) != 1] == []
    assert [(lang, k) for k, v in messages.items() for lang in i18n.LANGS if not v[lang].strip()] == []


def test_generated_widgets_carry_the_dataclass_defaults_labels_and_ranges(config):
    texts = Texts()
    with gr.Blocks():
        widgets = {name: common.widget_for(name, f, tp, S.get_value(S.RunSettings(), name), texts, "en")
                   for name, f, tp in S.fields_of(S.RunSettings) if name not in train.NOT_SHOWN}
    assert set(widgets) == set(train.setting_names())
    assert isinstance(widgets["use_dora"], gr.Checkbox) and widgets["use_dora"].value is False
    assert isinstance(widgets["truncation"], gr.Dropdown)
    assert [c[1] for c in widgets["truncation"].choices] == ["drop", "truncate"]
    assert isinstance(widgets["lora_r"], gr.Slider)
    assert (widgets["lora_r"].minimum, widgets["lora_r"].maximum, widgets["lora_r"].value) == (
        meta("lora_r")["min"], meta("lora_r")["max"], S.LoraSettings().lora_r)
    # unbounded step: a number box
    assert isinstance(widgets["lr"], gr.Number) and widgets["lr"].value == S.TrainSettings().lr
    assert isinstance(widgets["seed"], gr.Number)                           # 2**31 positions: a number box
    assert widgets["lora_r"].label == "LoRA rank r" and widgets["lora_r"].info == i18n.field_help("lora_r", "en")
    # Passing the widgets' own values back gives exactly the dataclass defaults (train.py's defaults).
    values = {n: w.value for n, w in widgets.items()}
    rs = train.collect(AppConfig(runs_dir=config.runs_dir), values)
    expected = S.RunSettings()
    expected.train.runs_dir = str(config.runs_dir)
    assert S.to_dict(rs) == S.to_dict(expected)


def test_language_switch_relabels_every_registered_component():
    texts = Texts()
    with gr.Blocks():
        box = texts.field(gr.Textbox(), "lora_r")
        btn = texts.make(gr.Button, value=common.tr("ui.train.start"), variant="primary")
    zh, en = texts.updates("zh"), texts.updates("en")
    assert texts.components == [box, btn]
    assert zh[0]["label"] == "LoRA 秩 r" and en[0]["label"] == "LoRA rank r"
    assert zh[1]["value"] == "▶ 开始训练" and en[1]["value"] == "▶ Start training"
    assert texts.updates("xx")[1]["value"] == zh[1]["value"]  # unknown language: the default (zh)
    assert btn.value == zh[1]["value"] and btn.variant == "primary"  # built in i18n.DEFAULT_LANG


def test_the_run_picker_names_its_parts_per_tab_and_relists_runs_on_every_page_load(config):
    texts = Texts()
    with gr.Blocks() as demo:
        ctx = common.Ctx(config=config, lang=gr.Radio(list(i18n.LANGS)), texts=texts, cache=None)
        with gr.Row():
            chat = common.run_picker(ctx, "chat", info="ui.chat.run_help", refresh_api="chat_runs", value=None)
        publish = common.run_picker(ctx, "publish", hub=False, scale=None)
    assert (chat.run.elem_id, chat.hub.elem_id, chat.refresh.elem_id) == ("chat-run", "chat-hub", "chat-refresh")
    assert (publish.run.elem_id, publish.hub, publish.refresh) == ("publish-run", None, None)
    assert (chat.run.label, chat.run.info, chat.hub.info) == (
        i18n.t("ui.chat.run"), i18n.t("ui.chat.run_help"), i18n.t("ui.chat.hub_help"))
    assert publish.run.info is None
    assert [f.api_name for f in demo.fns.values()] == ["chat_runs"]
    # One load re-lists the runs for every picker: the runs folder is read once per page load.
    assert [outputs for _, _, outputs in ctx.loads] == [[chat.run, publish.run]]
    assert ctx.loads[0][0]() == [{"__type__": "update", "choices": []}] * 2  # no run with an adapter yet
    en = dict(zip(texts.components, texts.updates("en")))
    assert en[chat.run] == {"__type__": "update", "label": "Trained run", "info": i18n.t("ui.chat.run_help", "en")}
    assert en[chat.refresh]["value"] == i18n.t("ui.refresh", "en") and en[publish.run]["label"] == "Trained run"


def test_collect_range_checks_and_sanitises_the_run_name(config):
    lo, hi = meta("lora_r")["min"], meta("lora_r")["max"]
    with pytest.raises(S.SettingsError, match=rf"lora_r: expected a value in \[{lo}, {hi}\], got {lo - 1}"):
        train.collect(config, {"lora_r": lo - 1})
    rs = train.collect(config, {"max_steps": 3.0, "data_file": ""}, run_name="LoRA r=16 (test)")
    assert rs.train.max_steps == 3 and rs.data.data_file is None
    assert rs.train.output == str(config.runs_dir / "LoRA-r-16-test")
    assert rs.model.model == "some/model" and rs.data.data == str(SAMPLE)
    with pytest.raises(S.SettingsError, match="run name"):
        train.collect(config, {}, run_name="../..")


def test_preset_fills_the_widgets_with_the_tutorial_recipe(config):
    values = dict(zip(train.setting_names(), train.preset_values(config, "tutorial")))
    assert {k: values[k] for k in S.PRESETS["tutorial"]} == S.PRESETS["tutorial"]
    assert S.PRESETS["tutorial"]["lr"] != S.TrainSettings().lr      # it really changes the widgets
    assert values["model"] == "some/model"  # the preset leaves the app's model alone


def test_bad_settings_are_a_message_not_a_crash(config):
    lo, hi = meta("batch_size")["min"], meta("batch_size")["max"]
    msg = train.start(config, None, "en", "", {"batch_size": lo - 1})
    assert msg == f"✗ Settings: batch_size: expected a value in [{lo}, {hi}], got {lo - 1}"


def test_public_space_locks_training_to_its_owner(config):
    space = AppConfig(runs_dir=config.runs_dir, space_id="alice/hust", space_owner="alice", oauth_trusted=True)
    owner, other = type("P", (), {"username": "alice"})(), type("P", (), {"username": "bob"})()
    assert training_lock(config, None, "en") is None                       # not a Space: open
    assert training_lock(space, owner, "en") is None
    assert "bob" in training_lock(space, other, "en") and "alice" in training_lock(space, other, "en")
    assert training_lock(space, None, "zh") == i18n.t("ui.lock.login", "zh", owner="alice")
    assert train.start(space, other, "en", "", {}) == training_lock(space, other, "en")
    assert train.stop(space, None, "en") == training_lock(space, None, "en")
    space.open_training = True
    assert training_lock(space, other, "en") is None


def test_a_space_without_real_oauth_trusts_no_login(config):
    """SPACE_ID without SYSTEM=spaces: Gradio's mock login would sign anyone in as the token's user."""
    space = AppConfig(runs_dir=config.runs_dir, space_id="alice/hust", space_owner="alice", oauth_trusted=False)
    owner = type("P", (), {"username": "alice"})()
    expected = i18n.t("ui.lock.no_oauth", "en", owner="alice")
    assert training_lock(space, owner, "en") == expected
    assert train.start(space, owner, "en", "", {}) == expected


def test_zero_gpu_space_explains_that_training_is_off(config):
    config.zero_gpu = True
    assert train.start(config, None, "en", "", {}) == i18n.t("ui.train.zero_gpu", "en")


def test_preview_shows_the_first_records_and_the_report(config):
    table, report = train.preview(config, "en", {})
    assert list(table.columns) == ["Split", "Question", "Answer"]
    assert len(table) == train.PREVIEW_ROWS
    first = json.loads(SAMPLE.read_text(encoding="utf-8").splitlines()[0])
    assert table.iloc[0]["Question"] == first["conversations"][0]["content"]
    assert set(table["Split"]) <= {"train", "validation", "test"}
    assert "40 records read" in report


def test_preview_says_what_the_passages_will_be_derived_from_the_data(config, tmp_path):
    """HUST-shaped answers (300–600 characters): the clip follows the data, not a fixed 150, and the page
    says how many passages of how many characters training and answering get, and why."""
    from qa_data import write_long_answers_jsonl

    data = str(write_long_answers_jsonl(tmp_path / "long.jsonl"))
    _, report = train.preview(config, "en", {"data": data, "retrieval_k": 1, "answer_k": 2})
    line = report.rsplit("\n", 1)[-1]
    # estimated without a tokenizer (0.8 tokens per character): one 580-character passage (the 90th-percentile
    # pair is 577) fits what max_length 1024 leaves beside the longest plain samples (508 tokens); two do not
    assert line.startswith("Passages: 1 per training sample of at most 580 characters; 2 when answering of at "
                           "most 310 (from the data: the 90th-percentile training pair is 577 characters")
    _, report = train.preview(config, "en", {"data": data, "retrieval": "off"})
    assert "Passages:" not in report


def test_preview_of_a_missing_file_names_it(config, tmp_path):
    table, report = train.preview(config, "en", {"data": str(tmp_path / "nope.jsonl")})
    assert len(table) == 0 and report.startswith("✗") and "nope.jsonl" in report


def _fake_run(runs_dir: Path, name: str, events: list[dict], log: str = "") -> Path:
    run = runs_dir / name
    run.mkdir(parents=True)
    (run / "settings.json").write_text(json.dumps(S.to_dict(S.RunSettings())), encoding="utf-8")
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    (run / "train.log").write_text(log, encoding="utf-8")
    return run


EVENTS = [
    {"type": "status", "status": "running", "time": 1000.0},
    {"type": "log", "step": 5, "total_steps": 20, "loss": 2.5, "tokens_per_s": 812.4, "elapsed_s": 30,
     "eta_s": 90, "peak_memory_mb": 1536.2},
    {"type": "eval", "step": 10, "eval_loss": 2.25},
    {"type": "log", "step": 10, "total_steps": 20, "loss": 2.0, "tokens_per_s": 800.0, "elapsed_s": 60,
     "eta_s": 60, "peak_memory_mb": 1540.0},
    {"type": "status", "status": "stopped", "message": "stopped by the user at step 10"},
]


def test_loss_curve_has_a_train_and_a_validation_series():
    df = train.loss_frame(EVENTS, "en")
    assert df.to_dict("records") == [
        {"step": 5, "loss": 2.5, "series": "train loss"}, {"step": 10, "loss": 2.0, "series": "train loss"},
        {"step": 10, "loss": 2.25, "series": "validation loss"}]


def test_loss_curve_carries_both_series_from_the_first_point():
    import math

    df = train.loss_frame([{"type": "eval", "step": 0, "eval_loss": 3.29}], "en")  # before the first step
    rows = df.to_dict("records")
    assert [r["series"] for r in rows] == ["train loss", "validation loss"]
    assert rows[0]["step"] == 0 and math.isnan(rows[0]["loss"]) and rows[1]["loss"] == 3.29
    only_train = train.loss_frame([EVENTS[1]], "en").to_dict("records")
    assert only_train[0] == {"step": 5, "loss": 2.5, "series": "train loss"}
    assert only_train[1]["series"] == "validation loss" and math.isnan(only_train[1]["loss"])
    assert len(train.loss_frame([], "en")) == 0


def test_status_of_a_finished_run_shows_its_figures_log_and_row(config):
    _fake_run(config.runs_dir, "r1", EVENTS, log="line 1\nline 2\n")
    html, curve, log, table = train.status(config, "en")
    assert 'data-status="stopped"' in html and 'data-step="10" data-total="20"' in html
    assert "10 / 20 steps (50%)" in html and "800 tokens/s" in html and "1540 MB" in html
    assert "took 1:00" in html and "ETA" not in html          # no ETA once a run is over
    assert "stopped by the user at step 10" in html
    assert len(curve) == 3 and log == "line 1\nline 2"
    row = table.iloc[0].to_dict()
    assert (row["Run"], row["Status"], row["Steps"], row["Train loss"], row["Val. loss"]) == (
        "r1", "stopped", "10/20", 2.0, 2.25)


def test_a_completed_run_shows_its_last_step_even_between_logging_steps(config):
    events = EVENTS[:-1] + [{"type": "status", "status": "completed", "step": 12, "message": "done"}]
    _fake_run(config.runs_dir, "r2", events)
    html, *_ = train.status(config, "en")
    assert 'data-status="completed"' in html and "12 / 20 steps (100%)" in html


def test_a_run_finished_before_its_first_logging_step_shows_run_json_s_figures(config):
    """Issue 19: "Step 2 / ? (0%) · ETA – · elapsed – · – tokens/s · peak memory – MB" beside "completed"."""
    run = _fake_run(config.runs_dir, "short", [{"type": "status", "status": "running"},
                                               {"type": "status", "status": "completed", "step": 2}])
    (run / "run.json").write_text(json.dumps({"status": "completed", "global_step": 2, "total_steps": 2,
                                              "wall_time_s": 75.4, "peak_memory_mb": 812.0, "tokens_seen": 900,
                                              "train_runtime_s": 30.0}), encoding="utf-8")
    html, *_ = train.status(config, "en")
    assert "2 / 2 steps (100%) · took 1:15 · 30 tokens/s · peak memory 812 MB" in html
    assert "?" not in html and "–" not in html and "ETA" not in html
    zh, *_ = train.status(config, "zh")
    assert "2 / 2 步（100%） · 用时 1:15" in zh


def test_the_log_tail_reads_as_the_terminal_shows_it(config):
    """Issue 19: train.log's JSON event lines (train.py off a terminal) are rendered for people."""
    log = ('kept 40 of 40 records\n{"type": "eval", "step": 0, "epoch": 0, "eval_loss": 11.9612}\n'
           '{"type": "log", "step": 1, "total_steps": 400, "epoch": 0.01, "loss": 11.95, "learning_rate": 0.0003, '
           '"tokens_per_s": 812.4, "eta_s": 3600, "peak_memory_mb": 1536.2}\n{not json\n')
    _fake_run(config.runs_dir, "r1", EVENTS, log=log)
    _, _, text, _ = train.status(config, "en")
    assert text.splitlines() == [
        "kept 40 of 40 records", "validation loss 11.9612 (step 0, epoch 0)",
        "step 1 / 400 · loss 11.9500 · learning rate 3.00e-04 · 812 tokens/s · ETA 1:00:00 · peak memory 1536 MB",
        "{not json"]
    assert '"type"' not in text
    _, _, zh, _ = train.status(config, "zh")
    assert "验证损失 11.9612" in zh and "第 1 / 400 步" in zh


def test_status_with_no_runs_says_so(config):
    html, curve, log, table = train.status(config, "zh")
    assert html == i18n.t("ui.train.no_runs", "zh") and curve is None and len(table) == 0


def test_fmt_duration():
    from hust_sft.console import fmt_duration

    assert [fmt_duration(s) for s in (None, 0, 59.6, 61, 3725)] == ["–", "0:00", "1:00", "1:01", "1:02:05"]


def test_upload_is_copied_out_of_gradio_s_temp_folder(config, tmp_path):
    src = tmp_path / "my data (1).JSONL"
    src.write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    kept = train.keep_upload(config, src)
    again = train.keep_upload(config, src)  # a second upload of the same name never replaces the first
    assert kept.parent == again.parent == config.runs_dir / "uploads" and kept != again
    assert re.fullmatch(r"my-data-1-[0-9a-f]{12}\.jsonl", kept.name) and kept.read_bytes() == src.read_bytes()
    assert train.resolve_source(config, "builtin", None, "x") == str(SAMPLE)
    assert train.resolve_source(config, "hub", None, str(SAMPLE)) == ""
    assert train.resolve_source(config, "url", None, "https://e.org/a.jsonl") == "https://e.org/a.jsonl"
