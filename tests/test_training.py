"""hust_sft.training on the tiny random Qwen2: it learns, saves what it learnt, stops, resumes, records."""
from __future__ import annotations

import json
import os
import time

import pytest
import torch
from qa_data import write_qa_jsonl

from hust_sft.data.collator import PadCollator
from hust_sft.data.encoding import encode
from hust_sft.i18n import t
from hust_sft.settings import RunSettings, SettingsError, set_values
from hust_sft.trainer import answer_only_loss
from hust_sft.training import train

LOG_KEYS = {"type", "step", "total_steps", "epoch", "loss", "learning_rate", "grad_norm", "tokens_per_s",
            "elapsed_s", "eta_s", "peak_memory_mb", "time"}
RUN_KEYS = {"status", "error", "settings", "data", "versions", "device", "dtype", "mixed_precision",
            "wall_time_s", "peak_memory_mb", "trainable_params", "total_params", "train_loss", "eval_loss",
            "global_step", "adapter"}


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory):
    return write_qa_jsonl(tmp_path_factory.mktemp("data") / "qa.jsonl", 12)


@pytest.fixture(scope="module")
def learnable_model_dir(tmp_path_factory):
    """The tiny Qwen2 with 10x larger initial weights. With the default 0.02 init its frozen, tied 64-wide
    head caps any logit near 1.3, so no adapter can lower the loss much below ln(151936) = 11.9."""
    from hust_sft import demo_model

    return demo_model.build(tmp_path_factory.mktemp("models") / "tiny-learnable", initializer_range=0.2)


def make_settings(data, model, **overrides) -> RunSettings:
    values = {"data": str(data), "model": str(model), "system_prompt": "S", "val_ratio": 0.0,
              "test_ratio": 0.0, "max_length": 64, "batch_size": 4, "grad_accum": 1, "logging_steps": 1,
              "lr": 1e-2, "lr_scheduler": "constant_with_warmup", "warmup_ratio": 0.0, "lora_dropout": 0.0,
              "epochs": 1.0, "retrieval": "off"}  # plain SFT; retrieval training: test_training_best.py
    values.update(overrides)
    return set_values(RunSettings(), values)


def read_events(run_dir):
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()]


def greedy(model, tokenizer, question):
    from hust_sft.data.encoding import prompt_ids

    ids = torch.tensor([prompt_ids(tokenizer, [{"role": "user", "content": question}], "S")])
    model.eval()
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False)
    return out[0, ids.shape[1]:].tolist()


def test_loss_falls_and_the_saved_adapter_reloads_to_the_same_answers(tmp_path, qa_file, learnable_model_dir,
                                                                      tokenizer):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    # fp32 throughout, so the reloaded fp32 base + adapter must reproduce the trained model token for token.
    result = train(make_settings(qa_file, learnable_model_dir, max_steps=24, save_steps=1000,
                                 mixed_precision="no"), run_dir=tmp_path)
    losses = [e["loss"] for e in read_events(tmp_path) if e["type"] == "log"]
    assert len(losses) == 24
    assert sum(losses[-4:]) / 4 < 0.5 * sum(losses[:4]) / 4  # about 11.5 -> 3 when measured
    assert result.status == "completed" and result.global_step == 24

    base = AutoModelForCausalLM.from_pretrained(learnable_model_dir)
    base_answer = greedy(base, tokenizer, "问题 3")
    reloaded = PeftModel.from_pretrained(base, tmp_path / "adapter")
    assert greedy(reloaded, tokenizer, "问题 3") == greedy(result.model.float(), tokenizer, "问题 3")
    assert greedy(reloaded, tokenizer, "问题 3") != base_answer
    assert (tmp_path / "adapter" / "tokenizer_config.json").is_file()


def test_events_and_run_json_have_the_documented_fields(tmp_path, qa_file, tiny_model_dir):
    train(make_settings(qa_file, tiny_model_dir, max_steps=2, val_ratio=0.25), run_dir=tmp_path)
    events = read_events(tmp_path)
    assert events[0]["type"] == "status" and events[0]["status"] == "running"
    assert events[-1]["type"] == "status" and events[-1]["status"] == "completed"
    logs = [e for e in events if e["type"] == "log"]
    assert [e["step"] for e in logs] == [1, 2] and all(set(e) == LOG_KEYS for e in logs)
    assert all(e["total_steps"] == 2 and e["tokens_per_s"] > 0 for e in logs)
    assert logs[-1]["eta_s"] == 0.0
    evals = [e for e in events if e["type"] == "eval"]
    # One before training (the untrained adapter's starting point) and one at the end of the epoch.
    assert [e["step"] for e in evals] == [0, 2] and all(e["eval_loss"] > 0 for e in evals)

    run = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert RUN_KEYS <= set(run)
    assert run["status"] == "completed" and run["error"] is None and run["global_step"] == 2
    assert run["settings"]["train"]["max_steps"] == 2
    assert run["data"]["split_sizes"]["train"] + run["data"]["split_sizes"]["validation"] == 12
    assert run["data"]["validation"]["kept"] == 12 and len(run["data"]["sha256"]) == 64
    assert run["data"]["encoding"]["train"]["kept"] == run["data"]["split_sizes"]["train"]
    assert {"torch", "transformers", "peft", "accelerate"} <= set(run["versions"])
    assert run["eval_loss"] == evals[-1]["eval_loss"] and run["train_loss"] == logs[-1]["loss"]
    assert run["eval_loss_start"] == evals[0]["eval_loss"]
    assert 0 < run["trainable_params"] < run["total_params"]
    assert json.loads((tmp_path / "settings.json").read_text())["train"]["max_steps"] == 2


def test_bf16_training_on_a_cpu_stores_the_base_in_bf16_and_saves_an_fp32_adapter(tmp_path, qa_file,
                                                                                  tiny_model_dir):
    from safetensors.torch import load_file

    result = train(make_settings(qa_file, tiny_model_dir, max_steps=1, mixed_precision="bf16"), run_dir=tmp_path)
    run = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert (run["device"], run["mixed_precision"], run["dtype"]) == ("cpu", "bf16", "bfloat16")
    base_weights = {p.dtype for n, p in result.model.named_parameters() if "lora_" not in n}
    assert base_weights == {torch.bfloat16}
    saved = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert saved and {w.dtype for w in saved.values()} == {torch.float32}


def test_heap_cap_fixes_glibc_s_mmap_threshold_unless_the_user_set_it(monkeypatch):
    from hust_sft import cpu_memory

    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(cpu_memory.ctypes, "CDLL", lambda name: FakeLibc())
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert cpu_memory.cap_heap_fragmentation() is True
    assert calls == [(-3, 4 * 2**20)]
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")  # the user's own setting wins
    assert cpu_memory.cap_heap_fragmentation() is False and len(calls) == 1


def test_answer_only_head_loss_equals_the_standard_loss(tiny_model_dir, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    convs = [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there"}],
             [{"role": "user", "content": "一卡通丢了怎么办？"}, {"role": "assistant", "content": "去服务大厅挂失。"},
              {"role": "user", "content": "要带什么？"}, {"role": "assistant", "content": "身份证。"}]]
    batch = PadCollator(tokenizer.pad_token_id)([encode(tokenizer, c, "S", 256) for c in convs])
    with torch.no_grad():
        standard = model(**batch).loss
        ours, _ = answer_only_loss(model, batch)
        n = int((batch["labels"][:, 1:] != -100).sum())
        summed, _ = answer_only_loss(model, batch, num_items_in_batch=torch.tensor(2 * n))
    assert abs(ours.item() - standard.item()) < 1e-5
    assert abs(summed.item() * 2 - standard.item()) < 1e-5


def test_chunked_head_gives_the_standard_gradients(tiny_model_dir, tokenizer, monkeypatch):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from hust_sft import trainer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                             init_lora_weights=False))  # non-zero B: every LoRA weight gets a gradient
    assert trainer.frozen_head_weight(model) is not None  # the chunked path is the one under test
    monkeypatch.setattr(trainer, "rows_per_chunk", lambda vocab: 3)  # several chunks, one of them partial
    convs = [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there, welcome."}],
             [{"role": "user", "content": "一卡通丢了怎么办？"}, {"role": "assistant", "content": "去服务大厅挂失。"}]]
    batch = PadCollator(tokenizer.pad_token_id)([encode(tokenizer, c, "S", 256) for c in convs])

    def grads(loss):
        model.zero_grad()
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad])

    ours, _ = answer_only_loss(model, batch)
    standard = model(**batch).loss
    assert ours.item() == pytest.approx(standard.item(), abs=1e-5)
    torch.testing.assert_close(grads(ours), grads(standard), atol=1e-6, rtol=1e-4)


def test_answer_only_head_trains_exactly_like_the_standard_path_with_accumulation(tmp_path, qa_file,
                                                                                  tiny_model_dir):
    kw = dict(max_steps=3, batch_size=2, grad_accum=3, mixed_precision="no", group_by_length=False,
              save_steps=1000)
    train(make_settings(qa_file, tiny_model_dir, answer_only_head=True, **kw), run_dir=tmp_path / "a")
    train(make_settings(qa_file, tiny_model_dir, answer_only_head=False, **kw), run_dir=tmp_path / "b")
    logs_a = [e for e in read_events(tmp_path / "a") if e["type"] == "log"]
    logs_b = [e for e in read_events(tmp_path / "b") if e["type"] == "log"]
    # Same loss and same gradient norm at every step: the normalisation over 3 accumulated micro-batches
    # (num_items_in_batch) matches the model's own loss; a wrong scale would show in grad_norm.
    assert [e["loss"] for e in logs_a] == pytest.approx([e["loss"] for e in logs_b], abs=1e-4)
    assert [e["grad_norm"] for e in logs_a] == pytest.approx([e["grad_norm"] for e in logs_b], rel=1e-3)
    assert len(logs_a) == 3


def test_gradient_checkpointing_trains_exactly_like_keeping_activations(tmp_path, qa_file, tiny_model_dir):
    # Recomputing activations in backward must not change what is learnt (chunked head included).
    kw = dict(max_steps=2, batch_size=2, grad_accum=2, mixed_precision="no", save_steps=1000)
    train(make_settings(qa_file, tiny_model_dir, gradient_checkpointing=True, **kw), run_dir=tmp_path / "gc")
    train(make_settings(qa_file, tiny_model_dir, **kw), run_dir=tmp_path / "plain")
    logs_gc = [e for e in read_events(tmp_path / "gc") if e["type"] == "log"]
    logs_plain = [e for e in read_events(tmp_path / "plain") if e["type"] == "log"]
    assert [e["loss"] for e in logs_gc] == pytest.approx([e["loss"] for e in logs_plain], abs=1e-5)
    assert [e["grad_norm"] for e in logs_gc] == pytest.approx([e["grad_norm"] for e in logs_plain], rel=1e-4)


def test_stop_file_saves_a_loadable_adapter_and_resume_continues_from_the_checkpoint(tmp_path, qa_file,
                                                                                     tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    def stop_after_step_2(event):
        if event["type"] == "log" and event["step"] == 2:
            (tmp_path / "STOP").touch()

    result = train(make_settings(qa_file, tiny_model_dir, max_steps=8), run_dir=tmp_path,
                   on_event=stop_after_step_2)
    # STOP appears after step 2 is logged; the trainer notices it at the end of step 3 and saves there.
    assert result.status == "stopped" and result.global_step == 3
    assert (tmp_path / "checkpoints" / "checkpoint-3").is_dir()
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "stopped"
    assert read_events(tmp_path)[-1]["status"] == "stopped"
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tmp_path / "adapter")

    # A STOP older than this process is left over from the stopped run: it must not stop the resumed one.
    old = time.time() - 10 * 24 * 3600
    os.utime(tmp_path / "STOP", (old, old))
    before = len(read_events(tmp_path))
    resumed = train(make_settings(qa_file, tiny_model_dir, max_steps=5, resume=True), run_dir=tmp_path)
    new_events = read_events(tmp_path)[before:]
    assert new_events[0]["status"] == "running"
    assert [e["step"] for e in new_events if e["type"] == "log"] == [4, 5]
    assert resumed.status == "completed" and resumed.global_step == 5
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["resumed_from"].endswith("checkpoint-3") and run["status"] == "completed"
    assert not (tmp_path / "STOP").exists()


def test_a_finished_run_is_never_trained_over_without_resume(tmp_path, qa_file, tiny_model_dir):
    (tmp_path / "run.json").write_text('{"status": "completed"}', encoding="utf-8")
    with pytest.raises(SettingsError) as err:
        train(make_settings(qa_file, tiny_model_dir, max_steps=1), run_dir=tmp_path)
    assert t("runs.error.output_exists", "en", path=tmp_path, file="run.json") == str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # nothing written, nothing replaced


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path, qa_file, tiny_model_dir):
    with pytest.raises(SettingsError, match="checkpoint"):
        train(make_settings(qa_file, tiny_model_dir, resume=True), run_dir=tmp_path)
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "failed"


def test_qlora_on_a_cpu_fails_with_a_named_error_recorded_in_the_run(tmp_path, qa_file, tiny_model_dir):
    from hust_sft.precision import PrecisionError

    with pytest.raises(PrecisionError, match="CUDA"):  # refused by the precision plan, before any loading
        train(make_settings(qa_file, tiny_model_dir, quantization="4bit", device="cpu"), run_dir=tmp_path)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["status"] == "failed" and "CUDA" in run["error"]
    last = read_events(tmp_path)[-1]
    assert last["status"] == "failed" and last["error_type"] == "PrecisionError"


def test_run_record_saves_run_json_on_every_kind_of_change(tmp_path):
    from hust_sft.training import RunRecord

    path = tmp_path / "run.json"
    record = RunRecord(path)

    def on_disk():
        return json.loads(path.read_text(encoding="utf-8"))

    record["status"] = "running"
    assert on_disk() == {"status": "running"}
    assert record.setdefault("error", None) is None
    assert on_disk() == {"status": "running", "error": None}
    assert record.setdefault("status", "failed") == "running"      # an existing key is kept
    record.update(global_step=3)
    record |= {"train_loss": 1.5}
    assert on_disk() == {"status": "running", "error": None, "global_step": 3, "train_loss": 1.5}
    del record["error"]
    assert record.pop("train_loss") == 1.5
    assert record.pop("missing", "default") == "default"
    assert on_disk() == {"status": "running", "global_step": 3}
    record.clear()
    assert on_disk() == {}

    off = RunRecord(tmp_path / "rank1.json", enabled=False)   # ranks > 0 write nothing
    off["status"] = "running"
    assert not (tmp_path / "rank1.json").exists()
