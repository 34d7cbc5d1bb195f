"""What each memory-saving switch saves: the same training run with one technique on, against all of them off.

    python -m bench.memory_techniques                 # Qwen2.5-0.5B shape (random), 2 of its 24 layers, 16 samples
    python -m bench.memory_techniques --layers 24     # the full architecture
    python -m bench.memory_techniques --model DIR     # a real model folder
    python -m bench.memory_techniques --quick         # tiny model, 4 samples, one process: that it runs (tests)

Arms (each a fresh subprocess, so its peak memory is its own; all train one epoch of the same samples with
the same effective batch, retrieval off, no validation):
  baseline                everything off: batch 8 × accumulation 1, fp32, no checkpointing, full LM head
  grad_accum              batch 2 × accumulation 4 (same effective batch 8)
  mixed_precision         bf16 autocast (on a CPU without avx512_bf16 it is emulated: slower)
  gradient_checkpointing  activations recomputed in the backward pass instead of kept
  answer_only_head        the 151,936-wide LM head and loss only at answer positions
  all                     the four above together
  4bit, 8bit              QLoRA base weights through bitsandbytes (only where CUDA is available)
Peak memory is the CUDA allocator's peak on a GPU, the process's peak RSS on a CPU (weights included, so
the ratios understate what a technique saves of the activations). Times are the Trainer's train runtime.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bench.common import arm_parser, peak_rss_mb, result_file, run_child, samples_and_model, write_result

ARMS = ("baseline", "grad_accum", "mixed_precision", "gradient_checkpointing", "answer_only_head", "all")
CUDA_ARMS = ("4bit", "8bit")
BATCH = 8


def arm_values(arm: str, data: Path, model_dir: str, max_steps: int = -1) -> dict:
    """The settings values of one arm: the baseline's, with the arm's technique switched on."""
    values = {"data": str(data), "model": model_dir, "val_ratio": 0.0, "test_ratio": 0.0, "epochs": 1.0,
              "max_steps": max_steps, "batch_size": BATCH, "grad_accum": 1, "eval_each_epoch": False,
              "logging_steps": 1, "retrieval": "off", "mixed_precision": "no", "gradient_checkpointing": False,
              "answer_only_head": False, "quantization": "none", "group_by_length": True}
    on = {"grad_accum": {"batch_size": 2, "grad_accum": BATCH // 2},
          "mixed_precision": {"mixed_precision": "bf16"},
          "gradient_checkpointing": {"gradient_checkpointing": True},
          "answer_only_head": {"answer_only_head": True},
          "4bit": {"quantization": "4bit"}, "8bit": {"quantization": "8bit"}}
    if arm == "all":
        for name in ARMS[1:-1]:
            values.update(on[name])
    else:
        values.update(on.get(arm, {}))
    return values


def run_one(arm: str, model_dir: str, data: Path, work: Path, max_steps: int = -1) -> dict:
    """Train one arm in this process; its time and peak memory."""
    import torch

    from hust_sft.modeling import peak_memory_bytes
    from hust_sft.settings import RunSettings, set_values
    from hust_sft.training import train

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    result = train(set_values(RunSettings(), arm_values(arm, data, model_dir, max_steps)), run_dir=work / arm)
    rec = result.record
    device = rec.get("device") or "cpu"
    peak = peak_memory_bytes(device) / 2**20 if device == "cuda" else peak_rss_mb()
    return {"train_runtime_s": rec["train_runtime_s"], "peak_mb": peak, "steps": result.global_step,
            "tokens": rec.get("tokens_seen"), "device": device, "mixed_precision": rec.get("mixed_precision")}


def main(argv=None) -> int:
    p = arm_parser(__doc__.split("\n")[0])
    p.set_defaults(layers=2, samples=16)
    p.add_argument("--arms", default=",".join(ARMS), help="comma-separated; 4bit,8bit are added on CUDA")
    p.add_argument("--quick", action="store_true", help="tiny model, 4 samples, one step per arm, one process")
    a = p.parse_args(argv)

    if a.arm:  # child process: one arm, result as JSON
        return write_result(a, run_one(a.arm, a.model, Path(a.samples_file), Path(a.work)))

    import torch

    arms = [x for x in a.arms.split(",") if x]
    if torch.cuda.is_available() and not a.quick:
        arms += [x for x in CUDA_ARMS if x not in arms]
    if a.quick:
        a.samples = 4
        if not Path(a.data).is_file():  # the bundled sample handbook: --quick runs on a fresh clone
            a.data = str(Path(__file__).resolve().parents[1] / "hust_sft" / "assets" / "sample_handbook.jsonl")
        if not a.model:
            from hust_sft import demo_model

            a.model = str(demo_model.build(demo_model.default_dir()))
    with samples_and_model(a, "memory-techniques-") as (model_dir, data, work):
        results = {}
        for arm in arms:
            t0 = time.time()
            if a.quick:  # one process: the times are real, the peaks cumulative
                results[arm] = run_one(arm, model_dir, data, work, max_steps=1)
                result_file(work, arm).write_text(json.dumps(results[arm]))
            else:
                results[arm] = run_child("bench.memory_techniques", arm, model_dir, data, work)
            results[arm]["wall_s"] = round(time.time() - t0, 1)
    print(report(a, results))
    print(json.dumps(results))
    return 0


def report(a, results: dict) -> str:
    import os

    base = results.get("baseline")
    model = a.model or ("tiny random Qwen2 (--quick)" if a.quick
                        else f"Qwen2.5-0.5B architecture, random weights, {a.layers} layers")
    lines = [f"model: {model}; {a.samples} samples of {a.data}; effective batch {BATCH}; one epoch; "
             f"CPU threads: {os.cpu_count()}"
             + ("; one process (--quick): peak memory is cumulative" if a.quick else ""),
             f"{'technique':<24}{'train s':>9}{'time ×':>8}{'peak MB':>10}{'memory ×':>10}"]
    for arm, r in results.items():
        t_ratio = r["train_runtime_s"] / base["train_runtime_s"] if base else float("nan")
        m_ratio = r["peak_mb"] / base["peak_mb"] if base else float("nan")
        lines.append(f"{arm:<24}{r['train_runtime_s']:>9.1f}{t_ratio:>8.2f}{r['peak_mb']:>10.0f}{m_ratio:>10.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
