"""hust_sft.knowledge: the handbook's own PDF / DOCX / Markdown / text files as located passages, and the
named error of every kind of bad file. The documents are made here (tests/knowledge_docs.py)."""
from __future__ import annotations

import json
import zipfile

import pytest
from knowledge_docs import encrypt_pdf, make_docx, make_pdf

from hust_sft import knowledge as K
from hust_sft import retrieval as R
from hust_sft.data.records import Record

HANDBOOK_PAGES = [
    ["华中科技大学学生手册", "第一章 学籍管理", "学生应当在每学期开学两周内到学院办理注册手续，逾期不注册",
     "且无正当理由者，视为放弃学籍。", "第二节 请假", "学生请假一天以内由辅导员批准。", "- 1 -"],
    ["华中科技大学学生手册", "休学期间不缴纳学费，保留学籍一年。", "- 2 -"],
    ["华中科技大学学生手册", "- 3 -"],  # a photo page: only the running header and page number are text
    ["华中科技大学学生手册", "Chapter 3 Library", "The library opens at 8:00. It closes at 22:00.", "- 4 -"],
]


def rec(q: str, a: str) -> Record:
    return Record(messages=[{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                  source="qa.jsonl", line=1)


def texts(passages):
    return [(p.id, p.location, p.text) for p in passages]


@pytest.fixture(scope="module")
def handbook_pdf(tmp_path_factory):
    return make_pdf(tmp_path_factory.mktemp("pdf") / "handbook.pdf", HANDBOOK_PAGES, image_pages=(3,))


# ---------------------------------------------------------------------------------------------------
# PDF

def test_a_pdf_is_read_page_by_page_with_headings_and_without_running_headers(handbook_pdf):
    doc = K.read_document(handbook_pdf)
    assert (doc.format, doc.pages) == ("pdf", 4)
    # Page 3 holds a picture and its running header only: no text of its own.
    assert doc.pages_without_text == [3]
    passages = K.document_passages(doc, chunk_chars=60)
    assert texts(passages) == [
        ("kb:handbook.pdf#1", "p.1",
         "第一章 学籍管理：学生应当在每学期开学两周内到学院办理注册手续，逾期不注册且无正当理由者，视为放弃学籍。"),
        ("kb:handbook.pdf#2", "p.1", "第二节 请假：学生请假一天以内由辅导员批准。"),
        # the heading of page 1 carries over to page 2
        ("kb:handbook.pdf#3", "p.2", "第二节 请假：休学期间不缴纳学费，保留学籍一年。"),
        ("kb:handbook.pdf#4", "p.4", "Chapter 3 Library：The library opens at 8:00. It closes at 22:00."),
    ]
    assert [p.title for p in passages] == ["第一章 学籍管理", "第二节 请假", "第二节 请假", "Chapter 3 Library"]
    assert [R.cite(p) for p in passages] == ["handbook.pdf p.1", "handbook.pdf p.1", "handbook.pdf p.2",
                                             "handbook.pdf p.4"]


def test_a_pdf_outline_gives_the_headings(tmp_path):
    pdf = make_pdf(tmp_path / "guide.pdf", [
        ["目录", "第一章 学籍 ........ 2", "第二章 奖励 ........ 2"],
        ["第一章 学籍", "学生应当按时注册。", "第二章 奖励", "成绩优秀者可以申请奖学金。"],
        ["奖学金每年评定一次。"],
    ], outline=[("第一章 学籍", 2), ("第二章 奖励", 2)])
    passages = K.document_passages(K.read_document(pdf), chunk_chars=100)
    assert [(p.title, p.location, p.text) for p in passages] == [
        (None, "p.1", "目录第一章 学籍 ........ 2第二章 奖励 ........ 2"),
        ("第一章 学籍", "p.2", "第一章 学籍：学生应当按时注册。"),
        ("第二章 奖励", "p.2", "第二章 奖励：成绩优秀者可以申请奖学金。"),
        ("第二章 奖励", "p.3", "第二章 奖励：奖学金每年评定一次。"),
    ]


def test_a_pdf_whose_empty_password_opens_it_is_read(handbook_pdf, tmp_path):
    locked = encrypt_pdf(handbook_pdf, tmp_path / "restricted.pdf", user_password="")
    doc = K.read_document(locked)
    assert [p.text for p in K.document_passages(doc, 60)] == [
        p.text for p in K.document_passages(K.read_document(handbook_pdf), 60)]


# ---------------------------------------------------------------------------------------------------
# DOCX, Markdown, text

def test_a_docx_is_read_by_heading_style_with_its_tables(tmp_path):
    path = make_docx(tmp_path / "handbook.docx", [
        ("title", "学生手册"), ("p", "本手册适用于全体本科生。"),
        ("h1", "学籍管理"), ("p", "学生应当按时注册。"),
        ("h2", "注册时间与地点"), ("table", [["时间", "地点"], ["九月一日", "行政楼一楼"]]),
        ("h1", "奖励"), ("p", "成绩优秀者可以申请奖学金。"),
    ])
    doc = K.read_document(path)
    passages = K.document_passages(doc, chunk_chars=100)
    assert [(p.title, p.location, p.text) for p in passages] == [
        ("学生手册", None, "学生手册：本手册适用于全体本科生。"),
        ("学籍管理", "§1 学籍管理", "学籍管理：学生应当按时注册。"),
        ("注册时间与地点", "§1.1 注册时间与地点", "注册时间与地点：时间 | 地点\n九月一日 | 行政楼一楼"),
        ("奖励", "§2 奖励", "奖励：成绩优秀者可以申请奖学金。"),
    ]
    assert [R.cite(p) for p in passages] == ["handbook.docx", "handbook.docx §1 学籍管理",
                                             "handbook.docx §1.1 注册时间与地点", "handbook.docx §2 奖励"]


def test_markdown_is_chunked_by_heading_and_paragraph(tmp_path):
    md = tmp_path / "handbook.md"
    md.write_text("前言。\n\n# 宿舍\n\n宿舍晚上十一点关门。\n\n晚归需登记。\n\n## 图书馆\n\n" + "借书证丢失需补办。" * 5
                  + "\n\n```\n# 不是标题\n```\n", encoding="utf-8")
    passages, files = K.passages([md], chunk_chars=20)
    assert [(p.id, p.title, p.location, p.text) for p in passages] == [
        ("kb:handbook.md#1", None, "L1", "前言。"),
        ("kb:handbook.md#2", "宿舍", "§1 宿舍", "宿舍：宿舍晚上十一点关门。\n晚归需登记。"),
        ("kb:handbook.md#3", "图书馆", "§1.1 图书馆", "图书馆：借书证丢失需补办。借书证丢失需补办。"),
        ("kb:handbook.md#4", "图书馆", "§1.1 图书馆", "图书馆：借书证丢失需补办。借书证丢失需补办。"),
        ("kb:handbook.md#5", "图书馆", "§1.1 图书馆", "图书馆：借书证丢失需补办。"),
        ("kb:handbook.md#6", "图书馆", "§1.1 图书馆", "图书馆：```\n# 不是标题\n```"),
    ]
    r = R.Retriever.build([rec("食堂几点开门", "六点半")], knowledge_files=[md], chunk_chars=20)
    assert r.search("宿舍关门时间", 1)[0].id == "kb:handbook.md#2"
    assert r.meta["knowledge_files"] == [{"file": str(md), "format": "markdown",
                                          "sha256": R._sha256_bytes(md.read_bytes()), "chunks": 6}]
    assert [f.to_dict() for f in files] == r.meta["knowledge_files"]


def test_plain_text_is_chunked_by_paragraph_and_located_by_line(tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("# 不是标题\n校园卡丢失后请挂失。\n\n\n补办需要十元。\n", encoding="utf-8")
    passages = K.document_passages(K.read_document(txt), chunk_chars=20)
    assert [(p.title, R.cite(p), p.text) for p in passages] == [
        (None, "notes.txt L1", "# 不是标题\n校园卡丢失后请挂失。"),
        (None, "notes.txt L5", "补办需要十元。"),
    ]


def test_two_files_of_one_name_get_distinct_ids(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "handbook.md", tmp_path / "b" / "handbook.md"
    first.write_text("一。", encoding="utf-8")
    second.write_text("二。", encoding="utf-8")
    passages, _ = K.passages([first, second])
    assert [p.id for p in passages] == ["kb:handbook.md#1", "kb:handbook~2.md#1"]


# ---------------------------------------------------------------------------------------------------
# Splitting CJK text

def test_long_cjk_paragraphs_are_cut_at_sentence_ends_then_clauses_then_words():
    assert K.sentences("他说：“好。”然后走了！真的？End. Next") == [
        "他说：“好。”", "然后走了！", "真的？", "End.", " Next"]
    paragraph = "学生应当在开学两周内到学院办理注册手续，逾期不注册者视为放弃入学资格。图书馆八点开门。"
    assert K.split_long(paragraph, 20) == [
        "学生应当在开学两周内到学院办理注册手续，", "逾期不注册者视为放弃入学资格。", "图书馆八点开门。"]
    # no clause mark within the limit: cut between two jieba words ("注册" "手续"), not inside one
    assert K.split_long("学生应当在开学两周内到学院办理注册手续逾期不注册者视为放弃入学资格", 20) == [
        "学生应当在开学两周内到学院办理注册手续", "逾期不注册者视为放弃入学资格"]


# ---------------------------------------------------------------------------------------------------
# Bad files: one named error each

def error_of(path, **kw) -> K.KnowledgeError:
    with pytest.raises(K.KnowledgeError) as e:
        K.read_document(path, **kw)
    assert str(path) in str(e.value)  # the file is named
    return e.value


def test_a_scanned_pdf_without_a_text_layer_is_refused(tmp_path):
    scan = make_pdf(tmp_path / "scan.pdf", [[], []], image_pages=(1, 2))
    e = error_of(scan)
    assert e.key == "retrieval.error.knowledge_pdf_no_text" and e.params["pages"] == 2
    assert str(e) == f"{scan}: none of its 2 pages has a text layer (a scanned PDF?); run OCR on it first (e.g. " \
                     "ocrmypdf) or export its text"


def test_a_pdf_that_needs_a_password_is_refused(handbook_pdf, tmp_path):
    locked = encrypt_pdf(handbook_pdf, tmp_path / "locked.pdf", user_password="secret")
    e = error_of(locked)
    assert e.key == "retrieval.error.knowledge_pdf_encrypted"
    assert str(e).startswith(f"{locked}: an encrypted PDF that needs a password to open (")


@pytest.mark.parametrize("content", [b"%PDF-1.7\n1 0 obj <<\n", b"not a pdf at all"])
def test_a_damaged_pdf_is_refused(tmp_path, content):
    path = tmp_path / "broken.pdf"
    path.write_bytes(content)
    e = error_of(path)
    assert e.key == "retrieval.error.knowledge_pdf_damaged"
    assert str(e).startswith(f"{path}: not a readable PDF (")


def test_a_pdf_over_the_page_cap_is_refused(handbook_pdf, monkeypatch):
    monkeypatch.setattr(K, "MAX_PDF_PAGES", 3)
    e = error_of(handbook_pdf)
    assert str(e) == f"{handbook_pdf}: 4 pages; a knowledge file has at most 3, split it"


def test_a_pdf_with_too_much_page_content_is_refused_before_its_text_is_extracted(handbook_pdf, monkeypatch):
    from pypdf import PdfReader

    sizes = [K._content_bytes(page) for page in PdfReader(handbook_pdf).pages]
    assert all(size > 0 for size in sizes)
    monkeypatch.setattr(K, "MAX_PDF_CONTENT_BYTES", sizes[0] + sizes[1] - 1)
    extracted = []
    monkeypatch.setattr("pypdf.PageObject.extract_text", lambda page, *a, **k: extracted.append(1) or "x")
    e = error_of(handbook_pdf)
    assert (e.key, e.params["where"]) == ("retrieval.error.knowledge_pdf_too_complex", "p.2")
    assert extracted == [1]  # page 1 only: page 2 was refused before parsing


def test_a_file_with_too_much_text_is_refused_where_it_passes_the_cap(handbook_pdf, monkeypatch):
    monkeypatch.setattr(K, "MAX_TEXT_CHARS", 100)  # page 1's text layer holds 94 characters, page 2's 35
    e = error_of(handbook_pdf)
    assert (e.key, e.params["where"]) == ("retrieval.error.knowledge_too_much_text", "p.2")


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.pdf"
    with big.open("wb") as f:  # sparse: 50 MiB + 1 byte without writing them
        f.truncate(K.MAX_BYTES["pdf"] + 1)
    e = error_of(big)
    assert str(e) == f"{big}: too large for a knowledge file (52428801 bytes; at most 52428800)"
    small = tmp_path / "big.txt"
    small.write_text("宿舍" * 10, encoding="utf-8")
    assert str(error_of(small, max_bytes=50)) == f"{small}: too large for a knowledge file (60 bytes; at most 50)"


def test_a_docx_that_is_not_a_zip_is_refused(tmp_path):
    fake = tmp_path / "fake.docx"
    fake.write_text("这不是 Word 文件", encoding="utf-8")
    assert error_of(fake).key == "retrieval.error.knowledge_docx_not_zip"
    old = tmp_path / "old.docx"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504)  # an OLE file: .doc, or an encrypted .docx
    assert str(error_of(old)) == (f"{old}: an old Word .doc or a password-protected .docx, not a zip file; "
                                  "save it as an unprotected .docx")


def test_a_zip_that_is_not_a_word_document_is_refused(tmp_path):
    path = tmp_path / "sheet.docx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    assert str(error_of(path)) == f"{path}: a zip file but not a Word document (no word/document.xml)"


def test_a_docx_unpacking_past_the_limit_is_refused_from_its_directory(tmp_path, monkeypatch):
    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", "<w/>")
        z.writestr("word/media/zeros.bin", b"\0" * 2_000_000)  # compresses to about 2 KB
    assert path.stat().st_size < 10_000
    monkeypatch.setattr(K, "MAX_DOCX_UNPACKED", 1_000_000)
    opened = []
    monkeypatch.setattr("docx.Document", lambda *a, **k: opened.append(a))  # must never be reached
    e = error_of(path)
    assert e.key == "retrieval.error.knowledge_docx_too_large" and e.params["size"] == 2_000_004
    assert not opened


@pytest.mark.parametrize("name, content, key, message", [
    ("empty.md", b"  \n\n", "retrieval.error.knowledge_empty", "empty.md: empty; a knowledge file needs some text"),
    ("image.txt", b"PNG\x00\x01", "retrieval.error.knowledge_binary",
     "image.txt: looks binary (a NUL byte at offset 3)"),
    ("latin.txt", "caf\xe9".encode("latin-1"), "retrieval.error.knowledge_not_utf8",
     "latin.txt: not UTF-8 text (invalid byte at offset 3)"),
    ("handbook.doc", b"x", "retrieval.error.knowledge_type",
     "handbook.doc: not a knowledge file; expected one of .pdf, .docx, .md, .markdown, .txt"),
])
def test_bad_text_files_and_unknown_types_are_named_with_the_reason(tmp_path, name, content, key, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(R.RetrievalError) as e:  # a KnowledgeError is a RetrievalError: training reports it so
        R.Retriever.build([rec("q", "a")], knowledge_files=[path])
    assert e.value.key == key and message in str(e.value) and str(path) in str(e.value)


def test_every_error_reads_in_chinese_too(tmp_path):
    scan = make_pdf(tmp_path / "扫描.pdf", [[]], image_pages=(1,))
    with pytest.raises(K.KnowledgeError) as e:
        K.read_document(scan, name="扫描.pdf")  # the name messages use (the upload's own name)
    assert e.value.text("zh") == ("扫描.pdf：1 页中没有一页有文字层（扫描版 PDF？）；"
                                  "请先做 OCR（例如 ocrmypdf）或导出文字后再上传")


# ---------------------------------------------------------------------------------------------------
# Sources outside this machine

def test_public_source_names_the_file_and_its_place_never_the_folder():
    assert R.public_source("/srv/runs/uploads/handbook-0123456789ab/handbook.pdf", "p.12") == "handbook.pdf p.12"
    assert R.public_source("C:\\data\\handbook.docx", "§2.3 注册/报到") == "handbook.docx §2.3 注册/报到"
    assert R.public_source("/data/qa.jsonl:7") == "qa.jsonl:7"
    for shown in ("handbook.pdf p.12", "handbook.docx §2.3 注册/报到"):  # a published source stays as it is
        assert R.public_source(shown, shown.split(" ", 1)[1]) == shown


def test_chat_sources_cite_the_page(handbook_pdf):
    from hust_sft.ui.common import sources_markdown

    passage = K.document_passages(K.read_document(handbook_pdf), 60)[2]
    shown = sources_markdown(R.Asked([R.Passage(**{**passage.to_dict(), "relevance": 0.5})], True, False), "en")
    assert "`kb:handbook.pdf#3` (handbook.pdf p.2, " in shown
    assert str(handbook_pdf.parent) not in shown


# ---------------------------------------------------------------------------------------------------
# End to end: a run trained with a knowledge PDF, its index, its published copy and its evaluation

def test_a_run_trained_with_a_knowledge_pdf_cites_its_pages_everywhere(tmp_path, handbook_pdf, tiny_model_dir):
    from qa_data import write_qa_jsonl

    from hust_sft.evaluation import evaluate
    from hust_sft.settings import EvalSettings, RunSettings, set_values
    from hust_sft.training import train

    data = write_qa_jsonl(tmp_path / "qa.jsonl", 8)
    settings = set_values(RunSettings(), {
        "data": str(data), "model": str(tiny_model_dir), "system_prompt": "S", "val_ratio": 0.0,
        "test_ratio": 0.25, "max_length": 256, "batch_size": 4, "max_steps": 1, "retrieval": "answer",
        "passage_max_chars": 60, "knowledge_files": [str(handbook_pdf)]})
    run = tmp_path / "run"
    train(settings, run_dir=run)
    record = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert record["retrieval"]["knowledge_files"] == [{
        "file": str(handbook_pdf), "format": "pdf", "sha256": R._sha256_bytes(handbook_pdf.read_bytes()),
        "chunks": 4, "pages": 4, "pages_without_text": [3]}]
    index = R.for_run(run)
    kb = [p for p in index.passages if p.id.startswith("kb:")]
    assert [R.cite(p) for p in kb] == ["handbook.pdf p.1", "handbook.pdf p.1", "handbook.pdf p.2", "handbook.pdf p.4"]

    published = R.public_index_files(run / R.RETRIEVAL_DIR)
    lines = [json.loads(x) for x in published[R.PASSAGES_FILE].decode().splitlines()]
    assert [(x["id"], x["source"]) for x in lines if x["id"].startswith("kb:")] == [
        ("kb:handbook.pdf#1", "handbook.pdf p.1"), ("kb:handbook.pdf#2", "handbook.pdf p.1"),
        ("kb:handbook.pdf#3", "handbook.pdf p.2"), ("kb:handbook.pdf#4", "handbook.pdf p.4")]
    assert str(handbook_pdf.parent) not in b"".join(published.values()).decode("utf-8", "replace")
    meta = json.loads(published[R.META_FILE])
    assert [k["file"] for k in meta["knowledge_files"]] == ["handbook.pdf"]
    copy = tmp_path / "hub" / R.RETRIEVAL_DIR
    for name, body in published.items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes(body)
    assert [R.cite(p) for p in R.Retriever.load(copy).passages if p.id.startswith("kb:")] == [R.cite(p) for p in kb]

    ood = tmp_path / "ood.jsonl"
    ood.write_text(json.dumps({"conversations": [{"role": "user", "content": "逾期不注册会怎样？"},
                                                 {"role": "assistant", "content": "视为放弃学籍。"}]},
                              ensure_ascii=False) + "\n", encoding="utf-8")
    s = EvalSettings()
    set_values(s, {"model": str(tiny_model_dir), "data": str(data), "val_ratio": 0.0, "test_ratio": 0.25,
                   "max_new_tokens": 2, "batch_size": 4, "bootstrap": 100, "train_sample": 0, "limit": 1,
                   "adapter": [str(run)], "arms": ["tuned+retrieval"], "ood": str(ood),
                   "output": str(tmp_path / "ev")})
    report = evaluate(s)
    row = next(r for r in report.rows if r["qid"] == "ood-0")
    assert row["passages"][0]["id"] == "kb:handbook.pdf#1"
    assert row["passages"][0]["source"] == "handbook.pdf p.1"
    on_disk = (tmp_path / "ev" / "per_example.jsonl").read_text(encoding="utf-8")
    assert '"source": "handbook.pdf p.1"' in on_disk and str(handbook_pdf.parent) not in on_disk


def test_the_help_text_states_the_formats_and_limits():
    from hust_sft.i18n import t

    help_en = t("field.knowledge_files.help", "en")
    for part in ("PDF", "DOCX", "Markdown", "50 MB", "5 MB", "2,000 pages", "handbook.pdf p.12"):
        assert part in help_en
    assert K.MAX_BYTES == {"text": 5 * 2**20, "markdown": 5 * 2**20, "pdf": 50 * 2**20, "docx": 50 * 2**20}
    assert K.MAX_PDF_PAGES == 2000
