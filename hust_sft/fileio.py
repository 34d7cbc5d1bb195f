"""Writing files that other processes read while they change (run.json, settings.json, .active.json).

A reader must see the old file or the new one, never half of one: write a temporary file beside the
target, then `os.replace` it, which is atomic on POSIX and Windows.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path


def write_text_atomic(path: str | Path, text: str, *, encoding: str = "utf-8", newline: str | None = None) -> None:
    """Replace `path` with `text` in one step; the temporary file never outlives a failed write."""
    path = Path(path)
    # pid + thread: two writers of the same file (two processes, or two UI threads) never share a temp file
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with open(tmp, "w", encoding=encoding, newline=newline) as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Replace `path` with `data` in one step (a binary file: retrieval's embeddings.npy)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | Path, data) -> None:
    """`data` as indented UTF-8 JSON; values JSON has no type for (paths, dtypes) are written as str."""
    write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=2, default=str))
