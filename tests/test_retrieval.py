"""hust_sft.retrieval: what the index holds, how it ranks, how it is saved, and the RAFT passages."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hust_sft import retrieval as R
from hust_sft.data import load_data
from hust_sft.data.encoding import IGNORE, encode, prompt_ids, with_passages
from hust_sft.data.records import Record
from hust_sft.settings import DataSettings, RetrievalSettings

SAMPLE = Path(__file__).resolve().parents[1] / "hust_sft" / "assets" / "sample_handbook.jsonl"


def rec(q: str, a: str, line: int = 1) -> Record:
    return Record(messages=[{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                  source="qa.jsonl", line=line)


@pytest.fixture(scope="module")
def bundle():
    return load_data(DataSettings(data=str(SAMPLE)))


@pytest.fixture(scope="module")
def retriever(bundle):
    return R.Retriever.build(bundle.splits["train"])


def test_words_fold_width_and_case_and_drop_punctuation_and_stop_words():
    assert R.words("ＭＩＳ系统怎么登录？ 校园卡，补办。The Library") == [
        "mis", "系统", "登录", "校园", "校园卡", "补办", "library"]


def test_index_holds_the_training_split_only(bundle, retriever):
    held_out = bundle.splits["validation"] + bundle.splits["test"]
    assert len(bundle.splits["validation"]) == 3 and len(bundle.splits["test"]) == 5
    assert [p.id for p in retriever.passages] == [f"train:{i}" for i in range(len(bundle.splits["train"]))]
    texts = "\n".join(p.text for p in retriever.passages)
    for r in held_out:
        assert r.question not in texts, r.question
        assert r.answer not in texts, r.answer
        # Retrieval for a held-out question finds other pairs, never itself.
        assert all(p.question != r.question for p in retriever.search(r.question, 10))


def test_search_ranks_the_matching_pair_first_and_is_deterministic(bundle, retriever):
    train = bundle.splits["train"]
    q = train[0].question
    hits = retriever.search(q, 3)
    assert hits[0].id == "train:0" and hits[0].question == q
    assert hits[0].text == f"问：{q}\n答：{train[0].answer}"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert [h.to_dict() for h in retriever.search(q, 3)] == [h.to_dict() for h in hits]
    assert retriever.search(q, 3, exclude_id="train:0")[0].id == hits[1].id
    assert len(retriever.search(q, 3, exclude_id="train:0")) == 3


def test_relevance_is_the_share_of_the_question_word_weight_a_passage_holds():
    """Lucene idf, idf(df) = ln(1 + (N − df + 0.5) / (df + 0.5)), N = 3 passages; a word the index never
    saw ("delta") weighs as df = 0."""
    import math

    index = R.Retriever.build([rec("alpha beta", "gamma", 1), rec("alpha epsilon", "zeta", 2),
                               rec("eta theta", "iota", 3)])
    idf = {df: math.log(1 + (3 - df + 0.5) / (df + 0.5)) for df in (0, 1, 2)}
    hits = index.search("alpha beta delta", 3)
    assert [h.id for h in hits] == ["train:0", "train:1"]
    assert hits[0].relevance == round((idf[2] + idf[1]) / (idf[2] + idf[1] + idf[0]), 4) == 0.411
    assert hits[1].relevance == round(idf[2] / (idf[2] + idf[1] + idf[0]), 4) == 0.1331
    assert [h.id for h in index.search("alpha beta delta", 3, min_relevance=0.2)] == ["train:0"]
    assert index.search("alpha beta delta", 3, min_relevance=0.6) == []
    assert index.search("delta omega", 3) == []                    # nothing known: no passage at all


def test_an_off_topic_question_goes_to_the_base_model_without_passages():
    index = R.Retriever.build([rec("alpha beta", "gamma", 1), rec("alpha epsilon", "zeta", 2),
                               rec("eta theta", "iota", 3)])
    rules = RetrievalSettings(answer_k=2, min_relevance=0.25)
    found = R.AnswerRetrieval.of(index, rules, "built")
    on = found.ask("alpha beta delta", tuned=True)
    assert ([p.id for p in on.passages], on.use_adapter, on.off_topic) == (["train:0"], True, False)
    assert found.ask("alpha delta", tuned=True) == R.Asked(None, False, True)     # 0.1844 < 0.25: the base answers
    assert found.ask("alpha delta", tuned=False) == R.Asked(None, False, True)
    rules.off_topic = "no_passages"                               # the arm's own model, told nothing was found
    assert R.AnswerRetrieval.of(index, rules, "built").ask("alpha delta", tuned=True) == R.Asked([], True, True)
    assert found.to_dict() == {"origin": "built", "k": 2, "passage_max_chars": rules.passage_max_chars,
                               "min_relevance": 0.25, "off_topic": "base", "passages": 3,
                               "sha256": index.sha256}


def test_equal_scores_are_ordered_by_id():
    r = R.Retriever.build([rec("宿舍几点关门", "十一点"), rec("宿舍几点关门", "十一点")] + [rec("食堂", "早餐")])
    hits = r.search("宿舍关门", 5)
    assert [h.id for h in hits] == ["train:0", "train:1"]  # the unrelated pair scores 0 and is not returned
    assert hits[0].score == hits[1].score > 0
    assert r.search("图书馆", 5) == []  # no shared word


def test_save_and_load_give_the_same_ranking_and_detect_changes(tmp_path, bundle, retriever):
    retriever.save(tmp_path / "retrieval")
    meta = json.loads((tmp_path / "retrieval" / "meta.json").read_text(encoding="utf-8"))
    assert meta["passages"] == len(bundle.splits["train"]) and meta["sha256"] == retriever.sha256
    loaded = R.Retriever.load(tmp_path / "retrieval")
    for r in bundle.splits["test"]:
        expected = [p.to_dict() for p in retriever.search(r.question, 3)]
        assert [p.to_dict() for p in loaded.search(r.question, 3)] == expected
    passages = tmp_path / "retrieval" / "passages.jsonl"
    passages.write_text(passages.read_text(encoding="utf-8").replace("校园卡", "学生卡"), encoding="utf-8")
    with pytest.raises(R.RetrievalError, match="does not match the sha256"):
        R.Retriever.load(tmp_path / "retrieval")


def write_run(run_dir: Path, mode: str) -> Path:
    run_dir.mkdir(parents=True)
    settings = {"retrieval": {"retrieval": mode, "retrieval_k": 3}}
    (run_dir / "run.json").write_text(json.dumps({"settings": settings}), encoding="utf-8")
    return run_dir


def test_for_run_refuses_a_retrieval_run_without_its_index(tmp_path, retriever):
    assert R.for_run(write_run(tmp_path / "plain", "off")) is None
    older = tmp_path / "older"  # trained before retrieval existed: no "retrieval" group at all
    older.mkdir()
    (older / "run.json").write_text(json.dumps({"settings": {"train": {"epochs": 4.0}}}), encoding="utf-8")
    assert R.for_run(older) is None
    bare = write_run(tmp_path / "bare", "train")
    with pytest.raises(R.RetrievalError) as e:
        R.for_run(bare)
    assert str(e.value).startswith(f"{bare} was trained with retrieval 'train' but {bare / 'retrieval'} is missing")
    assert "检索" in e.value.text("zh")
    with pytest.raises(R.RetrievalError):
        R.for_run(bare / "adapter")  # an adapter folder is looked up in its run
    retriever.save(bare / "retrieval")
    assert R.for_run(bare / "adapter").sha256 == retriever.sha256
    hub = tmp_path / "hub"  # no run.json: the folder's own retrieval/ when there is one
    retriever.save(hub / "retrieval")
    assert R.for_run(hub).sha256 == retriever.sha256
    assert R.for_run(tmp_path / "nothing") is None


def test_for_answering_reads_the_run_s_settings_once(tmp_path, retriever, monkeypatch):
    """Which index (the run's mode) and how answers use it (answer_k) come from one read of run.json."""
    from hust_sft import runs

    run = write_run(tmp_path / "rag", "answer")
    settings = {"retrieval": {"retrieval": "answer", "retrieval_k": 3, "answer_k": 4}}
    (run / "run.json").write_text(json.dumps({"settings": settings}), encoding="utf-8")
    retriever.save(run / "retrieval")
    reads, read = [], runs.read_run_json
    monkeypatch.setattr(runs, "read_run_json", lambda d: reads.append(Path(d)) or read(d))
    found = R.for_answering(run)
    assert (found.origin, found.k, found.retriever.sha256) == ("run", 4, retriever.sha256)
    assert reads == [run]


# Knowledge files (PDF, DOCX, Markdown, text): tests/test_knowledge.py


def test_raft_passages_exclude_the_own_pair_unless_it_is_the_oracle(bundle, retriever):
    train = bundle.splits["train"]
    never, _ = R.training_passages(retriever, train, 3, 0.0, seed=1)
    always, summary = R.training_passages(retriever, train, 3, 1.0, seed=1)
    assert summary == {"samples": len(train), "with_own_pair": len(train), "k": 3, "oracle_ratio": 1.0,
                       "min_relevance": 0.0, "without_passages": 0}
    for i, (no, yes) in enumerate(zip(never, always)):
        assert f"train:{i}" not in [p.id for p in no] and len(no) <= 3
        assert [p.id for p in yes].count(f"train:{i}") == 1 and len(yes) <= 3
    some, summary = R.training_passages(retriever, train, 3, 0.5, seed=7)
    again, _ = R.training_passages(retriever, train, 3, 0.5, seed=7)
    assert [[p.id for p in ps] for ps in some] == [[p.id for p in ps] for ps in again]
    assert summary["with_own_pair"] == sum(f"train:{i}" in [p.id for p in ps] for i, ps in enumerate(some))
    assert 0 < summary["with_own_pair"] < len(train)
    # A duplicate question is excluded with the own pair: it would give the answer away.
    dup = [rec("宿舍几点关门", "十一点"), rec("宿舍几点关门", "十一点半"), rec("宿舍能用电饭锅吗", "不能")]
    ps, _ = R.training_passages(R.Retriever.build(dup), dup, 2, 0.0, seed=0)
    assert [p.id for p in ps[0]] == ["train:2"] and [p.id for p in ps[1]] == ["train:2"]


def test_prompt_template_numbers_and_clips_passages():
    assert with_passages("宿舍几点关门？", ["问：a\n答：b", "宿舍晚上十一点关门，晚归需登记"], 10) == (
        "参考资料（可能与问题无关）：\n"
        "[1] 问：a\n答：b\n[2] 宿舍晚上十一点关门…\n\n问题：宿舍几点关门？")
    assert with_passages("q", [], 10).endswith("（未检索到相关资料）\n\n问题：q")


def test_training_and_answering_prompts_have_the_same_token_ids(tokenizer, retriever, bundle):
    q = bundle.splits["test"][0]
    passages = retriever.search(q.question, 3)
    assert passages
    k = 150
    enc = encode(tokenizer, q.messages, "S", 2048, passages=passages, passage_max_chars=k)
    prompt = prompt_ids(tokenizer, [{"role": "user", "content": q.question}], "S", passages=passages,
                        passage_max_chars=k)
    assert enc["input_ids"][:len(prompt)] == prompt
    assert set(enc["labels"][:len(prompt)]) == {IGNORE}
    answer = tokenizer.decode([x for x in enc["labels"] if x != IGNORE])
    assert answer == q.answer + "<|im_end|>"
    assert tokenizer.decode(prompt).count("[1] 问：") == 1 and "[3] " in tokenizer.decode(prompt)
    plain = prompt_ids(tokenizer, [{"role": "user", "content": q.question}], "S")
    assert len(plain) < len(prompt) and "[1]" not in tokenizer.decode(plain)
