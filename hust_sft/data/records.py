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
# Issues (and duplicate line pairs) a report keeps; the rest are only counted. One object per bad line
# turned a 2 MB upload into 810 MB of memory and an 81 MB message.
MAX_ISSUES = 200


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


class IssueLog:
    """Collects issues in line order, keeping the first `limit` and counting every one by code."""

    def __init__(self, limit: int = MAX_ISSUES):
        self.limit, self.kept, self.total, self.counts = limit, [], 0, Counter()

    def append(self, issue: Issue) -> None:
        self.total += 1
        self.counts[issue.code] += 1
        if len(self.kept) < self.limit:
            self.kept.append(issue)

    def extend(self, issues) -> None:
        for issue in issues:
            self.append(issue)

    def __len__(self) -> int:
        return self.total

    def __bool__(self) -> bool:
        return self.total > 0

    @property
    def dropped(self) -> int:
        return self.total - len(self.kept)

    @classmethod
    def merged(cls, *logs: IssueLog, limit: int = MAX_ISSUES) -> IssueLog:
        """One log of the first `limit` issues by line of several logs, each already in line order."""
        out = cls(limit)
        out.kept = sorted((i for log in logs for i in log.kept), key=lambda i: i.line)[:limit]
        out.total = sum(log.total for log in logs)
        out.counts = sum((log.counts for log in logs), Counter())
        return out


@dataclass
class ValidationReport:
    """What `load_records` read, kept and rejected; saved into run.json and shown in the UI.

    `issues` holds the first MAX_ISSUES issues by line; `dropped_issues` counts the others and
    `issue_counts` counts all of them by code."""
    source: str
    format: str = ""
    total: int = 0
    kept: int = 0
    skipped: int = 0
    duplicates: int = 0
    issues: list[Issue] = field(default_factory=list)
    # (line of the dropped copy, line of the kept first occurrence), the first MAX_ISSUES of them
    duplicate_lines: list[tuple[int, int]] = field(default_factory=list)
    dropped_issues: int = 0
    issue_counts: dict[str, int] = field(default_factory=dict)

    @property
    def total_issues(self) -> int:
        return len(self.issues) + self.dropped_issues

    @property
    def counts(self) -> dict[str, int]:
        """Number of issues per code (dropped ones included), most frequent first."""
        counter = Counter(self.issue_counts) if self.issue_counts else Counter(i.code for i in self.issues)
        return dict(counter.most_common())

    def to_dict(self, lang: str = DEFAULT_LANG) -> dict[str, Any]:
        return {"source": self.source, "format": self.format, "total": self.total, "kept": self.kept,
                "skipped": self.skipped, "duplicates": self.duplicates, "counts": self.counts,
                "issues": [i.to_dict(lang) for i in self.issues], "dropped_issues": self.dropped_issues,
                "duplicate_lines": [list(p) for p in self.duplicate_lines]}

    def summary_lines(self, lang: str = DEFAULT_LANG, limit: int = 20) -> list[str]:
        """What was read and kept, the problems by kind, then `file:line: field: reason` for the first
        `limit` skipped records and a count of the rest."""
        lines = [t("data.report.summary", lang, source=self.source, format=self.format or "?",
                   total=self.total, kept=self.kept, skipped=self.skipped, duplicates=self.duplicates)]
        if self.total_issues:
            counts = ", ".join(f"{code} × {n}" for code, n in self.counts.items())
            lines.append(t("data.report.counts", lang, counts=counts))
            lines.extend(i.text(lang) for i in self.issues[:limit])
            shown = min(limit, len(self.issues))
            if self.total_issues > shown:
                lines.append(t("data.report.more", lang, n=self.total_issues - shown))
        return lines

    def summary(self, lang: str = DEFAULT_LANG, max_issues: int = 20) -> str:
        return "\n".join(self.summary_lines(lang, max_issues))


class DataError(LocalizedError, ValueError):
    """The data cannot be used as is. The message names the file and lists every issue found (`issues`)."""

    def __init__(self, key: str, issues: list[Issue] | tuple | IssueLog = (), **params):
        if isinstance(issues, IssueLog):
            self.issues, self.dropped_issues = list(issues.kept), issues.dropped
        else:
            self.issues, self.dropped_issues = list(issues)[:MAX_ISSUES], max(0, len(issues) - MAX_ISSUES)
        super().__init__(key, **params)

    def text(self, lang: str = DEFAULT_LANG) -> str:
        lines = [super().text(lang)] + [i.text(lang) for i in self.issues]
        if self.dropped_issues:
            lines.append(t("data.report.more", lang, n=self.dropped_issues))
        return "\n".join(lines)
