"""What retrieval-augmented training (RAFT) costs per epoch: plain vs k passages per sample, same samples.

    python -m bench.retrieval_cost                          # Qwen2.5-0.5B architecture, 24 layers, random weights
    python -m bench.retrieval_cost --configs 1:200,3:200    # k:passage_max_chars arms besides "plain"
    python -m bench.retrieval_cost --model DIR              # a real model folder

Every arm is `hust_sft.training.train` with our defaults (bf16 autocast on a CPU that has it, answer-only
head, length grouping, batch 8 × accumulation 4 = effective batch 32, one epoch, no validation) on the
first --samples records of the BJTU file, in its own subprocess. "plain" is retrieval off; "k:chars" is
retrieval "train" with k passages clipped to `chars` characters, the index built from the same samples
(RAFT: own pair excluded from the search, put back for --oracle-ratio of them, the training default).
The model is built as for bench/train_speed.py (bench/common.py). The parent prints, per arm, the epoch's wall
seconds and the CPU seconds spent in `Trainer.train` (the steadier figure on a shared machine), each as a
ratio to the plain epoch, and the mean tokens per sample.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

from bench.common import arm_parser, describe, ours_values, peak_rss_mb, run_child, samples_and_model, write_result


@contextlib.contextmanager
def cpu_seconds_of_trainer_train():
    """CPU seconds (all threads of this process) spent inside `Trainer.train`: on a machine shared with
    other jobs the wall-clock epoch time swings with their load, the CPU work it takes much less."""
    from transformers import Trainer

    out, original = {"s": 0.0}, Trainer.train

    def timed(self, *args, **kwargs):
        start = time.process_time()
        try:
            return original(self, *args, **kwargs)
        finally:
            out["s"] += time.process_time() - start

    Trainer.train = timed
    try:
        yield out
    finally:
        Trainer.train = original


def arm(model_dir: str, data: Path, work: Path, spec: str, oracle_ratio: float) -> dict:
    from hust_sft.settings import RunSettings, set_values
    from hust_sft.training import train

    values = ours_values(data, model_dir)
    if spec != "plain":
        k, chars = (int(x) for x in spec.split(":"))
        values.update(retrieval="train", retrieval_k=k, passage_max_chars=chars, raft_oracle_ratio=oracle_ratio)
    t0 = time.time()
    with cpu_seconds_of_trainer_train() as cpu:
        result = train(set_values(RunSettings(), values), run_dir=work / spec.replace(":", "-"))
    rec = result.record
    enc = rec["data"]["encoding"]["train"]
    return {"arm": spec, "samples": enc["kept"], "mean_tokens": enc["mean_tokens"], "max_tokens": enc["max_tokens"],
            "train_runtime_s": rec["train_runtime_s"], "train_cpu_s": round(cpu["s"], 1),
            "wall_s": round(time.time() - t0, 1),
            "peak_rss_mb": peak_rss_mb(), "mixed_precision": rec["mixed_precision"]}


def main(argv=None) -> int:
    p = arm_parser(__doc__.split("\n")[0])
    p.add_argument("--configs", default="1:200,2:200,3:200", help="k:passage_max_chars arms besides plain")
    from hust_sft.settings import RetrievalSettings

    p.add_argument("--oracle-ratio", type=float, default=RetrievalSettings().raft_oracle_ratio,
                   help="RAFT oracle share (default: training's); it changes which passages, not how many")
    a = p.parse_args(argv)

    if a.arm:  # child process: one arm, result as JSON
        return write_result(a, arm(a.model, Path(a.samples_file), Path(a.work), a.arm, a.oracle_ratio))

    specs = ["plain"] + [s.strip() for s in a.configs.split(",") if s.strip()]
    with samples_and_model(a, "retrieval-cost-") as (model_dir, data, work):
        results = [run_child("bench.retrieval_cost", spec, model_dir, data, work,
                             "--oracle-ratio", str(a.oracle_ratio)) for spec in specs]
    print(describe(a, f"RAFT oracle share {a.oracle_ratio}; "))
    plain, plain_cpu = results[0]["train_runtime_s"], results[0]["train_cpu_s"]
    print(f"{'arm (k:chars)':<14}{'train s':>9}{'× plain':>9}{'CPU s':>9}{'× plain':>9}{'mean tok':>10}"
          f"{'max tok':>9}{'peak RSS MB':>13}")
    for r in results:
        r["ratio"] = round(r["train_runtime_s"] / plain, 2)
        r["cpu_ratio"] = round(r["train_cpu_s"] / plain_cpu, 2)
        print(f"{r['arm']:<14}{r['train_runtime_s']:>9.1f}{r['ratio']:>8.2f}x{r['train_cpu_s']:>9.1f}"
              f"{r['cpu_ratio']:>8.2f}x{r['mean_tokens']:>10.1f}{r['max_tokens']:>9}{r['peak_rss_mb']:>13.0f}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
