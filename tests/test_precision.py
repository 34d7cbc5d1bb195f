"""Issue 17 items 1, 2, 5: the precision policy as a table, tested on a CPU with faked devices; QLoRA's
config per card; the Train tab's hardware line; the out-of-memory advice."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from hust_sft import precision
from hust_sft import settings as S
from hust_sft.oom import TrainingOutOfMemory, oom_advice
from hust_sft.precision import CARDS, DeviceInfo, PrecisionError, plan_precision

ROOT = Path(__file__).resolve().parents[1]
CPU, CPU_BF16 = DeviceInfo("cpu", "CPU"), DeviceInfo("cpu", "CPU", cpu_bf16=True)
T4 = DeviceInfo("cuda", "Tesla T4", (7, 5), 14.7, bitsandbytes=True)
A10G = DeviceInfo("cuda", "NVIDIA A10G", (8, 6), 22.3, bitsandbytes=True)
L4 = DeviceInfo("cuda", "NVIDIA L4", (8, 9), 22.2, bitsandbytes=True)
A100 = DeviceInfo("cuda", "NVIDIA A100", (8, 0), 79.3, bitsandbytes=True)
H100 = DeviceInfo("cuda", "NVIDIA H100", (9, 0), 79.1, bitsandbytes=True)
DEVICES = {"cpu": CPU, "cpu_bf16": CPU_BF16, "t4": T4, "a10g": A10G, "l4": L4, "a100": A100, "h100": H100}

# setting (dtype, mixed_precision, quantization, training) -> per device, in DEVICES' order:
# "weights/load_dtype/autocast/compute" plus "+scaler", or "!<error key>". LoRA is always fp32.
BF16 = "bf16/bf16/bf16/bf16"
FP16 = "fp16/fp16/fp16/fp16+scaler"
TABLE = {
    ("auto", "auto", "none", True): ["fp32/fp32/no/fp32", BF16, FP16, BF16, BF16, BF16, BF16],
    ("bf16", "auto", "none", True): [BF16, BF16, "!precision.error.bf16_card", BF16, BF16, BF16, BF16],
    ("fp16", "auto", "none", True): ["!precision.error.fp16_cpu_weights"] * 2 + [FP16] * 5,
    ("fp32", "auto", "none", True): ["fp32/fp32/no/fp32", "fp32/fp32/bf16/bf16", "fp32/fp32/fp16/fp16+scaler"]
                                    + ["fp32/fp32/bf16/bf16"] * 4,
    ("auto", "bf16", "none", True): [BF16, BF16, "!model.error.bf16_gpu", BF16, BF16, BF16, BF16],
    ("auto", "fp16", "none", True): ["!model.error.fp16_cpu"] * 2 + [FP16] * 5,
    ("auto", "no", "none", True): ["fp32/fp32/no/fp32"] * 7,
    ("auto", "auto", "4bit", True): ["!model.error.quantization_device"] * 2
                                    + ["nf4/fp16/fp16/fp16+scaler"] + ["nf4/bf16/bf16/bf16"] * 4,
    ("auto", "auto", "8bit", True): ["!model.error.quantization_device"] * 2
                                    + ["int8/fp16/fp16/fp16+scaler"] + ["int8/bf16/bf16/bf16"] * 4,
    ("auto", "no", "4bit", True): ["!model.error.quantization_device"] * 2
                                  + ["nf4/fp16/no/fp16"] + ["nf4/bf16/no/bf16"] * 4,
    ("bf16", "fp16", "none", True): ["!model.error.fp16_cpu"] * 2 + ["!precision.error.bf16_card"]
                                    + ["!precision.error.mismatch"] * 4,
    ("fp16", "bf16", "none", True): ["!precision.error.fp16_cpu_weights"] * 2 + ["!model.error.bf16_gpu"]
                                    + ["!precision.error.mismatch"] * 4,
    ("fp16", "no", "none", True): ["!precision.error.fp16_cpu_weights"] * 2
                                  + ["!precision.error.fp16_no_scaler"] * 5,
    # Answering: no autocast; the card's half on CUDA, fp32 on a CPU (batched == one-by-one greedy).
    ("auto", "auto", "none", False): ["fp32/fp32/no/fp32"] * 2 + ["fp16/fp16/no/fp16"] + ["bf16/bf16/no/bf16"] * 4,
    ("auto", "no", "none", False): ["fp32/fp32/no/fp32"] * 2 + ["fp16/fp16/no/fp16"] + ["bf16/bf16/no/bf16"] * 4,
    ("bf16", "auto", "none", False): ["bf16/bf16/no/bf16"] * 2 + ["!precision.error.bf16_card"]
                                     + ["bf16/bf16/no/bf16"] * 4,
}
CASES = [(setting, device, expected) for setting, row in TABLE.items()
         for device, expected in zip(DEVICES, row, strict=True)]


def summary(plan) -> str:
    out = f"{plan.weights}/{plan.load_dtype}/{plan.autocast}/{plan.compute_dtype}"
    return out + ("+scaler" if plan.grad_scaler else "")


@pytest.mark.parametrize(("setting", "device", "expected"), CASES,
                         ids=[f"{d}-{'-'.join(map(str, s))}" for s, d, _ in CASES])
def test_the_precision_table(setting, device, expected):
    dtype, mixed, quantization, training = setting
    if expected.startswith("!"):
        with pytest.raises(PrecisionError) as err:
            plan_precision(DEVICES[device], dtype, mixed, quantization, training=training)
        assert err.value.key == expected[1:]
        assert err.value.text("zh") != err.value.text("en")
        return
    plan = plan_precision(DEVICES[device], dtype, mixed, quantization, training=training)
    assert summary(plan) == expected
    assert plan.lora == "fp32" and plan.quantization == quantization
    assert plan.grad_scaler == (plan.autocast == "fp16")


@pytest.mark.parametrize("info", [T4, DeviceInfo("cuda", "Tesla V100", (7, 0), 31.7, bitsandbytes=True)])
def test_a_card_before_ampere_never_gets_bf16(info):
    for dtype in ("auto", "fp16", "fp32"):
        for mixed in ("auto", "fp16", "no"):
            for quantization in ("none", "4bit", "8bit"):
                try:
                    plan = plan_precision(info, dtype, mixed, quantization)
                except PrecisionError:
                    continue
                assert "bf16" not in (plan.weights, plan.load_dtype, plan.autocast, plan.compute_dtype)


def test_4bit_without_bitsandbytes_is_refused_by_name():
    no_bnb = DeviceInfo("cuda", "NVIDIA A10G", (8, 6), 22.3, bitsandbytes=False)
    with pytest.raises(PrecisionError) as err:
        plan_precision(no_bnb, "auto", "auto", "4bit")
    assert err.value.key == "model.error.no_bitsandbytes"


def test_the_why_reads_in_both_languages():
    plan = plan_precision(T4)
    assert "Tesla T4" in plan.why and "sm_75" in plan.why and "loss scaler" in plan.why
    assert "Tesla T4" in precision.describe(plan, "zh") and "损失缩放" in precision.describe(plan, "zh")
    assert plan.to_dict()["why"] == plan.why


def fake_cuda(monkeypatch, name="Tesla T4", capability=(7, 5), memory=15_828_320_256):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device=None: SimpleNamespace(total_memory=memory, major=capability[0],
                                                            minor=capability[1], name=name))


def test_detect_reads_what_torch_reports(monkeypatch):
    fake_cuda(monkeypatch)
    info = precision.detect()
    assert (info.kind, info.name, info.capability, info.memory_gib) == ("cuda", "Tesla T4", (7, 5), 14.7)
    assert not info.bf16 and info.sm == "sm_75"
    assert precision.detect("cpu").kind == "cpu"
    fake_cuda(monkeypatch, "NVIDIA H200", (9, 0), 150_754_820_096)
    assert precision.detect("cuda").bf16


def test_modeling_keeps_its_names_as_thin_calls(monkeypatch):
    from hust_sft import modeling

    fake_cuda(monkeypatch)  # torch.cuda.is_bf16_supported() would say True here (emulation); the plan does not
    assert modeling.pick_device() == "cuda"
    assert modeling.pick_mixed_precision("cuda") == "fp16"
    assert modeling.pick_dtype("cuda") == torch.float16
    assert modeling.pick_dtype("cuda", "auto", "fp16") == torch.float16
    with pytest.raises(PrecisionError):
        modeling.pick_mixed_precision("cuda", "bf16")
    fake_cuda(monkeypatch, "NVIDIA A100", (8, 0))
    assert modeling.pick_mixed_precision("cuda") == "bf16"
    assert modeling.pick_mixed_precision("cuda", "auto", "fp16") == "fp16"  # auto autocast follows the weights
    assert modeling.pick_dtype("cuda", "auto", "no") == torch.float32       # no mixed precision: fp32 training
    assert modeling.pick_dtype("cpu") == torch.float32


@pytest.mark.parametrize(("info", "compute"), [(T4, torch.float16), (A100, torch.bfloat16), (H100, torch.bfloat16)])
def test_qlora_config_takes_the_compute_dtype_of_the_card(info, compute):
    config = precision.quantization_config(plan_precision(info, "auto", "auto", "4bit"))
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant
    assert config.bnb_4bit_compute_dtype == compute


def test_4bit_on_a_cpu_is_refused_before_loading_anything(monkeypatch):
    from hust_sft import modeling

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = []
    monkeypatch.setattr("transformers.AutoModelForCausalLM.from_pretrained", lambda *a, **k: loaded.append(a))
    with pytest.raises(PrecisionError) as err:
        modeling.load_base_model(S.ModelSettings(device="cpu"), quantization="4bit")
    assert err.value.key == "model.error.quantization_device" and "'4bit'" in str(err.value) and not loaded


def test_training_refuses_a_setting_the_card_cannot_run_before_data_or_model(tmp_path, monkeypatch):
    """train() records the plan first: 4-bit on a CPU fails before data is read or a model loaded."""
    from hust_sft import training

    rs = S.set_values(S.RunSettings(), {"data": str(tmp_path / "missing.jsonl"), "device": "cpu",
                                        "quantization": "4bit", "output": str(tmp_path / "run")})
    monkeypatch.setattr("hust_sft.data.load_data", lambda *a, **k: pytest.fail("data loaded"))
    with pytest.raises(PrecisionError):
        training.train(rs)
    import json

    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "failed" and run["error_type"] == "PrecisionError"


def test_the_train_tab_refuses_a_bad_combination_before_a_job_starts(tmp_path, monkeypatch):
    from hust_sft.ui import train as ui_train
    from hust_sft.ui.common import AppConfig

    config = AppConfig(runs_dir=tmp_path / "runs")
    monkeypatch.setattr(ui_train, "launch", lambda *a, **k: pytest.fail("a job was started"))
    values = {"mixed_precision": "fp16", "device": "cpu"}
    message = ui_train.start(config, None, "en", "", values)
    assert "mixed_precision 'fp16' needs a CUDA GPU" in message


def test_the_hardware_line_names_the_card_memory_and_plan(monkeypatch):
    from hust_sft.ui.train import hardware_text

    monkeypatch.setattr(precision, "detect", lambda device="auto": T4 if device != "cpu" else CPU)
    en = hardware_text("en", "auto", "auto", "auto", "none")
    assert "Tesla T4" in en and "sm_75" in en and "14.7 GiB" in en and "fp16 autocast + loss scaler" in en
    zh = hardware_text("zh", "auto", "auto", "auto", "4bit")
    assert "Tesla T4" in zh and "nf4" in zh and "显存" in zh
    refused = hardware_text("en", "auto", "bf16", "auto", "none")
    assert "⚠" in refused and "bf16" in refused and "sm_75" in refused
    assert "fp32 weights" in hardware_text("en", "cpu", "auto", "auto", "none")


def test_the_hardware_line_says_when_cuda_is_asked_for_without_one(monkeypatch):
    from hust_sft.ui.train import hardware_text

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "no CUDA GPU" in hardware_text("en", "cuda", "auto", "auto", "none")


def test_the_readme_table_is_the_function_output():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert precision.table() in readme, "README's precision table is stale: python -m hust_sft.precision --table"
    assert set(precision.CARDS) >= {"T4 (sm_75)", "A10G (sm_86)", "L4 (sm_89)", "A100 (sm_80)", "H100/H200 (sm_90)"}
    for label, *_ in precision.SETTINGS_ROWS:
        assert re.search(re.escape(f"| {label} |"), readme)


def test_every_card_of_the_table_is_planned_without_error_by_default():
    for info in CARDS.values():
        plan_precision(info)


# ---------------------------------------------------------------------------------------------------
# Out of memory

def test_oom_advice_names_the_settings_to_lower_in_order():
    rs = S.RunSettings()  # batch 8 × accumulation 2, max_length 1024, no checkpointing, no quantization
    err = oom_advice(rs, card="Tesla T4", memory_gib=14.7)
    assert isinstance(err, TrainingOutOfMemory) and isinstance(err, MemoryError)
    assert err.settings_to_lower == ["batch_size", "max_length", "gradient_checkpointing", "quantization"]
    lines = str(err).splitlines()
    assert lines[0] == "Out of memory on Tesla T4 (14.7 GiB). Lower these settings, in this order, and try again:"
    assert lines[1].startswith("1. batch_size from 8 to 4 (raise grad_accum from 2 to 4")
    assert "effective batch at 16" in lines[1]
    assert lines[2].startswith("2. max_length from 1024 to 512")
    assert "resumed" in lines[-1]
    zh = err.text("zh")
    assert "显存不足" in zh and "batch_size 从 8 降到 4" in zh and "gradient_checkpointing" in zh


def test_oom_advice_skips_what_is_already_lowest():
    rs = S.set_values(S.RunSettings(), {"batch_size": 1, "max_length": 64, "gradient_checkpointing": True,
                                        "quantization": "4bit"})
    err = oom_advice(rs)
    assert err.settings_to_lower == [] and "more memory" in str(err)
    rs = S.set_values(S.RunSettings(), {"batch_size": 6, "grad_accum": 3, "gradient_checkpointing": True})
    err = oom_advice(rs)
    assert err.settings_to_lower == ["batch_size", "max_length", "quantization"]
    assert err.steps[0][1] == {"value": 6, "lower": 3, "accum": 3, "accum_higher": 6, "effective": 18}
