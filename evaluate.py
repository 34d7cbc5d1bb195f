"""Evaluate the base model and LoRA adapters on the held-out test split: `python evaluate.py --help`."""
from __future__ import annotations

import argparse
import sys

from hust_sft import settings
from hust_sft.i18n import t

LANG = "en"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=t("eval.cli.description", LANG))
    return settings.add_arguments(parser, settings.EvalSettings, LANG)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from hust_sft.console import ProgressLines
    from hust_sft.errors import LocalizedError
    from hust_sft.evaluation import evaluate

    try:
        eval_settings = settings.from_args(settings.EvalSettings, args)
        report = evaluate(eval_settings, lang=LANG, progress=ProgressLines(sys.stderr))
    except LocalizedError as e:  # every user-facing error: settings, data, model, evaluation
        print(t("eval.cli.error", LANG, message=e.text(LANG)), file=sys.stderr)
        return 2
    except OSError as e:  # a file the evaluation reads or writes (not ours to translate)
        print(t("eval.cli.error", LANG, message=str(e)), file=sys.stderr)
        return 2
    print(report.markdown)
    print(t("eval.cli.wrote", LANG, path=report.output_dir), file=sys.stderr)  # last, where people look
    return 0


if __name__ == "__main__":
    sys.exit(main())
