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
    from hust_sft.data import DataError, DataSourceError
    from hust_sft.evaluation import EvalError, evaluate
    from hust_sft.modeling import ModelError

    try:
        eval_settings = settings.from_args(settings.EvalSettings, args)
        report = evaluate(eval_settings, lang=LANG)
    except (DataError, DataSourceError, EvalError, settings.SettingsError, ModelError, OSError) as e:
        message = e.text(LANG) if hasattr(e, "text") else str(e)   # the i18n errors speak every language
        print(t("eval.cli.error", LANG, message=message), file=sys.stderr)
        return 2
    print(report.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
