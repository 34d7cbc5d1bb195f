"""Experiment trackers (settings.train.report_to): TensorBoard and trackio write into the run folder, offline."""
from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from qa_data import write_qa_jsonl

from hust_sft.i18n import t
from hust_sft.settings import RunSettings, SettingsError, set_values
from hust_sft.training import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory):
    return write_qa_jsonl(tmp_path_factory.mktemp("data") / "qa.jsonl", 8)


def settings_for(data, model, **overrides) -> RunSettings:
    values = {"data": str(data), "model": str(model), "system_prompt": "S", "val_ratio": 0.0, "test_ratio": 0.0,
              "max_length": 64, "batch_size": 2, "grad_accum": 1, "logging_steps": 1, "max_steps": 3,
              "retrieval": "off"}
    values.update(overrides)
    return set_values(RunSettings(), values)


def logged_losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [e["loss"] for e in map(json.loads, lines) if e["type"] == "log"]


def test_tensorboard_event_files_hold_the_logged_losses(tmp_path, qa_file, tiny_model_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    train(settings_for(qa_file, tiny_model_dir, report_to="tensorboard"), run_dir=run_dir)
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["tracking"]["report_to"] == "tensorboard"
    assert record["tracking"]["dir"] == str(run_dir / "tensorboard")
    files = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert len(files) == 1
    acc = EventAccumulator(str(files[0]))
    acc.Reload()
    scalars = acc.Scalars("train/loss")
    assert [s.step for s in scalars] == [1, 2, 3]
    assert [s.value for s in scalars] == pytest.approx(logged_losses(run_dir), rel=1e-6)  # float32 in the file
    assert "TENSORBOARD_LOGGING_DIR" not in os.environ  # the next run in this process picks its own folder


def test_trackio_writes_a_local_store_in_the_run_folder_offline(tmp_path, qa_file, tiny_model_dir):
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKIO_")}
    env.update(HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "train.py", "--data", str(qa_file), "--model", str(tiny_model_dir), "--output",
           str(run_dir), "--system-prompt", "S", "--val-ratio", "0", "--test-ratio", "0", "--max-length", "64",
           "--batch-size", "2", "--grad-accum", "1", "--logging-steps", "1", "--max-steps", "3",
           "--report-to", "trackio"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tracking = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["tracking"]
    assert tracking == {"report_to": "trackio", "dir": str(run_dir / "trackio"), "project": "hust-sft",
                        "run": "run", "view": f"TRACKIO_DIR={run_dir / 'trackio'} trackio show --project hust-sft"}
    db = run_dir / "trackio" / "hust-sft.db"
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT run_name, step, metrics FROM metrics ORDER BY step").fetchall()
    metrics = [json.loads(m) for _, _, m in rows if "train/loss" in json.loads(m)]
    assert {name for name, _, _ in rows} == {"run"}
    assert [m["train/global_step"] for m in metrics] == [1, 2, 3]
    assert [m["train/loss"] for m in metrics] == logged_losses(run_dir)


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_a_tracker_that_is_not_installed_fails_before_loading_anything(tmp_path, qa_file, tiny_model_dir):
    with pytest.raises(SettingsError) as err:
        train(settings_for(qa_file, tiny_model_dir, report_to="wandb"), run_dir=tmp_path / "run")
    assert str(err.value) == t("training.error.tracker_missing", "en", tracker="wandb", package="wandb")
    record = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "failed" and "data" not in record  # failed before the data was read
