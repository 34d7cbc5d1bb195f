"""Passage count and length derived from the training pairs: the rule on hand-made numbers, and on
HUST-shaped data (300–600-character Markdown-listed answers) nothing of a passage is cut at the defaults."""
import pytest
from qa_data import write_long_answers_jsonl

from hust_sft import passage_size
from hust_sft import retrieval as R
from hust_sft.data import load_data
from hust_sft.data.encoding import ELLIPSIS, clip, with_passages
from hust_sft.settings import DataSettings, RetrievalSettings


def test_percentile_is_nearest_rank():
    assert passage_size.percentile([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0.9) == 90
    assert passage_size.percentile([5, 1, 3], 0.9) == 5
    assert passage_size.percentile([7], 0.9) == 7


def test_the_clip_is_the_90th_percentile_pair_when_k_such_passages_fit_the_budget():
    chars = [100, 110, 120, 130, 140, 150, 160, 170, 181, 200]  # 90th percentile: 181 → 190
    tokens = [c // 2 for c in chars]                              # 0.5 tokens per character
    size = passage_size.derive(chars, tokens, [100] * 10, k=2, max_length=1024, budget_tokens=512)
    # 2 passages × 190 chars × 0.5 = 190 tokens ≤ 512
    assert (size.k, size.chars, size.limited_by, size.pair_chars, size.budget_tokens) == (2, 190, "data", 181, 512)
    assert size.tokens == 190


def test_the_budget_and_the_room_max_length_leaves_bound_the_clip():
    chars = [600] * 10
    tokens = [600] * 10                                            # 1 token per character
    size = passage_size.derive(chars, tokens, [100] * 10, k=2, max_length=1024, budget_tokens=512)
    assert (size.chars, size.limited_by) == (250, "budget")        # 512 / 2 = 256 → 250
    # max_length 400 leaves 400 − 100 (the 95th-percentile plain sample) − 16 (template) = 284 tokens
    size = passage_size.derive(chars, tokens, [100] * 10, k=2, max_length=400, budget_tokens=512)
    assert (size.chars, size.budget_tokens) == (140, 284)
    # never below MIN_CHARS, whatever the budget
    assert passage_size.derive(chars, tokens, [390] * 10, k=2, max_length=400, budget_tokens=512).chars == 80


def test_a_chosen_length_wins():
    size = passage_size.derive([100], [50], [10], k=3, max_length=1024, budget_tokens=64, setting_chars=333)
    assert (size.k, size.chars, size.limited_by) == (3, 333, "setting")


def test_training_k_zero_follows_answering_and_answer_length_follows_training():
    rs = RetrievalSettings(retrieval_k=0, answer_k=3, passage_max_chars=200)

    class Rec:
        question, answer, messages = "q", "a" * 50, [{"role": "user", "content": "q"},
                                                    {"role": "assistant", "content": "a" * 50}]
    sizes = passage_size.resolve(rs, [Rec()] * 5, DataSettings())
    assert (sizes.train.k, sizes.train.chars, sizes.answer.k, sizes.answer.chars) == (3, 200, 3, 200)
    out = passage_size.resolved(rs, sizes)
    assert (out.retrieval_k, out.passage_max_chars, out.answer_passage_chars) == (3, 200, 200)


@pytest.fixture
def long_bundle(tmp_path):
    return load_data(DataSettings(data=str(write_long_answers_jsonl(tmp_path / "long.jsonl")), val_ratio=0.0,
                                  test_ratio=0.0))


def test_hust_shaped_answers_are_never_cut_at_the_defaults(long_bundle, tokenizer):
    records = long_bundle.splits["train"]
    sizes = passage_size.resolve(RetrievalSettings(), records, DataSettings(), tokenizer)
    chars = sizes.train.chars
    # no shorter than the 90th-percentile pair as a passage, unless the budget says so (and says so)
    longest = passage_size.percentile([len(R.pair_text(r.question, r.answer)) for r in records], 0.9)
    assert chars >= longest or sizes.train.limited_by == "budget"
    assert sizes.train.tokens <= sizes.train.budget_tokens
    retriever = R.Retriever.build(records, chunk_chars=sizes.chunk_chars)   # as training builds it
    assert len(retriever) > len(records)                         # the longest pairs were split, not cut
    for p in retriever.passages:
        assert len(p.text) <= sizes.chunk_chars
        assert clip(p.text, sizes.train.chars) == p.text and clip(p.text, sizes.answer.chars) == p.text
    # every line of every answer is in one of its pair's passages, whole
    for i, r in enumerate(records):
        texts = "\n".join(p.text for p in retriever.chunks_of(i))
        assert all(line in texts for line in r.answer.split("\n"))
        assert all(p.text.startswith(f"问：{r.question}\n") for p in retriever.chunks_of(i))
    prompt = with_passages(records[0].question, retriever.search(records[0].question, sizes.answer.k),
                           sizes.answer.chars)
    assert ELLIPSIS not in prompt


def test_a_long_pair_is_split_at_line_ends_with_its_question_on_each_chunk():
    answer = "总则如下：\n- 第一条：" + "甲" * 60 + "\n- 第二条：" + "乙" * 60 + "\n- 第三条：" + "丙" * 60
    chunks = R.pair_chunks("博士培养目标？", answer, 120)
    assert chunks == ["问：博士培养目标？\n答：总则如下：\n- 第一条：" + "甲" * 60,
                      "问：博士培养目标？\n答（续）：- 第二条：" + "乙" * 60,
                      "问：博士培养目标？\n答（续）：- 第三条：" + "丙" * 60]
    assert R.pair_chunks("q", "short", 120) == ["问：q\n答：short"]
    assert R.pair_chunks("q", "x" * 500) == [R.pair_text("q", "x" * 500)]   # no size: one passage
