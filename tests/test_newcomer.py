"""What a newcomer trips over on a fresh clone (issue 19): each item's non-browser check.

The browser half (what a person sees on the page) is in tests/browser/test_space.py.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
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


# ---- train.py: a bar in a terminal, --demo, no empty run folder ------------------------------------------

class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_terminal_bar_moves_every_step_before_the_first_logging_step():
    """The bar used to appear only with the first `log` event (every --logging-steps): silence until then."""
    from hust_sft.console import ConsoleReport

    out, err = io.StringIO(), _Terminal()
    report = ConsoleReport("en", stream=out, tty=True, bar_stream=err)
    report({"type": "step", "step": 1, "total_steps": 3, "elapsed_s": 1.0})
    assert "1/3" in err.getvalue() and out.getvalue() == ""
    report({"type": "step", "step": 2, "total_steps": 3, "elapsed_s": 2.0})
    assert "2/3" in err.getvalue()
    report.close()


def test_the_bar_goes_to_stderr_and_json_lines_to_a_piped_stdout(monkeypatch):
    from hust_sft.console import ConsoleReport

    out, err = io.StringIO(), _Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    report = ConsoleReport("en")  # train.py's: stderr a terminal, stdout piped (`train.py | tee`)
    report({"type": "log", "step": 1, "total_steps": 2, "loss": 3.0})
    report.close()
    assert "1/2" in err.getvalue() and json.loads(out.getvalue())["loss"] == 3.0


def test_train_demo_uses_the_offline_demo_model_and_sample_data(monkeypatch, tmp_path):
    import train
    from hust_sft import demo_model
    from hust_sft.settings import RunSettings, from_args

    monkeypatch.setattr(demo_model, "build_demo", lambda: tmp_path / "demo")
    args = train.build_parser().parse_args(["--demo", "--max-steps", "2"])
    assert args.demo
    settings = from_args(RunSettings, args)
    train.apply_demo(settings)
    assert settings.model.model == str(tmp_path / "demo") and settings.data.data == str(demo_model.SAMPLE_DATA)
    mine = from_args(RunSettings, train.build_parser().parse_args(["--demo", "--model", "m", "--data", "d.jsonl"]))
    train.apply_demo(mine)
    assert (mine.model.model, mine.data.data) == ("m", "d.jsonl")  # explicit flags win


def test_a_missing_data_file_leaves_no_run_folder(tmp_path, capsys):
    import train

    runs = tmp_path / "runs"
    code = train.main(["--lang", "en", "--data", str(tmp_path / "nope.jsonl"), "--runs-dir", str(runs),
                       "--model", str(tmp_path / "no-model")])
    assert code == 2 and "nope.jsonl" in capsys.readouterr().err
    assert not runs.exists() or not any(runs.iterdir())
    code = train.main(["--lang", "en", "--data", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "out")])
    assert code == 2 and not (tmp_path / "out").exists()


# ---- evaluate.py: progress, and where it wrote -----------------------------------------------------------

def test_evaluate_cli_reports_progress_and_where_it_wrote(monkeypatch, tmp_path, capsys):
    import evaluate as cli
    from hust_sft import evaluation

    def fake_evaluate(settings, lang, progress):
        progress(0.0, "loading the model")
        progress(0.5, "answering 4 of 8")
        progress(0.5, "answering 4 of 8")  # said once
        progress(1.0, "done")
        return evaluation.EvalReport(output_dir=tmp_path / "eval", summary={}, markdown="# report", rows=[])
    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    assert cli.main(["--adapter", "runs/x"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "# report"
    assert err.splitlines() == ["[  0%] loading the model", "[ 50%] answering 4 of 8", "[100%] done",
                                f"evaluation written to {tmp_path / 'eval'} (summary.md, summary.json, "
                                "per_example.csv, per_example.jsonl)"]


def test_the_did_it_learn_note_never_says_0_of_the_0_questions():
    from hust_sft.evaluation.reports import _did_it_learn_markdown

    summary = {"arms": ["base"], "did_it_learn": {"base": {"held_out": None, "train": None}}, "data": {}}
    for lang in ("en", "zh"):
        text = "\n".join(_did_it_learn_markdown(summary, lang))
        assert "0 of the 0" not in text and "0 道题中固定抽取的 0" not in text
    assert "No training questions were answered" in "\n".join(_did_it_learn_markdown(summary, "en"))


# ---- without Hub access ----------------------------------------------------------------------------------

def test_a_model_the_hub_cannot_deliver_is_said_in_the_app_s_words(monkeypatch):
    """transformers' "couldn't connect to 'https://huggingface.co'" → what to do: --demo, --model DIR, HF_ENDPOINT."""
    from hust_sft.modeling import ModelError, load_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as caught:
        load_tokenizer("nobody-here/not-a-cached-model")
    assert caught.value.key == "model.error.no_hub"
    for lang in ("en", "zh"):
        text = caught.value.text(lang)
        assert "--demo" in text and "--model DIR" in text and "HF_ENDPOINT" in text
        assert "couldn't connect" not in text and "nobody-here/not-a-cached-model" in text


def test_chat_without_the_hub_shows_that_message_and_keeps_the_question(tmp_path):
    import gradio as gr

    from hust_sft.modeling import ModelError
    from hust_sft.ui import chat
    from hust_sft.ui.common import AppConfig

    class NoHub:
        def stream(self, *a, **kw):
            raise ModelError("model.error.no_hub", model="Qwen/Qwen2.5-0.5B-Instruct", endpoint="https://huggingface.co")
            yield  # a generator, like ModelCache.stream

    config = AppConfig(runs_dir=tmp_path / "runs")
    before = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "answer"}]
    steps = chat.chat(config, NoHub(), "en", "What now?", None, None, "S", list(before), list(before),
                      {"max_new_tokens": 8})
    seen = []
    with pytest.raises(gr.Error) as caught:
        for out in steps:
            seen.append(out)
    assert "--demo" in caught.value.message and "HF_ENDPOINT" in caught.value.message
    # the page as it was: the question back in its box, no unanswered "…" turn in either chat
    assert seen[-1] == (before, before, "What now?", "", "")


# ---- Publish off a Space ---------------------------------------------------------------------------------

def test_publish_off_a_space_never_points_at_a_sign_in_button(tmp_path, monkeypatch):
    from hust_sft import hub
    from hust_sft.ui import publish
    from hust_sft.ui.common import AppConfig

    run = tmp_path / "runs" / "r"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text("{}")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    config = AppConfig(runs_dir=tmp_path / "runs")
    monkeypatch.setattr(publish, "run_dir_of", lambda config, r: run)

    def no_token(*a, **kw):
        raise hub.PublishError("hub.error.no_token")
    monkeypatch.setattr(hub, "publish", no_token)
    said: dict = {}
    text = publish.publish_run(config, None, None, "en", "r", "me/repo", True, said=said)
    assert "HF_TOKEN" in text and "button" not in text.replace("no sign-in button", "")
    assert "HF_TOKEN" in said["zh"] and said["en"] == text  # both languages, for the switch


# ---- what each memory switch saves: the bench runs ---------------------------------------------------------

def test_the_memory_bench_runs_quick(capsys):
    """`python -m bench.memory_techniques --quick`: every arm trains a step; the table has each technique with
    its time and memory against the baseline of the same invocation (no timing is asserted)."""
    from bench import memory_techniques

    assert memory_techniques.main(["--quick"]) == 0
    out = capsys.readouterr().out
    table = out.splitlines()
    assert "technique" in table[1] and "memory ×" in table[1]
    rows = {line.split()[0]: line.split() for line in table[2:] if line and not line.startswith("{")}
    assert set(rows) == set(memory_techniques.ARMS)
    assert rows["baseline"][2] == "1.00" and rows["baseline"][4] == "1.00"
    results = json.loads(table[-1])
    assert all(r["steps"] == 1 for r in results.values())
