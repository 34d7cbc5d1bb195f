"""Publishing: the model card built from a run directory, repo-id rules, and a token that never leaks."""
from __future__ import annotations

import ast
import json
import logging
import traceback

import pytest
import yaml

from hust_sft import hub
from hust_sft.hub import PublishError
from hust_sft.hub_ids import RepoIdError
from hust_sft.settings import DEFAULT_MODEL, RunSettings, set_values, to_dict

SYSTEM = "你是华中科技大学学生手册助手。"


@pytest.fixture
def run_dir(tmp_path):
    """A finished run as training writes it (settings, run.json, events, adapter, eval)."""
    run = tmp_path / "runs" / "hust-r16"
    (run / "adapter").mkdir(parents=True)
    settings = set_values(RunSettings(), {"system_prompt": SYSTEM, "lora_r": 16, "max_steps": 40,
                                          "output": str(run), "retrieval": "off"})  # saved no retrieval/
    (run / "settings.json").write_text(json.dumps(to_dict(settings)), encoding="utf-8")
    (run / "run.json").write_text(json.dumps({
        "status": "completed", "settings": to_dict(settings), "global_step": 40, "total_steps": 40,
        "epoch": 2.0, "train_loss": 1.2345, "eval_loss": 1.5, "wall_time_s": 600.0,
        "peak_memory_mb": 2048.0, "trainable_params": 8798208, "total_params": 502830976,
        "device": "cuda", "dtype": "bfloat16", "mixed_precision": "bf16", "versions": {"peft": "0.21.2"},
        "data": {"source": settings.data.data, "sha256": "ab" * 32,
                 "split_sizes": {"train": 800, "validation": 100, "test": 100}}}), encoding="utf-8")
    (run / "events.jsonl").write_text(json.dumps({"type": "status", "status": "completed"}) + "\n")
    (run / "adapter" / "adapter_config.json").write_text("{}")
    (run / "adapter" / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    (run / "eval").mkdir()
    (run / "eval" / "summary.md").write_text("# Evaluation\n\n| metric | base | tuned |\n|---|---|---|\n"
                                             "| ROUGE-L | 20.0 | 45.0 |\n", encoding="utf-8")
    return run


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_model_card_front_matter_is_exact(run_dir):
    card = hub.model_card(run_dir, "alice/qwen2.5-hust-lora")
    assert _front_matter(card) == {
        "base_model": "Qwen/Qwen2.5-0.5B-Instruct", "library_name": "peft", "license": "apache-2.0",
        "pipeline_tag": "text-generation", "tags": ["lora", "peft", "sft", "qwen2"]}
    # the default data comes from ModelScope, not a Hub dataset, so `datasets` is left out (no dead link)
    from huggingface_hub import ModelCard
    assert ModelCard(card).data.base_model == "Qwen/Qwen2.5-0.5B-Instruct"


def test_model_card_lists_a_hub_dataset(run_dir):
    settings = json.loads((run_dir / "run.json").read_text())
    settings["settings"]["data"]["data"] = "hf://someone/hust-handbook"
    (run_dir / "run.json").write_text(json.dumps(settings))
    assert _front_matter(hub.model_card(run_dir, "alice/x"))["datasets"] == ["someone/hust-handbook"]


def test_model_card_body(run_dir):
    card = hub.model_card(run_dir, "alice/qwen2.5-hust-lora")
    assert 'PeftModel.from_pretrained(base, "alice/qwen2.5-hust-lora")' in card
    assert 'AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B-Instruct"' in card
    assert f'{{"role": "system", "content": "{SYSTEM}"}}' in card   # the system prompt used in training
    assert "`" + "ab" * 32 + "`" in card and "| 800 / 100 / 100 |" in card
    assert "| Final training loss | 1.234 |" in card and "| Optimizer steps | 40 / 40 |" in card
    assert "| 8,798,208 / 502,830,976 |" in card and "| 10.0 min |" in card
    assert "| LoRA rank r (`lora_r`) | 16 |" in card and "| Max steps (`max_steps`) | 40 |" in card
    assert "(`output`)" not in card and str(run_dir) not in card   # no local paths on a public card
    assert "## Evaluation\n\n## Evaluation\n\n| metric | base | tuned |" in card  # summary.md one level down
    assert "| ROUGE-L | 20.0 | 45.0 |" in card


def test_model_card_snippet_runs_as_python(run_dir):
    card = hub.model_card(run_dir, "alice/qwen2.5-hust-lora")
    code = card.split("```python\n")[1].split("```")[0]
    tree = ast.parse(code)  # a SyntaxError here means a user cannot paste the snippet
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert {"alice/qwen2.5-hust-lora", DEFAULT_MODEL, SYSTEM} <= strings  # repo, base and prompt of this run


def test_model_card_without_eval(run_dir):
    (run_dir / "eval" / "summary.md").unlink()
    assert "No evaluation was run before publishing." in hub.model_card(run_dir, "alice/x")


def test_model_card_and_upload_carry_the_run_s_retrieval_index(run_dir, tmp_path):
    import fnmatch

    from hust_sft import retrieval
    from hust_sft.data.records import Record

    secret = tmp_path / "srv-secret"                     # where the data lives on the server: never published
    secret.mkdir()
    (secret / "guide.md").write_text("# 校医院\n校医院二十四小时开放。\n", encoding="utf-8")
    records = [Record(messages=[{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                      source=str(secret / "qa.jsonl"), line=i + 1, extra={})
               for i, (q, a) in enumerate([("图书馆几点开门？", "8:00。"), ("校医院在哪？", "东区。")])]
    index = retrieval.Retriever.build(records, [secret / "guide.md"])
    index.save(run_dir / "retrieval")
    (run_dir / "retrieval" / "notes.txt").write_text("not part of the index", encoding="utf-8")
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    run["settings"]["retrieval"].update(retrieval="train", retrieval_k=2, answer_k=3, passage_max_chars=120,
                                        min_relevance=0.3, off_topic="no_passages",
                                        embedding_model=str(secret / "my-encoder"))
    (run_dir / "run.json").write_text(json.dumps(run), encoding="utf-8")
    card = hub.model_card(run_dir, "alice/x")
    section = card.split("## Retrieval\n")[1].split("## Evaluation")[0]
    assert "| Retrieval (`retrieval`) | train |" in section
    assert "| Passages per training question (k) (`retrieval_k`) | 2 |" in section
    assert "| Passages when answering (`answer_k`) | 3 |" in section
    assert "| Max characters per passage (training) (`passage_max_chars`) | 120 |" in section
    assert "| Max characters per passage (answering) (`answer_passage_chars`) | 120 |" in section
    assert "| Minimum relevance (`min_relevance`) | 0.3 |" in section
    assert "| Off-topic questions (`off_topic`) | no_passages |" in section
    assert "| Embedding model (optional) (`embedding_model`) | my-encoder |" in section  # a folder: its name
    assert str(secret) not in card
    assert "`retrieval/` in this repo: 3 passages, bm25s " in section
    assert "| Knowledge files | guide.md |" in section
    assert "Retriever.load" in section
    stage = tmp_path / "stage"
    stage.mkdir()
    hub._stage(run_dir, card, stage)
    staged = sorted(str(p.relative_to(stage / "retrieval")) for p in (stage / "retrieval").rglob("*") if p.is_file())
    assert staged == sorted(f for f in retrieval.RETRIEVAL_FILES if (run_dir / "retrieval" / f).is_file())
    assert "notes.txt" not in staged and len(staged) >= 7
    for name in staged:                                    # every staged file passes Publish's allow-list
        assert any(fnmatch.fnmatch(f"retrieval/{name}", pat) for pat in hub.PUBLISHED_PATTERNS)
        assert str(secret).encode() not in (stage / "retrieval" / name).read_bytes()
    loaded = retrieval.Retriever.load(stage / "retrieval")    # a Hub user's download searches the same way
    assert [p.id for p in loaded.search("图书馆开门", 1)] == [p.id for p in index.search("图书馆开门", 1)]
    assert [p.id for p in index.search("图书馆开门", 1)] == ["train:0"]
    assert [p.source for p in loaded.passages] == ["qa.jsonl:1", "qa.jsonl:2", "guide.md §1 校医院"]
    assert [retrieval.cite(p) for p in loaded.passages] == [p.source for p in loaded.passages]
    assert f"| sha256 | `{loaded.sha256}` |" in section      # the card names the published copy
    assert str(secret) not in card


def test_model_card_of_a_run_without_an_index_says_how_it_is_built(run_dir):
    card = hub.model_card(run_dir, "alice/x")
    section = card.split("## Retrieval\n")[1].split("## Evaluation")[0]
    assert "| Retrieval (`retrieval`) | off |" in section and "none saved with the run" in section
    assert "Retriever.build" in section


@pytest.mark.parametrize("raw, owner, expected", [
    ("alice/qwen-hust", None, "alice/qwen-hust"),
    ("  alice/Qwen2.5_hust.v1 ", None, "alice/Qwen2.5_hust.v1"),
    ("qwen-hust", "alice", "alice/qwen-hust"),
])
def test_validate_repo_id_accepts(raw, owner, expected):
    assert hub.validate_repo_id(raw, owner) == expected


@pytest.mark.parametrize("raw, owner, error", [
    ("qwen-hust", None, "expected owner/name"),
    ("", "alice", "enter owner/name"),
    ("a/b/c", None, "exactly one '/'"),
    ("alice/qwen--hust", None, "must not contain '--' or '..'"),
    ("alice/qwen..hust", None, "must not contain '--' or '..'"),
    ("alice/-qwen", None, "must start and end with a letter or digit"),
    ("alice/qwen.", None, "must start and end with a letter or digit"),
    ("alice/qwen hust", None, "only letters, digits"),
    ("alice/华科", None, "only letters, digits"),
    ("alice/" + "x" * 97, None, "longer than 96 characters"),
    ("alice/model.git", None, "must not end with '.git'"),
])
def test_validate_repo_id_refuses(raw, owner, error):
    with pytest.raises(RepoIdError) as info:
        hub.validate_repo_id(raw, owner)
    assert error in str(info.value)


def test_validate_repo_id_accepts_96_characters():
    assert hub.validate_repo_id("alice/" + "x" * 96) == "alice/" + "x" * 96


def test_resolve_token(monkeypatch):
    class OAuthToken:  # the shape of gr.OAuthToken (this module must not import gradio)
        token = "hf_oauth_abcdefgh"

    monkeypatch.setenv("HF_TOKEN", "hf_env_abcdefgh")
    assert hub.resolve_token(OAuthToken()) == "hf_oauth_abcdefgh"
    assert hub.resolve_token("hf_str_abcdefgh") == "hf_str_abcdefgh"
    assert hub.resolve_token(None) == "hf_env_abcdefgh"
    monkeypatch.delenv("HF_TOKEN")
    assert hub.resolve_token(None) is None


def test_publish_checks_before_contacting_the_hub(run_dir, tmp_path):
    with pytest.raises(PublishError, match="needs a Hugging Face token"):
        hub.publish(run_dir, "alice/x", None)
    empty = tmp_path / "empty-run"
    empty.mkdir()
    with pytest.raises(PublishError, match="holds no adapter"):
        hub.publish(empty, "alice/x", "hf_" + "q" * 34)
    with pytest.raises(RepoIdError):
        hub.publish(run_dir, "alice/bad--id", "hf_" + "q" * 34)


def test_publish_error_never_shows_the_token(run_dir, tmp_path, monkeypatch, caplog):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # conftest sets offline mode
    token = "hf_SecretTokenValue1234567890abcdefXYZ"
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PublishError) as info:
        hub.publish(run_dir, "alice/qwen-hust", token, endpoint="http://127.0.0.1:9", check_n=0)
    err = info.value
    shown = [str(err), repr(err), err.text("zh"), "".join(traceback.format_exception(err)), caplog.text]
    assert "Publishing to alice/qwen-hust failed:" in str(err)
    assert all(token not in s and "SecretTokenValue" not in s for s in shown)
    assert err.__cause__ is None and err.__suppress_context__
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before                                           # the run folder is left untouched
    assert all(token.encode() not in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def test_publish_builds_the_public_index_once(run_dir, monkeypatch):
    """The card's retrieval section and the staged retrieval/ describe the same bytes, built once."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # reach 127.0.0.1:9 and fail there
    built, build = [], hub.public_index_files
    monkeypatch.setattr(hub, "public_index_files", lambda d: built.append(d) or build(d))
    with pytest.raises(PublishError, match="Publishing to alice/x failed"):
        hub.publish(run_dir, "alice/x", "hf_" + "q" * 34, endpoint="http://127.0.0.1:9", check_n=0)
    assert built == [run_dir / "retrieval"]


def test_scrub():
    assert hub.scrub("Bearer hf_abcdefghijkl failed for hf_abcdefghijkl", None) == "Bearer *** failed for ***"
    assert hub.scrub("token=secret-1", "secret-1") == "token=***"
