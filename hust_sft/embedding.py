"""Dense sentence embeddings for retrieval: an optional encoder named by Hub id (or a local folder).

Why: BM25 only finds a passage that shares the question's words; an embedding model also finds one that
says it differently ("挂失" vs "丢了"). `RetrievalSettings.embedding_model` names it (empty: off, the default:
the product runs without a download). It is loaded with transformers' `AutoTokenizer`/`AutoModel` (no
remote code), the sentence embedding is the mean of the last hidden states over the real tokens or the
first token's (`pooling`; "auto" reads the sentence-transformers `1_Pooling/config.json` the model ships,
mean when it has none), L2-normalised, so a dot product is the cosine. `query_prefix` / `passage_prefix`
are the texts a model card asks to put before each (multilingual-e5: "query: " / "passage: ").

The passages' embeddings are computed once, when the index is built, and saved with it
(`retrieval.Retriever`); only the question is embedded at search time. fp32 on the CPU: a small encoder
embeds a few hundred passages in seconds, and the same inputs give the same vectors on every run.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import numpy as np

from hust_sft.passages import RetrievalError

POOLINGS = ("auto", "mean", "cls")
MAX_LENGTH = 512  # tokens per text: BERT-sized encoders' position limit; longer passages are cut
BATCH_SIZE = 32


class EmbeddingError(RetrievalError):
    """The embedding model cannot be loaded, or an index's embeddings do not belong to the model asked for."""


def _pooling_of(model_id: str) -> str:
    """"cls" or "mean", from the model's sentence-transformers pooling config; "mean" when it has none."""
    from transformers.utils.hub import cached_file

    try:
        path = cached_file(model_id, "1_Pooling/config.json", _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False)
    except (OSError, ValueError):
        path = None
    if not path:
        return "mean"
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return "mean"
    return "cls" if config.get("pooling_mode_cls_token") and not config.get("pooling_mode_mean_tokens") else "mean"


@dataclass
class Embedder:
    """A loaded encoder and how it turns texts into unit vectors."""
    model_id: str
    pooling: str
    query_prefix: str
    passage_prefix: str
    tokenizer: object
    model: object

    @classmethod
    def load(cls, model_id: str, pooling: str = "auto", query_prefix: str = "",
             passage_prefix: str = "") -> Embedder:
        """Load `model_id` (a Hub id or a folder); EmbeddingError naming it and the reason when that fails."""
        if pooling not in POOLINGS:
            raise EmbeddingError("retrieval.error.embedding_pooling", pooling=pooling, choices=", ".join(POOLINGS))
        return _load(model_id, pooling, query_prefix or "", passage_prefix or "")

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def describe(self) -> dict:
        """What meta.json records, and what a loaded index's embeddings are checked against."""
        import transformers

        return {"model": self.model_id, "pooling": self.pooling, "query_prefix": self.query_prefix,
                "passage_prefix": self.passage_prefix, "dim": self.dim, "max_length": MAX_LENGTH,
                "library": f"transformers {transformers.__version__}"}

    def encode(self, texts: list[str], *, query: bool = False) -> np.ndarray:
        """float32 [len(texts), dim], each row of length 1."""
        import torch

        prefix = self.query_prefix if query else self.passage_prefix
        out = []
        for start in range(0, len(texts), BATCH_SIZE):
            batch = [prefix + t for t in texts[start:start + BATCH_SIZE]]
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state.float()
            if self.pooling == "cls":
                vec = hidden[:, 0]
            else:
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                vec = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            out.append(torch.nn.functional.normalize(vec, dim=-1).numpy().astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)


@functools.lru_cache(maxsize=2)
def _load(model_id: str, pooling: str, query_prefix: str, passage_prefix: str) -> Embedder:
    """One copy per model and settings (Chat, the evaluation's arms and the arena share it)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    if not model_id.strip():
        raise EmbeddingError("retrieval.error.embedding_unavailable", model=model_id, reason="empty model id")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_id)
        model = AutoModel.from_pretrained(model_id, dtype=torch.float32).eval()
    except (OSError, ValueError, KeyError) as e:  # not found, offline, not an encoder transformers knows
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EmbeddingError("retrieval.error.embedding_unavailable", model=model_id, reason=reason) from None
    resolved = _pooling_of(model_id) if pooling == "auto" else pooling
    return Embedder(model_id, resolved, query_prefix, passage_prefix, tokenizer, model)
