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
    from hust_sft.errors import LocalizedError
    from hust_sft.evaluation import evaluate

    try:
        eval_settings = settings.from_args(settings.EvalSettings, args)
        report = evaluate(eval_settings, lang=LANG, progress=Progress(sys.stderr))
    except LocalizedError as e:  # every user-facing error: settings, data, model, evaluation
        print(t("eval.cli.error", LANG, message=e.text(LANG)), file=sys.stderr)
        return 2
    except OSError as e:  # a file the evaluation reads or writes (not ours to translate)
        print(t("eval.cli.error", LANG, message=str(e)), file=sys.stderr)
        return 2
    print(report.markdown)
    print(t("eval.cli.wrote", LANG, path=report.output_dir), file=sys.stderr)  # last, where people look
    return 0


class Progress:
    """evaluate()'s progress on stderr (stdout keeps the report): a line per new step, percent first; on a
    terminal the line is redrawn in place. Minutes of answering are never silent."""

    def __init__(self, stream):
        # The first step (loading the data, seconds) is held back until the next one: a bad --data file then
        # fails with its one error line alone, as train.py's does.
        self.stream, self.last, self.held = stream, None, None
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False

    def __call__(self, fraction: float, text: str) -> None:
        line = f"[{100 * fraction:3.0f}%] {text}"
        if line == self.last:
            return
        first, self.last = self.last is None, line
        if first and fraction < 1:
            self.held = fraction, line
            return
        if self.held:
            self._write(*self.held)
            self.held = None
        self._write(fraction, line)

    def _write(self, fraction: float, line: str) -> None:
        self.stream.write(("\r\033[K" + line + ("\n" if fraction >= 1 else "")) if self.tty else line + "\n")
        self.stream.flush()


if __name__ == "__main__":
    sys.exit(main())
