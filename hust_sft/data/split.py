"""Train/validation/test assignment that depends only on the question text.

A question's split is a pure function of its normalised text, so adding records to the file, reordering
it or rerunning never moves a question between splits, and repeated or multi-turn variants of the same
first question always land together (no test question leaks into training). sha256, not Python's
`hash()`, which is salted per process.
"""
from __future__ import annotations

import hashlib
import unicodedata

from hust_sft.data.records import DataError, Record

SPLITS = ("train", "validation", "test")


def normalise_question(question: str) -> str:
    """NFKC (full-width → half-width), trimmed, runs of whitespace collapsed to one space."""
    return " ".join(unicodedata.normalize("NFKC", question).split())


def question_position(question: str) -> float:
    """The question's fixed point in [0, 1): the first 8 bytes of sha256 of its normalised text."""
    digest = hashlib.sha256(normalise_question(question).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def check_ratios(val_ratio: float, test_ratio: float) -> None:
    if val_ratio < 0 or test_ratio < 0 or val_ratio + test_ratio >= 1:
        raise DataError("data.error.ratios", val=val_ratio, test=test_ratio)


def split_of(question: str, val_ratio: float, test_ratio: float) -> str:
    """"test" below test_ratio, "validation" up to test_ratio + val_ratio, else "train"."""
    check_ratios(val_ratio, test_ratio)
    x = question_position(question)
    if x < test_ratio:
        return "test"
    if x < test_ratio + val_ratio:
        return "validation"
    return "train"


def split_records(records: list[Record], val_ratio: float, test_ratio: float) -> dict[str, list[Record]]:
    """Records by split, each list in file order."""
    check_ratios(val_ratio, test_ratio)
    splits: dict[str, list[Record]] = {name: [] for name in SPLITS}
    for record in records:
        splits[split_of(record.question, val_ratio, test_ratio)].append(record)
    return splits
