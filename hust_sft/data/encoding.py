"""Conversations → token ids and labels, through the tokenizer's own chat template.

Why it is done this way (the usual tutorial gets all three wrong):
- ONE system prompt, the configured one, is put in front of every conversation for training, chat and
  evaluation alike; a record's own system turn is replaced by it, so the model is trained with the prompt
  it is later asked with.
- Labels are -100 everywhere except the assistant turns: each answer's tokens and its closing
  `<|im_end|>` are learned (so the model learns to stop); the newline after `<|im_end|>`, the system and
  user turns and the padding are not. Every assistant turn of a multi-turn conversation is learned.
- Nothing is cut silently: a conversation longer than `max_length` is dropped ("drop") or loses its
  trailing turns down to the last whole exchange that fits ("truncate"), and both are counted.

Retrieval (hust_sft.retrieval): `with_passages` is the ONE template for "question + numbered passages"
(an instruction line, "[1] …", "[2] …", then the question), used by training (`encode(..., passages=)`)
and by every answering path (`prompt_ids(..., passages=)`), so the model is asked exactly as it learnt.

Spans are found by rendering the template for the conversation up to each turn and diffing token
prefixes, which works for any chat template that renders turns left to right (hand-written: the
tokenizer's `return_assistant_tokens_mask` needs `{% generation %}` markers that Qwen's template lacks).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from hust_sft.errors import LocalizedError
from hust_sft.i18n import DEFAULT_LANG, t
from hust_sft.settings import RetrievalSettings

IGNORE = -100


class EncodingError(LocalizedError, ValueError):
    """A conversation the chat template cannot encode; `where` ("file:line") is set once the record is known."""

    where: str | None = None

    def text(self, lang: str = DEFAULT_LANG) -> str:
        reason = super().text(lang)
        return t("data.encoding.at", lang, where=self.where, reason=reason) if self.where else reason


# The retrieval prompt. Model input, not interface text: it must not change with the page's language
# (a model trained on one wording is asked in that wording), so it lives here and not in hust_sft.i18n.
# Chinese, like the handbooks this project trains on; short (8 Qwen tokens), because every training sample
# pays for it: RAFT training, not the wording, teaches the model to use a relevant passage and ignore the rest.
PASSAGES_INSTRUCTION = "参考资料（可能与问题无关）："
NO_PASSAGES = "（未检索到相关资料）"
QUESTION_LABEL = "问题："
ELLIPSIS = "…"


def clip(text: str, max_chars: int) -> str:
    """`text` cut to at most `max_chars` characters, an ellipsis marking the cut; 0 (a size still to be
    derived from the data, `hust_sft.passage_size`) cuts nothing."""
    text = text.strip()
    return text if max_chars <= 0 or len(text) <= max_chars else text[:max(max_chars - 1, 0)].rstrip() + ELLIPSIS


def with_passages(question: str, passages, passage_max_chars: int) -> str:
    """The user turn for `question` with numbered passages ("[1] …"); each passage clipped to
    `passage_max_chars` characters. An empty list still gets the instruction (and says nothing was found),
    so a retrieval model always sees the retrieval layout."""
    lines = [PASSAGES_INSTRUCTION]
    lines += [f"[{n}] {clip(_passage_text(p), passage_max_chars)}" for n, p in enumerate(passages, 1)] or [NO_PASSAGES]
    return "\n".join(lines) + f"\n\n{QUESTION_LABEL}{question}"


def _passage_text(p) -> str:
    return p if isinstance(p, str) else p.text


def pair_text(question: str, answer: str) -> str:
    """How a training pair reads as a passage (and what BM25 indexes for it). Model input like the layout
    above; here, below `retrieval` (which indexes it) and `passage_size` (which measures it)."""
    return f"问：{question.strip()}\n答：{answer.strip()}"


def augment(messages: list[dict], passages, passage_max_chars: int, *, turn: str = "last") -> list[dict]:
    """`messages` with the `turn` ("first" or "last") user message rewritten by `with_passages`;
    unchanged when `passages` is None (no retrieval)."""
    if passages is None:
        return messages
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    if not users:
        return messages
    i = users[0] if turn == "first" else users[-1]
    out = [dict(m) for m in messages]
    out[i]["content"] = with_passages(out[i]["content"], passages, passage_max_chars)
    return out


def conversation(messages: list[dict], system_prompt: str) -> list[dict]:
    """The messages as the model sees them: the configured system prompt first, record system turns dropped."""
    return [{"role": "system", "content": system_prompt}] + [
        {"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"]


def _ids(tokenizer, messages: list[dict], *, add_generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt)
    ids = out["input_ids"] if hasattr(out, "keys") else out
    return list(ids)


# For callers that pass passages without a run's setting: the one default, from hust_sft.settings (0:
# derived from the data where a run is trained or answered; here, with nothing to derive from, no cut).
DEFAULT_PASSAGE_MAX_CHARS = RetrievalSettings().passage_max_chars


def prompt_ids(tokenizer, messages: list[dict], system_prompt: str, passages=None,
               passage_max_chars: int = DEFAULT_PASSAGE_MAX_CHARS) -> list[int]:
    """Token ids of the conversation so far plus the assistant header, ready for `generate`.

    With `passages` (a list of `retrieval.Passage` or str, possibly empty) the last user turn is the
    retrieval template, exactly as training encodes a question with its passages."""
    conv = conversation(augment(messages, passages, passage_max_chars), system_prompt)
    if conv[-1]["role"] != "user":
        raise EncodingError("data.encoding.not_user_last")
    return _ids(tokenizer, conv, add_generation_prompt=True)


def _turn_spans(tokenizer, conv: list[dict]) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Full ids, and for each assistant turn (start, end_of_learned_span, end_of_turn) in token positions."""
    full = _ids(tokenizer, conv, add_generation_prompt=False)
    end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    spans = []
    for k, message in enumerate(conv):
        if message["role"] != "assistant":
            continue
        prefix = _ids(tokenizer, conv[:k], add_generation_prompt=True)
        start = len(prefix)
        end_turn = len(_ids(tokenizer, conv[:k + 1], add_generation_prompt=False))
        if full[:start] != prefix:
            raise EncodingError("data.encoding.not_prefix")
        learned_end = end_turn
        # Keep up to and including <|im_end|>; the template's trailing newline is not the model's to emit.
        while learned_end > start and full[learned_end - 1] != end_id:
            learned_end -= 1
        if learned_end == start:  # a template without <|im_end|>: learn the whole turn
            learned_end = end_turn
        spans.append((start, learned_end, end_turn))
    return full, spans


def encode(tokenizer, messages: list[dict], system_prompt: str, max_length: int,
           truncation: str = "drop", passages=None,
           passage_max_chars: int = DEFAULT_PASSAGE_MAX_CHARS) -> dict | None:
    """{"input_ids", "labels", "truncated"} for one conversation, or None when it cannot fit.

    With `passages` the FIRST user turn (the record's question, which retrieval searched for) gets the
    retrieval template; labels stay on the answers only."""
    conv = conversation(augment(messages, passages, passage_max_chars, turn="first"), system_prompt)
    full, spans = _turn_spans(tokenizer, conv)
    if not spans:
        raise EncodingError("data.encoding.no_assistant")
    truncated = False
    if len(full) > max_length:
        if truncation != "truncate":
            return None
        fitting = [s for s in spans if s[2] <= max_length]
        if not fitting:
            return None
        spans, truncated = fitting, True
        full = full[:fitting[-1][2]]
    labels = [IGNORE] * len(full)
    for start, learned_end, _ in spans:
        labels[start:learned_end] = full[start:learned_end]
    return {"input_ids": full, "labels": labels, "truncated": truncated}


@dataclass
class EncodeReport:
    """What encoding did to the data; shown in the UI and saved in run.json."""
    total: int = 0
    kept: int = 0
    dropped_too_long: int = 0
    truncated: int = 0
    tokens: int = 0
    answer_tokens: int = 0
    max_tokens: int = 0
    policy: str = "drop"
    max_length: int = 0
    dropped_lines: list = field(default_factory=list)

    @property
    def mean_tokens(self) -> float:
        return self.tokens / self.kept if self.kept else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean_tokens"] = round(self.mean_tokens, 1)
        d["dropped_lines"] = self.dropped_lines[:50]
        return d


def encode_records(records, tokenizer, data_settings, passages: list | None = None,
                   passage_max_chars: int = DEFAULT_PASSAGE_MAX_CHARS) -> tuple[list[dict], EncodeReport]:
    """Features for the Trainer (input_ids, labels) and a report of what was dropped or truncated.

    `passages[i]` (when given) are the retrieved passages record i is encoded with."""
    report = EncodeReport(policy=data_settings.truncation, max_length=data_settings.max_length)
    features = []
    for i, rec in enumerate(records):
        report.total += 1
        try:
            enc = encode(tokenizer, rec.messages, data_settings.system_prompt, data_settings.max_length,
                         data_settings.truncation, passages=None if passages is None else passages[i],
                         passage_max_chars=passage_max_chars)
        except EncodingError as e:
            e.where = f"{rec.source}:{rec.line}"
            raise
        if enc is None:
            report.dropped_too_long += 1
            report.dropped_lines.append(f"{rec.source}:{rec.line}")
            continue
        report.kept += 1
        report.truncated += int(enc.pop("truncated"))
        n = len(enc["input_ids"])
        report.tokens += n
        report.answer_tokens += sum(1 for x in enc["labels"] if x != IGNORE)
        report.max_tokens = max(report.max_tokens, n)
        features.append(enc)
    return features, report
