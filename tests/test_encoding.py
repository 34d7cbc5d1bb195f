"""Label masks of hust_sft.data.encoding and padding of PadCollator, checked token by token.

Ids are the Qwen2.5 vocabulary's: <|im_start|>=151644, <|im_end|>=151645, "system"=8948, "user"=872,
"assistant"=77091, "\\n"=198, "S"=50, "Hi"=13048, "Hello"=9707, "A"=32, "B"=33, "C"=34.
"""
from __future__ import annotations

import pytest
import torch

from hust_sft.data.collator import PadCollator
from hust_sft.data.encoding import IGNORE, EncodingError, encode, encode_records, prompt_ids
from hust_sft.data.records import Record
from hust_sft.settings import DataSettings

START, END, NL = 151644, 151645, 198
SYSTEM, USER, ASSISTANT = 8948, 872, 77091
S, HI, HELLO, A, B, C = 50, 13048, 9707, 32, 33, 34
X = IGNORE


def turn(role: int, content: int) -> list[int]:
    return [START, role, NL, content, END, NL]


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def test_single_turn_learns_only_the_answer_and_its_im_end(tokenizer):
    enc = encode(tokenizer, [user("Hi"), assistant("Hello")], "S", max_length=1024)
    assert enc["input_ids"] == turn(SYSTEM, S) + turn(USER, HI) + turn(ASSISTANT, HELLO)
    #                      system turn      user turn        <|im_start|>assistant\n  Hello  <|im_end|>  \n
    assert enc["labels"] == [X] * 6 + [X] * 6 + [X, X, X, HELLO, END, X]
    assert enc["truncated"] is False


def test_a_records_own_system_turn_is_replaced_by_the_configured_prompt(tokenizer):
    enc = encode(tokenizer, [{"role": "system", "content": "Hi"}, user("Hi"), assistant("Hello")], "S", 1024)
    assert enc["input_ids"][:6] == turn(SYSTEM, S)
    assert len(enc["input_ids"]) == 18


def test_every_assistant_turn_of_a_multi_turn_conversation_is_learned(tokenizer):
    enc = encode(tokenizer, [user("Hi"), assistant("A"), user("B"), assistant("C")], "S", 1024)
    assert enc["input_ids"] == (turn(SYSTEM, S) + turn(USER, HI) + turn(ASSISTANT, A)
                                + turn(USER, B) + turn(ASSISTANT, C))
    assert enc["labels"] == ([X] * 12 + [X, X, X, A, END, X] + [X] * 6 + [X, X, X, C, END, X])


def test_prompt_ids_end_with_the_assistant_header(tokenizer):
    ids = prompt_ids(tokenizer, [user("Hi")], "S")
    assert ids == turn(SYSTEM, S) + turn(USER, HI) + [START, ASSISTANT, NL]
    with pytest.raises(EncodingError):
        prompt_ids(tokenizer, [user("Hi"), assistant("Hello")], "S")


def test_too_long_conversations_are_dropped_or_truncated_and_counted(tokenizer):
    multi = Record([user("Hi"), assistant("A"), user("B"), assistant("C")], source="f.jsonl", line=1)  # 30 tokens
    single = Record([user("Hi"), assistant("Hello")], source="f.jsonl", line=2)  # 18 tokens
    records = [multi, single]

    drop = DataSettings(system_prompt="S", max_length=20, truncation="drop")
    features, report = encode_records(records, tokenizer, drop)
    assert (report.total, report.kept, report.dropped_too_long, report.truncated) == (2, 1, 1, 0)
    assert report.dropped_lines == ["f.jsonl:1"]
    assert (report.tokens, report.answer_tokens, report.max_tokens) == (18, 2, 18)

    trunc = DataSettings(system_prompt="S", max_length=20, truncation="truncate")
    features, report = encode_records(records, tokenizer, trunc)
    assert (report.kept, report.dropped_too_long, report.truncated) == (2, 0, 1)
    # The first exchange is kept whole, the second dropped: nothing is cut mid-turn.
    assert features[0]["input_ids"] == turn(SYSTEM, S) + turn(USER, HI) + turn(ASSISTANT, A)
    assert features[0]["labels"] == [X] * 12 + [X, X, X, A, END, X]

    # Truncation cannot help when even the first exchange does not fit.
    _, report = encode_records([single], tokenizer, DataSettings(system_prompt="S", max_length=17,
                                                                 truncation="truncate"))
    assert (report.kept, report.dropped_too_long) == (0, 1)


def test_pad_collator_pads_right_with_pad_id_and_ignored_labels():
    batch = PadCollator(pad_token_id=7)([
        {"input_ids": [1, 2, 3], "labels": [X, 2, 3]},
        {"input_ids": [4, 5, 6, 8, 9], "labels": [X, X, 6, 8, 9], "length": 5},
    ])
    assert batch["input_ids"].tolist() == [[1, 2, 3, 7, 7], [4, 5, 6, 8, 9]]
    assert batch["labels"].tolist() == [[X, 2, 3, X, X], [X, X, 6, 8, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["input_ids"].dtype == torch.long
    padded = PadCollator(pad_token_id=7, pad_to_multiple_of=4)([{"input_ids": [1, 2, 3, 4, 5], "labels": [1] * 5}])
    assert padded["input_ids"].shape == (1, 8)


def test_a_conversation_that_cannot_be_encoded_is_named_by_file_and_line(tokenizer):
    ok = Record([user("Hi"), assistant("Hello")], source="f.jsonl", line=1)
    no_answer = Record([user("Hi")], source="f.jsonl", line=3)
    with pytest.raises(EncodingError) as err:
        encode_records([ok, no_answer], tokenizer, DataSettings(system_prompt="S", max_length=64))
    assert str(err.value) == "f.jsonl:3: the conversation has no assistant turn to learn from"
    assert err.value.text("zh") == "f.jsonl:3：该对话没有可学习的助手轮次"
