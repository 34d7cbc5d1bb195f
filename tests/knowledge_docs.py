"""Small knowledge documents made at test time: PDFs with a real CJK text layer (reportlab's built-in
STSong-Light CID font: no font file, nothing from the system), image-only and encrypted PDFs (pypdf's
writer), and DOCX files (python-docx)."""
from __future__ import annotations

import io
from pathlib import Path


def make_pdf(path: Path, pages: list[list[str]], outline: list[tuple[str, int]] = (),
             image_pages: tuple[int, ...] = ()) -> Path:
    """A PDF whose page i (from 1) shows the lines `pages[i-1]` top down, in a CJK font; `outline`:
    (title, page) bookmarks; `image_pages`: pages that hold only a picture (no text layer)."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    c = canvas.Canvas(str(path), invariant=1)  # invariant: the same bytes on every run
    for number, lines in enumerate(pages, 1):
        if number in image_pages:
            c.drawImage(ImageReader(_picture()), 72, 500, width=200, height=100)
        c.setFont("STSong-Light", 11)
        for row, line in enumerate(lines):
            c.drawString(60, 780 - 16 * row, line)
        for i, (title, page) in enumerate(outline):
            if page == number:
                c.bookmarkPage(f"o{i}")
                c.addOutlineEntry(title, f"o{i}", level=0)
        c.showPage()
    c.save()
    return path


def _picture():
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (200, 100), "white")
    ImageDraw.Draw(image).rectangle((20, 20, 180, 80), outline="black", fill="gray")
    return image


def encrypt_pdf(src: Path, dest: Path, user_password: str, owner_password: str = "owner") -> Path:
    """`src` encrypted with AES-128 (`user_password` "" opens it without a password)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(src))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-128")
    with dest.open("wb") as f:
        writer.write(f)
    return dest


def make_docx(path: Path, blocks: list[tuple[str, object]]) -> Path:
    """A DOCX of `blocks`: ("h1".."h9", text) headings, ("title", text), ("p", text) paragraphs,
    ("table", [[cell, ...], ...]) tables, in order."""
    import docx

    document = docx.Document()
    for kind, value in blocks:
        if kind == "title":
            document.add_heading(value, level=0)
        elif kind.startswith("h"):
            document.add_heading(value, level=int(kind[1:]))
        elif kind == "table":
            table = document.add_table(rows=len(value), cols=len(value[0]))
            for r, row in enumerate(value):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = cell
        else:
            document.add_paragraph(value)
    buffer = io.BytesIO()
    document.save(buffer)
    path.write_bytes(buffer.getvalue())
    return path
