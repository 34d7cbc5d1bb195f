"""Helpers more than one test file uses (one place, not a copy per file): waiting for a condition, a free
port on 127.0.0.1, starting and stopping the real app (`app.py --demo`) as a subprocess, the small settings
of a job-runner training run, and a finished run folder whose LoRA adapter really changes the answers.

Imported as `from helpers import ...` from any folder under tests/ (tests/conftest.py puts tests/ on
sys.path, as for qa_data.py).
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout: float = 90, what: str = "the condition", interval: float = 0.5):
    """`predicate()`'s first truthy value, asked every `interval` s; an AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(tmp: Path, env: dict[str, str], args: tuple[str, ...] = (),
              timeout_s: float = 240) -> tuple[subprocess.Popen, str]:
    """`python app.py --demo --port P *args` from the repository root with exactly `env`, its output in
    tmp/app.log; (process, base URL) once GET /config answers 200. RuntimeError with the log's tail if the
    app exits first or does not answer within `timeout_s`; on any failure or interruption the app is stopped."""
    import httpx

    port = free_port()
    log_path = tmp / "app.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--demo", "--port", str(port), *args],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout_s
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {proc.returncode}:\n"
                                   f"{log_path.read_text(errors='replace')[-4000:]}")
            try:
                if httpx.get(url + "/config", timeout=2, trust_env=False).status_code == 200:
                    return proc, url
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"app.py did not answer within {timeout_s} s:\n"
                                   f"{log_path.read_text(errors='replace')[-4000:]}")
            time.sleep(0.5)
    except BaseException:  # timed out, exited, or the test was interrupted (pytest-timeout): leave no app behind
        stop_app(proc)
        raise


def stop_app(proc: subprocess.Popen, runs_dir: Path | None = None) -> None:
    """Stop the training job of `runs_dir` if one runs (5 s grace), then the app (SIGTERM; SIGKILL after 30 s)."""
    if runs_dir is not None:
        try:
            from hust_sft import jobs

            jobs.stop(runs_dir, grace_s=5, wait=True)
        except Exception:  # noqa: BLE001 - no job, or already gone
            pass
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def job_settings(data, model, **overrides):
    """RunSettings of a short CPU run on the tiny model for the job-runner tests: one epoch, batch 4, every
    step logged, no validation split, no evaluation, no checkpoint and no retrieval unless `overrides` ask."""
    from hust_sft.settings import RunSettings, set_values

    values = {"data": str(data), "model": str(model), "system_prompt": "S", "val_ratio": 0.0, "test_ratio": 0.0,
              "max_length": 64, "batch_size": 4, "grad_accum": 1, "logging_steps": 1, "epochs": 1.0,
              "device": "cpu", "save_steps": 100000, "eval_each_epoch": False, "retrieval": "off"}
    values.update(overrides)
    return set_values(RunSettings(), values)


def randomize_lora_b(model, seed: int = 1):
    """Draw the LoRA B weights of a PEFT model at random (seeded): a fresh LoRA adapter is the identity
    (B = 0), so "tuned" would answer exactly as the base model."""
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    return model


def write_tuned_run(run: Path, model_dir, data, system_prompt: str | None = None) -> Path:
    """A finished run folder: settings.json naming `model_dir` and `data` (and `system_prompt`, else the
    default), and adapter/ saved with the run's LoRA settings and random B weights (`randomize_lora_b`)."""
    from peft import get_peft_model

    from hust_sft import settings as S
    from hust_sft.modeling import load_base_model, lora_config

    rs = S.RunSettings()
    rs.model.model, rs.data.data = str(model_dir), str(data)
    rs.retrieval.retrieval = "off"  # a plain run: it saved no retrieval/ index
    if system_prompt is not None:
        rs.data.system_prompt = system_prompt
    run.mkdir(parents=True)
    (run / "settings.json").write_text(json.dumps(S.to_dict(rs), ensure_ascii=False), encoding="utf-8")
    randomize_lora_b(get_peft_model(load_base_model(rs.model), lora_config(rs.lora))).save_pretrained(run / "adapter")
    return run


# ---- the Gradio page in Chromium (tests/browser, tests/security/test_stored_xss.py) --------------------

def tab(page, name: str):
    """Open a tab by its shown name (its panel mounts lazily: give it a moment)."""
    page.get_by_role("tab", name=name).click()
    time.sleep(0.5)


def pick(page, elem_id: str, label: str):
    """Choose the option shown as `label` in a gr.Dropdown (exactly: its options carry it as aria-label)."""
    page.click(f"#{elem_id} input")
    page.click(f"#{elem_id} li[role=option][aria-label='{label}']")


def fill(page, elem_id: str, value: str):
    """Type into a Textbox / Number / Slider's number box, and leave it so Gradio registers the change."""
    box = page.locator(f"#{elem_id} :is(textarea, input[type=number], input[type=text], input:not([type]))").first
    box.fill(value)
    box.press("Tab")
