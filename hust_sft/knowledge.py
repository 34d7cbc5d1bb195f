"""The handbook's own documents as retrieval passages: PDF, DOCX, Markdown and plain text, each passage with
the place it came from, so a student can open the file there (`handbook.pdf p.12`).

Why a module of its own: reading a document a stranger may have uploaded is parsing hostile input (PDF,
zip, XML) with bounded work, which has nothing to do with ranking passages (`hust_sft.retrieval`).

- `read_document(path)` → `Document`: its sections (heading, location, paragraphs) and, for a PDF, the
  pages without text; a bad file raises `KnowledgeError` (a `RetrievalError`) naming the file and the
  reason, with an i18n key per reason.
- `passages(files, chunk_chars)` → (`Passage`s, `KnowledgeFile`s): what `Retriever.build` indexes
  ("kb:<file name>#<n>", n from 1) and what meta.json records of each file.

Sections and locations (`Passage.location`, shown after the file name by `retrieval.public_source`):

- PDF (`pypdf`, the text layer): one section per page, and a new one at each heading on it: the PDF's
  outline (bookmarks) when it has one, else short lines that look like headings (`第一章…`, `第二节…`,
  `一、…`, `1.2 …`, `Chapter 3`). Location `p.12`: the page, counted from 1 (not its printed label).
  Wrapped lines are joined (no space between CJK characters); page numbers and running headers/footers
  are dropped.
- DOCX (`python-docx`): a paragraph in a `Heading N` / `标题 N` style (or one based on it, or with an
  outline level) starts a section; table rows read as `cell | cell` lines, in document order. Location
  `§2.3 Heading`: the heading's number in the document's heading tree, then its text (clipped to 40
  characters); none before the first heading (the `Title` style names the document, unnumbered).
- Markdown: `#` headings (not inside ``` fences), located `§2.3 Heading` as in a DOCX; before the first
  heading `L7` (the line the passage starts on).
- Plain text: blank-line paragraphs, no headings; located `L7`.

A passage never spans two sections (so never two pages). A section's paragraphs are packed into passages
of at most `chunk_chars` characters; a longer paragraph is cut at sentence ends (`。！？；!?;`, and `. `),
a longer sentence at a clause mark (`，、：,:`) or a space, else between two jieba words, never inside one.

Limits (a hostile file can cost only this much work): a text file at most 5 MiB, a PDF or DOCX at most
50 MiB; a PDF at most 2,000 pages; at most 5,000,000 characters of text per file; a DOCX at most 5,000
zip entries unpacking to at most 200 MiB in all, checked from the zip directory before python-docx opens
it (zipfile never inflates a member past its declared size); at most 256 MiB of decoded page content
(content streams and the forms pages draw) in a PDF, and pypdf's own caps on every decoded stream.

An encrypted PDF is read when the empty password opens it (an "owner password" only restricts printing or
copying; every PDF viewer opens such a file, and many official handbooks are published that way); one that
needs a password is refused, saying so.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hust_sft.passages import DEFAULT_CHUNK_CHARS, Passage, RetrievalError

TEXT_SUFFIXES = (".txt",)
MARKDOWN_SUFFIXES = (".md", ".markdown")
PDF_SUFFIXES = (".pdf",)
DOCX_SUFFIXES = (".docx",)
SUFFIXES = PDF_SUFFIXES + DOCX_SUFFIXES + MARKDOWN_SUFFIXES + TEXT_SUFFIXES
FORMATS = {**dict.fromkeys(PDF_SUFFIXES, "pdf"), **dict.fromkeys(DOCX_SUFFIXES, "docx"),
           **dict.fromkeys(MARKDOWN_SUFFIXES, "markdown"), **dict.fromkeys(TEXT_SUFFIXES, "text")}

MB = 2 ** 20
# A handbook as text is a few hundred KB; as a PDF with its photos 10-30 MB. Gradio's upload limit
# (HUST_SFT_MAX_UPLOAD) is 50 MB by default, so a larger document could not be uploaded anyway.
MAX_BYTES = {"text": 5 * MB, "markdown": 5 * MB, "pdf": 50 * MB, "docx": 50 * MB}
MAX_PDF_PAGES = 2000
# Decoded page content (content streams and the form XObjects a page draws) text extraction may parse, in
# all: a text-heavy handbook page holds 10-50 KB. Bounds a file whose pages all draw one huge stream.
MAX_PDF_CONTENT_BYTES = 256 * MB
MAX_TEXT_CHARS = 5_000_000  # a 700-page Chinese handbook has about 600,000
MAX_DOCX_ENTRIES = 5000
MAX_DOCX_UNPACKED = 200 * MB
MAX_OUTLINE_ENTRIES = 10_000
LOCATION_TITLE_CHARS = 40


class KnowledgeError(RetrievalError):
    """A knowledge file that cannot be read, with the reason's i18n key; `file` names it."""


# ---------------------------------------------------------------------------------------------------
# What a document reads as

@dataclass
class Section:
    """Text under one heading (and, in a PDF, on one page). `paragraphs` are (text, where): `where` is the
    location of a passage starting at that paragraph when the section has none of its own (a line number)."""
    title: str | None
    location: str | None
    paragraphs: list[tuple[str, str | None]] = field(default_factory=list)


@dataclass
class Document:
    """A knowledge file as read: `name` is what messages and passage ids call it (the file name)."""
    path: Path
    name: str
    format: str
    sha256: str
    size: int
    sections: list[Section]
    pages: int | None = None                                   # PDF only
    pages_without_text: list[int] = field(default_factory=list)  # PDF pages (from 1) with no text layer

    @property
    def chars(self) -> int:
        return sum(len(text) for s in self.sections for text, _ in s.paragraphs)


@dataclass
class KnowledgeFile:
    """What meta.json records of one indexed file (`file`: its path here; published as its name only)."""
    file: str
    format: str
    sha256: str
    chunks: int
    pages: int | None = None
    pages_without_text: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {"file": self.file, "format": self.format, "sha256": self.sha256, "chunks": self.chunks}
        if self.pages is not None:
            out.update(pages=self.pages, pages_without_text=list(self.pages_without_text))
        return out


def format_of(path: str | Path) -> str | None:
    """"pdf", "docx", "markdown" or "text" by the file's suffix; None for any other file."""
    return FORMATS.get(Path(path).suffix.lower())


def read_document(path: str | Path, *, name: str | None = None, max_bytes: int | None = None) -> Document:
    """`path` read into sections; KnowledgeError naming it (`name`, default the path) and the reason.

    `max_bytes` replaces the format's size limit (`MAX_BYTES`)."""
    path = Path(path)
    shown = name or str(path)
    kind = format_of(path)
    if kind is None:
        raise KnowledgeError("retrieval.error.knowledge_type", file=shown, suffixes=", ".join(SUFFIXES))
    raw = _read_bytes(path, shown, MAX_BYTES[kind] if max_bytes is None else max_bytes)
    reader = {"pdf": _read_pdf, "docx": _read_docx, "markdown": _read_markdown, "text": _read_text}[kind]
    doc = Document(path=path, name=shown, format=kind, sha256=hashlib.sha256(raw).hexdigest(), size=len(raw),
                   sections=[])
    reader(raw, doc)
    doc.sections = [s for s in doc.sections if s.paragraphs]
    if not doc.sections:
        raise KnowledgeError("retrieval.error.knowledge_empty", file=shown)
    return doc


def _read_bytes(path: Path, shown: str, limit: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise KnowledgeError("retrieval.error.knowledge_too_large", file=shown, size=size, limit=limit)
        with path.open("rb") as f:
            raw = f.read(limit + 1)  # the file may have grown since stat()
    except OSError as e:
        raise KnowledgeError("retrieval.error.knowledge_unreadable", file=shown,
                             reason=e.strerror or type(e).__name__) from None
    if len(raw) > limit:
        raise KnowledgeError("retrieval.error.knowledge_too_large", file=shown, size=len(raw), limit=limit)
    if not raw.strip():
        raise KnowledgeError("retrieval.error.knowledge_empty", file=shown)
    return raw


class _TextBudget:
    """Counts the characters read from one file; past MAX_TEXT_CHARS the file is refused."""

    def __init__(self, doc: Document, limit: int | None = None):
        self.doc, self.limit, self.used = doc, MAX_TEXT_CHARS if limit is None else limit, 0

    def take(self, text: str, where: str) -> str:
        self.used += len(text)
        if self.used > self.limit:
            raise KnowledgeError("retrieval.error.knowledge_too_much_text", file=self.doc.name, limit=self.limit,
                                 where=where)
        return text


# ---------------------------------------------------------------------------------------------------
# Headings, sentences and paragraphs

_CJK = "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_IS_CJK = re.compile(f"[{_CJK}]")
# A sentence: up to its end mark(s) and any closing quotes or brackets after them, or an English ". ".
_SENTENCE = re.compile(r".+?(?:[。！？!?；;…]+[”’」』》）)\]\"']*|\.(?=\s)|$)", re.S)
_CLAUSE_END = re.compile(r"[，、：,:]|\s")


class Numbering:
    """§ numbers of nested headings ("1", "1.2", "2"): whatever levels a document uses, a heading is one
    deeper than the nearest shallower heading before it."""

    def __init__(self):
        self.stack: list[list[int]] = []  # [level, count]

    def next(self, level: int) -> str:
        while self.stack and self.stack[-1][0] > level:
            self.stack.pop()
        if self.stack and self.stack[-1][0] == level:
            self.stack[-1][1] += 1
        else:
            self.stack.append([level, 1])
        return ".".join(str(count) for _, count in self.stack)


def heading_location(number: str, title: str) -> str:
    """"§2.3 Title" (the title clipped to LOCATION_TITLE_CHARS)."""
    title = " ".join(title.split())
    if len(title) > LOCATION_TITLE_CHARS:
        title = title[:LOCATION_TITLE_CHARS - 1] + "…"
    return f"§{number} {title}".rstrip()


def sentences(text: str) -> list[str]:
    """`text` cut after each sentence end, the pieces joined give `text` back."""
    return [m.group(0) for m in _SENTENCE.finditer(text) if m.group(0)]


def _cut_point(text: str, limit: int) -> int:
    """Where to cut `text` (longer than `limit`) at most `limit` characters in: after the last clause mark
    or space in its second half, else at the last jieba word boundary, else at `limit`."""
    head = text[:limit]
    marks = [m.end() for m in _CLAUSE_END.finditer(head)]
    if marks and marks[-1] > limit // 2:
        return marks[-1]
    from hust_sft.passages import quiet_jieba as _jieba

    position, best = 0, 0
    for word in _jieba().cut(text[:limit + 32], HMM=False):  # a window past the limit: the word at it is whole
        if position + len(word) > limit:
            break
        position += len(word)
        best = position
    return max(best or limit, 1)


def split_long(paragraph: str, chunk_chars: int) -> list[str]:
    """A paragraph longer than a chunk cut into pieces of at most `chunk_chars`: between sentences, a
    sentence longer than a chunk at a clause mark or between words (`_cut_point`)."""
    chunk_chars = max(chunk_chars, 1)
    pieces, current = [], ""
    for sentence in sentences(paragraph):
        while len(sentence) > chunk_chars:
            if current:
                pieces.append(current)
                current = ""
            cut = _cut_point(sentence, chunk_chars)
            pieces.append(sentence[:cut])
            sentence = sentence[cut:]
        if len(current) + len(sentence) > chunk_chars:
            pieces.append(current)
            current = ""
        current += sentence
    pieces.append(current)
    return [p.strip() for p in pieces if p.strip()]


def chunk_section(section: Section, chunk_chars: int = DEFAULT_CHUNK_CHARS) -> list[tuple[str, str | None]]:
    """(text, location) of each passage of `section`: its paragraphs packed, in order, into chunks of at most
    `chunk_chars` characters (joined by newlines; 0: DEFAULT_CHUNK_CHARS); a longer paragraph is split
    first (`split_long`)."""
    chunk_chars = chunk_chars or DEFAULT_CHUNK_CHARS
    chunks: list[tuple[str, str | None]] = []
    current: list[str] = []
    where: str | None = None
    for text, at in section.paragraphs:
        for piece in (split_long(text, chunk_chars) if len(text) > chunk_chars else [text]):
            if current and sum(len(c) + 1 for c in current) + len(piece) > chunk_chars:
                chunks.append(("\n".join(current), section.location or where))
                current = []
            if not current:
                where = at
            current.append(piece)
    if current:
        chunks.append(("\n".join(current), section.location or where))
    return chunks


# ---------------------------------------------------------------------------------------------------
# Plain text and Markdown

def _decode_text(raw: bytes, doc: Document) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if b"\x00" in raw:
        raise KnowledgeError("retrieval.error.knowledge_binary", file=doc.name, offset=raw.index(b"\x00"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise KnowledgeError("retrieval.error.knowledge_not_utf8", file=doc.name, offset=e.start) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _blocks(lines: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each blank-line separated block of `lines` ((number, line) pairs)."""
    block: list[str] = []
    first = 0
    for number, line in lines:
        if not line.strip():
            if block:
                yield first, "\n".join(block).strip()
                block = []
            continue
        if not block:
            first = number
        block.append(line.rstrip())
    if block:
        yield first, "\n".join(block).strip()


def _read_text(raw: bytes, doc: Document) -> None:
    text = _decode_text(raw, doc)
    doc.sections = [Section(None, None, [(body, f"L{n}") for n, body in _blocks(enumerate(text.split("\n"), 1))])]


_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


def _read_markdown(raw: bytes, doc: Document) -> None:
    text = _decode_text(raw, doc)
    numbering = Numbering()
    sections = [Section(None, None)]
    pending: list[tuple[int, str]] = []
    fence: str | None = None

    def flush():
        sections[-1].paragraphs.extend((body, f"L{n}") for n, body in _blocks(pending))
        pending.clear()

    for number, line in enumerate(text.split("\n"), 1):
        opened = _MD_FENCE.match(line)
        if fence is None and opened:
            fence = opened.group(1)
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        heading = _MD_HEADING.match(line) if fence is None and not opened else None
        if heading:
            flush()
            title = heading.group(2).strip()
            sections.append(Section(title or None, heading_location(numbering.next(len(heading.group(1))), title)))
            continue
        pending.append((number, line))
    flush()
    doc.sections = sections


# ---------------------------------------------------------------------------------------------------
# PDF

# Headings in a PDF without an outline: chapter/section numbering only ("第3条" is an article, body text).
_PDF_HEADING = re.compile(r"^(?:第[一二三四五六七八九十百千零〇两\d]+[章节篇部编]|[一二三四五六七八九十]+、|"
                          r"(?:chapter|section|part)\s+[\dIVXivx]+\b|\d{1,2}(?:\.\d{1,2}){1,3}\s*[^\d\s.])", re.I)
_NOT_HEADING_END = re.compile(r"(?:[。！？!?；;，,、]|[.…·]{2,}\s*\d+)$")  # a sentence; a contents line
_PARAGRAPH_END = re.compile(r"[。！？!?：:；;][”’」』）)\"']*$")
_LIST_ITEM = re.compile(r"^(?:[（(][一二三四五六七八九十\d]{1,3}[)）]|[一二三四五六七八九十]+、|\d{1,2}[.、．)]\s*\S|"
                        r"[•·●○■□▪◆◇▶➢✓*\-–]\s*\S)")
_PAGE_NUMBER = re.compile(r"^[-–—\s]*(?:第\s*)?\d{1,4}\s*(?:页|/\s*\d{1,4}|of\s+\d{1,4})?[-–—\s]*$"
                          r"|^page\s+\d{1,4}\b.*$", re.I)


def _is_pdf_heading(line: str) -> bool:
    return len(line) <= 40 and bool(_PDF_HEADING.match(line)) and not _NOT_HEADING_END.search(line)


def _join_line(text: str, line: str) -> str:
    """A wrapped line appended to the paragraph it continues: no space between CJK characters."""
    if not text:
        return line
    if _IS_CJK.match(text[-1]) or _IS_CJK.match(line[0]):
        return text + line
    return f"{text} {line}"


def _pdf_paragraphs(lines: list[str]) -> list[str]:
    """Wrapped lines joined back into paragraphs: one ends at a line ending a sentence or before a list item."""
    out, current = [], ""
    for line in lines:
        if current and _LIST_ITEM.match(line):
            out.append(current)
            current = ""
        current = _join_line(current, line)
        if _PARAGRAPH_END.search(line):
            out.append(current)
            current = ""
    return out + ([current] if current else [])


def _edge_key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split()))


def _strip_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Pages without their page numbers and running headers/footers: a line among the first or last two of
    a page that is a page number, or that (digits aside) opens or closes at least half the pages (4 or more)."""
    with_text = [p for p in pages if p]
    counts: dict[str, int] = {}
    for lines in with_text:
        for key in {_edge_key(x) for x in lines[:2] + lines[-2:]}:
            counts[key] = counts.get(key, 0) + 1
    threshold = max(4, (len(with_text) + 1) // 2)
    running = {k for k, n in counts.items() if n >= threshold}
    out = []
    for lines in pages:
        lines = list(lines)
        for edge in (0, -1):
            for _ in range(2):
                if lines and (_PAGE_NUMBER.match(lines[edge]) or _edge_key(lines[edge]) in running):
                    lines.pop(edge)
        out.append(lines)
    return out


@contextlib.contextmanager
def _quiet_pypdf():
    """pypdf logs a warning per oddity of a damaged file; the error (or the report) says what matters."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _damaged(doc: Document, error: BaseException) -> KnowledgeError:
    return KnowledgeError("retrieval.error.knowledge_pdf_damaged", file=doc.name,
                          reason=f"{type(error).__name__}: {error}"[:200])


def _outline(reader, doc: Document) -> dict[int, list[str]]:
    """Page index → the titles of the outline (bookmark) entries pointing at it, in outline order."""
    out: dict[int, list[str]] = {}
    seen = 0

    def walk(items):
        nonlocal seen
        for item in items:
            if seen >= MAX_OUTLINE_ENTRIES:
                return
            if isinstance(item, list):
                walk(item)
                continue
            seen += 1
            try:
                page = reader.get_destination_page_number(item)
                title = " ".join(str(item.title or "").split())
            except Exception:  # noqa: BLE001 - a broken bookmark is skipped, never the document
                continue
            if title and page is not None and page >= 0:
                out.setdefault(page, []).append(title)

    try:
        walk(reader.outline)
    except Exception:  # noqa: BLE001 - an unreadable outline: headings from the text instead
        return {}
    return out


def _find_line(lines: list[str], title: str, start: int) -> int | None:
    """The index of the line at or after `start` that is the outline title `title` (spaces ignored)."""
    want = "".join(title.split())
    for i in range(start, len(lines)):
        have = "".join(lines[i].split())
        if have and (have == want or (len(have) >= 4 and want.startswith(have)) or have.startswith(want)):
            return i
    return None


def _content_bytes(page) -> int:
    """The decoded size of what extracting `page`'s text parses: its content streams and the form
    XObjects it draws (their decoded data is cached, so extraction does not decode them again)."""
    from pypdf.generic import ArrayObject, StreamObject

    contents = page.get("/Contents")
    contents = contents.get_object() if contents is not None else None
    streams = [c.get_object() for c in contents] if isinstance(contents, ArrayObject) else [contents]
    resources = page.get("/Resources")
    resources = resources.get_object() if resources is not None else None
    xobjects = resources.get("/XObject") if hasattr(resources, "get") else None
    xobjects = xobjects.get_object() if xobjects is not None else None
    if hasattr(xobjects, "values"):
        streams += [x.get_object() for x in xobjects.values()]
    return sum(len(s.get_data()) for s in streams
               if isinstance(s, StreamObject) and (s is contents or s.get("/Subtype") in (None, "/Form")))


def _read_pdf(raw: bytes, doc: Document) -> None:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    head = raw[:1024]
    if b"%PDF-" not in head:
        raise _damaged(doc, ValueError("no %PDF- header"))
    with _quiet_pypdf():
        try:
            reader = PdfReader(io.BytesIO(raw), strict=False)
            if reader.is_encrypted:
                try:
                    opened = reader.decrypt("")
                except DependencyError as e:  # AES without the cryptography package
                    raise KnowledgeError("retrieval.error.knowledge_pdf_encrypted", file=doc.name,
                                         reason=str(e)[:200]) from None
                if not opened:
                    raise KnowledgeError("retrieval.error.knowledge_pdf_encrypted", file=doc.name,
                                         reason="the empty password does not open it")
            count = len(reader.pages)
        except KnowledgeError:
            raise
        except FileNotDecryptedError as e:
            raise KnowledgeError("retrieval.error.knowledge_pdf_encrypted", file=doc.name,
                                 reason=str(e)[:200]) from None
        except Exception as e:  # noqa: BLE001 - pypdf on a damaged or hostile file may raise nearly anything
            raise _damaged(doc, e) from None
        if count == 0:
            raise KnowledgeError("retrieval.error.knowledge_empty", file=doc.name)
        if count > MAX_PDF_PAGES:
            raise KnowledgeError("retrieval.error.knowledge_pdf_too_many_pages", file=doc.name, pages=count,
                                 limit=MAX_PDF_PAGES)
        budget = _TextBudget(doc)
        pages: list[list[str]] = []
        content = 0
        for index in range(count):
            try:
                page = reader.pages[index]
                content += _content_bytes(page)
            except Exception:  # noqa: BLE001 - a page whose content cannot be decoded has no text
                pages.append([])
                continue
            if content > MAX_PDF_CONTENT_BYTES:
                raise KnowledgeError("retrieval.error.knowledge_pdf_too_complex", file=doc.name,
                                     limit=MAX_PDF_CONTENT_BYTES, where=f"p.{index + 1}")
            try:
                text = page.extract_text() or ""
            except Exception:  # noqa: BLE001 - one undecodable page is reported, the others still read
                text = ""
            text = unicodedata.normalize("NFC", budget.take(text, f"p.{index + 1}"))
            pages.append([" ".join(line.split()) for line in text.splitlines() if line.strip()])
        outline = _outline(reader, doc)
    pages = _strip_running_lines(pages)
    doc.pages = count
    # No text but a page number or running header is no text: a scanned page, a photo, a blank page.
    doc.pages_without_text = [i + 1 for i, lines in enumerate(pages) if not lines]
    if len(doc.pages_without_text) == count:
        raise KnowledgeError("retrieval.error.knowledge_pdf_no_text", file=doc.name, pages=count)
    doc.sections = _pdf_sections(pages, outline)


def _pdf_sections(pages: list[list[str]], outline: dict[int, list[str]]) -> list[Section]:
    """One section per page, and a new one at each heading on it (the outline's, else `_is_pdf_heading`); a
    heading's title carries over to the following pages until the next heading."""
    sections: list[Section] = []
    title: str | None = None
    for index, lines in enumerate(pages):
        location = f"p.{index + 1}"
        cuts: list[tuple[int, str, bool]] = []  # (line index, title, whether that line is the heading itself)
        if outline:
            start = 0
            for heading in outline.get(index, []):
                found = _find_line(lines, heading, start)
                cuts.append((start if found is None else found, heading, found is not None))
                start = start if found is None else found + 1
        else:
            cuts = [(i, line, True) for i, line in enumerate(lines) if _is_pdf_heading(line)]
        begin = 0
        for at, heading, is_line in cuts + [(len(lines), None, False)]:
            if at > begin:
                sections.append(Section(title, location, [(p, None) for p in _pdf_paragraphs(lines[begin:at])]))
            if heading is None:
                break
            title = heading
            begin = max(begin, at + 1 if is_line else at)
    return sections


# ---------------------------------------------------------------------------------------------------
# DOCX

_DOCX_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d)$", re.I)
_DOCX_TITLE_STYLE = re.compile(r"^(?:title|标题)$", re.I)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Word 97-2003 .doc, and Office's encrypted .docx


def _check_docx_zip(raw: bytes, doc: Document) -> None:
    """Refuse what is not a reasonable .docx from its zip directory alone, before anything is inflated."""
    if raw.startswith(_OLE_MAGIC):
        raise KnowledgeError("retrieval.error.knowledge_docx_ole", file=doc.name)
    stream = io.BytesIO(raw)
    if not zipfile.is_zipfile(stream):
        raise KnowledgeError("retrieval.error.knowledge_docx_not_zip", file=doc.name)
    try:
        with zipfile.ZipFile(stream) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise KnowledgeError("retrieval.error.knowledge_docx_damaged", file=doc.name,
                             reason=f"{type(e).__name__}: {e}"[:200]) from None
    unpacked = sum(i.file_size for i in infos)
    if len(infos) > MAX_DOCX_ENTRIES or unpacked > MAX_DOCX_UNPACKED:
        raise KnowledgeError("retrieval.error.knowledge_docx_too_large", file=doc.name, size=unpacked,
                             entries=len(infos), limit=MAX_DOCX_UNPACKED, max_entries=MAX_DOCX_ENTRIES)
    if "word/document.xml" not in {i.filename for i in infos}:
        raise KnowledgeError("retrieval.error.knowledge_docx_not_word", file=doc.name)


def _docx_level(paragraph) -> int | None:
    """The heading level of a paragraph (0 for the Title style), else None: by its style or a style it is
    based on, or by a direct outline level."""
    from docx.oxml.ns import qn

    style = paragraph.style
    for _ in range(8):  # a based-on chain is short; a cycle in a hostile file must not loop
        if style is None:
            break
        name = (style.name or "").strip()
        matched = _DOCX_HEADING_STYLE.match(name)
        if matched:
            return int(matched.group(1))
        if _DOCX_TITLE_STYLE.match(name):
            return 0
        style = style.base_style
    ppr = paragraph._p.pPr
    outline = ppr.find(qn("w:outlineLvl")) if ppr is not None else None
    if outline is not None:
        value = outline.get(qn("w:val"))
        if value is not None and value.isdigit() and int(value) < 9:
            return int(value) + 1
    return None


def _row_text(row) -> str:
    """A table row as "cell | cell": a merged cell (python-docx repeats it) once, empty cells left out."""
    cells: list[str] = []
    for cell in row.cells:
        text = " ".join(cell.text.split())
        if text and (not cells or cells[-1] != text):
            cells.append(text)
    return " | ".join(cells)


def _read_docx(raw: bytes, doc: Document) -> None:
    _check_docx_zip(raw, doc)
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(raw))
        blocks = list(document.iter_inner_content())
    except Exception as e:  # noqa: BLE001 - python-docx on a damaged or hostile file may raise nearly anything
        raise KnowledgeError("retrieval.error.knowledge_docx_damaged", file=doc.name,
                             reason=f"{type(e).__name__}: {e}"[:200]) from None
    budget = _TextBudget(doc)
    numbering = Numbering()
    sections = [Section(None, None)]
    for n, block in enumerate(blocks, 1):
        if isinstance(block, Table):
            try:
                rows = [_row_text(row) for row in block.rows]
            except Exception:  # noqa: BLE001 - a malformed table (e.g. a bad grid span) is left out
                continue
            sections[-1].paragraphs.extend((budget.take(r, f"block {n}"), None) for r in rows if r)
            continue
        text = budget.take(block.text.strip(), f"block {n}")
        if not text:
            continue
        level = _docx_level(block)
        if level is not None:
            title = " ".join(text.split())
            # The Title style names the document, not a numbered part of it.
            sections.append(Section(title, heading_location(numbering.next(level), title) if level else None))
        else:
            sections[-1].paragraphs.append((text, None))
    doc.sections = sections


# ---------------------------------------------------------------------------------------------------
# Passages

def document_passages(doc: Document, chunk_chars: int = DEFAULT_CHUNK_CHARS, name: str | None = None,
                      source: str | None = None) -> list[Passage]:
    """The passages "kb:<name>#<n>" (n from 1) of `doc`, each with its section's title and location;
    `source` (default the document's path) is where the index says it came from."""
    name = name or doc.path.name
    out: list[Passage] = []
    for section in doc.sections:
        for text, location in chunk_section(section, chunk_chars):
            body = f"{section.title}：{text}" if section.title else text
            out.append(Passage(id=f"kb:{name}#{len(out) + 1}", text=body, source=source or str(doc.path),
                               title=section.title, location=location))
    return out


def passages(files: Iterable[str | Path],
             chunk_chars: int = DEFAULT_CHUNK_CHARS) -> tuple[list[Passage], list[KnowledgeFile]]:
    """The passages of every knowledge file, in the order given, and what was read of each."""
    out: list[Passage] = []
    read: list[KnowledgeFile] = []
    seen: dict[str, int] = {}
    for path in files:
        path = Path(path)
        doc = read_document(path)
        name = path.name
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:  # two files with one name: ids stay unique and stable
            name = f"{path.stem}~{seen[name]}{path.suffix}"
        found = document_passages(doc, chunk_chars, name=name)
        out += found
        read.append(KnowledgeFile(file=str(path), format=doc.format, sha256=doc.sha256, chunks=len(found),
                                  pages=doc.pages, pages_without_text=doc.pages_without_text))
    return out, read
