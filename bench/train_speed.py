"""One epoch of LoRA training, the usual tutorial recipe vs ours, on the same samples and effective batch.

    python -m bench.train_speed --layers 4            # quick: Qwen2.5-0.5B shape, 4 of its 24 layers
    python -m bench.train_speed                       # full 24-layer Qwen2.5-0.5B architecture
    python -m bench.train_speed --model DIR           # a real model folder
    python -m bench.train_speed --arms ours,trl       # our answer-only head vs TRL's SFTTrainer fused head

(a) tutorial: every sample padded to 512, labels = input_ids (padding and prompt included), LoRA r=8 α=8
    on q_proj/v_proj, batch 4 × accumulation 8, fp32, plain Trainer, no length grouping;
(b) ours: hust_sft.training.train with our defaults (answer-only labels, dynamic padding, length grouping,
    the LM head only at answer positions and a chunk at a time, bf16 autocast with the frozen base stored
    in bf16 where the CPU supports it, LoRA dropout 0, a fixed glibc mmap threshold), batch 8 × accumulation 4.
(c) trl: exactly (b) — same data, encoding, answer-only labels, collator, sampler, model, LoRA and
    TrainingArguments (converted to an SFTConfig) — with TRL's SFTTrainer (its fused LM head,
    `model(..., fused_lm_head=True)`) in place of hust_sft.trainer.AnswerOnlyHeadTrainer. Its per-step
    losses are compared with (b)'s.
Each arm runs in a fresh subprocess so its peak RSS is its own; the parent prints the table and ratios.
Without --model the weights are random (speed and memory do not depend on their values).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bench.common import arm_parser, describe, ours_values, peak_rss_mb, run_child, samples_and_model, write_result


def arm_tutorial(model_dir: str, data: Path, work: Path) -> dict:
    """The recipe most blog posts copy, as written there (kept deliberately naive)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, default_data_collator

    from hust_sft.settings import QWEN25_SYSTEM_PROMPT

    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = []
    for line in data.read_text(encoding="utf-8").splitlines():
        messages = [{"role": "system", "content": QWEN25_SYSTEM_PROMPT}] + json.loads(line)["conversations"]
        text = tok.apply_chat_template(messages, tokenize=False)
        enc = tok(text, max_length=512, padding="max_length", truncation=True)
        rows.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                     "labels": list(enc["input_ids"])})
    tokens = sum(sum(r["attention_mask"]) for r in rows)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=8, lora_dropout=0.1, target_modules=["q_proj", "v_proj"],
                                             task_type="CAUSAL_LM"))
    args = TrainingArguments(output_dir=str(work / "tutorial"), per_device_train_batch_size=4,
                             gradient_accumulation_steps=8, num_train_epochs=1, learning_rate=5e-5,
                             logging_steps=1, save_strategy="epoch", report_to="none", use_cpu=True,
                             disable_tqdm=True, train_sampling_strategy="random")
    out = Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                  data_collator=default_data_collator).train()
    return {"samples": len(rows), "tokens": tokens, "train_runtime_s": out.metrics["train_runtime"],
            "peak_rss_mb": peak_rss_mb(), "padded_tokens": 512 * len(rows), "mixed_precision": "no"}


def arm_ours(model_dir: str, data: Path, work: Path, name: str = "ours") -> dict:
    from hust_sft.settings import RunSettings, set_values
    from hust_sft.training import train

    result = train(set_values(RunSettings(), ours_values(data, model_dir)), run_dir=work / name)
    rec = result.record
    return {"losses": losses_of(work / name), "samples": rec["data"]["encoding"]["train"]["kept"],
            "tokens": rec["tokens_seen"],
            "train_runtime_s": rec["train_runtime_s"], "peak_rss_mb": peak_rss_mb(),
            "padded_tokens": None, "mixed_precision": rec["mixed_precision"]}


def arm_trl(model_dir: str, data: Path, work: Path) -> dict:
    """`arm_ours` with the trainer swapped for TRL's SFTTrainer; everything else is our pipeline, unchanged.

    Patched in this child process only: training_arguments() returns the same values as an SFTConfig, and
    the trainer class our training module picks is an SFTTrainer taking our pre-tokenised dataset and
    collator as they are (skip_prepare_dataset), so both arms learn exactly the same labels.
    """
    import dataclasses

    import trl
    from transformers import TrainingArguments

    from hust_sft import trainer as ours_trainer
    from hust_sft import training

    plain = training.training_arguments

    def sft_arguments(*args, **kwargs):
        base = plain(*args, **kwargs)
        values = {f.name: getattr(base, f.name) for f in dataclasses.fields(TrainingArguments) if f.init}
        values = {k: v for k, v in values.items() if not k.startswith("_")}
        return trl.SFTConfig(**values, dataset_kwargs={"skip_prepare_dataset": True}, max_length=None,
                             packing=False, padding_free=False)

    training.training_arguments = sft_arguments
    ours_trainer.AnswerOnlyHeadTrainer = trl.SFTTrainer
    result = arm_ours(model_dir, data, work, name="trl")
    result["trl"] = trl.__version__
    return result


def losses_of(run_dir: Path) -> list[float]:
    from hust_sft.runs import read_events

    return [e["loss"] for e in read_events(run_dir) if e.get("type") == "log"]


def run_arm(arm: str, model_dir: str, data: Path, work: Path) -> dict:
    t0 = time.time()
    result = run_child("bench.train_speed", arm, model_dir, data, work)
    result["wall_s"] = round(time.time() - t0, 1)
    return result


def main(argv=None) -> int:
    p = arm_parser(__doc__.split("\n")[0])
    p.add_argument("--arms", default="tutorial,ours")
    a = p.parse_args(argv)

    if a.arm:  # child process: one arm, result as JSON
        fn = {"tutorial": arm_tutorial, "ours": arm_ours, "trl": arm_trl}[a.arm]
        return write_result(a, fn(a.model, Path(a.samples_file), Path(a.work)))

    with samples_and_model(a, "train-speed-") as (model_dir, data, work):
        results = {arm: run_arm(arm, model_dir, data, work) for arm in a.arms.split(",")}
    print(describe(a))
    print(f"{'arm':<10}{'train s':>10}{'samples/s':>11}{'tokens/s':>10}{'peak RSS MB':>13}{'mixed':>7}")
    for arm, r in results.items():
        r["samples_per_s"] = r["samples"] / r["train_runtime_s"]
        r["tokens_per_s"] = r["tokens"] / r["train_runtime_s"]
        print(f"{arm:<10}{r['train_runtime_s']:>10.1f}{r['samples_per_s']:>11.3f}{r['tokens_per_s']:>10.1f}"
              f"{r['peak_rss_mb']:>13.0f}{r['mixed_precision']:>7}")
    if {"tutorial", "ours"} <= set(results):
        t, o = results["tutorial"], results["ours"]
        print(f"speed-up per epoch: {t['train_runtime_s'] / o['train_runtime_s']:.2f}x; "
              f"peak memory ours/tutorial: {o['peak_rss_mb'] / t['peak_rss_mb']:.2f}x")
    if {"ours", "trl"} <= set(results):
        o, r = results["ours"], results["trl"]
        diffs = [abs(x - y) for x, y in zip(o["losses"], r["losses"])]
        same = o["losses"] == r["losses"]
        print(f"TRL {r.get('trl')} SFTTrainer vs ours: "
              f"time trl/ours {r['train_runtime_s'] / o['train_runtime_s']:.2f}x; "
              f"peak memory trl/ours {r['peak_rss_mb'] / o['peak_rss_mb']:.2f}x; "
              f"losses {'identical' if same else 'differ'} over {len(diffs)} logged steps"
              + ("" if same else f" (max |diff| {max(diffs, default=0):.2e})"))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
