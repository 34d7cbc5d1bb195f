"""Fact accounting: where between the passages and the answer a reference's facts are lost, and what an
answer states that nothing it was shown supports.

An answer can miss a fact in two places: retrieval never showed it (*passage recall*), or the model was
shown it and did not say it (*kept*). And it can state specifics it was never given (*invented*). One
answer is accounted for by `account`; the evaluation stores the result per answer and averages it per arm.

  facts(reference, keywords)  what the answer should state: `metrics.key_phrases(reference)` (numbers,
                              dates, URLs, quoted terms, proper and long nouns), plus the record's
                              `expected_keywords` where the file has them; de-duplicated by tokens.
  passage_recall              share of those facts the passages shown contain (as shown: clipped);
  answer_recall               share of them the answer contains;
  kept                        of the facts the passages held, the share the answer states (None when the
                              passages held none: nothing could be kept);
  invented                    the answer's *specifics* — numbers (times, amounts, phone numbers, numeric
                              dates; not list markers), dates, URLs, e-mail addresses and place names — found
                              neither in the passages nor in the question.

"Contains" is `metrics` containment: the phrase's tokens occur contiguously after NFKC, case and punctuation
folding, so "8：00" matches "8:00" and "12" does not match inside "120". A place name is a jieba word longer
than its suffix that ends in a place or office suffix (楼, 馆, 厅, 中心, 校区, 处, …; `PLACE_SUFFIXES`), or
jieba's place tag on such a word: a simple, explainable proxy, like key phrases themselves. Hand-written: no
maintained library counts unsupported specifics in Chinese text.

No torch/transformers here: the Evaluate tab and tests import it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hust_sft import metrics

FACT_METRICS = ("passage_recall", "answer_recall", "kept", "invented")

# Spans of an answer that state a checkable specific (a subset of metrics' key-phrase patterns: quoted
# terms are wording, not specifics). List markers ("1." "2、" at a line start) are masked first.
_LIST_MARKER = re.compile(r"(?m)^[ \t]*(?:[-*•]\s*)?\(?\d{1,2}[.、)）](?!\d)")
_SPECIFIC_PATTERNS = [
    re.compile(r"(?:https?://|www\.)[^\s，。；、）)\]】>\"'”]+", re.I),                        # URLs
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"),                    # e-mails
    re.compile(r"\d{2,4}年\d{1,2}月(?:\d{1,2}[日号])?|\d{1,2}月\d{1,2}[日号]"),              # dates
    re.compile(r"(?<![A-Za-z])\d+(?:[.:：/\-~～]\d+)*(?![A-Za-z])"),   # times, amounts, phones, numeric dates
]
# A word ending in one of these names a place a student is sent to (a building, room, office, campus).
PLACE_SUFFIXES = ("楼", "馆", "厅", "室", "中心", "校区", "园区", "食堂", "公寓", "宿舍", "窗口", "大门", "广场",
                  "书院", "医院", "学院", "处", "办", "站", "路", "街", "省", "市", "县", "区")
# Words that end like a place but are not one (jieba keeps them whole).
_NOT_PLACES = frozenset({"好处", "用处", "此处", "到处", "各处", "益处", "难处", "之处", "长处", "短处", "出处",
                         "地区", "区域", "社区", "小区", "园区", "网站", "车站", "站点", "城市", "都市", "超市",
                         "市场", "教室", "会议室", "办公室", "中心", "窗口"})


@dataclass
class FactAccount:
    """One answer's facts: what the reference holds, where each went, what the answer added."""
    facts: list[str]
    in_passages: list[str] | None           # None: the answer was given no passages
    in_answer: list[str]
    invented: list[str] = field(default_factory=list)

    @property
    def passage_recall(self) -> float | None:
        if self.in_passages is None or not self.facts:
            return None
        return len(self.in_passages) / len(self.facts)

    @property
    def answer_recall(self) -> float | None:
        return len(self.in_answer) / len(self.facts) if self.facts else None

    @property
    def kept(self) -> float | None:
        if not self.in_passages:
            return None
        have = {_key(f) for f in self.in_answer}
        return sum(_key(f) in have for f in self.in_passages) / len(self.in_passages)

    @property
    def lost(self) -> list[str]:
        """Facts the passages held that the answer does not state."""
        have = {_key(f) for f in self.in_answer}
        return [f for f in (self.in_passages or []) if _key(f) not in have]

    def scores(self) -> dict[str, float | None]:
        """The four figures of FACT_METRICS (invented as a count)."""
        return {"passage_recall": self.passage_recall, "answer_recall": self.answer_recall,
                "kept": self.kept, "invented": float(len(self.invented))}

    def to_dict(self) -> dict:
        return {"facts": self.facts, "in_passages": self.in_passages, "in_answer": self.in_answer,
                "lost": self.lost, "invented": self.invented}


def _key(phrase: str) -> tuple[str, ...]:
    return tuple(metrics.tokens(phrase))


def _unique(phrases: Iterable[str]) -> list[str]:
    out, seen = [], set()
    for p in phrases:
        key = _key(p)
        if key and key not in seen:
            seen.add(key)
            out.append(p)
    return out


def facts(reference: str, keywords: Iterable[str] | None = None) -> list[str]:
    """The reference's key phrases, then its keywords, de-duplicated by tokens."""
    return _unique([*metrics.key_phrases(reference), *(keywords or [])])


def contains(text_tokens: list[str], phrase: str) -> bool:
    return metrics._contains(text_tokens, list(_key(phrase)))


def _is_place(word: str, flag: str) -> bool:
    if len(word) < 2 or word in _NOT_PLACES or not re.fullmatch(r"[\u4e00-\u9fff]+", word):
        return False
    if flag.startswith("ns") and len(word) >= 2 and word[-1] in "省市县区镇村路街楼":
        return True
    return any(word.endswith(s) and len(word) > len(s) for s in PLACE_SUFFIXES)


def specifics(answer: str) -> list[str]:
    """The answer's checkable specifics, in order: URLs, e-mails, dates, numbers, place names."""
    text, found = _LIST_MARKER.sub(lambda m: " " * len(m.group(0)), answer or ""), []
    for pattern in _SPECIFIC_PATTERNS:
        def take(m):
            found.append((m.start(), m.group(0)))
            return " " * (m.end() - m.start())
        text = pattern.sub(take, text)
    pos = 0
    for word, flag in metrics._pseg_cut(text):
        if _is_place(word, flag):
            found.append((pos, word))
        pos += len(word)
    return _unique(p for _, p in sorted(found, key=lambda x: x[0]))


def account(answer: str, reference: str, *, question: str = "", passages: Sequence[str] | None = None,
            keywords: Iterable[str] | None = None) -> FactAccount:
    """Account for one answer. `passages`: the passage texts as the prompt showed them (None: no passages
    were shown, so passage recall and kept are undefined and every specific not in the question is invented)."""
    wanted = facts(reference, keywords)
    shown = metrics.tokens("\n".join(passages)) if passages is not None else None
    said = metrics.tokens(answer)
    asked = metrics.tokens(question)
    return FactAccount(
        facts=wanted,
        in_passages=None if shown is None else [f for f in wanted if contains(shown, f)],
        in_answer=[f for f in wanted if contains(said, f)],
        invented=[s for s in specifics(answer)
                  if not contains(asked, s) and not (shown is not None and contains(shown, s))])

