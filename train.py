"""Fine-tune a LoRA adapter from the command line; the same code the UI's Train tab runs.

    python train.py --data handbook.jsonl --output runs/hust --epochs 4
    python train.py --preset tutorial --data handbook.jsonl          # the usual blog recipe, for comparison
    python train.py --config runs/hust/settings.json --output runs/hust --resume
    python train.py --demo --max-steps 20                             # offline: the demo model and sample data

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


def build_parser(lang: str = "en") -> argparse.ArgumentParser:
    from hust_sft.i18n import LANGS, t
    from hust_sft.settings import RunSettings, add_arguments

    parser = argparse.ArgumentParser(prog="train.py", description=t("train.cli.description", lang),
                                     epilog=t("train.cli.epilog", lang))
    parser.add_argument("--lang", choices=list(LANGS), default=None, help=t("train.cli.lang", lang))
    parser.add_argument("--demo", action="store_true", help=t("train.cli.demo", lang))
    return add_arguments(parser, RunSettings, lang=lang)


def apply_demo(settings) -> None:
    """--demo: the offline demo model (the one `app.py --demo` uses) and the bundled sample handbook, unless
    --model / --data name others. Nothing is downloaded."""
    from hust_sft import demo_model
    from hust_sft.settings import DEFAULT_DATA, DEFAULT_MODEL

    if settings.model.model == DEFAULT_MODEL:
        settings.model.model = str(demo_model.build_demo())
    if settings.data.data == DEFAULT_DATA:
        settings.data.data = str(demo_model.SAMPLE_DATA)


def check_local_data(settings) -> None:
    """A local --data file that is not there fails here, before a run folder is made for it (the same
    DataSourceError training would raise a moment later, leaving an empty run folder behind)."""
    import os

    from hust_sft.data.sources import fetch, source_kind
    from hust_sft.runs import CLAIMED_ENV

    # A folder the Space's job runner claimed stays and gets the failure in its events (the Train tab shows it).
    if source_kind(settings.data.data) == "local" and not os.environ.get(CLAIMED_ENV):
        fetch(settings.data.data)


def main(argv: list[str] | None = None) -> int:
    from hust_sft.console import ConsoleReport
    from hust_sft.data import DataError
    from hust_sft.errors import LocalizedError
    from hust_sft.i18n import cli_lang, t
    from hust_sft.settings import RunSettings, from_args

    lang = cli_lang(argv)  # --lang, else the locale (LANG=zh_CN.UTF-8 → zh), else English; --help included
    args = build_parser(lang).parse_args(argv)
    report = ConsoleReport(lang)
    try:
        settings = from_args(RunSettings, args)
        if args.demo:
            apply_demo(settings)
        check_local_data(settings)
        from hust_sft.training import is_main_process, train

        def show_data(bundle):  # every skipped record where a CLI user looks, before training starts
            if is_main_process():
                print("\n".join(bundle.report.summary_lines(lang)), flush=True)

        result = train(settings, on_data=show_data, on_event=report)
    except LocalizedError as e:  # every user-facing error: settings, data, encoding, model, run folder
        report.close()
        lines = e.text(lang).strip().splitlines()
        if isinstance(e, DataError):  # keeps its list of issues, one per line, each naming file:line: field
            message = "\n".join(lines[:21])
        else:
            message = " ".join(line.strip() for line in lines if line.strip())
        print(t("cli.error", lang, error=message), file=sys.stderr)
        return 2
    if result.adapter_dir is None:  # stopped while loading: nothing trained, no adapter
        report.close()
        print(t("training.status.stopped_loading", lang))
        return 0
    print(report.summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
