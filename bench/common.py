"""What the benchmarks share: paths, the Qwen2.5-0.5B shape with random weights, the sample file, and the
parent/child arm runner of the training benchmarks.

A training benchmark (`bench.train_speed`, `bench.retrieval_cost`) runs each arm in a fresh subprocess,
`python -m bench.NAME --arm ARM --model DIR --samples-file F --work W ...`, so the arm's peak RSS is its own;
the child writes its result to W/ARM.json, the parent writes the samples, starts the children and prints.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BJTU = ROOT.parent / "shared" / "data" / "bjtu" / "bjtu.json"
EFFECTIVE_BATCH = 32
# Qwen/Qwen2.5-0.5B-Instruct's config.json widths (24 decoder layers).
QWEN25_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2)


def qwen25_05b_dir(layers: int) -> Path:
    from hust_sft import demo_model

    # Saved in bf16 like the Hub checkpoint (Qwen/Qwen2.5-0.5B-Instruct's safetensors are bf16).
    out = Path.home() / ".cache" / "hust-sft" / f"bench-qwen2.5-0.5b-random-{layers}l-bf16"
    return demo_model.build(out, **{**QWEN25_05B, "num_hidden_layers": layers}, dtype="bfloat16")


def write_samples(source: Path, n: int, out: Path) -> Path:
    from hust_sft.data.formats import load_records

    records, _ = load_records(source)
    with open(out, "w", encoding="utf-8") as f:
        for r in records[:n]:
            f.write(json.dumps({"conversations": r.messages}, ensure_ascii=False) + "\n")
    return out


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ours_values(data: Path, model_dir: str) -> dict:
    """The settings values of "our" arm: the product's defaults on one epoch of the samples, effective batch
    EFFECTIVE_BATCH as batch 8 × accumulation, no validation, every step logged; plain SFT (retrieval off),
    which is what the other tools run and what retrieval's cost is measured against."""
    return {"data": str(data), "model": model_dir, "val_ratio": 0.0, "test_ratio": 0.0, "epochs": 1.0,
            "batch_size": 8, "grad_accum": EFFECTIVE_BATCH // 8, "eval_each_epoch": False, "logging_steps": 1,
            "retrieval": "off"}


def arm_parser(description: str) -> argparse.ArgumentParser:
    """The options every training benchmark takes, and the hidden ones its child processes get."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", help="a model folder; default: Qwen2.5-0.5B architecture, random weights")
    p.add_argument("--layers", type=int, default=24, help="decoder layers of the random model (24 = real)")
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--data", default=str(BJTU), help="Q&A file to take the first --samples records from")
    p.add_argument("--arm", help=argparse.SUPPRESS)
    p.add_argument("--samples-file", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    return p


def result_file(work: Path, arm: str) -> Path:
    return Path(work) / f"{arm.replace(':', '-')}.json"


def write_result(a: argparse.Namespace, result: dict) -> int:
    """In a child process: write the arm's result where the parent reads it; the child's exit status."""
    result_file(a.work, a.arm).write_text(json.dumps(result))
    return 0


def run_child(module: str, arm: str, model_dir: str, data: Path, work: Path, *extra: str) -> dict:
    """Run one arm as `python -m MODULE --arm ARM ...` from the repository root (its output hidden unless
    BENCH_VERBOSE is set) and return the result it wrote."""
    cmd = [sys.executable, "-m", module, "--arm", arm, "--model", model_dir, "--samples-file", str(data),
           "--work", str(work), *extra]
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                   stdout=subprocess.DEVNULL if not os.environ.get("BENCH_VERBOSE") else None)
    return json.loads(result_file(work, arm).read_text())


@contextlib.contextmanager
def samples_and_model(a: argparse.Namespace, prefix: str) -> Iterator[tuple[str, Path, Path]]:
    """(model folder, samples file, work folder) for the parent: the first --samples records of --data in a
    temporary work folder, and --model or the random Qwen2.5-0.5B-shaped model of --layers layers."""
    if not Path(a.data).is_file():
        sys.exit(f"error: {a.data} not found; pass --data with a Q&A file")
    model_dir = a.model or str(qwen25_05b_dir(a.layers))
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        yield model_dir, write_samples(Path(a.data), a.samples, work / "samples.jsonl"), work


def describe(a: argparse.Namespace, extra: str = "") -> str:
    """The first line of a training benchmark's report: model, samples, batch, and the machine's threads."""
    return (f"model: {a.model or f'Qwen2.5-0.5B architecture, random weights, {a.layers} layers'}; "
            f"{a.samples} samples of {a.data}; effective batch {EFFECTIVE_BATCH}; one epoch; {extra}"
            f"CPU threads: {os.cpu_count()} (shared machine: figures vary with other load)")
