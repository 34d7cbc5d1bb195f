"""Knowledge files (issue 16 item 5) attacked through the API as an anonymous visitor.

- On a public Space, /knowledge_upload is the owner's: a visitor's upload is refused and nothing is kept;
  /train_start is refused whatever knowledge files it names.
- On a Space whose owner opened training to everyone, a visitor may upload knowledge files and train with
  them, but never name a file of the server: its text would be indexed and shown under every answer.
"""
import json

import pytest
from gradio_client import handle_file
from knowledge_docs import make_pdf

from hust_sft.i18n import t
from hust_sft.ui.train import setting_names

from public_space import OWNER, FakeHub, start_space


def train_start_args(client, run_name: str, **values) -> list:
    """/train_start's arguments: the language, the run name, then every setting (its default as the API
    states it, or `values`)."""
    params = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/train_start"]["parameters"]
    args = [p.get("parameter_default") for p in params]
    args[0], args[1] = "en", run_name
    for name, value in values.items():
        args[2 + setting_names().index(name)] = value
    return args


def handbook(tmp_path):
    return make_pdf(tmp_path / "handbook.pdf", [["第一章 注册", "学生应当按时注册。"]])


def test_a_visitor_s_knowledge_upload_is_refused_on_a_public_space(space, tmp_path):
    value, report, box = space.client.predict("en", [handle_file(str(handbook(tmp_path)))], [], 150,
                                              api_name="/knowledge_upload")
    assert (value, report, box) == ([], t("ui.lock.login", "en", owner=OWNER), None)
    assert not (space.runs_dir / "uploads").exists() or not any((space.runs_dir / "uploads").iterdir())


def test_a_visitor_s_train_start_naming_a_server_file_is_refused_on_a_public_space(space):
    args = train_start_args(space.client, "kb-attack", knowledge_files=["/etc/passwd"])
    assert space.client.predict(*args, api_name="/train_start") == t("ui.lock.login", "en", owner=OWNER)
    assert not (space.runs_dir / "kb-attack").exists()


@pytest.fixture(scope="module")
def open_space(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("open-kb")
    secret = tmp / "owner-notes.md"
    secret.write_text("# 内部\n服务器上的私人笔记。\n", encoding="utf-8")
    taken = tmp / "runs" / "taken"  # a finished run: training into it again is refused after every check
    taken.mkdir(parents=True)
    (taken / "run.json").write_text(json.dumps({"status": "completed"}), encoding="utf-8")
    hub = FakeHub()
    sp = start_space(tmp, hub, HUST_SFT_OPEN_TRAINING="1")
    sp.extra["secret"] = secret
    yield sp
    sp.close()
    hub.close()


def test_a_visitor_may_not_index_a_file_of_the_server_even_with_training_open(open_space):
    sp = open_space
    secret = sp.extra["secret"]
    for path in (str(secret), str(sp.runs_dir / "uploads" / ".." / ".." / secret.name)):
        args = train_start_args(sp.client, "kb-leak", knowledge_files=[path])
        assert sp.client.predict(*args, api_name="/train_start") == t(
            "access.error.knowledge_not_uploaded", "en", file=secret.name)
    assert not (sp.runs_dir / "kb-leak").exists()
    assert not (sp.runs_dir / ".active.json").exists()


def test_an_uploaded_knowledge_file_is_kept_checked_and_accepted_with_training_open(open_space, tmp_path):
    sp = open_space
    value, report, _ = sp.client.predict("en", [handle_file(str(handbook(tmp_path)))], [], 150,
                                         api_name="/knowledge_upload")
    assert report == "- ✓ handbook.pdf: 1 pages, 1 passages"
    [kept] = value
    folders = list((sp.runs_dir / "uploads").iterdir())
    assert [str(f / "handbook.pdf") for f in folders] == [kept]
    # The knowledge check passes for the upload: the start goes on and is refused only because "taken"
    # already holds a run (checked when the folder is claimed, after every access check).
    args = train_start_args(sp.client, "taken", knowledge_files=[kept])
    answer = sp.client.predict(*args, api_name="/train_start")
    assert answer.startswith(t("ui.train.start_failed", "en", error="")) and "run.json" in answer
    assert not (sp.runs_dir / ".active.json").exists()


def test_a_visitor_may_not_make_the_server_read_a_local_path_even_with_training_open(open_space):
    """Issue 19: only URLs were refused; a visitor could train on (and preview the rows of) any file of the
    server by naming it as `data`, or load any folder as the base or embedding model."""
    sp = open_space
    secret_rows = sp.tmp / "owner-private.jsonl"
    secret_rows.write_text(json.dumps({"conversations": [{"role": "user", "content": "内部问题"},
                                                         {"role": "assistant", "content": "内部答案"}]},
                                      ensure_ascii=False) + "\n", encoding="utf-8")
    data_refusal = t("access.error.local_data", "en", file=secret_rows.name)
    for path in (str(secret_rows), str(sp.runs_dir / "uploads" / ".." / ".." / secret_rows.name)):
        args = train_start_args(sp.client, "path-leak", data=path)
        assert sp.client.predict(*args, api_name="/train_start") == data_refusal
        table, report = sp.client.predict(*args[:1], *args[2:], api_name="/data_preview")
        assert report == data_refusal and table["data"] == []
    for name, value in (("model", str(sp.tmp)), ("embedding_model", str(sp.tmp)), ("model", "../../etc")):
        args = train_start_args(sp.client, "path-leak", **{name: value})
        assert sp.client.predict(*args, api_name="/train_start") == t(
            "access.error.local_model", "en", field=name, value=value.rsplit("/", 1)[-1])
    assert not (sp.runs_dir / "path-leak").exists()
    assert not (sp.runs_dir / ".active.json").exists()
