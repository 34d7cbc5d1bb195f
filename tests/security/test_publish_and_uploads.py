"""Issue 9 items 4 and 15 (part) on a Space whose owner opened training to everyone (HUST_SFT_OPEN_TRAINING=1).

- Two uploads of one file name are both kept (unique names under runs/uploads/).
- Publish sends the owner's token only to Publish's own requests; the published repo has no
  training_args.bin (or anything else not on hub.PUBLISHED) and its model card no local path.
"""
import re

import pytest
from gradio_client import handle_file

from hust_sft.i18n import t

from public_space import FAKE_TOKEN, OWNER, FakeHub, adapter_files, make_run, start_space

ABSOLUTE = re.compile(r"(?<![\w.~:/>-])/(?:root|home|tmp|usr|opt|data|etc|var)/")


@pytest.fixture(scope="module")
def open_space(tmp_path_factory):
    """The open Space, started after the owner's run "pub-run" exists (the Publish list is read at start)."""
    from hust_sft.ui.common import SAMPLE_DATA

    tmp = tmp_path_factory.mktemp("open")
    data = tmp / "owner-data" / "handbook.jsonl"
    data.parent.mkdir()
    data.write_bytes(SAMPLE_DATA.read_bytes())
    files = {**adapter_files(), "training_args.bin": b"pickled TrainingArguments", "optimizer.pt": b"state"}
    run = make_run(tmp / "runs", "pub-run", data, files=files)
    (run / "eval").mkdir()
    (run / "eval" / "summary.md").write_text(f"# Evaluation\n\n> ⚠ data differs: run {data}, now /root/x.jsonl\n",
                                             encoding="utf-8")
    hub = FakeHub()
    sp = start_space(tmp, hub, HUST_SFT_OPEN_TRAINING="1")
    yield sp
    sp.close()
    hub.close()


def test_a_second_upload_never_replaces_the_first(open_space, tmp_path):
    first, second = tmp_path / "a" / "handbook.jsonl", tmp_path / "b" / "handbook.jsonl"
    for path, answer in ((first, "one"), (second, "two")):
        path.parent.mkdir()
        path.write_text('{"conversations": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "'
                        + answer + '"}]}\n', encoding="utf-8")
    kept = [open_space.client.predict("en", handle_file(str(p)), api_name="/data_upload") for p in (first, second)]
    stored = sorted((open_space.runs_dir / "uploads").iterdir())
    assert len(stored) == 2 and sorted(kept) == [str(p) for p in stored]
    assert all(re.fullmatch(r"handbook-[0-9a-f]{12}\.jsonl", p.name) for p in stored)
    assert sorted(p.read_bytes() for p in stored) == sorted(p.read_bytes() for p in (first, second))


def test_url_data_stays_the_owner_s_even_when_training_is_open(open_space):
    """A data URL makes the server send requests: refused for a visitor, before any connection."""
    sp = open_space
    from hust_sft.ui.train import setting_names

    assert setting_names()[0] == "data"  # the first setting after the language (and the run name)
    url = f"{sp.hub.url}/internal/data.jsonl"  # a loopback service standing in for an internal one
    expected = t("access.error.url_owner_only", "en", owner=OWNER)
    assert sp.client.predict("en", url, api_name="/data_preview")[1] == expected
    assert sp.client.predict("en", "url-run", url, api_name="/train_start") == expected
    assert not [r for r in sp.hub.seen() if "/internal/" in r.path]
    assert not (sp.runs_dir / "url-run").exists()


def test_publish_uploads_only_the_adapter_with_a_card_free_of_local_paths(open_space):
    sp = open_space
    sp.hub.clear()
    answer = sp.client.predict("en", "pub-run", "owner/pub-run", True, api_name="/publish")
    # Publish exports and checks first (issue 10): the answer states the check's result.
    assert answer == t("ui.publish.done_checked", "en", url=f"{sp.hub.url}/owner/pub-run", identical=5, total=5)
    committed = sp.hub.committed_files()
    # The adapter, its card and evaluation, plus the export's tokenizer files (the chat template carries the
    # training system prompt, issue 10); never training_args.bin, optimizer state or checkpoints.
    required = {"README.md", "adapter_config.json", "adapter_model.safetensors", "eval/summary.md",
                "chat_template.jinja"}
    tokenizer_files = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                       "merges.txt", "added_tokens.json", "generation_config.json", "hust_sft_export.json"}
    assert required <= set(committed) <= required | tokenizer_files, sorted(committed)
    card = committed["README.md"].decode()
    assert "handbook.jsonl" in card and "data differs" in card
    assert not ABSOLUTE.search(card), ABSOLUTE.search(card)
    assert str(sp.tmp) not in card and str(sp.runs_dir) not in card
    # The owner's token went with Publish's own requests, and only there.
    writes = [r for r in sp.hub.seen() if r.method == "POST"]
    assert writes and all(r.authorization == f"Bearer {FAKE_TOKEN}" for r in writes)
    assert FAKE_TOKEN not in answer and FAKE_TOKEN not in sp.log()
