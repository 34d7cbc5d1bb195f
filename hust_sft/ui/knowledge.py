"""Train tab: the owner's knowledge files (PDF, DOCX, Markdown, text) uploaded, checked and kept.

Each upload is read at once (`hust_sft.knowledge.read_document`), so a bad file is named with its reason
now rather than when training starts; a good one is copied out of Gradio's temp cache into
runs/uploads/<name>-<12 hex>/<name> (a fresh folder per upload: never replaced, and its passages keep
citing the file's own name, `handbook.pdf p.12`) and added to the `knowledge_files` setting. On a public
Space only the owner may upload (`access.visitor_may(..., "upload")`, decided on the server).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from hust_sft import access, knowledge
from hust_sft import settings as S
from hust_sft.i18n import t
from hust_sft.ui.common import AppConfig, Ctx, lang_of, tr

MAX_PAGES_LISTED = 20


@dataclass
class KnowledgeUpload:
    files: Any   # gr.File, several files
    report: Any  # gr.Markdown: what each upload gives, or why it is not used


def build(texts) -> KnowledgeUpload:
    """The upload box and its report (inside the retrieval settings, under the knowledge files box)."""
    files = texts.make(gr.File, label=tr("ui.train.knowledge_upload"), file_types=list(knowledge.SUFFIXES),
                       file_count="multiple", type="filepath", elem_id="knowledge-upload")
    return KnowledgeUpload(files=files, report=gr.Markdown(elem_id="knowledge-report"))


def kept_path(config: AppConfig, name: str) -> Path:
    """runs/uploads/<name>-<12 hex>/<name>: a new folder for every upload (`access.unique_upload_path`)."""
    unique = access.unique_upload_path(config, name)
    stem = unique.stem[:-13]  # without "-<12 hex>"
    folder = unique.with_suffix("")
    folder.mkdir()
    return folder / f"{stem}{unique.suffix}"


def chunk_chars_of(value: Any) -> int:
    """The passage size the widget holds (what training chunks to), within the setting's range; 0 (derived
    from the data when training starts), or no number, counts at the index's default chunk size."""
    from hust_sft.retrieval import DEFAULT_CHUNK_CHARS

    meta = {n: f for n, f, _ in S.fields_of(S.RetrievalSettings)}["passage_max_chars"].metadata
    try:
        size = int(float(value))
    except (TypeError, ValueError):
        size = 0
    return min(max(size, meta["min"]), meta["max"]) or DEFAULT_CHUNK_CHARS


def describe(doc: knowledge.Document, passages: int, lang: str) -> str:
    """One report line: pages (PDF) or characters, passages, and the pages without a text layer."""
    if doc.pages is None:
        return t("ui.train.knowledge_doc_ok", lang, file=doc.name, passages=passages, chars=doc.chars)
    line = t("ui.train.knowledge_pdf_ok", lang, file=doc.name, pages=doc.pages, passages=passages)
    empty = doc.pages_without_text
    if empty:
        listed = ", ".join(str(p) for p in empty[:MAX_PAGES_LISTED]) + (" …" if len(empty) > MAX_PAGES_LISTED else "")
        line += t("ui.train.knowledge_pages_without_text", lang, count=len(empty), pages=listed)
    return line


def upload(config: AppConfig, profile: Any, lang: str, files: list[str] | None, current: list[str] | None,
           chunk_chars: Any) -> tuple[list[str], str]:
    """(the knowledge_files value with the good uploads added, the report). Refused visitors change nothing."""
    lang = lang_of(lang)
    current = [str(f) for f in current or []]
    refused = access.visitor_may(config, profile, "upload", lang)
    if refused:
        return current, refused
    size = chunk_chars_of(chunk_chars)
    lines, added = [], []
    derived = not _number(chunk_chars)
    for path in files or []:
        name = Path(path).name
        try:
            doc = knowledge.read_document(path, name=name)
        except knowledge.KnowledgeError as e:
            lines.append(t("ui.train.knowledge_bad", lang, error=access.public_text(config, e.text(lang))))
            continue
        dest = kept_path(config, name)
        shutil.copyfile(path, dest)
        added.append(str(dest))
        lines.append(describe(doc, len(knowledge.document_passages(doc, size)), lang))
    report = "\n".join(f"- {line}" for line in lines)
    if added and derived:  # the passage size is derived from the data at training: the count is at the default
        report += "\n\n" + t("ui.train.knowledge_chunk_default", lang, chars=size)
    return current + added, report


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def wire(ctx: Ctx, box: KnowledgeUpload, widgets: dict[str, Any]) -> None:
    """Upload → checked copies added to the knowledge files box, and the report (API: /knowledge_upload)."""
    config = ctx.config

    def on_upload(profile: gr.OAuthProfile | None, lang_value, files, current, chunk_chars):
        # The box is emptied: what was kept is in the knowledge files box, and a file added later to a box
        # still holding these would hand them over (and keep them) again.
        return (*upload(config, profile, lang_value, files, current, chunk_chars), None)

    box.files.upload(on_upload, [ctx.lang, box.files, widgets["knowledge_files"], widgets["passage_max_chars"]],
                     [widgets["knowledge_files"], box.report, box.files], api_name="knowledge_upload")
