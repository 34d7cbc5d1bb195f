"""Stable question-hash splits: fixed per question, unaffected by other records, close to the asked ratios."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from hust_sft.data import DataError, Record, load_records, split_of, split_records
from hust_sft.data.split import normalise_question, question_position

SAMPLE = Path(__file__).resolve().parents[1] / "hust_sft" / "assets" / "sample_handbook.jsonl"


def rec(question: str, answer: str = "a", line: int = 0) -> Record:
    return Record(messages=[{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                  source="t", line=line)


def test_normalisation():
    assert normalise_question("  图书馆\u3000几点\t\n开门？ＡＢＣ１２３ ") == "图书馆 几点 开门?ABC123"


def test_position_is_sha256_of_the_normalised_question():
    # sha256("校园卡丢了怎么办?") starts with 37ea6908150708bf (full-width ？ becomes ? under NFKC)
    assert question_position("校园卡丢了怎么办？") == int("37ea6908150708bf", 16) / 2**64
    assert question_position("校园卡丢了怎么办？") == pytest.approx(0.21842056701009593, abs=0)


@pytest.mark.parametrize("question,expected", [
    ("校园卡丢了怎么办？", "train"),         # position 0.218
    ("宿舍晚上几点关门？", "test"),          # position 0.078 < 0.1
    ("Where is the library?", "train"),  # position 0.972
])
def test_split_of_pinned(question, expected):
    assert split_of(question, 0.1, 0.1) == expected


def test_thresholds_test_first_then_validation():
    q = "校园卡丢了怎么办？"  # position 0.2184
    assert split_of(q, 0.0, 0.22) == "test"
    assert split_of(q, 0.0, 0.21) == "train"
    assert split_of(q, 0.02, 0.2) == "validation"
    assert split_of(q, 0.01, 0.2) == "train"


def test_identical_question_text_same_split():
    variants = ["宿舍晚上几点关门？", "  宿舍晚上几点关门?  ", "宿舍晚上几点关门？\n"]
    assert {split_of(v, 0.1, 0.1) for v in variants} == {"test"}
    records = [rec(v, answer=f"a{i}") for i, v in enumerate(variants)]
    multi = Record(messages=records[0].messages + [{"role": "user", "content": "那周末呢？"},
                                                   {"role": "assistant", "content": "一样。"}], source="t")
    splits = split_records(records + [multi], 0.1, 0.1)
    assert len(splits["test"]) == 4 and splits["train"] == splits["validation"] == []


def test_adding_records_never_moves_a_question():
    records, _ = load_records(SAMPLE)
    before = {r.question: name for name, rs in split_records(records, 0.1, 0.1).items() for r in rs}
    grown = records + [rec(f"新增问题 {i}") for i in range(500)]
    random.Random(0).shuffle(grown)
    after = {r.question: name for name, rs in split_records(grown, 0.1, 0.1).items() for r in rs}
    assert {q: after[q] for q in before} == before
    assert sum(1 for name in after.values() if name != "train") > 50  # the new ones were split too


def test_split_lists_keep_file_order():
    records, _ = load_records(SAMPLE)
    splits = split_records(records, 0.1, 0.1)
    assert [r.line for r in splits["test"]] == [3, 10, 16, 18, 30]
    assert [r.line for r in splits["validation"]] == [13, 31, 32]
    assert sorted(r.line for rs in splits.values() for r in rs) == list(range(1, 41))


def test_bjtu_ratios(bjtu_path):
    records, _ = load_records(bjtu_path)
    sizes = {name: len(rs) for name, rs in split_records(records, 0.1, 0.1).items()}
    assert sizes == {"train": 258, "validation": 31, "test": 26}  # pinned: a change here reshuffles splits
    # within 3 binomial standard deviations of the asked shares (sd = sqrt(315 * 0.1 * 0.9) = 5.3)
    assert abs(sizes["test"] - 31.5) < 16 and abs(sizes["validation"] - 31.5) < 16
    sizes = {name: len(rs) for name, rs in split_records(records, 0.2, 0.0).items()}
    assert sizes["test"] == 0 and abs(sizes["validation"] - 63) < 3 * (315 * 0.2 * 0.8) ** 0.5


def test_zero_ratios_train_everything():
    records = [rec(f"q{i}") for i in range(50)]
    assert split_records(records, 0.0, 0.0) == {"train": records, "validation": [], "test": []}


@pytest.mark.parametrize("val,test", [(0.5, 0.5), (-0.1, 0.1), (0.1, -0.01), (0.7, 0.4)])
def test_bad_ratios(val, test):
    with pytest.raises(DataError) as err:
        split_of("q", val, test)
    assert err.value.text("en") == (f"val_ratio ({val}) and test_ratio ({test}) must each be at least 0 and "
                                    "add up to less than 1")
