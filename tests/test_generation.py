"""Batched greedy decoding gives the one-at-a-time answers; adapters switch; streaming grows the text."""
import pytest
import torch

from hust_sft.data.encoding import prompt_ids
from hust_sft.generation import answer_with, generate_batch, stream
from hust_sft.modeling import load_base_model
from hust_sft.settings import ModelSettings

SYSTEM = "You are a helpful assistant."
QUESTIONS = ["一卡通丢了怎么办？", "Where is the library?",
             "请详细说明研究生入学报到需要准备哪些材料，包括身份证、录取通知书、档案、党团关系和照片等具体要求？",
             "WiFi 密码", "宿舍几点关门", "How do I reset my campus network password if I forgot it last week?"]


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_base_model(ModelSettings(model=str(tiny_model_dir)))


@pytest.fixture(scope="module")
def prompts(tokenizer):
    return [prompt_ids(tokenizer, [{"role": "user", "content": q}], SYSTEM) for q in QUESTIONS]


def test_batched_equals_one_by_one_with_long_and_short_prompts(model, tokenizer, prompts):
    assert max(map(len, prompts)) - min(map(len, prompts)) > 20   # real left padding happens
    one = generate_batch(model, tokenizer, prompts, max_new_tokens=12, batch_size=1)
    calls = []
    batched = generate_batch(model, tokenizer, prompts, max_new_tokens=12, batch_size=4,
                             progress=lambda done, total: calls.append((done, total)))
    assert [r.text for r in batched] == [r.text for r in one]
    assert [r.new_tokens for r in batched] == [r.new_tokens for r in one]
    assert all(0 < r.new_tokens <= 12 and r.seconds > 0 for r in batched)
    assert calls == [(4, 6), (6, 6)]


def test_results_come_back_in_prompt_order(model, tokenizer, prompts):
    each = [generate_batch(model, tokenizer, [p], max_new_tokens=6, batch_size=1)[0].text for p in prompts[:3]]
    reordered = generate_batch(model, tokenizer, [prompts[2], prompts[0], prompts[1]], max_new_tokens=6,
                               batch_size=3)
    assert [r.text for r in reordered] == [each[2], each[0], each[1]]


def test_greedy_ignores_sampling_defaults_of_the_model(model, tokenizer, prompts):
    model.generation_config.do_sample, model.generation_config.temperature = True, 1.5
    try:
        runs = [generate_batch(model, tokenizer, prompts[:2], max_new_tokens=8, batch_size=2) for _ in range(2)]
    finally:
        model.generation_config.do_sample, model.generation_config.temperature = False, 1.0
    assert [r.text for r in runs[0]] == [r.text for r in runs[1]]


@pytest.fixture(scope="module")
def peft_model(model):
    from peft import LoraConfig, get_peft_model

    peft = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]), adapter_name="tuned")
    peft.add_adapter("noop", LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(0)
    for name, p in peft.named_parameters():
        if "lora_B.tuned" in name:
            p.data.normal_(0, 2.0)          # only "tuned" changes the answers; "noop" stays a no-op (B = 0)
    return peft


def test_answer_with_switches_between_base_and_adapters(peft_model, tokenizer, prompts):
    def answers():
        return [r.text for r in generate_batch(peft_model, tokenizer, prompts[:3], max_new_tokens=8, batch_size=3)]

    with answer_with(peft_model, None):
        base = answers()
    with answer_with(peft_model, "tuned"):
        tuned = answers()
    with answer_with(peft_model, "noop"):
        noop = answers()
    assert tuned != base and noop == base
    assert peft_model.active_adapter == "tuned"     # restored after the block
    with pytest.raises(ValueError, match="'c' is not loaded"):
        with answer_with(peft_model, "c"):
            pass


def test_stream_yields_growing_text_ending_in_the_greedy_answer(model, tokenizer, prompts):
    pieces = list(stream(model, tokenizer, prompts[0], max_new_tokens=10))
    assert len(pieces) >= 2
    assert all(b.startswith(a) for a, b in zip(pieces, pieces[1:]))
    expected = generate_batch(model, tokenizer, prompts[:1], max_new_tokens=10, batch_size=1)[0].text
    assert pieces[-1] == expected


def test_closing_a_stream_early_stops_generation(model, tokenizer, prompts):
    gen = stream(model, tokenizer, prompts[1], max_new_tokens=500, temperature=0.8, top_p=0.9)
    first = next(gen)
    gen.close()                                  # returns only once the generate() thread has stopped
    assert isinstance(first, str)
