"""What a loaded conversation is, and how problems with the input file are reported.

Every problem is an `Issue` that names the file, the line (or record number in a JSON array file), the
field and what was expected, so a user can fix the file instead of guessing. Texts come from
`hust_sft.i18n` (keys `data.issue.<code>`); `str()` uses the default language, `.text(lang)` any other.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hust_sft.errors import LocalizedError
from hust_sft.i18n import DEFAULT_LANG, t

ROLES = ("system", "user", "assistant")


@dataclass
class Record:
    """One conversation: `messages` alternate user/assistant after an optional first system turn."""
    messages: list[dict[str, str]]
    source: str = ""
    line: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def question(self) -> str:
        return next(m["content"] for m in self.messages if m["role"] == "user")

    @property
    def answer(self) -> str:
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "assistant")


@dataclass
class Issue:
    """One problem at one place. `unit` is "record" when `line` counts records of a JSON array."""
    source: str
    line: int
    field: str
    code: str
    message: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    unit: str = "line"

    def __post_init__(self):
        if not self.message:
            self.message = self.describe(DEFAULT_LANG)

    def describe(self, lang: str = DEFAULT_LANG) -> str:
        """The message alone, in `lang` (a message given explicitly is returned as is)."""
        key = f"data.issue.{self.code}"
        try:
            text = t(key, lang, **self.params)
        except KeyError:
            return self.message
        if self.unit == "record":
            text = f"{t('data.where.record', lang, n=self.line)}: {text}"
        return text

    def text(self, lang: str = DEFAULT_LANG) -> str:
        return f"{self.source}:{self.line}: {self.field}: {self.describe(lang)}"

    def __str__(self) -> str:
        return self.text(DEFAULT_LANG)

    def to_dict(self, lang: str = DEFAULT_LANG) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "unit": self.unit, "field": self.field,
                "code": self.code, "message": self.describe(lang)}


@dataclass
class ValidationReport:
    """What `load_records` read, kept and rejected; saved into run.json and shown in the UI."""
    source: str
    format: str = ""
    total: int = 0
    kept: int = 0
    skipped: int = 0
    duplicates: int = 0
    issues: list[Issue] = field(default_factory=list)
    # (line of the dropped copy, line of the kept first occurrence)
    duplicate_lines: list[tuple[int, int]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """Number of issues per code, most frequent first."""
        return dict(Counter(i.code for i in self.issues).most_common())

    def to_dict(self, lang: str = DEFAULT_LANG) -> dict[str, Any]:
        return {"source": self.source, "format": self.format, "total": self.total, "kept": self.kept,
                "skipped": self.skipped, "duplicates": self.duplicates, "counts": self.counts,
                "issues": [i.to_dict(lang) for i in self.issues],
                "duplicate_lines": [list(p) for p in self.duplicate_lines]}

    def summary(self, lang: str = DEFAULT_LANG, max_issues: int = 20) -> str:
        lines = [t("data.report.summary", lang, source=self.source, format=self.format or "?",
                   total=self.total, kept=self.kept, skipped=self.skipped, duplicates=self.duplicates)]
        if self.issues:
            counts = ", ".join(f"{code} × {n}" for code, n in self.counts.items())
            lines.append(t("data.report.counts", lang, counts=counts))
            lines.extend(i.text(lang) for i in self.issues[:max_issues])
            if len(self.issues) > max_issues:
                lines.append(t("data.report.more", lang, n=len(self.issues) - max_issues))
        return "\n".join(lines)


class DataError(LocalizedError, ValueError):
    """The data cannot be used as is. The message names the file and lists every issue found (`issues`)."""

    def __init__(self, key: str, issues: list[Issue] | tuple = (), **params):
        self.issues = list(issues)
        super().__init__(key, **params)

    def text(self, lang: str = DEFAULT_LANG) -> str:
        return "\n".join([super().text(lang)] + [i.text(lang) for i in self.issues])
