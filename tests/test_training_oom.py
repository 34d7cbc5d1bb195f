"""CUDA out of memory while training: a named error saying what to lower, and a run folder that resumes.

On a CPU the Trainer's step is made to raise torch.OutOfMemoryError, as CUDA's allocator does."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import job_settings
from qa_data import write_qa_jsonl

from hust_sft import runs
from hust_sft.oom import TrainingOutOfMemory
from hust_sft.settings import RunSettings
from hust_sft.training import train


def make_settings(data, model, **overrides) -> RunSettings:
    # device "auto", as a Space user leaves it: the advice then offers 4-bit as a CUDA card allows
    return job_settings(data, model, **{"batch_size": 2, "save_steps": 2, "device": "auto", **overrides})


def test_cuda_out_of_memory_fails_the_run_with_what_to_lower_and_the_run_resumes(tmp_path, tiny_model_dir,
                                                                                  monkeypatch):
    from transformers import Trainer

    data = write_qa_jsonl(tmp_path / "qa.jsonl", 8)
    run_dir = tmp_path / "run"
    step, emptied = Trainer.training_step, []

    def out_of_memory_after_step_2(self, *args, **kwargs):
        if self.state.global_step >= 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "training_step", out_of_memory_after_step_2)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    with pytest.raises(TrainingOutOfMemory) as err:
        train(make_settings(data, tiny_model_dir, max_steps=6), run_dir=run_dir)
    assert isinstance(err.value.__cause__, torch.OutOfMemoryError)
    # batch 2 -> 1 with accumulation 1 -> 2; max_length 64 is already the least it takes; checkpointing next;
    # 4-bit last (the run's device is "auto", so a GPU is where it would be)
    assert err.value.settings_to_lower == ["batch_size", "gradient_checkpointing", "quantization"]
    assert err.value.steps[0] == ("oom.step.batch_size", {"value": 2, "lower": 1, "accum": 1, "accum_higher": 2,
                                                          "effective": 2})
    message = str(err.value)
    assert emptied

    # The run folder: events up to the failure, the checkpoint of step 2, failed with that message.
    events = runs.read_events(run_dir)
    assert [e["step"] for e in events if e["type"] == "log"] == [1, 2]
    assert events[-1]["type"] == "status" and events[-1]["status"] == "failed"
    assert events[-1]["message"] == message and events[-1]["error_type"] == "TrainingOutOfMemory"
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "failed" and record["error"] == message
    assert runs.run_status(run_dir) == "failed"
    assert runs.latest_checkpoint(run_dir) == run_dir / "checkpoints" / "checkpoint-2"
    assert runs.resumable(run_dir)

    # Lowered as advised, the run resumes from that checkpoint and finishes.
    monkeypatch.setattr(Trainer, "training_step", step)
    resumed = train(make_settings(data, tiny_model_dir, max_steps=4, resume=True, batch_size=1,
                                   grad_accum=2), run_dir=run_dir)
    assert resumed.status == "completed" and resumed.global_step == 4
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "completed" and record["resumed_from"].endswith("checkpoint-2")
    assert [seg["status"] for seg in record["segments"]] == ["failed", "completed"]
