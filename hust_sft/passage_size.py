"""How many passages a prompt holds and how long each may be, derived from the training pairs themselves.

Why: a fixed clip fits one school's data and cuts another's. BJTU's pairs are short (the 90th-percentile
pair, as a passage, is ~150 characters); the HUST handbook's answers are long Markdown lists (~330+
characters), which a 150-character clip cuts to their first line. So the default clip is the length of the
90th-percentile training pair — no shorter — unless k such passages would not fit the prompt-token budget:
`passage_tokens` (a setting), and never more than what `max_length` leaves beside the longest plain samples
(a training sample whose passages push it over `max_length` is dropped). A pair longer than the clip is not
cut: the index splits it into chunks that each fit (`retrieval.pair_chunks`), so nothing of a passage is
lost at the defaults.

  derive(...)  the rule on plain numbers (characters and tokens of the pairs), exact and testable;
  measure(...) those numbers for records and a tokenizer, the way training encodes them.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

MIN_CHARS = 80          # a shorter passage holds a sentence, not an answer
MAX_CHARS = 2000        # settings.RetrievalSettings.passage_max_chars' maximum
PERCENTILE = 0.9
PLAIN_PERCENTILE = 0.95  # the room max_length leaves is measured beside this long a plain sample
# "参考资料（可能与问题无关）：", "[n] " per passage and "问题：" around the question, in tokens (measured
# with the Qwen2.5 tokenizer: 8 + 2 per passage + 3, rounded up).
TEMPLATE_TOKENS = 16


@dataclass(frozen=True)
class PassageSize:
    """What the prompt gets: `k` passages of at most `chars` characters, and why that many."""
    k: int
    chars: int
    limited_by: str            # "data" (the percentile pair), "budget" (the token budget) or "setting"
    pair_chars: int | None      # the PERCENTILE training pair's length as a passage
    tokens_per_char: float | None
    budget_tokens: int | None   # what the k passages may take
    pairs: int                  # how many training pairs this was derived from

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def tokens(self) -> int | None:
        """Tokens k passages of `chars` characters take, by the data's own tokens per character."""
        return None if self.tokens_per_char is None else math.ceil(self.k * self.chars * self.tokens_per_char)


def percentile(values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile: the smallest value at least a share `q` of the values do not exceed."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def derive(pair_chars: Sequence[int], pair_tokens: Sequence[int], plain_tokens: Sequence[int], *, k: int,
           max_length: int, budget_tokens: int, setting_chars: int = 0) -> PassageSize:
    """The passage size for `k` passages, from the training pairs' lengths as passages (characters and
    tokens) and the plain samples' token lengths. `setting_chars` > 0 is the user's own choice and wins."""
    if setting_chars > 0 or not pair_chars:
        chars = setting_chars if setting_chars > 0 else DEFAULT_CHARS_WITHOUT_PAIRS
        return PassageSize(k, chars, "setting" if setting_chars > 0 else "data", None, None, None, len(pair_chars))
    wanted = min(MAX_CHARS, math.ceil(percentile(pair_chars, PERCENTILE) / 10) * 10)
    per_char = sum(pair_tokens) / max(sum(pair_chars), 1)
    room = max_length - (percentile(plain_tokens, PLAIN_PERCENTILE) if plain_tokens else 0) - TEMPLATE_TOKENS
    budget = max(min(budget_tokens, room), 0)
    fits = int(budget / max(k, 1) / per_char) // 10 * 10 if per_char > 0 else MAX_CHARS
    chars = max(MIN_CHARS, min(wanted, fits))
    return PassageSize(k, chars, "data" if wanted <= fits else "budget", percentile(pair_chars, PERCENTILE),
                       round(per_char, 4), budget, len(pair_chars))


# Knowledge files alone (no training pairs to measure): their chunks are packed to this size.
DEFAULT_CHARS_WITHOUT_PAIRS = 400
# Without a tokenizer at hand (answering for a run that never derived its sizes): an upper estimate of
# the Qwen2.5 tokenizer's tokens per character over pairs as passages (0.63 on BJTU's, 0.69 on the
# HUST-shaped test fixture's), so an estimated clip errs on the short side of the budget.
TOKENS_PER_CHAR_ESTIMATE = 0.8


@dataclass(frozen=True)
class Sizes:
    """The passage sizes of one run: for training samples and when answering."""
    train: PassageSize
    answer: PassageSize

    @property
    def chunk_chars(self) -> int:
        """The index's chunk size: a passage fits training's clip and answering's, so neither cuts it."""
        return chunk_chars(self.train.chars, self.answer.chars)

    def to_dict(self) -> dict:
        return {"train": self.train.to_dict(), "answer": self.answer.to_dict(), "chunk_chars": self.chunk_chars}


def chunk_chars(train_chars: int, answer_chars: int) -> int:
    """The chunk size of an index whose passages are shown clipped at `train_chars` in training and at
    `answer_chars` when answering (0: not clipped)."""
    return min((c for c in (train_chars, answer_chars) if c > 0), default=0)


def measure(records: Sequence, data, tokenizer=None) -> tuple[list[int], list[int], list[int]]:
    """(characters and tokens of each training pair as a passage, token length of each plain sample that
    fits max_length): what `derive` needs, counted the way training encodes. Without a tokenizer, tokens
    are estimated at TOKENS_PER_CHAR_ESTIMATE."""
    from hust_sft.data.encoding import pair_text

    texts = [pair_text(r.question, r.answer) for r in records]
    chars = [len(t) for t in texts]
    if tokenizer is None:
        estimate = [math.ceil(c * TOKENS_PER_CHAR_ESTIMATE) for c in chars]
        return chars, estimate, [e + 40 for e in estimate]  # + system prompt and chat markup
    from hust_sft.data.encoding import encode

    tokens = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []
    plain = [encode(tokenizer, r.messages, data.system_prompt, data.max_length, data.truncation) for r in records]
    return chars, tokens, [len(f["input_ids"]) for f in plain if f is not None]


def resolve(rs, records: Sequence, data, tokenizer=None) -> Sizes:
    """The passage sizes a run with retrieval settings `rs` (settings.RetrievalSettings) and data
    settings `data` uses over its training `records`: each 0 ("derive") filled in from the data."""
    chars, tokens, plain = measure(records, data, tokenizer)
    answer_k = rs.answer_k
    train_k = rs.retrieval_k or answer_k
    train = derive(chars, tokens, plain, k=train_k, max_length=data.max_length, budget_tokens=rs.passage_tokens,
                   setting_chars=rs.passage_max_chars)
    if rs.answer_passage_chars > 0:
        answer = PassageSize(answer_k, rs.answer_passage_chars, "setting", train.pair_chars,
                             train.tokens_per_char, train.budget_tokens, train.pairs)
    elif answer_k == train_k:
        answer = train
    else:
        answer = derive(chars, tokens, plain, k=answer_k, max_length=data.max_length,
                        budget_tokens=rs.passage_tokens, setting_chars=rs.passage_max_chars)
    return Sizes(train, answer)


def resolved(rs, sizes: Sizes):
    """`rs` with every derived value written in (what run.json's settings record and answering reads)."""
    import dataclasses

    return dataclasses.replace(rs, retrieval_k=sizes.train.k, passage_max_chars=sizes.train.chars,
                               answer_passage_chars=sizes.answer.chars)


def describe(sizes: Sizes, lang: str) -> str:
    """One line a person reads (Train tab preview, train.py's retrieval line): the sizes and why."""
    from hust_sft.i18n import t

    size = sizes.train
    params = {"pair_chars": size.pair_chars, "k": size.k, "tokens": size.tokens, "budget": size.budget_tokens}
    return t("passage_size.summary", lang, train_k=sizes.train.k, train_chars=sizes.train.chars,
             answer_k=sizes.answer.k, answer_chars=sizes.answer.chars,
             why=t(f"passage_size.why.{size.limited_by}", lang, **params) if size.pair_chars else
             t("passage_size.why.setting", lang))
