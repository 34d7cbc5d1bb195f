"""A chat's latency while a visitor's four-arm evaluation holds the shared model (issue 19).

    python -m bench.visitor_contention                 # starts `app.py --demo` as a public Space
    python -m bench.visitor_contention --url URL --run NAME   # a running app and one of its runs

Prints the median chat latency idle and during the evaluation (all four arms, batch 8, the public maxima
but for --eval-tokens), their ratio, and what a flood of evaluations gets: one runs, HUST_SFT_EVAL_WAITING
wait, the rest are refused at once (hust_sft.limits.Admission), so Gradio's shared queue stays free for chats.
The demo model is tiny and random: the ratio, not the seconds, is the figure (a batch of the real 0.5B model
on a CPU Space takes much longer, and a chat waits for at most one batch: hust_sft.serving.FairLock).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT

ARMS = ["base", "base+retrieval", "tuned", "tuned+retrieval"]


def chat_once(client, run: str, tokens: int) -> float:
    start = time.perf_counter()
    client.predict("en", "图书馆几点开门？", run, "", "", [], [], tokens, 0.0, 0.9, 1.0, api_name="/chat")
    return time.perf_counter() - start


def evaluation(client, run: str, args):
    return client.submit("en", run, "", None, args.limit, 8, 100, args.eval_tokens, 0, ARMS, api_name="/evaluate")


def measure(url: str, run: str, args) -> None:
    from gradio_client import Client

    chatter = Client(url, verbose=False, download_files=False)
    chat_once(chatter, run, args.chat_tokens)  # loads the model and the adapter
    idle = [chat_once(chatter, run, args.chat_tokens) for _ in range(args.chats)]
    job = evaluation(Client(url, verbose=False, download_files=False), run, args)
    while not any((u.progress or 0) > 0 for u in (job.status().progress_data or [])) and not job.done():
        time.sleep(0.05)
    during = []
    while not job.done() and len(during) < args.chats:
        during.append(chat_once(chatter, run, args.chat_tokens))
    flood = [evaluation(Client(url, verbose=False, download_files=False), run, args) for _ in range(args.flood)]
    refused = 0
    for j in flood:
        try:
            j.result(timeout=1800)
        except Exception:  # noqa: BLE001 - a refusal is what is counted
            refused += 1
    job.result(timeout=1800)
    a, b = statistics.median(idle), statistics.median(during) if during else float("nan")
    print(f"chat latency ({args.chat_tokens} new tokens): idle median {a:.2f} s over {len(idle)}, during a visitor's "
          f"four-arm evaluation median {b:.2f} s over {len(during)} (max {max(during, default=float('nan')):.2f} s); "
          f"ratio {b / a:.1f}x")
    print(f"flood: {args.flood} more evaluations while one ran: {refused} refused at once, "
          f"{args.flood - refused} admitted")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", help="a running app (default: start app.py --demo as a public Space)")
    p.add_argument("--run", default="bench-run", help="the run to chat with and evaluate")
    p.add_argument("--chats", type=int, default=5)
    p.add_argument("--chat-tokens", type=int, default=16)
    p.add_argument("--eval-tokens", type=int, default=64)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--flood", type=int, default=6)
    args = p.parse_args(argv)
    if args.url:
        measure(args.url, args.run, args)
        return
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "security")]
    from helpers import write_tuned_run

    from hust_sft.ui.common import SAMPLE_DATA

    from public_space import demo_model_dir, start_space

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        write_tuned_run(tmp / "runs" / args.run, demo_model_dir(), SAMPLE_DATA)
        space = start_space(tmp)
        try:
            measure(space.url, args.run, args)
        finally:
            space.close()
            space.hub.close()


if __name__ == "__main__":
    main()
