"""Batched vs one-by-one greedy generation on the same questions: identical answers, how much faster.

    python -m bench.eval_speed                       # real Qwen2.5-0.5B widths, random weights
    python -m bench.eval_speed --model DIR --n 32    # a real model folder

Random weights never emit a stop token, so every answer runs to --max-new-tokens: a fair speed test.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.common import BJTU, QWEN25_05B, ROOT

SAMPLE = ROOT / "hust_sft" / "assets" / "sample_handbook.jsonl"


def questions(n: int) -> tuple[str, list]:
    from hust_sft.data import load_records
    from hust_sft.evaluation import prompt_messages

    path = BJTU if BJTU.is_file() else SAMPLE
    records, _ = load_records(path)
    return str(path), [prompt_messages(r) for r in records[:n]]


def timed(model, tokenizer, prompts, batch_size, max_new_tokens):
    from hust_sft.generation import generate_batch

    t0 = time.perf_counter()
    results = generate_batch(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
    return results, time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: Qwen2.5-0.5B widths with random weights)")
    parser.add_argument("--n", type=int, default=16, help="questions (default 16)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size of the batched run (default 8)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="tokens per answer (default 64)")
    parser.add_argument("--layers", type=int, default=QWEN25_05B["num_hidden_layers"],
                        help="layers of the random model (default 24, as Qwen2.5-0.5B)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp16", "fp32"],
                        help="weights dtype (auto: the product's policy; bf16 pays off on CPUs with avx512_bf16)")
    args = parser.parse_args(argv)

    from hust_sft import demo_model
    from hust_sft.data.encoding import prompt_ids
    from hust_sft.modeling import load_base_model, load_tokenizer
    from hust_sft.settings import QWEN25_SYSTEM_PROMPT, ModelSettings

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or str(demo_model.build(Path(tmp) / "m", **{**QWEN25_05B,
                                                                           "num_hidden_layers": args.layers}))
        tokenizer = load_tokenizer(model_dir)
        model = load_base_model(ModelSettings(model=model_dir, device=args.device, dtype=args.dtype))
    source, convs = questions(args.n)
    prompts = [prompt_ids(tokenizer, c, QWEN25_SYSTEM_PROMPT) for c in convs]
    print(f"model: {args.model or f'random Qwen2.5-0.5B widths, {args.layers} layers'} on "
          f"{next(model.parameters()).device} ({next(model.parameters()).dtype}); {len(prompts)} questions from "
          f"{source}; prompt tokens {min(map(len, prompts))}-{max(map(len, prompts))}; "
          f"max_new_tokens {args.max_new_tokens}")
    timed(model, tokenizer, prompts[:1], 1, 2)  # warm-up (allocator, kernels)
    batched, t_batch = timed(model, tokenizer, prompts, args.batch_size, args.max_new_tokens)
    single, t_single = timed(model, tokenizer, prompts, 1, args.max_new_tokens)
    same = sum(a.text == b.text for a, b in zip(batched, single))
    tokens = sum(r.new_tokens for r in single)
    for label, secs, res in ((f"batch {args.batch_size}", t_batch, batched), ("one by one", t_single, single)):
        print(f"{label:>12}: {secs:8.1f} s  {sum(r.new_tokens for r in res) / secs:8.1f} generated tokens/s")
    print(f"     speed-up: {t_single / t_batch:.2f}x   identical answers: {same}/{len(prompts)} "
          f"({tokens} tokens one by one)")
    if same != len(prompts):
        print("FAIL: batched answers differ from one-by-one answers", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
