"""train.py as a user (and hust_sft.jobs) runs it: a subprocess, its exit code, its output, its run directory."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from qa_data import write_qa_jsonl

from hust_sft.settings import RunSettings, fields_of, from_args, to_dict

ROOT = Path(__file__).resolve().parents[1]
# English messages whatever this machine's locale (train.py follows LC_ALL / LC_MESSAGES / LANG).
ENV = {**{k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES")}, "LANG": "C.UTF-8",
       "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory):
    return write_qa_jsonl(tmp_path_factory.mktemp("data") / "qa.jsonl", 8, factor=1)


def small_run(qa_file, model, out, *extra):
    return [sys.executable, "train.py", "--data", str(qa_file), "--model", str(model), "--output", str(out),
            "--system-prompt", "S", "--val-ratio", "0", "--test-ratio", "0", "--max-length", "64",
            "--batch-size", "2", "--grad-accum", "1", "--logging-steps", "1", *extra]


def run(cmd, timeout=300):
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def test_help_documents_every_flag():
    out = run([sys.executable, "train.py", "--help"]).stdout
    flags = ["--" + name.replace("_", "-") for name, f, _ in fields_of(RunSettings) if f.metadata.get("cli", True)]
    assert {"--data", "--model", "--output", "--epochs", "--max-steps", "--batch-size", "--grad-accum", "--lr",
            "--lora-r", "--lora-alpha", "--target-modules", "--system-prompt", "--max-length", "--seed",
            "--resume"} <= set(flags)
    for flag in flags + ["--preset", "--config"]:
        assert flag in out, flag
    assert "0.0003)" in out and "(default:" in out  # defaults shown, taken from hust_sft.settings


def test_train_end_to_end_writes_an_adapter(tmp_path, qa_file, tiny_model_dir):
    proc = run(small_run(qa_file, tiny_model_dir, tmp_path / "run", "--max-steps", "3"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert str(tmp_path / "run" / "adapter") in proc.stdout
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
    record = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "completed" and record["global_step"] == 3
    assert record["settings"]["data"]["max_length"] == 64
    # A finished run's run.json is a valid --config: it gives back exactly the settings of that run.
    from train import build_parser

    again = from_args(RunSettings, build_parser().parse_args(["--config", str(tmp_path / "run" / "run.json")]))
    assert to_dict(again) == record["settings"]


def test_bad_data_exits_2_with_one_line_naming_the_file(tmp_path):
    missing = tmp_path / "nope.jsonl"
    proc = run([sys.executable, "train.py", "--data", str(missing), "--output", str(tmp_path / "run")])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(missing) in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()  # issue 19: checked before a run folder is made for it


def test_a_run_that_failed_before_its_first_step_does_not_block_the_corrected_command(tmp_path, qa_file,
                                                                                      tiny_model_dir):
    out = tmp_path / "run"
    typo = small_run(tmp_path / "qa.jsonl", tiny_model_dir, out, "--max-steps", "1")  # mistyped --data
    assert run(typo).returncode == 2
    assert not out.exists()  # a missing --data file fails before the folder is made (issue 19)
    proc = run(small_run(qa_file, tiny_model_dir, out, "--max-steps", "1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["status"] for e in events if e["type"] == "status"] == ["running", "completed"]  # a fresh record
    # A run that got as far as a step keeps its protection: the same command is refused.
    again = run(small_run(qa_file, tiny_model_dir, out, "--max-steps", "1"))
    assert again.returncode == 2 and "--resume" in again.stderr


def test_out_of_range_setting_exits_2(tmp_path, qa_file):
    proc = run([sys.executable, "train.py", "--data", str(qa_file), "--lora-r", "0", "--output", str(tmp_path)])
    assert proc.returncode == 2 and "lora_r" in proc.stderr and "Traceback" not in proc.stderr


def test_sigterm_stops_with_a_saved_adapter_and_exit_0(tmp_path, qa_file, tiny_model_dir):
    out = tmp_path / "run"
    proc = subprocess.Popen(small_run(qa_file, tiny_model_dir, out, "--max-steps", "500"), cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and '"type": "log"' not in _read(out / "events.jsonl"):
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "stopped" and 0 < record["global_step"] < 500
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert (out / "checkpoints" / f"checkpoint-{record['global_step']}").is_dir()


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def test_two_process_data_parallel_on_cpu_writes_the_run_once(tmp_path, qa_file, tiny_model_dir):
    accelerate = shutil.which("accelerate")
    if accelerate is None:
        pytest.skip("accelerate CLI not on PATH")
    out = tmp_path / "run"
    # --multi_gpu selects accelerate's torchrun launcher; on a CPU-only machine the Trainer (use_cpu) then
    # joins the processes over gloo. (`--cpu` alone would start one process.)
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517"] + \
        small_run(qa_file, tiny_model_dir, out, "--max-steps", "2")[1:]
    proc = run(cmd, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "completed" and record["world_size"] == 2 and record["global_step"] == 2
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["status"] for e in events if e["type"] == "status"] == ["running", "completed"]  # rank 0 only
    assert [e["step"] for e in events if e["type"] == "log"] == [1, 2]
    assert (out / "adapter" / "adapter_model.safetensors").is_file()


def test_output_that_is_not_a_terminal_has_one_json_line_per_log_step_and_a_summary(tmp_path, qa_file,
                                                                                      tiny_model_dir):
    out = tmp_path / "run"
    cmd = small_run(qa_file, tiny_model_dir, out, "--max-steps", "3")
    cmd[cmd.index("--val-ratio") + 1] = "0.3"
    proc = run(cmd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    printed = [json.loads(line) for line in lines if line.startswith("{")]
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    # The same numbers as events.jsonl, as numbers (the Trainer's own printer wrote {'loss': '12.1'}).
    assert printed == [{k: v for k, v in e.items() if k != "time"} for e in events if e["type"] in ("log", "eval")]
    assert [e["step"] for e in printed if e["type"] == "log"] == [1, 2, 3]
    assert all(isinstance(e["loss"], float) for e in printed if e["type"] == "log")
    assert "'loss'" not in proc.stdout
    best = min((e for e in events if e["type"] == "eval"), key=lambda e: e["eval_loss"])
    record = json.loads((out / "run.json").read_text())
    assert lines[-3] == f"best validation loss: {best['eval_loss']:.4f} (step {best['step']}, epoch {best['epoch']})"
    assert lines[-2].startswith("wall time ")
    assert lines[-2].endswith(f", 3 steps, last training loss {record['train_loss']:.4f}")
    assert lines[-1] == f"completed: adapter saved to {out / 'adapter'} (run directory {out})"


def test_a_terminal_gets_a_progress_bar(tmp_path, qa_file, tiny_model_dir):
    import pty

    out = tmp_path / "run"
    leader, follower = pty.openpty()
    # A terminal is stdout and stderr both (the bar is drawn on stderr, as progress bars are).
    proc = subprocess.Popen(small_run(qa_file, tiny_model_dir, out, "--max-steps", "3"), cwd=ROOT, env=ENV,
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(300) == 0
    os.close(leader)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "training: 100%" in text and "3/3" in text and "loss 12." in text  # tqdm: steps, loss, ETA
    assert "{" not in text  # no JSON lines on a terminal
    assert f"completed: adapter saved to {out / 'adapter'}" in text
    assert "best validation loss: – (no validation split)" in text


def test_messages_and_help_follow_the_locale_or_lang(tmp_path):
    zh = {**ENV, "LANG": "zh_CN.UTF-8"}
    helped = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, env=zh, capture_output=True,
                            text=True, timeout=300)
    assert "在问答文件上对对话模型做 LoRA 微调" in helped.stdout and "低秩更新的秩" in helped.stdout
    missing = tmp_path / "nope.jsonl"
    proc = subprocess.run([sys.executable, "train.py", "--data", str(missing), "--output", str(tmp_path / "r")],
                          cwd=ROOT, env=zh, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith("错误：") and str(missing) in proc.stderr
    english = run([sys.executable, "train.py", "--lang", "en", "--data", str(missing), "--output",
                   str(tmp_path / "r")])
    assert english.returncode == 2 and english.stderr.startswith("error: ")
    assert "LoRA fine-tuning of a chat model" in run([sys.executable, "train.py", "--help"]).stdout
