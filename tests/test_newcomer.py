"""What a newcomer trips over on a fresh clone (issue 19): each item's non-browser check.

The browser half (what a person sees on the page) is in tests/browser/test_space.py.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_test_command() -> str:
    """The line .ci/run runs: the one after the `<!-- test-command -->` marker's opening fence."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    at = lines.index("<!-- test-command -->")
    assert lines[at + 1].startswith("```")
    return lines[at + 2]


def _setup_part(command: str) -> str:
    """The command's first step (installing chromium and the CJK fonts), without pip and pytest."""
    return command.split(" && pip install", 1)[0]


def _fake_bin(tmp_path: Path, *, chromium: bool, cjk_fonts: bool) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    tools = {"apt-get": f'echo "apt-get $*" >> {log}'}
    if chromium:
        tools["chromium"] = "true"
    tools["fc-list"] = ('echo "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc: Noto Sans CJK SC"'
                        if cjk_fonts else 'echo "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf: DejaVu Sans"')
    for name, body in tools.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    for name in ("sh", "grep"):  # the only real tools on PATH: chromium and fc-list are the fakes or absent
        (bin_dir / name).symlink_to(shutil.which(name))
    return bin_dir


def _run_setup(tmp_path: Path, **have) -> str:
    bin_dir = _fake_bin(tmp_path, **have)
    subprocess.run([str(bin_dir / "sh"), "-c", _setup_part(readme_test_command())], env={"PATH": str(bin_dir)},
                   check=True, cwd=tmp_path)
    log = tmp_path / "apt.log"
    return log.read_text() if log.exists() else ""


def test_readme_test_command_installs_cjk_fonts_even_when_chromium_exists(tmp_path):
    """`command -v chromium || (…)` skipped fonts-noto-cjk whenever chromium was there: boxes on the zh page."""
    installed = _run_setup(tmp_path, chromium=True, cjk_fonts=False)
    assert "install" in installed and "fonts-noto-cjk" in installed


def test_readme_test_command_installs_both_on_a_bare_machine(tmp_path):
    installed = _run_setup(tmp_path, chromium=False, cjk_fonts=False)
    assert "chromium" in installed and "fonts-noto-cjk" in installed


def test_readme_test_command_installs_nothing_when_both_are_there(tmp_path):
    assert _run_setup(tmp_path, chromium=True, cjk_fonts=True) == ""


def test_readme_test_command_is_one_line_running_pytest():
    command = readme_test_command()
    assert re.search(r"python -m pytest$", command) and "\n" not in command
    assert os.path.isfile(ROOT / ".ci" / "run")


# ---- the demo answers something ---------------------------------------------------------------------------

def _greedy_answers(model_dir: Path) -> list[str]:
    from transformers import AutoModelForCausalLM

    from hust_sft.data.encoding import prompt_ids
    from hust_sft.generation import generate_batch
    from hust_sft.modeling import load_tokenizer
    from hust_sft.retrieval import Passage

    tok = load_tokenizer(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    passage = Passage(id="train:0", text="问：校园卡丢了怎么办？\n答：到一卡通中心补办。", source="x.jsonl:1")
    prompts = [prompt_ids(tok, [{"role": "user", "content": "校园卡丢了怎么办？"}], "你是助手。"),
               prompt_ids(tok, [{"role": "user", "content": "校园卡丢了怎么办？"}], "你是助手。", passages=[passage])]
    return [r.text for r in generate_batch(model, tok, prompts, max_new_tokens=12, batch_size=2)]


@pytest.fixture(scope="module")
def readable_demo(tmp_path_factory) -> Path:
    from hust_sft import demo_model

    return demo_model.build(tmp_path_factory.mktemp("models") / "demo", readable=True)


def test_the_demo_model_answers_with_visible_text(readable_demo):
    """The tied random model echoed the prompt's last "\\n": two empty bubbles for a first visitor."""
    answers = _greedy_answers(readable_demo)
    assert all(len(a.strip()) >= 5 for a in answers), answers


def test_the_app_s_demo_model_is_the_readable_one(monkeypatch, tmp_path):
    from hust_sft import demo_model
    from hust_sft.ui.common import AppConfig

    built = []
    monkeypatch.setattr(demo_model, "build", lambda out, **kw: built.append((out, kw)) or Path(out))
    config = AppConfig.from_env(runs_dir=tmp_path / "runs", demo=True)
    assert built == [(demo_model.demo_dir(), {"readable": True})] and config.model == str(demo_model.demo_dir())
