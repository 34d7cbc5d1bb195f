"""Issue 9, item 16: on a Space (SPACE_ID set) the app needs Gradio's OAuth extra; requirements.txt pins it.
(The app starting as a Space is exercised by tests/security/public_space.py, which launches it so.)"""
from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_requirements_pin_gradio_with_the_oauth_extra():
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    gradio = [line for line in lines if re.match(r"^gradio\b", line)]
    assert gradio == [f"gradio[oauth]=={version('gradio')}"]

