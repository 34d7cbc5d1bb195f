"""Dense retrieval (hust_sft.embedding) fused with BM25 by reciprocal rank, on a tiny random BERT encoder.

The encoder is built from a config (random weights, a character vocabulary) and saved to a folder, then
loaded through the same `Embedder.load` a Hub id goes through; rankings it decides are checked against
scores computed here by hand from the RRF formula.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hust_sft import retrieval as R
from hust_sft.data.records import Record
from hust_sft.embedding import Embedder, EmbeddingError
from hust_sft.settings import RetrievalSettings, to_dict

PAIRS = [
    ("校园卡丢了怎么挂失？", "到一站式服务大厅挂失校园卡，或在完美校园App上挂失。"),
    ("校园卡怎么充值？", "在自助圈存机或完美校园App充值校园卡。"),
    ("图书馆几点开门？", "图书馆早上八点开门，晚上十点闭馆。"),
    ("宿舍几点关门？", "宿舍晚上十一点关门。"),
]


def rec(q: str, a: str, line: int = 1) -> Record:
    return Record(messages=[{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                  source="qa.jsonl", line=line)


RECORDS = [rec(q, a, i) for i, (q, a) in enumerate(PAIRS, 1)]


def build_tiny_encoder(out: Path, *, hidden: int = 32, seed: int = 0) -> Path:
    """A random 2-layer BertModel and a character-level WordPiece tokenizer, saved as a model folder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    chars = sorted({c for q, a in PAIRS for c in q + a} | set("0123456789abcdefghijklmnopqrstuvwxyz"))
    words = ["query", "passage", ":"]  # the prefixes multilingual-e5 asks for, as whole words
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *chars])}
    torch.manual_seed(seed)
    model = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=128))
    model.save_pretrained(out)
    BertTokenizer(vocab=vocab).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("encoders") / "tiny-bert")


def dense_settings(model: Path | str, **extra) -> dict:
    return to_dict(RetrievalSettings(embedding_model=str(model), **extra))


def test_rrf_scores_are_the_reciprocal_ranks_summed():
    # positions 0, 1, 2 ranked [0, 1, 2] by one ranking and [2, 0] by the other; 3 in neither
    assert R.rrf_scores(4, [0, 1, 2], [2, 0]) == pytest.approx([1 / 61 + 1 / 62, 1 / 62, 1 / 63 + 1 / 61, 0.0])


def test_embeddings_are_saved_and_reloaded_with_the_same_ranking(tmp_path, encoder_dir):
    built = R.Retriever.build(RECORDS, settings=dense_settings(encoder_dir))
    assert built.embeddings.shape == (4, 32) and built.embeddings.dtype == np.float32
    assert np.allclose(np.linalg.norm(built.embeddings, axis=1), 1.0, atol=1e-5)
    built.save(tmp_path / "retrieval")
    saved = tmp_path / "retrieval" / R.EMBEDDINGS_FILE
    meta = json.loads((tmp_path / "retrieval" / R.META_FILE).read_text(encoding="utf-8"))
    dense = meta["embedding"]
    assert meta["format"] == 2
    assert (dense["model"], dense["pooling"], dense["dim"], dense["rows"], dense["file"]) == (
        str(encoder_dir), "mean", 32, 4, "embeddings.npy")
    import hashlib

    assert dense["sha256"] == hashlib.sha256(saved.read_bytes()).hexdigest()
    loaded = R.Retriever.load(tmp_path / "retrieval", embedding_model=str(encoder_dir))
    assert np.array_equal(loaded.embeddings, built.embeddings)
    for question in ("校园卡丢了", "图书馆开门时间", "宿舍关门"):
        assert [p.to_dict() for p in loaded.search(question, 3)] == [p.to_dict() for p in built.search(question, 3)]
    assert loaded.embedding_model == str(encoder_dir)


def test_fusion_orders_by_hand_computed_rrf_and_the_floor_stays_on_bm25(encoder_dir):
    r = R.Retriever.build(RECORDS, settings=dense_settings(encoder_dir))
    question = "校园卡挂失"
    bm25 = R.Retriever.build(RECORDS).search(question, 4)
    # BM25: pair 0 (挂失 and 校园卡) before pair 1 (校园卡 only); pairs 2 and 3 share no word (score 0).
    assert [p.id for p in bm25] == ["train:0", "train:1"]
    # The dense ranking set by hand: passage 2 closest to the question, then 1, 3, 0.
    q = r.embedder.encode([question], query=True)[0]
    other = np.linalg.svd(np.stack([q, np.ones_like(q)]))[2][-1]  # a unit vector orthogonal to q
    r.embeddings = np.stack([c * q + np.sqrt(1 - c * c) * other for c in (0.1, 0.6, 0.9, 0.3)]).astype(np.float32)
    hits = r.search(question, 4)
    # RRF (k = 60): 0 = 1/61 (BM25 1st) + 1/64 (dense 4th); 1 = 1/62 + 1/62; 2 = 1/61 (dense 1st); 3 = 1/63
    expected = {"train:0": 1 / 61 + 1 / 64, "train:1": 1 / 62 + 1 / 62, "train:2": 1 / 61, "train:3": 1 / 63}
    assert [h.id for h in hits] == ["train:1", "train:0", "train:2", "train:3"]
    assert [h.score for h in hits] == [round(expected[h.id], 6) for h in hits]
    # The off-topic floor is BM25's relevance: passages 2 and 3 hold none of the question's words, so at
    # 0.25 they are never shown however close their embeddings are, and both rankings are of the passages
    # the floor lets through: BM25 [0, 1], dense [1, 0], so 0 = 1 = 1/61 + 1/62, a tie ordered by id.
    floored = r.search(question, 4, min_relevance=0.25)
    assert [h.id for h in floored] == ["train:0", "train:1"]
    assert [h.score for h in floored] == [round(1 / 61 + 1 / 62, 6)] * 2
    assert [h.relevance for h in floored] == [h.relevance for h in r.search(question, 2, min_relevance=0.25)]
    assert r.search(question, 4, exclude_id="train:1", min_relevance=0.25)[0].id == "train:0"
    assert r.search("完全无关的话", 4, min_relevance=0.25) == []  # no BM25 word: off topic, dense or not


def test_a_hub_id_goes_through_the_same_loader(tmp_path, monkeypatch, encoder_dir):
    """A Hub id is resolved by transformers from the Hub cache (here: an offline cache holding the tiny
    encoder as "tiny-org/tiny-bert"), through `Embedder.load`, exactly as a folder is; on a machine with
    Hub access the same call downloads it."""
    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--tiny-org--tiny-bert"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for f in encoder_dir.iterdir():
        (snapshot / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub = Embedder.load("tiny-org/tiny-bert")
    assert (hub.model_id, hub.dim, hub.pooling) == ("tiny-org/tiny-bert", 32, "mean")
    assert np.allclose(hub.encode(["校园卡挂失"]), Embedder.load(str(encoder_dir)).encode(["校园卡挂失"]), atol=1e-6)
    with pytest.raises(EmbeddingError, match="cannot load the embedding model 'tiny-org/not-cached'"):
        Embedder.load("tiny-org/not-cached")  # offline and not in the cache: named, not a traceback


def test_pooling_follows_the_models_sentence_transformers_config(tmp_path, encoder_dir):
    folder = tmp_path / "cls-model"
    folder.mkdir()
    for f in encoder_dir.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True,
                                                                  "pooling_mode_mean_tokens": False}))
    cls = Embedder.load(str(folder))
    assert cls.pooling == "cls"
    enc = cls.tokenizer(["宿舍关门"], return_tensors="pt")
    import torch

    with torch.inference_mode():
        first = torch.nn.functional.normalize(cls.model(**enc).last_hidden_state[:, 0], dim=-1).numpy()
    assert np.allclose(cls.encode(["宿舍关门"]), first, atol=1e-6)
    assert Embedder.load(str(folder), pooling="mean").pooling == "mean"
    mean = Embedder.load(str(encoder_dir))
    with torch.inference_mode():
        hidden = mean.model(**mean.tokenizer(["宿舍关门"], return_tensors="pt")).last_hidden_state
    assert np.allclose(mean.encode(["宿舍关门"]), torch.nn.functional.normalize(hidden.mean(1), dim=-1).numpy(),
                       atol=1e-6)
    with pytest.raises(EmbeddingError, match="'max' is not valid"):
        Embedder.load(str(encoder_dir), pooling="max")


def test_prefixes_are_put_before_questions_and_passages(encoder_dir):
    e = Embedder.load(str(encoder_dir), query_prefix="query: ", passage_prefix="passage: ")
    plain = Embedder.load(str(encoder_dir))
    assert np.allclose(e.encode(["宿舍"], query=True), plain.encode(["query: 宿舍"]), atol=1e-6)
    assert np.allclose(e.encode(["宿舍"]), plain.encode(["passage: 宿舍"]), atol=1e-6)
    assert not np.allclose(e.encode(["宿舍"], query=True), e.encode(["宿舍"]), atol=1e-3)


def test_a_missing_model_is_named(tmp_path, monkeypatch):
    with pytest.raises(EmbeddingError) as e:
        Embedder.load(str(tmp_path / "no-such-model"))
    assert str(e.value).startswith(f"cannot load the embedding model '{tmp_path / 'no-such-model'}' (")
    assert "向量模型" in e.value.text("zh")
    with pytest.raises(R.RetrievalError, match="cannot load the embedding model"):  # a RetrievalError too
        R.Retriever.build(RECORDS, settings=dense_settings(tmp_path / "no-such-model"))


def test_an_index_is_refused_with_another_model_or_altered_embeddings(tmp_path, encoder_dir):
    folder = R.Retriever.build(RECORDS, settings=dense_settings(encoder_dir)).save(tmp_path / "retrieval")
    with pytest.raises(EmbeddingError) as e:
        R.Retriever.load(folder, embedding_model="BAAI/bge-small-zh-v1.5")
    assert str(e.value).startswith(f"{folder}: the index's passage embeddings were computed with '{encoder_dir}', "
                                   "but 'BAAI/bge-small-zh-v1.5' is asked for")
    with pytest.raises(EmbeddingError, match="with '-', but"):  # a BM25-only index asked for a dense model
        R.Retriever.load(R.Retriever.build(RECORDS).save(tmp_path / "bm25"), embedding_model=str(encoder_dir))
    wider = build_tiny_encoder(tmp_path / "wider", hidden=48)  # the folder now holds a model of another width
    meta = json.loads((folder / R.META_FILE).read_text(encoding="utf-8"))
    meta["embedding"]["model"] = str(wider)
    (folder / R.META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(EmbeddingError, match=r"\(32 dimensions\)', but .*\(48 dimensions\)"):
        R.Retriever.load(folder)
    meta["embedding"]["model"] = str(encoder_dir)
    (folder / R.META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    saved = folder / R.EMBEDDINGS_FILE
    saved.write_bytes(saved.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(EmbeddingError, match="embeddings.npy: the passage embeddings cannot be used .*sha256"):
        R.Retriever.load(folder)
    saved.unlink()
    with pytest.raises(EmbeddingError, match="embeddings.npy: the passage embeddings cannot be used"):
        R.Retriever.load(folder)


def test_older_and_newer_index_formats(tmp_path):
    folder = R.Retriever.build(RECORDS).save(tmp_path / "retrieval")
    meta = json.loads((folder / R.META_FILE).read_text(encoding="utf-8"))
    assert "embedding" not in meta and not (folder / R.EMBEDDINGS_FILE).exists()
    meta["format"] = 1  # what every index before dense retrieval says: loads as before, BM25 alone
    (folder / R.META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    old = R.Retriever.load(folder, embedding_model="")
    assert old.embeddings is None and [p.id for p in old.search("校园卡挂失", 2)] == ["train:0", "train:1"]
    meta["format"] = 3
    (folder / R.META_FILE).write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(R.RetrievalError, match="retrieval index format 3 is newer than this version reads"):
        R.Retriever.load(folder)


def test_a_runs_index_answers_with_fusion_on_every_answering_path(tmp_path, encoder_dir):
    """Chat, the evaluation and Blind A/B all ask `retrieval.for_answering` (AnswerRetrieval.search): a run
    trained with an embedding model answers with its saved embeddings, fused."""
    run = tmp_path / "run"
    run.mkdir()
    params = RetrievalSettings(retrieval="train", embedding_model=str(encoder_dir))
    (run / "run.json").write_text(json.dumps({"settings": {"retrieval": to_dict(params)}}), encoding="utf-8")
    index = R.Retriever.build(RECORDS, settings=to_dict(params))
    index.save(R.retrieval_dir(run))
    found = R.for_answering(run)
    assert found.origin == "run" and found.retriever.embedding_model == str(encoder_dir)
    assert [p.to_dict() for p in found.search("校园卡挂失")] == [
        p.to_dict() for p in index.search("校园卡挂失", params.answer_k, min_relevance=params.min_relevance)]
    # The fused scores by hand from the two rankings over the passages above the floor.
    question, floor = "校园卡挂失", params.min_relevance
    by_bm25 = [p.id for p in R.Retriever.build(RECORDS).search(question, 4, min_relevance=floor)]
    cosine = index.embeddings @ index.embedder.encode([question], query=True)[0]
    by_dense = sorted(by_bm25, key=lambda pid: -cosine[int(pid.split(":")[1])])
    expected = sorted(((1 / (60 + by_bm25.index(pid) + 1) + 1 / (60 + by_dense.index(pid) + 1), pid)
                       for pid in by_bm25), key=lambda x: (-x[0], x[1]))[:params.answer_k]
    assert [(p.score, p.id) for p in found.search(question)] == [(round(s, 6), pid) for s, pid in expected]
    built = R.for_answering(None, train_records=RECORDS)  # today's defaults: BM25 alone, nothing to download
    assert built.origin == "built" and built.retriever.embeddings is None
    # The run's settings name another model than its index was built with: refused, never mixed.
    other = {"settings": {"retrieval": to_dict(RetrievalSettings(retrieval="train", embedding_model="x/y"))}}
    (run / "run.json").write_text(json.dumps(other), encoding="utf-8")
    with pytest.raises(EmbeddingError, match="but 'x/y' is asked for"):
        R.for_run(run)


def test_published_index_carries_the_embeddings_and_no_local_model_path(tmp_path, encoder_dir):
    folder = R.Retriever.build(RECORDS, settings=dense_settings(encoder_dir)).save(tmp_path / "retrieval")
    files = R.public_index_files(folder)
    assert R.EMBEDDINGS_FILE in R.RETRIEVAL_FILES
    assert files[R.EMBEDDINGS_FILE] == (folder / R.EMBEDDINGS_FILE).read_bytes()
    meta = json.loads(files[R.META_FILE])
    assert meta["embedding"]["model"] == "tiny-bert" and meta["settings"]["embedding_model"] == "tiny-bert"
    assert str(tmp_path) not in files[R.META_FILE].decode("utf-8")
    assert R.public_model("BAAI/bge-small-zh-v1.5") == "BAAI/bge-small-zh-v1.5"  # a Hub id stays usable
