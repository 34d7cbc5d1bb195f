"""What retrieval hands out, below the index and the parts it is built from.

`retrieval` (the BM25 index, searching) imports `knowledge` (reading knowledge files) and `embedding` (dense
vectors), and both need a `Passage`, the error retrieval reports (`RetrievalError`: `KnowledgeError` and
`EmbeddingError` are ones) and what the index cuts words with. They live here so that no part imports the
index back (`retrieval` re-exports each name, so `retrieval.Passage` and `retrieval.RetrievalError` stay).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from hust_sft.errors import LocalizedError

DEFAULT_CHUNK_CHARS = 400


class RetrievalError(LocalizedError, ValueError):
    """Retrieval cannot be used as asked: a missing or damaged index, or a bad knowledge file."""


@dataclass
class Passage:
    """One retrievable text. `id` is "train:<n>" (the n-th training record, file order) or
    "kb:<file name>#<n>" (the n-th chunk of a knowledge file); `text` is what the prompt shows. `location`
    is where in its knowledge file it is ("p.12", "§2.3 Heading", "L7": hust_sft.knowledge), shown after
    the file name (`public_source`); None for a training pair, whose `source` is "<file>:<line>"."""
    id: str
    text: str
    source: str
    score: float = 0.0
    title: str | None = None
    question: str | None = None
    relevance: float = 0.0
    location: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Passage:
        return cls(**{k: d.get(k) for k in ("id", "text", "source", "title", "question", "location")},
                   score=float(d.get("score") or 0.0), relevance=float(d.get("relevance") or 0.0))


def quiet_jieba():
    """jieba, with its start-up log (a dictionary-loading banner) turned down to warnings: BM25's words
    (`retrieval.words`) and knowledge's sentence splitter (`knowledge.split_long`) cut with it."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba
