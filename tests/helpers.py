"""Helpers more than one test file uses (one place, not a copy per file): waiting for a condition, a free
port on 127.0.0.1, the small settings of a job-runner training run, and a finished run folder whose LoRA
adapter really changes the answers.

Imported as `from helpers import ...` from any folder under tests/ (tests/conftest.py puts tests/ on
sys.path, as for qa_data.py).
"""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path


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


def job_settings(data, model, **overrides):
    """RunSettings of a short CPU run on the tiny model for the job-runner tests: one epoch, batch 4, every
    step logged, no validation split, no evaluation and no checkpoint unless `overrides` ask."""
    from hust_sft.settings import RunSettings, set_values

    values = {"data": str(data), "model": str(model), "system_prompt": "S", "val_ratio": 0.0, "test_ratio": 0.0,
              "max_length": 64, "batch_size": 4, "grad_accum": 1, "logging_steps": 1, "epochs": 1.0,
              "device": "cpu", "save_steps": 100000, "eval_each_epoch": False}
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
    if system_prompt is not None:
        rs.data.system_prompt = system_prompt
    run.mkdir(parents=True)
    (run / "settings.json").write_text(json.dumps(S.to_dict(rs), ensure_ascii=False), encoding="utf-8")
    randomize_lora_b(get_peft_model(load_base_model(rs.model), lora_config(rs.lora))).save_pretrained(run / "adapter")
    return run
