"""Runs that outlive a restart: /data/runs by default on a Space with storage, and Resume for interrupted runs."""
from __future__ import annotations

import json
import os
import signal
import time

from qa_data import write_qa_jsonl

from hust_sft import i18n, jobs, runs
from hust_sft.settings import RunSettings, set_values
from hust_sft.ui import train as train_tab
from hust_sft.ui.common import AppConfig, training_lock


def test_runs_go_to_persistent_storage_when_there_is_one(tmp_path):
    storage = tmp_path / "data"
    assert runs.default_runs_dir({}, persistent_root=storage) == runs.Path("runs")
    storage.mkdir()
    assert runs.default_runs_dir({}, persistent_root=storage) == storage / "runs"
    assert runs.default_runs_dir({"HUST_SFT_RUNS": "/x/runs"}, persistent_root=storage) == runs.Path("/x/runs")
    assert runs.is_persistent(storage / "runs", persistent_root=storage)
    assert not runs.is_persistent(tmp_path / "runs", persistent_root=storage)


def test_the_train_tab_says_where_runs_live(tmp_path):
    config = AppConfig(runs_dir=tmp_path / "runs")
    assert train_tab.runs_location(config, "en") == i18n.t("ui.train.runs_ephemeral", "en",
                                                          path=(tmp_path / "runs").resolve())
    assert "/data/runs" in train_tab.runs_location(config, "en")


def test_app_config_reads_hust_sft_runs_first(monkeypatch, tmp_path):
    monkeypatch.setenv("HUST_SFT_RUNS", str(tmp_path / "mine"))
    assert AppConfig.from_env().runs_dir == tmp_path / "mine"
    assert AppConfig.from_env(runs_dir=tmp_path / "flag").runs_dir == tmp_path / "flag"


def test_a_run_killed_by_a_restart_is_resumable_and_resume_finishes_it(tmp_path, tiny_model_dir):
    runs_dir = tmp_path / "runs"
    data = write_qa_jsonl(tmp_path / "qa.jsonl", 8)
    settings = set_values(RunSettings(), {
        "data": str(data), "model": str(tiny_model_dir), "system_prompt": "S", "val_ratio": 0.0, "test_ratio": 0.0,
        "max_length": 64, "batch_size": 2, "grad_accum": 1, "logging_steps": 1, "max_steps": 400, "save_steps": 2})
    job = jobs.start(settings, runs_dir, name="long")
    deadline = time.time() + 300
    while time.time() < deadline and runs.latest_checkpoint(job.run_dir) is None:
        time.sleep(0.5)
    assert runs.latest_checkpoint(job.run_dir) is not None
    os.killpg(job.pid, signal.SIGKILL)  # what a Space restart does to the trainer: no chance to save or say so
    job.wait(60)
    config = AppConfig(runs_dir=runs_dir)

    choices = train_tab.resumable_choices(config)  # the page after the restart
    assert [name for _, name in choices] == ["long"]  # names, never server paths
    assert runs.run_status(job.run_dir) == "failed"  # recorded as died by jobs
    checkpoint = runs.latest_checkpoint(job.run_dir)
    assert choices[0][0] == f"long (failed, {checkpoint.name})"

    # Resume is an owner action on a Space, like Train.
    space = AppConfig(runs_dir=runs_dir, space_id="alice/s", space_owner="alice")
    assert train_tab.resume(space, None, "en", "long") == training_lock(space, None, "en")
    assert jobs.active(runs_dir) is None

    # Shorter this time, so the test ends: the resumed run keeps its settings except what we set here.
    run_json = json.loads((job.run_dir / "run.json").read_text())
    run_json["settings"]["train"]["max_steps"] = int(checkpoint.name.split("-")[1]) + 2
    (job.run_dir / "run.json").write_text(json.dumps(run_json))
    message = train_tab.resume(config, None, "en", "long")
    assert message == i18n.t("ui.train.resumed", "en", run="long", checkpoint=checkpoint.name)
    resumed = jobs.active(runs_dir)
    assert resumed is not None and resumed.run_dir == job.run_dir
    assert resumed.wait(300)
    record = json.loads((job.run_dir / "run.json").read_text())
    assert record["status"] == "completed", runs.tail(job.run_dir / "train.log", 30)
    assert record["resumed_from"].endswith(checkpoint.name)
    assert record["global_step"] == run_json["settings"]["train"]["max_steps"]
    assert train_tab.resumable_choices(config) == []
    assert train_tab.resume(config, None, "en", "long") == i18n.t("ui.train.nothing_to_resume", "en")


def test_finished_runs_are_not_offered_and_a_half_saved_checkpoint_is_skipped(tmp_path):
    run = tmp_path / "runs" / "done"
    (run / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (run / "checkpoints" / "checkpoint-4" / "trainer_state.json").write_text('{"global_step": 4}')
    (run / "checkpoints" / "checkpoint-6").mkdir()  # killed while saving: no trainer_state.json yet
    (run / "checkpoints" / "checkpoint-8").mkdir()
    (run / "checkpoints" / "checkpoint-8" / "trainer_state.json").write_text('{"global_st')  # half written
    assert runs.latest_checkpoint(run) == run / "checkpoints" / "checkpoint-4"
    (run / "events.jsonl").write_text(json.dumps({"type": "status", "status": "completed"}) + "\n")
    assert not runs.resumable(run)
    (run / "events.jsonl").write_text(json.dumps({"type": "status", "status": "running"}) + "\n")
    assert runs.resumable(run)  # nobody is running it: the process died without a word
    (run / "checkpoints" / "checkpoint-4" / "trainer_state.json").unlink()
    assert not runs.resumable(run)
