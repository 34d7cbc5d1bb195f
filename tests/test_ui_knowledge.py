"""The Train tab's knowledge upload (hust_sft.ui.knowledge) and who may name which knowledge files."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from knowledge_docs import encrypt_pdf, make_docx, make_pdf

from hust_sft import access
from hust_sft.i18n import t
from hust_sft.ui import knowledge as ui_knowledge
from hust_sft.ui import train
from hust_sft.ui.common import AppConfig

OWNER = SimpleNamespace(username="alice")


@pytest.fixture
def local(tmp_path):
    return AppConfig(runs_dir=tmp_path / "runs")


def space(tmp_path, **kw):
    return AppConfig(runs_dir=tmp_path / "runs", space_id="alice/s", space_owner="alice", oauth_trusted=True, **kw)


@pytest.fixture
def uploads(tmp_path):
    """What Gradio hands the handler: files in its temp cache, under their own names."""
    cache = tmp_path / "gradio" / "0a1b2c"
    cache.mkdir(parents=True)
    pdf = make_pdf(cache / "学生手册.pdf", [["第一章 注册", "学生应当按时注册。"], [], ["图书馆八点开门。"]],
                   image_pages=(2,))
    docx = make_docx(cache / "guide.docx", [("h1", "奖励"), ("p", "成绩优秀者可以申请奖学金。")])
    locked = encrypt_pdf(pdf, cache / "locked.pdf", user_password="secret")
    fake = cache / "fake.docx"
    fake.write_text("not a zip", encoding="utf-8")
    return pdf, docx, locked, fake


def test_the_owner_s_uploads_are_checked_kept_under_their_own_names_and_reported(local, uploads):
    pdf, docx, locked, fake = uploads
    value, report = ui_knowledge.upload(local, None, "en", [str(p) for p in uploads], ["/srv/old.md"], 150)
    kept = sorted((local.runs_dir / "uploads").iterdir())
    assert len(kept) == 2 and value[0] == "/srv/old.md" and len(value) == 3
    # a fresh folder per upload, the file inside under its own name, so passages cite "学生手册.pdf p.3"
    assert [re.sub(r"-[0-9a-f]{12}$", "-<hex>", p.name) for p in kept] == ["guide-<hex>", "学生手册-<hex>"]
    assert sorted(value[1:]) == sorted(str(next(p.iterdir())) for p in kept)
    assert [next(p.iterdir()).name for p in kept] == ["guide.docx", "学生手册.pdf"]
    assert (kept[1] / "学生手册.pdf").read_bytes() == pdf.read_bytes()
    assert report.splitlines() == [
        "- ✓ 学生手册.pdf: 3 pages, 2 passages; 1 pages without a text layer (scanned? they cannot be found): 2",
        "- ✓ guide.docx: 1 passages, 13 characters",
        "- ✗ locked.pdf: an encrypted PDF that needs a password to open (the empty password does not open it); "
        "save an unprotected copy and use that (not added)",
        "- ✗ fake.docx: not a DOCX (a .docx is a zip file and this is not one); save it from Word as .docx "
        "(not added)",
    ]
    # a second upload of the same file never replaces the first; with the passage size 0 (derived from the
    # data when training starts) the count is at the index's default size, and the report says so
    again, report = ui_knowledge.upload(local, None, "en", [str(pdf)], value, 0)
    assert len(again) == 4 and len(list((local.runs_dir / "uploads").iterdir())) == 3
    assert report.split("\n\n") == [
        "- ✓ 学生手册.pdf: 3 pages, 2 passages; 1 pages without a text layer (scanned? they cannot be found): 2",
        t("ui.train.knowledge_chunk_default", "en", chars=400)]


def test_a_visitor_of_a_space_may_not_upload(tmp_path, uploads):
    config = space(tmp_path)
    value, report = ui_knowledge.upload(config, None, "en", [str(uploads[0])], [], 150)
    assert (value, report) == ([], t("ui.lock.login", "en", owner="alice"))
    assert not (config.runs_dir / "uploads").exists()
    value, _ = ui_knowledge.upload(config, OWNER, "en", [str(uploads[0])], [], 150)
    assert len(value) == 1 and value[0].startswith(str(config.runs_dir / "uploads"))


def test_a_visitor_may_name_only_uploaded_knowledge_files(tmp_path, uploads):
    config = space(tmp_path, open_training=True)  # training open to everyone: uploads too
    kept, _ = ui_knowledge.upload(config, None, "en", [str(uploads[0])], [], 150)
    secret = tmp_path / "secret.md"
    secret.write_text("# 内部\n服务器上的文件。", encoding="utf-8")
    escape = str(config.runs_dir / "uploads" / ".." / ".." / "secret.md")
    assert access.knowledge_files_refusal(config, None, kept, "en") is None
    for files in ([str(secret)], [escape], kept + ["/etc/hostname"], [str(config.runs_dir / "uploads")]):
        refused = access.knowledge_files_refusal(config, None, files, "en")
        assert refused == t("access.error.knowledge_not_uploaded", "en", file=refused.split(":", 1)[0])
        assert str(tmp_path) not in refused
    assert access.knowledge_files_refusal(config, OWNER, [str(secret)], "en") is None  # the owner's own server
    assert access.knowledge_files_refusal(AppConfig(runs_dir=config.runs_dir), None, [str(secret)], "en") is None


def test_train_start_refuses_a_visitor_s_server_knowledge_file_before_anything_starts(tmp_path):
    config = space(tmp_path, open_training=True)
    config.data = str(tmp_path / "qa.jsonl")
    values = train.preset_values(config, "recommended")
    values = dict(zip(train.setting_names(), values))
    values["knowledge_files"] = ["/etc/hostname"]
    answer = train.start(config, None, "en", "kb-run", values)
    assert answer == t("access.error.knowledge_not_uploaded", "en", file="hostname")
    assert not (config.runs_dir / "kb-run").exists()


@pytest.mark.parametrize("value, expected", [(60, 60), ("80", 80), (90.0, 90), (None, 400), ("x", 400), (0, 400),
                                             (10**6, 2000)])
def test_the_passage_size_is_the_widget_s_within_the_setting_s_range(value, expected):
    assert ui_knowledge.chunk_chars_of(value) == expected
