"""Retrieval over the training split (and optional handbook files): BM25 on jieba words, saved with the run.

Why: a 0.5B LoRA trained on a few hundred pairs learns the handbook's style, not its facts, although the
facts are in the training data (issue 8). Retrieval puts the relevant training pairs in front of the
model at answering time, and retrieval-augmented training (RAFT, Zhang et al. 2024) teaches it to use
them. The index is built from the TRAINING split only, so a validation or test question can never find
its own answer, and it is saved in `RUN_DIR/retrieval/` so that chat, evaluation, the arena and a Hub
user retrieve exactly what training used.

- `bm25s` scores (no model download, works offline); tokenisation is ours: NFKC + lower-case folding,
  jieba's search-mode cut (compound words also as their parts), punctuation and whitespace dropped.
  Deterministic: same data, same words, same ranking; equal scores are ordered by passage id.
- `Retriever.build(records, knowledge_files, chunk_chars)` → `.save(dir)` / `Retriever.load(dir)` →
  `.search(question, k, exclude_id=None, min_relevance=0.0)`. A passage's `relevance` is the share of the
  question's word weight (BM25 idf) it contains: BM25 scores grow with the question's length and say
  nothing absolute, so "is any passage about this question at all?" is asked of the relevance.
  `for_run(run_dir)` loads a run's index, or says why not.
- Optional dense retrieval (`settings.embedding_model`, `hust_sft.embedding`): the passages' embeddings
  are saved with the index, and `search` fuses the BM25 and cosine rankings by reciprocal rank (`RRF_K`);
  the off-topic floor stays on BM25's relevance. Off by default: measured on BJTU it does not beat BM25
  (README, "Retrieval that finds more"; bench/retrieval_recall.py).
- `training_passages` / `validation_passages`: the passages each training / validation sample is
  encoded with when `retrieval == "train"` (RAFT: own pair excluded from the search, then put back at a
  seeded position for a seeded share of the samples).
"""
from __future__ import annotations

import hashlib
import json
import random
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hust_sft.data.encoding import pair_text
from hust_sft.fileio import write_bytes_atomic, write_json_atomic, write_text_atomic
from hust_sft.passages import DEFAULT_CHUNK_CHARS, Passage, RetrievalError
from hust_sft.passages import quiet_jieba as _jieba

RETRIEVAL_DIR = "retrieval"
INDEX_DIR = "bm25s"
PASSAGES_FILE = "passages.jsonl"
META_FILE = "meta.json"
# The files bm25s writes for our index (no corpus: BM25 is given word lists, the texts are in passages.jsonl).
INDEX_FILES = ("data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy", "vocab.index.json",
               "params.index.json", "nonoccurrence_array.index.npy")
# The passages' dense embeddings (float32 [passages, dim], numpy's .npy), when an embedding model is set.
EMBEDDINGS_FILE = "embeddings.npy"
# What of RUN_DIR/retrieval/ is published with an adapter (relative names); nothing else there is. The
# embeddings are published (4 bytes × dim per passage: 258 BJTU pairs × 384 = 0.4 MB) so that a Hub user
# searching with the same model gets the run's ranking without re-embedding every passage.
RETRIEVAL_FILES = (META_FILE, PASSAGES_FILE, EMBEDDINGS_FILE, *(f"{INDEX_DIR}/{name}" for name in INDEX_FILES))
# 2: meta.json may hold "embedding" (the model, its settings and embeddings.npy's sha256). A format-1 index
# (BM25 only) loads as before; a newer format than this is refused by name.
FORMAT_VERSION = 2
# Reciprocal rank fusion's constant (Cormack, Clarke & Büttcher 2009, "Reciprocal rank fusion outperforms
# Condorcet and individual rank learning methods": k = 60): a passage's fused score is the sum over the
# rankings (BM25, dense) of 1 / (RRF_K + its rank there), ranks from 1.
RRF_K = 60
MODES = ("off", "answer", "train")

# bm25s defaults (Lucene's BM25); recorded in meta.json so a loaded index says how it scores.
BM25_PARAMS = {"k1": 1.5, "b": 0.75, "method": "lucene"}


# ---------------------------------------------------------------------------------------------------
# Tokenisation

def fold(text: str) -> str:
    """NFKC (full-width → half-width) and lower case: "ＭＩＳ" and "mis" are one word."""
    return unicodedata.normalize("NFKC", text or "").lower()


def _is_word(token: str) -> bool:
    return any(not (c.isspace() or unicodedata.category(c)[0] in "PZC") for c in token)


_STOPWORDS: frozenset[str] | None = None


def stopwords() -> frozenset[str]:
    """bm25s's Chinese and English stop-word lists ("什么", "如何", "the"…): on the held-out BJTU
    questions they raise the key-phrase recall of the top 3 training pairs from 0.52 to 0.54."""
    global _STOPWORDS
    if _STOPWORDS is None:
        from bm25s.stopwords import STOPWORDS_CHINESE, STOPWORDS_EN

        _STOPWORDS = frozenset(STOPWORDS_CHINESE) | frozenset(STOPWORDS_EN)
    return _STOPWORDS


def words(text: str) -> list[str]:
    """The words BM25 sees: jieba search-mode cut of the folded text, punctuation, whitespace and stop
    words dropped."""
    stop = stopwords()
    return [w for w in _jieba().cut_for_search(fold(text)) if _is_word(w) and w not in stop]


# ---------------------------------------------------------------------------------------------------
# Passages from records (knowledge files: hust_sft.knowledge)

CONTINUED_ANSWER = "答（续）："


def pair_chunks(question: str, answer: str, max_chars: int | None = None) -> list[str]:
    """A training pair as passage texts of at most `max_chars` characters each: one `pair_text` when it
    fits, else its answer split at line ends (a Markdown list item stays whole), then at sentence ends,
    each chunk carrying its question ("问：…\n答：…", then "问：…\n答（续）：…"), so a passage is never cut
    in the prompt and each chunk still says what it answers. Without `max_chars`, one passage."""
    whole = pair_text(question, answer)
    if not max_chars or len(whole) <= max_chars:
        return [whole]
    from hust_sft.knowledge import split_long  # the one sentence splitter (knowledge files use it too)

    head = f"问：{question.strip()}\n"
    room = max(max_chars - len(head) - len(CONTINUED_ANSWER), 20)
    pieces: list[str] = []
    for line in answer.strip().split("\n"):
        pieces += split_long(line, room) if len(line) > room else [line]
    chunks, current = [], ""
    for piece in pieces:
        if current and len(current) + 1 + len(piece) > room:
            chunks.append(current)
            current = piece
        else:
            current = f"{current}\n{piece}" if current else piece
    if current.strip():
        chunks.append(current)
    return [head + ("答：" if n == 0 else CONTINUED_ANSWER) + c.strip("\n") for n, c in enumerate(chunks)]


def chunk_id(record_index: int, n: int) -> str:
    """"train:<i>" for a pair's first (or only) passage, "train:<i>#<n>" for its n-th chunk (n ≥ 2)."""
    return f"train:{record_index}" if n == 1 else f"train:{record_index}#{n}"


def record_passages(records: Sequence, chunk_chars: int | None = None) -> list[Passage]:
    """The passages of the training records (`pair_chunks`): id "train:<position in the training split>",
    and "train:<i>#<n>" for the further chunks of a pair longer than `chunk_chars`."""
    return [Passage(id=chunk_id(i, n), text=text, source=f"{r.source}:{r.line}", question=r.question)
            for i, r in enumerate(records) for n, text in enumerate(pair_chunks(r.question, r.answer, chunk_chars), 1)]


# ---------------------------------------------------------------------------------------------------
# The index

def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_PER_SEARCH = ("score", "relevance")  # what a search adds to a passage; not part of the index


def _passages_jsonl(passages: Sequence[Passage]) -> str:
    return "".join(json.dumps({k: v for k, v in p.to_dict().items() if k not in _PER_SEARCH}, ensure_ascii=False) + "\n"
                   for p in passages)


@dataclass(frozen=True)
class DenseOptions:
    """The embedding model an index is built with (`RetrievalSettings.embedding_*`); `model` "" is off."""
    model: str = ""
    pooling: str = "auto"
    query_prefix: str = ""
    passage_prefix: str = ""

    @classmethod
    def of(cls, settings: dict | None) -> DenseOptions:
        s = settings or {}
        return cls(str(s.get("embedding_model") or ""), str(s.get("embedding_pooling") or "auto"),
                   str(s.get("embedding_query_prefix") or ""), str(s.get("embedding_passage_prefix") or ""))


def _dense_meta(embedder, embeddings) -> dict:
    return {**embedder.describe(), "file": EMBEDDINGS_FILE, "rows": int(embeddings.shape[0]),
            "sha256": _sha256_bytes(_npy_bytes(embeddings))}


def _npy_bytes(array) -> bytes:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def rrf_scores(n: int, *rankings: Sequence[int]) -> list[float]:
    """Reciprocal rank fusion of rankings of passage positions (best first): per position, the sum of
    1 / (RRF_K + rank) over the rankings it is in (rank 1 = first); 0 for one in none."""
    out = [0.0] * n
    for ranking in rankings:
        for rank, i in enumerate(ranking, 1):
            out[i] += 1.0 / (RRF_K + rank)
    return out


def _load_dense(directory: Path, meta: dict, expected_model: str | None):
    """(embeddings, embedder) of a saved index, (None, None) for BM25 alone; EmbeddingError when the index
    was built with another model than `expected_model`, when embeddings.npy is missing or altered, or
    when its model cannot be loaded or has another width."""
    import io

    import numpy as np

    from hust_sft.embedding import Embedder, EmbeddingError

    dense = meta.get("embedding")
    built_with = str((dense or {}).get("model") or "")
    if expected_model is not None and expected_model != built_with:
        raise EmbeddingError("retrieval.error.embedding_mismatch", path=directory, built=built_with or "-",
                             asked=expected_model or "-")
    if not dense:
        return None, None
    path = directory / EMBEDDINGS_FILE
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise EmbeddingError("retrieval.error.embedding_file", path=path,
                             reason=e.strerror or type(e).__name__) from None
    if _sha256_bytes(raw) != dense.get("sha256"):
        raise EmbeddingError("retrieval.error.embedding_file", path=path,
                             reason=f"its sha256 is not the one in {META_FILE}")
    embeddings = np.load(io.BytesIO(raw), allow_pickle=False)
    if embeddings.ndim != 2 or embeddings.shape[0] != meta.get("passages"):
        raise EmbeddingError("retrieval.error.embedding_file", path=path,
                             reason=f"shape {embeddings.shape}, expected one row per passage ({meta.get('passages')})")
    embedder = Embedder.load(built_with, dense.get("pooling") or "auto", dense.get("query_prefix") or "",
                             dense.get("passage_prefix") or "")
    if embedder.dim != embeddings.shape[1]:
        raise EmbeddingError("retrieval.error.embedding_mismatch", path=directory,
                             built=f"{built_with} ({embeddings.shape[1]} dimensions)",
                             asked=f"{built_with} ({embedder.dim} dimensions)")
    return embeddings.astype(np.float32, copy=False), embedder


class Retriever:
    """BM25 over a fixed list of passages, fused by reciprocal rank with a dense embedding ranking when the
    index has embeddings. Build with `build`, persist with `save`/`load`."""

    def __init__(self, passages: list[Passage], bm25, meta: dict, embeddings=None, embedder=None):
        self.passages, self.bm25, self.meta = passages, bm25, meta
        self.embeddings, self.embedder = embeddings, embedder
        self._position = {p.id: i for i, p in enumerate(passages)}

    def __len__(self) -> int:
        return len(self.passages)

    @property
    def sha256(self) -> str:
        """sha256 of passages.jsonl: which texts this index can return."""
        return self.meta["sha256"]

    @property
    def settings(self) -> dict:
        """The retrieval settings of the run that built it (mode, k, passage_max_chars…), if recorded."""
        return dict(self.meta.get("settings") or {})

    @property
    def embedding_model(self) -> str:
        """The embedding model fused with BM25 ("" for BM25 alone)."""
        return str((self.meta.get("embedding") or {}).get("model") or "")

    @classmethod
    def build(cls, records: Sequence = (), knowledge_files: Iterable[str | Path] = (),
              chunk_chars: int = DEFAULT_CHUNK_CHARS, settings: dict | None = None) -> Retriever:
        """An index over `records` (pass the TRAINING split only) and the chunks of `knowledge_files`.

        `settings` (a run's RetrievalSettings as a dict) is recorded in meta.json; its `embedding_model`
        (with `embedding_pooling` and the prefixes) adds the passages' dense embeddings."""
        import bm25s

        from hust_sft import knowledge

        chunk_chars = chunk_chars or DEFAULT_CHUNK_CHARS  # 0: a size never derived (see passage_size)
        kb_passages, kb_files = knowledge.passages(knowledge_files, chunk_chars)
        passages = record_passages(records, chunk_chars) + kb_passages
        if not passages:
            raise RetrievalError("retrieval.error.nothing_to_index")
        bm25 = bm25s.BM25(**BM25_PARAMS)
        corpus = [words(p.text) for p in passages]
        bm25.index(corpus, show_progress=False)
        meta = {
            "format": FORMAT_VERSION, "library": f"bm25s {bm25s.__version__}", "bm25": BM25_PARAMS,
            "tokenizer": "NFKC+lower, jieba.cut_for_search, punctuation/whitespace/bm25s zh+en stop words dropped",
            "chunk_chars": chunk_chars, "passages": len(passages),
            "train_passages": sum(p.id.startswith("train:") for p in passages),
            "knowledge_files": [k.to_dict() for k in kb_files],
            "sha256": _sha256_bytes(_passages_jsonl(passages).encode("utf-8")),
            "settings": dict(settings or {}),
        }
        dense = DenseOptions.of(settings)
        embeddings = embedder = None
        if dense.model:
            from hust_sft.embedding import Embedder

            embedder = Embedder.load(dense.model, dense.pooling, dense.query_prefix, dense.passage_prefix)
            embeddings = embedder.encode([p.text for p in passages])
            meta["embedding"] = _dense_meta(embedder, embeddings)
        return cls(passages, bm25, meta, embeddings, embedder)

    def save(self, directory: str | Path) -> Path:
        """Write `directory/` (bm25s/, passages.jsonl, embeddings.npy when dense, meta.json); returns it."""
        directory = Path(directory)
        (directory / INDEX_DIR).mkdir(parents=True, exist_ok=True)
        self.bm25.save(str(directory / INDEX_DIR), show_progress=False)
        write_text_atomic(directory / PASSAGES_FILE, _passages_jsonl(self.passages))
        if self.embeddings is not None:
            write_bytes_atomic(directory / EMBEDDINGS_FILE, _npy_bytes(self.embeddings))
        elif (directory / EMBEDDINGS_FILE).is_file():
            (directory / EMBEDDINGS_FILE).unlink()  # an older index's, which this one does not use
        write_json_atomic(directory / META_FILE, self.meta)  # last: its presence means the rest is there
        return directory

    @classmethod
    def load(cls, directory: str | Path, embedding_model: str | None = None) -> Retriever:
        """The index saved in `directory`; RetrievalError if it is missing, incomplete or altered.

        An index with embeddings loads its embedding model (embedding.EmbeddingError when that cannot be
        had); `embedding_model`, when given, is the model the caller's settings name, and an index built
        with another one is refused (EmbeddingError naming both) rather than searched with the wrong one."""
        import bm25s

        directory = Path(directory)
        meta_path, passages_path = directory / META_FILE, directory / PASSAGES_FILE
        if not meta_path.is_file() or not passages_path.is_file() or not (directory / INDEX_DIR).is_dir():
            raise RetrievalError("retrieval.error.no_index", path=directory)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if int(meta.get("format", 1)) > FORMAT_VERSION:
                raise RetrievalError("retrieval.error.index_too_new", path=directory, format=meta.get("format"),
                                     supported=FORMAT_VERSION)
            raw = passages_path.read_bytes()
            passages = [Passage.from_dict(json.loads(line)) for line in raw.decode("utf-8").splitlines() if line]
            bm25 = bm25s.BM25.load(str(directory / INDEX_DIR), show_progress=False, verbosity=0)
        except (OSError, ValueError, KeyError, TypeError) as e:
            if isinstance(e, RetrievalError):
                raise
            raise RetrievalError("retrieval.error.bad_index", path=directory,
                                 reason=f"{type(e).__name__}: {e}") from None
        if _sha256_bytes(raw) != meta.get("sha256") or len(passages) != meta.get("passages"):
            raise RetrievalError("retrieval.error.bad_index", path=directory,
                                 reason=f"{PASSAGES_FILE} does not match the sha256 in {META_FILE}")
        embeddings, embedder = _load_dense(directory, meta, embedding_model)
        return cls(passages, bm25, meta, embeddings, embedder)

    def search(self, question: str, k: int, exclude_id: str | Iterable[str] | None = None,
               min_relevance: float = 0.0) -> list[Passage]:
        """The `k` best passages for `question` whose relevance reaches `min_relevance`, best first, equal
        scores by id.

        BM25 alone: the passages scoring > 0, by BM25 score. With embeddings: the BM25 ranking (score > 0)
        and the dense ranking (cosine, every passage) fused by reciprocal rank (`RRF_K`), `score` then
        being the fused score. The off-topic floor is the same in both: a passage's BM25 `relevance` (the
        share of the question's word weight it holds) — cosines of different models are not comparable with
        each other or with a floor chosen for BM25, so fusion re-orders the passages the floor lets through
        and never brings one it does not. `exclude_id` (one id or several) is left out before the top k
        are taken, so k are still returned when there are enough matches.
        """
        import numpy as np

        excluded = {exclude_id} if isinstance(exclude_id, str) else set(exclude_id or ())
        query = list(dict.fromkeys(words(question)))  # each query word counts once, as in textbook BM25
        ids = self.bm25.get_tokens_ids(query)
        if k <= 0 or (not ids and (self.embeddings is None or min_relevance > 0)):
            return []
        n = len(self.passages)
        scores = (np.asarray(self.bm25.get_scores_from_ids(ids), dtype=np.float64) if ids
                  else np.zeros(n, dtype=np.float64))
        relevance = self.relevance(query)
        allowed = [i for i in np.flatnonzero(relevance >= min_relevance - 1e-9).tolist()
                   if self.passages[i].id not in excluded]
        by_bm25 = sorted((i for i in allowed if scores[i] > 0), key=lambda i: (-scores[i], self.passages[i].id))
        if self.embeddings is None:
            ranked, shown = by_bm25, scores
        else:
            cosine = self.embeddings @ self.embedder.encode([question], query=True)[0]
            by_dense = sorted(allowed, key=lambda i: (-float(cosine[i]), self.passages[i].id))
            shown = rrf_scores(n, by_bm25, by_dense)
            ranked = sorted((i for i in allowed if shown[i] > 0), key=lambda i: (-shown[i], self.passages[i].id))
        return [Passage(**{**self.passages[i].to_dict(), "score": round(float(shown[i]), 6),
                           "relevance": round(float(relevance[i]), 4)}) for i in ranked[:k]]

    def relevance(self, query: list[str]):
        """Per passage, the share of the query words' idf weight that the passage contains (0..1).

        Written here because bm25s has no normalised score. A word the index has never seen weighs as
        much as the rarest word (document frequency 0): a question about things the handbook never
        mentions gets a low relevance everywhere, however well its one common word matches."""
        import numpy as np

        csc = self.bm25.scores
        n = float(csc["num_docs"])
        indptr, indices = csc["indptr"], csc["indices"]

        def idf(df: float) -> float:  # Lucene's BM25 idf, what bm25s scores with
            return float(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))

        out, total = np.zeros(len(self.passages), dtype=np.float64), 0.0
        vocab = self.bm25.vocab_dict
        for word in query:
            t = vocab.get(word)
            df = 0 if t is None else int(indptr[t + 1] - indptr[t])
            weight = idf(df)
            total += weight
            if t is not None:
                out[indices[indptr[t]:indptr[t + 1]]] += weight
        return out / total if total > 0 else out

    def chunks_of(self, record_index: int) -> list[Passage]:
        """Every passage of training record `record_index`, first chunk first."""
        first = self._position.get(chunk_id(record_index, 1))
        if first is None:
            return []
        out, prefix = [self.passages[first]], f"train:{record_index}#"
        for p in self.passages[first + 1:]:
            if not p.id.startswith(prefix):
                break
            out.append(p)
        return out

    def get(self, passage_id: str) -> Passage:
        return self.passages[self._position[passage_id]]


# ---------------------------------------------------------------------------------------------------
# A run's index

def retrieval_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / RETRIEVAL_DIR


def _run_retrieval(raw: dict | None):
    """The retrieval settings (settings.RetrievalSettings) of a run's settings block (`runs.settings_block`);
    None for a folder without run settings.

    A run whose settings have no "retrieval" group was trained before retrieval existed: mode "off",
    whatever today's default (which `load_settings` would fill in) says."""
    from hust_sft.settings import RetrievalSettings, RunSettings, from_dict

    if raw is None:
        return None
    if not isinstance(raw.get("retrieval"), dict):
        return RetrievalSettings(retrieval="off")
    return from_dict(RunSettings, raw).retrieval  # what runs.load_settings returns


_UNREAD = object()


def for_run(run_dir: str | Path, *, settings_block=_UNREAD) -> Retriever | None:
    """The retriever a run's adapter must answer with, or None when it was trained without retrieval.

    `run_dir` may be a run directory or its `adapter/` folder (then the run is its parent). A run whose
    settings say retrieval "answer" or "train" and which has no usable `retrieval/` raises RetrievalError:
    it is never silently answered without its passages; its index must have been built with the embedding
    model its settings name (EmbeddingError otherwise). A folder without run.json/settings.json (e.g. a
    Hub download) uses `retrieval/` when present. `settings_block`: `run_dir`'s, when the caller has read it.
    """
    from hust_sft import runs

    path = Path(run_dir)
    candidates = [path] + ([path.parent] if path.name == "adapter" else [])
    for folder in candidates:
        raw = settings_block if folder is path and settings_block is not _UNREAD else runs.settings_block(folder)
        params = _run_retrieval(raw)
        if params is None:
            continue
        if params.retrieval == "off":
            return None
        if not (retrieval_dir(folder) / META_FILE).is_file():
            raise RetrievalError("retrieval.error.run_without_index", run=folder, mode=params.retrieval,
                                 path=retrieval_dir(folder))
        return Retriever.load(retrieval_dir(folder), embedding_model=params.embedding_model)
    for folder in candidates:
        if (retrieval_dir(folder) / META_FILE).is_file():
            return Retriever.load(retrieval_dir(folder))
    return None


# ---------------------------------------------------------------------------------------------------
# Passages for training (RAFT) and validation

def _seeded(seed: int, passage_id: str) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`, so this is the same on every run and machine.
    return random.Random(f"{seed}:{passage_id}")


def training_passages(retriever: Retriever, records: Sequence, k: int, oracle_ratio: float,
                      seed: int, min_relevance: float = 0.0) -> tuple[list[list[Passage]], dict]:
    """The passages of each training record (RAFT) and a summary of what was drawn.

    Record i is the index's "train:i" (with "train:i#2"… for the further chunks of a long pair). Its own
    pair, and every other training pair with the same normalised question, is excluded from the search;
    with probability `oracle_ratio` (drawn per record from `seed` and its id) its own pair — as many of
    its chunks as fit in k, in order — takes a seeded position among the retrieved passages, otherwise
    the k retrieved passages are all distractors. Retrieved passages must reach `min_relevance`, as when
    answering, so a sample may have none ("nothing found").
    """
    from hust_sft.data.split import normalise_question

    same_question: dict[str, list[str]] = {}
    for i, r in enumerate(records):
        same_question.setdefault(normalise_question(r.question), []).extend(
            p.id for p in retriever.chunks_of(i))
    out, with_oracle = [], 0
    for i, r in enumerate(records):
        own = f"train:{i}"
        rng = _seeded(seed, own)
        oracle = retriever.chunks_of(i)[:k] if rng.random() < oracle_ratio else []
        found = retriever.search(r.question, k - len(oracle),
                                 exclude_id=same_question[normalise_question(r.question)],
                                 min_relevance=min_relevance)
        if oracle:
            at = rng.randint(0, len(found))
            found[at:at] = [Passage(**{**p.to_dict(), "score": 0.0}) for p in oracle]
            with_oracle += 1
        out.append(found)
    return out, {"samples": len(records), "with_own_pair": with_oracle, "k": k, "oracle_ratio": oracle_ratio,
                 "min_relevance": min_relevance, "without_passages": sum(not found for found in out)}


def validation_passages(retriever: Retriever, records: Sequence, k: int,
                        min_relevance: float = 0.0) -> list[list[Passage]]:
    """The passages of each validation record: the search and relevance floor answering uses, with the
    training k (the validation loss measures what training optimises)."""
    return [retriever.search(r.question, k, min_relevance=min_relevance) for r in records]


# ---------------------------------------------------------------------------------------------------
# Answering with retrieval (chat, evaluation, arena): the index and parameters a run's answers use

@dataclass(frozen=True)
class Asked:
    """How a retrieval arm asks one question: `passages` for the prompt (None: the plain prompt, no
    retrieval layout), whether the adapter answers, and whether no passage was relevant (`off_topic`)."""
    passages: list[Passage] | None
    use_adapter: bool
    off_topic: bool


@dataclass
class AnswerRetrieval:
    """A retriever with the k, passage length and relevance rules answers use; `origin` says where the
    index came from: "run" (the run's own retrieval/, the passages training used) or "built" (from the
    training split now, by `Retriever.build`, for a run trained without retrieval or for the base model)."""
    retriever: Retriever
    k: int
    passage_max_chars: int
    origin: str
    min_relevance: float
    off_topic: str

    @classmethod
    def of(cls, retriever: Retriever, params, origin: str) -> AnswerRetrieval:
        """With the rules of `params` (settings.RetrievalSettings: a run's, or today's defaults)."""
        chars = params.answer_passage_chars or params.passage_max_chars  # 0: as in training
        return cls(retriever, params.answer_k, chars, origin, params.min_relevance, params.off_topic)

    def search(self, question: str) -> list[Passage]:
        return self.retriever.search(question, self.k, min_relevance=self.min_relevance)

    def ask(self, question: str, tuned: bool) -> Asked:
        """The prompt's passages and the answering model for `question` on a retrieval arm (`tuned`: the
        adapter's). Off topic (no passage reaches min_relevance) with off_topic "base": the base model
        answers the plain question, exactly as the base arm would."""
        return self.asked(self.search(question), tuned)

    def asked(self, hits: list[Passage], tuned: bool) -> Asked:
        """`ask` for passages already searched (`hits` of `search`): arms sharing this index search once
        and each decides its own answering model."""
        if not hits and self.off_topic == "base":
            return Asked(None, False, True)
        return Asked(hits, tuned, not hits)

    def to_dict(self) -> dict:
        return {"origin": self.origin, "k": self.k, "passage_max_chars": self.passage_max_chars,
                "min_relevance": self.min_relevance, "off_topic": self.off_topic,
                "passages": len(self.retriever), "sha256": self.retriever.sha256}


def _run_folder(spec: str | Path) -> Path | None:
    path = Path(spec)
    if not path.exists():
        return None  # a Hub id
    return path.parent if path.name == "adapter" and not (path / "run.json").is_file() else path


def for_answering(spec: str | Path | None, *, train_records: Sequence | None = None,
                  data_settings=None) -> AnswerRetrieval:
    """The retrieval an adapter (`spec`: run dir, adapter dir; None: the base model alone) answers with.

    A run with a usable index answers with it, and with its own answer_k / passage_max_chars; a run
    trained with retrieval whose index is missing raises RetrievalError (`for_run`); otherwise an index is
    built from `train_records` (or the training split of `data_settings`) — the same function training
    uses, so it holds the same passages a retrieval run of that data would have.
    """
    from hust_sft import runs
    from hust_sft.settings import RetrievalSettings, RunSettings, from_dict, to_dict

    folder = _run_folder(spec) if spec else None
    raw = runs.settings_block(folder) if folder is not None else None  # the run's settings, read once
    found = for_run(folder, settings_block=raw) if folder is not None else None
    params, trained = RetrievalSettings(), None
    if raw is not None:
        try:
            trained = from_dict(RunSettings, raw)  # what runs.load_settings returns
        except ValueError:
            trained = None
        if trained is not None:
            params = trained.retrieval
    if found is not None:
        if folder is not None and trained is None:  # an index without its run's settings (a Hub download)
            params = from_dict(RetrievalSettings, found.settings)
        return AnswerRetrieval.of(found, params, "run")
    if train_records is None:
        from hust_sft.data import load_data

        train_records = load_data(data_settings).splits["train"]
    from hust_sft import passage_size

    if not (params.passage_max_chars and params.answer_passage_chars):  # sizes never derived: derive them now
        from hust_sft.settings import DataSettings

        data = trained.data if trained is not None else (data_settings or DataSettings())
        params = passage_size.resolved(params, passage_size.resolve(params, train_records, data))
    chunk = passage_size.chunk_chars(params.passage_max_chars, params.answer_passage_chars)
    return AnswerRetrieval.of(Retriever.build(train_records, chunk_chars=chunk, settings=to_dict(params)),
                              params, "built")


# ---------------------------------------------------------------------------------------------------
# What visitors and Hub users see of an index: no server paths

def public_source(source: str | None, location: str | None = None) -> str:
    """A passage's `source` ("<file>:<line>" of a training record, or a knowledge file's path) as shown
    outside this machine: the file's base name (and the line), never the folder it lives in, then the
    passage's `location` in that file when it has one: "handbook.pdf p.12". Applied to its own output it
    returns it unchanged (a published index's sources are already public)."""
    text, where = str(source or ""), " ".join(str(location or "").split())
    if where and text.endswith(" " + where):
        text = text[:-len(where) - 1]
    head, sep, line = text.rpartition(":")
    if not (sep and line.isdigit()):
        head, line = text, ""
    head = head.replace("\\", "/").split("?", 1)[0].rstrip("/")
    name = head.rsplit("/", 1)[-1] or "-"
    shown = f"{name}:{line}" if line else name
    return f"{shown} {where}" if where else shown


def cite(passage: Passage) -> str:
    """Where a passage comes from, as every page and published file shows it (`public_source`)."""
    return public_source(passage.source, passage.location)


def public_model(model: str | None) -> str:
    """An embedding model as published: a Hub id as it is, a folder on this machine by its last part."""
    text = str(model or "")
    path = Path(text).expanduser()
    if text and (path.is_absolute() or path.exists() or "\\" in text or text.startswith(".")):
        return path.name or text
    return text


def public_index_files(directory: str | Path) -> dict[str, bytes]:
    """The files of a saved index (`RETRIEVAL_FILES` that exist, relative name → bytes) as published:
    passages' sources as shown (`public_source`: "handbook.pdf p.12", "qa.jsonl:7"), knowledge files reduced
    to their names, meta.json's sha256 recomputed so `Retriever.load` accepts the copy. Only these names
    are read, inside `directory`."""
    directory = Path(directory)
    out: dict[str, bytes] = {}
    if not (directory / META_FILE).is_file() or not (directory / PASSAGES_FILE).is_file():
        return out
    lines = []
    for line in (directory / PASSAGES_FILE).read_text(encoding="utf-8").splitlines():
        if line:
            record = json.loads(line)
            record["source"] = public_source(record.get("source"), record.get("location"))
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    passages = "".join(lines).encode("utf-8")
    meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    meta["knowledge_files"] = [{**k, "file": public_source(k.get("file"))} for k in meta.get("knowledge_files") or []]
    if isinstance(meta.get("embedding"), dict):  # a local model folder by its name only, a Hub id as it is
        meta["embedding"] = {**meta["embedding"], "model": public_model(meta["embedding"].get("model"))}
    if isinstance(meta.get("settings"), dict):  # the run's settings as built: the same names, no paths
        settings = dict(meta["settings"])
        if settings.get("embedding_model"):
            settings["embedding_model"] = public_model(settings["embedding_model"])
        if isinstance(settings.get("knowledge_files"), list):
            settings["knowledge_files"] = [public_source(f) for f in settings["knowledge_files"]]
        meta["settings"] = settings
    meta["sha256"] = _sha256_bytes(passages)
    out[META_FILE] = (json.dumps(meta, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    out[PASSAGES_FILE] = passages
    for name in RETRIEVAL_FILES:
        path = directory / name
        if name not in out and path.is_file() and not path.is_symlink():
            out[name] = path.read_bytes()
    return out
