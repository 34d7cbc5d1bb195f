"""Absolute server paths cut out of text that leaves this machine.

The mechanism only: `access.public_text` decides when (a visitor of a Space) and which folders keep a name;
`hub.model_card` strips the evaluation summary it copies. Below both, so neither imports the other.
Hand-written: a regular expression over free text (error messages, logs, Markdown), which no path
library parses.
"""
from __future__ import annotations

import re
from pathlib import Path

_ABS_PATH = re.compile(r"(?<![\w.~:/>-])(?:/[^\s/'\"`<>|:,;()\[\]{}]+)+/?")


def strip_paths(text: str, roots: list[tuple[Path, str]] = ()) -> str:
    """`text` with each absolute path cut to its last part (`…/name`); a path under one of `roots`
    (folder, shown name) keeps its part below the root (`<runs>/x/run.json`). URLs are left alone."""
    for root, name in roots:
        for form in {str(Path(root).expanduser().resolve()), str(Path(root).expanduser().absolute())}:
            if len(form) > 1:
                text = text.replace(form, name)
    return _ABS_PATH.sub(lambda m: "…/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)
