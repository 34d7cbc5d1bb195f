"""Data for a run: fetch the source, validate its records, split them by question.

`load_data` is what training, evaluation and the UI call; the bundle's sha256 and report go into
run.json so a run names exactly which bytes it learnt from.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from hust_sft.data.formats import load_records
from hust_sft.data.records import DataError, Issue, Record, ValidationReport
from hust_sft.data.sources import DataSourceError, fetch, is_url_source, modelscope_url, source_kind
from hust_sft.data.split import SPLITS, split_of, split_records
from hust_sft.settings import DataSettings

__all__ = ["DataBundle", "DataError", "DataSourceError", "Issue", "Record", "ValidationReport", "fetch",
           "file_sha256", "is_url_source", "load_data", "load_records", "modelscope_url", "preview",
           "source_kind", "split_of", "split_records"]


@dataclass
class DataBundle:
    path: Path
    sha256: str
    records: list[Record]
    splits: dict[str, list[Record]]
    report: ValidationReport
    source: str = ""

    @property
    def split_sizes(self) -> dict[str, int]:
        return {name: len(self.splits.get(name, [])) for name in SPLITS}

    def to_dict(self) -> dict:
        """The part of run.json that says which data a run used."""
        return {"source": self.source, "path": str(self.path), "sha256": self.sha256,
                "split_sizes": self.split_sizes, "validation": self.report.to_dict()}


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_data(settings: DataSettings, *, cache_dir: str | Path | None = None,
              allow_loopback: bool = False) -> DataBundle:
    """fetch → load_records(strict=settings.strict) → split_records; raises DataSourceError/DataError.
    `allow_loopback` is for tests only (see `fetch`)."""
    path = fetch(settings.data, data_file=settings.data_file, data_split=settings.data_split,
                 cache_dir=cache_dir, allow_loopback=allow_loopback)
    source = settings.data if not settings.data_file else f"{settings.data}/{settings.data_file}"
    # A URL's body is not quoted back (its keys could be an internal service's answer).
    records, report = load_records(path, strict=settings.strict, source=source,
                                   quote_keys=source_kind(settings.data) != "url")
    splits = split_records(records, settings.val_ratio, settings.test_ratio)
    if not splits["train"]:
        raise DataError("data.error.no_train", source=source, val=settings.val_ratio, test=settings.test_ratio)
    return DataBundle(path=Path(path), sha256=file_sha256(path), records=records, splits=splits,
                      report=report, source=source)


def preview(bundle: DataBundle, n: int = 5) -> list[dict[str, str]]:
    """The first `n` records in file order, with the split each one went to (for the UI table)."""
    split_by_id = {id(r): name for name, records in bundle.splits.items() for r in records}
    return [{"question": r.question, "answer": r.answer, "split": split_by_id[id(r)]}
            for r in bundle.records[:n]]
