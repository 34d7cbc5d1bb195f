"""Answer-quality metrics for Chinese/English/mixed Q&A, and the statistics to compare two models honestly.

All scores are in [0, 1] (tables multiply by 100). Every metric says which text units it compares:

  normalize(text)   NFKC (folds full-width to half-width), lower-case, every Unicode punctuation (P*) or
                    symbol (S*) character replaced by a space, whitespace collapsed.
  tokens(text)      of the normalised text: each CJK ideograph one token, each run of other non-space
                    characters (Latin letters, digits) one token. "2024年9月" -> ["2024", "年", "9", "月"].

Two F1s, named apart on purpose: `token_f1` (SQuAD-style bag of tokens) and `lcs_f1` (CMRC-2018 style,
longest common *substring* of tokens). `rouge_l` and `bleu4` reproduce what LLaMA-Factory reports
(rouge_chinese + nltk there; written out here so they need neither and cannot silently score Chinese as
empty, which rouge_score's default tokenizer does).

No torch/transformers here: this module is imported by the UI and by tests that must stay fast.
"""
from __future__ import annotations

import functools
import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

METRICS = ("exact_match", "token_f1", "lcs_f1", "rouge_l", "bleu4", "keyword_recall", "key_phrase_recall")

_CJK = ("\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ebef"
        "\U00030000-\U0003134f")
_TOKEN_RE = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")


# ---------------------------------------------------------------------------------------------------
# Normalisation and tokens

def normalize(text: str) -> str:
    """NFKC, lower-case, punctuation and symbols to spaces, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    """CJK ideographs one token each; Latin/digit runs one token each (after `normalize`)."""
    return _TOKEN_RE.findall(normalize(text))


def _contains(haystack: list[str], needle: list[str]) -> bool:
    """`needle` occurs as a contiguous run of tokens: "12" does not match inside "120"."""
    n = len(needle)
    return n > 0 and any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


# ---------------------------------------------------------------------------------------------------
# Reference-based scores

def exact_match(pred: str, ref: str) -> float:
    """1.0 when the token sequences are equal (so case, width, punctuation and spacing are ignored)."""
    return float(tokens(pred) == tokens(ref))


def _f1(common: int, n_pred: int, n_ref: int) -> float:
    if common == 0:
        return 0.0
    p, r = common / n_pred, common / n_ref
    return 2 * p * r / (p + r)


def token_f1(pred: str, ref: str) -> float:
    """Bag-of-tokens F1 (multiset overlap). Both empty -> 1.0; one empty -> 0.0."""
    p, r = tokens(pred), tokens(ref)
    if not p or not r:
        return float(not p and not r)
    return _f1(sum((Counter(p) & Counter(r)).values()), len(p), len(r))


def _longest_common_substring(a: Sequence, b: Sequence) -> int:
    # Hand-written: O(len(a)*len(b)) DP with one row, as in the CMRC 2018 evaluation script.
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def lcs_f1(pred: str, ref: str) -> float:
    """CMRC-2018 F1: P and R of the longest common contiguous run of `tokens`. Both empty -> 1.0."""
    p, r = tokens(pred), tokens(ref)
    if not p or not r:
        return float(not p and not r)
    return _f1(_longest_common_substring(p, r), len(p), len(r))


def _longest_common_subsequence(a: Sequence, b: Sequence) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


@functools.lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def jieba_words(text: str) -> list[str]:
    """jieba words of the raw text, whitespace dropped (the emptiness test LLaMA-Factory applies)."""
    return " ".join(_jieba().cut(text or "")).split()


# rouge_chinese's sentence splitter (Rouge.cut_sent), kept because it decides the word count below.
_CUT_SENT = [(re.compile(r"([。！？\?])([^”’])"), r"\1\n\2"), (re.compile(r"(\.{6})([^”’])"), r"\1\n\2"),
             (re.compile(r"(\…{2})([^”’])"), r"\1\n\2"), (re.compile(r"([。！？\?][”’])([^，。！？\?])"), r"\1\n\2")]


def _rouge_words(text: str) -> list[str]:
    """The word sequence rouge_chinese 1.0.3 scores for LLaMA-Factory's `" ".join(jieba.cut(text))`.

    Quirk reproduced on purpose so our numbers equal LLaMA-Factory's: a sentence made only of whitespace
    (e.g. a blank line after "。") survives its `len > 0` filter and adds one empty "word".
    """
    para = " ".join(_jieba().cut(text or ""))
    for pattern, repl in _CUT_SENT:
        para = pattern.sub(repl, para)
    sentences = [" ".join(s.split()) for s in para.rstrip().split("\n") if s]
    return [w for s in sentences for w in s.split(" ")]


def rouge_l(pred: str, ref: str) -> float:
    """ROUGE-L F exactly as LLaMA-Factory reports it (rouge_chinese 1.0.3 over jieba words of the raw text).

    One LCS over all words of both texts, P = LCS/|pred|, R = LCS/|ref|, F = 2PR/(P+R); punctuation words
    count; 0 when either text has no words. The LCS is ours, not rouge_score's (whose default tokenizer
    drops every CJK character).
    """
    if not jieba_words(pred) or not jieba_words(ref):
        return 0.0
    p, r = _rouge_words(pred), _rouge_words(ref)
    return _f1(_longest_common_subsequence(p, r), len(p), len(r))


def bleu4(pred: str, ref: str) -> float:
    """Sentence BLEU-4 on characters, as LLaMA-Factory's `sentence_bleu([list(ref)], list(pred),
    smoothing_function=SmoothingFunction().method3)`.

    Written out (not nltk) to avoid a dependency: uniform 1/4 weights, clipped n-gram precisions,
    NIST geometric smoothing (method3: the k-th zero precision becomes 1 / (2^k * denominator)),
    brevity penalty exp(1 - r/c) when the answer is shorter. Empty answer or no shared character -> 0.
    """
    hyp, refc = list(pred or ""), list(ref or "")
    precisions = []
    for n in range(1, 5):
        h = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
        r = Counter(tuple(refc[i:i + n]) for i in range(len(refc) - n + 1))
        precisions.append((sum((h & r).values()), max(1, sum(h.values()))))
    if precisions[0][0] == 0:
        return 0.0
    log_sum, k = 0.0, 1
    for num, den in precisions:
        if num == 0:
            value = 1 / (2 ** k * den)
            k += 1
        else:
            value = num / den
        log_sum += 0.25 * math.log(value)
    c, r_len = len(hyp), len(refc)
    bp = 1.0 if c > r_len else math.exp(1 - r_len / c)
    return bp * math.exp(log_sum)


# ---------------------------------------------------------------------------------------------------
# Fact-level recall

def keyword_recall(pred: str, keywords: Iterable[str] | None) -> float | None:
    """Share of `keywords` whose tokens occur contiguously in the answer's tokens; None without keywords."""
    kws = [tokens(k) for k in (keywords or [])]
    kws = [k for k in kws if k]
    if not kws:
        return None
    have = tokens(pred)
    return sum(_contains(have, k) for k in kws) / len(kws)


# Spans taken whole from the reference, most specific first; each match is masked before the next pattern.
_KEY_PATTERNS = [
    re.compile(r"(?m)^[ \t]*\(?\d{1,2}[.、)）]"),                        # list markers "1." "2、" (dropped)
    re.compile(r"(?:https?://|www\.)[^\s，。；、）)\]】>\"'”]+", re.I),                       # URLs
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"),                   # e-mails
    re.compile(r"\d{2,4}年\d{1,2}月(?:\d{1,2}[日号])?|\d{1,2}月\d{1,2}[日号]"),             # dates
    # numbers, phones, times, numeric dates; not the digits of a Latin word ("IPv6", "POP3" stay whole: a
    # bare "6" could never match inside the answer's token "ipv6")
    re.compile(r"(?<![A-Za-z])\d+(?:[.:：/\-]\d+)*(?![A-Za-z])"),
    re.compile(r"“([^”]{1,40})”|「([^」]{1,40})」|『([^』]{1,40})』|《([^》]{1,40})》|【([^】]{1,40})】"
               r"|\"([^\"]{1,40})\""),                                                   # quoted terms
]
_PROPER_FLAGS = ("nr", "ns", "nt", "nz")  # jieba POS: person, place, organisation, other proper noun


def _is_key_word(word: str, flag: str) -> bool:
    """Proper nouns of 2+ characters, common nouns of 3+ (一卡通, 身份证; not 方式, 时间), acronyms (VPN, WiFi)."""
    if flag == "eng":
        return sum(c.isupper() for c in word) >= 2
    return (flag.startswith(_PROPER_FLAGS) and len(word) >= 2) or (flag.startswith("n") and len(word) >= 3)


def key_phrases(ref: str) -> list[str]:
    """The facts an answer should repeat, in order of appearance, de-duplicated by normalised tokens:
    URLs, e-mails, dates, numbers (incl. phone numbers, times, numeric dates; not list markers like "1."),
    quoted or bracketed terms (“”「」『』《》【】 and "…"), then from the remaining text the jieba words
    `_is_key_word` accepts. A simple, explainable proxy for "did the answer keep the facts".
    """
    text, found = ref or "", []
    for i, pattern in enumerate(_KEY_PATTERNS):
        def take(m, keep=i > 0):
            if keep:
                found.append((m.start(), next((g for g in m.groups() if g), m.group(0))))
            return " " * (m.end() - m.start())
        text = pattern.sub(take, text)
    pos = 0
    for word, flag in _pseg_cut(text):
        if _is_key_word(word, flag):
            found.append((pos, word))
        pos += len(word)
    out, seen = [], set()
    for _, phrase in sorted(found, key=lambda x: x[0]):
        key = tuple(tokens(phrase))
        if key and key not in seen:
            seen.add(key)
            out.append(phrase)
    return out


def _pseg_cut(text: str):
    _jieba()
    import jieba.posseg

    return [(p.word, p.flag) for p in jieba.posseg.cut(text)]


def key_phrase_recall(pred: str, ref: str) -> float | None:
    """Share of `key_phrases(ref)` present in the answer (token-contiguous); None when it has none."""
    return keyword_recall(pred, key_phrases(ref))


# ---------------------------------------------------------------------------------------------------
# Degenerate answers: loops

LOOP_REPEATS = 3          # a unit must occur this many times
LOOP_LINE_TOKENS = 4      # a repeated line counts from this many tokens ("好" three times is not a loop)
LOOP_RUN_TOKENS = 2       # back-to-back repeats count from units of this many tokens ("的的的的的的": 的的 × 3)
LOOP_PHRASE_TOKENS = 8    # a phrase this long repeated anywhere (not back to back) also counts
_LIST_MARKER = re.compile(r"^\s*(?:[-*•·]|\(?\d{1,3}[.、)）]|（\d{1,3}）)\s*")


def loop_unit(text: str) -> str | None:
    """What an answer repeats when it loops, as space-separated `tokens`; None when it does not loop.

    An answer loops when one of these occurs LOOP_REPEATS (3) or more times, checked in this order:
      1. a line: the same line, compared as `tokens` after dropping a leading list marker ("1.", "2、",
         "(3)", "-", "•"), of at least LOOP_LINE_TOKENS (4) tokens — "1. 到教务处办理" / "2. 到教务处办理" …;
      2. a run back to back: 2 to 7 tokens repeated 3 times in a row — "请联系辅导员请联系辅导员请联系辅导员";
      3. a phrase anywhere: the same 8 tokens 3 times without overlapping (any longer repeated phrase
         contains such 8 tokens, so this also covers back-to-back units of 8 or more); the first 8 tokens
         of the phrase are returned.
    A word that an answer merely uses three times ("图书馆 … 图书馆 … 图书馆") is not a loop.
    Hand-written: no maintained library defines a repetition check for mixed Chinese/English text.
    """
    lines: Counter = Counter()
    for line in (text or "").splitlines():
        toks = tuple(tokens(_LIST_MARKER.sub("", line, count=1)))
        if len(toks) >= LOOP_LINE_TOKENS:
            lines[toks] += 1
    for toks, count in lines.items():
        if count >= LOOP_REPEATS:
            return " ".join(toks)
    toks = tokens(text)
    n = len(toks)
    for size in range(LOOP_RUN_TOKENS, LOOP_PHRASE_TOKENS):
        for i in range(n - LOOP_REPEATS * size + 1):
            unit = toks[i:i + size]
            if all(toks[i + k * size:i + (k + 1) * size] == unit for k in range(1, LOOP_REPEATS)):
                return " ".join(unit)
    seen: dict[tuple, list[int]] = {}   # phrase -> [non-overlapping occurrences, last start]
    for i in range(n - LOOP_PHRASE_TOKENS + 1):
        gram = tuple(toks[i:i + LOOP_PHRASE_TOKENS])
        count, last = seen.get(gram, (0, -LOOP_PHRASE_TOKENS))
        if i >= last + LOOP_PHRASE_TOKENS:
            count, last = count + 1, i
            if count >= LOOP_REPEATS:
                return " ".join(gram)
        seen[gram] = [count, last]
    return None


def loops(text: str) -> bool:
    """True when `loop_unit` finds a line or phrase repeated 3+ times."""
    return loop_unit(text) is not None


# ---------------------------------------------------------------------------------------------------
# Aggregation and comparison

def score(pred: str, ref: str, keywords: Iterable[str] | None = None) -> dict[str, float | None]:
    """Every metric of METRICS for one answer."""
    return {
        "exact_match": exact_match(pred, ref), "token_f1": token_f1(pred, ref), "lcs_f1": lcs_f1(pred, ref),
        "rouge_l": rouge_l(pred, ref), "bleu4": bleu4(pred, ref),
        "keyword_recall": keyword_recall(pred, keywords), "key_phrase_recall": key_phrase_recall(pred, ref),
    }


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the non-None values; None when there are none."""
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def paired_bootstrap(a_scores: Sequence[float | None], b_scores: Sequence[float | None], n: int = 2000,
                     seed: int = 0) -> tuple[float | None, float | None, float | None]:
    """Mean of (b - a) over paired examples and its 95% percentile-bootstrap interval.

    Pairs where either score is None are dropped. Resamples examples (not models) with replacement, so
    the interval reflects which questions happened to land in the test split. (None, None, None) if no pairs.
    """
    import numpy as np

    diffs = np.array([b - a for a, b in zip(a_scores, b_scores) if a is not None and b is not None], float)
    if diffs.size == 0:
        return None, None, None
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, diffs.size, size=(n, diffs.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(diffs.mean()), float(lo), float(hi)


def win_rate_interval(wins: int, losses: int, ties: int, z: float = 1.959964) -> tuple[float | None, ...]:
    """Win rate of A over B with a 95% Wilson score interval; ties count half a win (and half a loss).

    Wilson rather than the normal approximation because arena samples are small and rates near 0 or 1.
    (None, None, None) before the first vote.
    """
    n = wins + losses + ties
    if n == 0:
        return None, None, None
    p = (wins + 0.5 * ties) / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)
