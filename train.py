"""Fine-tune a LoRA adapter from the command line; the same code the UI's Train tab runs.

    python train.py --data handbook.jsonl --output runs/hust --epochs 4
    python train.py --preset tutorial --data handbook.jsonl          # the usual blog recipe, for comparison
    python train.py --config runs/hust/settings.json --output runs/hust --resume

Every flag comes from hust_sft.settings (see --help); --config reads a settings.json/run.json and
--preset a named preset, explicit flags win. The run directory (adapter/, run.json, events.jsonl,
checkpoints/) is described in docs/ARCHITECTURE.md. Touch RUN_DIR/STOP or send SIGTERM to stop with a
saved adapter (exit code 0, status "stopped").

Data-parallel on several GPUs or CPU processes (gloo) uses the same script; only rank 0 writes the
run directory, so give --output explicitly:

    accelerate launch --num_processes 2 train.py --data handbook.jsonl --output runs/hust-ddp
    accelerate launch --multi_gpu --num_processes 2 train.py ...    # 2 CPU processes over gloo, no GPU
"""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from hust_sft.settings import RunSettings, add_arguments

    parser = argparse.ArgumentParser(
        prog="train.py", description="LoRA fine-tuning of a chat model on a Q&A file (hust-sft).",
        epilog="Stop a running job by creating RUN_DIR/STOP or sending SIGTERM; resume with --resume.")
    return add_arguments(parser, RunSettings, lang="en")


LANG = "en"


def main(argv: list[str] | None = None) -> int:
    from hust_sft.data import DataError
    from hust_sft.errors import LocalizedError
    from hust_sft.i18n import t
    from hust_sft.settings import RunSettings, from_args

    args = build_parser().parse_args(argv)
    try:
        settings = from_args(RunSettings, args)
        from hust_sft.training import is_main_process, train

        def show_data(bundle):  # every skipped record where a CLI user looks, before training starts
            if is_main_process():
                print("\n".join(bundle.report.summary_lines(LANG)), flush=True)

        result = train(settings, on_data=show_data)
    except LocalizedError as e:  # every user-facing error: settings, data, encoding, model, run folder
        lines = e.text(LANG).strip().splitlines()
        if isinstance(e, DataError):  # keeps its list of issues, one per line, each naming file:line: field
            message = "\n".join(lines[:21])
        else:
            message = " ".join(line.strip() for line in lines if line.strip())
        print("error: " + message, file=sys.stderr)
        return 2
    if result.adapter_dir is None:  # stopped while loading: nothing trained, no adapter
        print(t("training.status.stopped_loading", LANG))
        return 0
    print(t("training.cli.done", LANG, status=result.status, adapter=result.adapter_dir, run_dir=result.run_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
