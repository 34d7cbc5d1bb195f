"""Issue 17 item 3: the prepared device check runs on a CPU (`--device cpu --quick`), so it cannot rot before a
session with a GPU runs it (bench/gpu_check.sh)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_on_a_cpu_and_its_equality_checks_pass(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--device", "cpu", "--quick", "--out", str(out),
                           "--work", str(tmp_path / "work")],
                          cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
                          timeout=900)  # about a minute on an idle 2-vCPU machine; the CI box is shared
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text(encoding="utf-8"))
    sections = report["sections"]
    assert list(sections) == ["precision:fp32", "precision:bf16", "precision:fp16", "precision:4bit", "summary"]
    assert report["header"]["device"] == "cpu" and report["header"]["versions"]["torch"]
    for name in ("bf16", "fp16", "4bit"):
        assert sections[f"precision:{name}"]["skipped"]
    assert "needs a CUDA GPU" in sections["precision:fp16"]["skipped"]
    fp32 = sections["precision:fp32"]
    assert "error" not in fp32, fp32.get("traceback")
    train = fp32["train"]
    assert len(train["ours"]["losses"]) == len(train["plain"]["losses"]) == report["header"]["steps"]
    assert train["loss_ok"] and train["max_rel_dloss"] <= fp32["tolerance"]
    assert train["ours"]["tokens"] == train["plain"]["tokens"] > 0  # the same batches
    assert train["ours"]["trainable_dtypes"] == ["float32"] and not train["ours"]["grad_scaler"]
    assert fp32["generation"]["passed"] and fp32["generation"]["equal"] == fp32["generation"]["total"] > 0
    assert fp32["export"]["passed"] and fp32["export"]["identical"] == fp32["export"]["total"] > 0
    assert sections["summary"]["passed"]
    md = (out / "gpu_check.md").read_text(encoding="utf-8")
    assert "| fp32 | fp32 weights · no autocast | ours |" in md and "skipped:" in md
