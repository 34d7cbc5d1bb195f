"""Shared offline fixtures: the real Qwen tokenizer and a tiny random Qwen2 model, built once per session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BJTU = SHARED / "data" / "bjtu" / "bjtu.json"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A loadable model folder: tiny random Qwen2ForCausalLM + the real Qwen2.5 tokenizer."""
    from hust_sft import demo_model

    return demo_model.build(tmp_path_factory.mktemp("models") / "tiny-qwen2")


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir):
    from hust_sft.modeling import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="session")
def bjtu_path() -> Path:
    if not BJTU.is_file():
        pytest.skip("../shared/data/bjtu/bjtu.json is not present")
    return BJTU
