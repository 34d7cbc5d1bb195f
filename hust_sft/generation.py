"""Answering with the base model or an adapter: batched greedy decoding for evaluation, streaming for chat.

One PeftModel holds every adapter over one copy of the base weights (see modeling.load_adapters);
`answer_with` picks which one answers. Switching is a module-state change, not thread-local: never run two
generations with different choices on the same model at the same time.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")


@dataclass
class GenerationResult:
    text: str
    new_tokens: int      # tokens the model produced, the stop token included
    seconds: float       # this answer's share of its batch's wall time


def stop_token_ids(tokenizer) -> list[int]:
    vocab = tokenizer.get_vocab()
    ids = [vocab[t] for t in STOP_TOKENS if t in vocab]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


@contextlib.contextmanager
def answer_with(model, adapter: str | None):
    """Inside the block `model` answers as the base (adapter None: all adapters disabled) or as `adapter`."""
    model.eval()
    if not hasattr(model, "disable_adapter"):          # a plain transformers model: it is the base
        if adapter is not None:
            raise ValueError(f"adapter {adapter!r} asked for, but the model has no adapters loaded")
        yield model
        return
    if adapter is None:
        with model.disable_adapter():
            yield model
        return
    if adapter not in model.peft_config:
        raise ValueError(f"adapter {adapter!r} is not loaded; loaded: {', '.join(model.peft_config)}")
    previous = model.active_adapter
    model.set_adapter(adapter, inference_mode=True)
    try:
        yield model
    finally:
        model.set_adapter(previous, inference_mode=True)


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _greedy_kwargs(tokenizer, max_new_tokens: int) -> dict:
    # Explicit, because generate() fills unset values from the model's generation_config, and Qwen2.5's
    # ships do_sample=True, temperature 0.7, top_k 20, repetition_penalty 1.05.
    return dict(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, repetition_penalty=1.0,
                temperature=None, top_p=None, top_k=None, eos_token_id=stop_token_ids(tokenizer),
                pad_token_id=tokenizer.pad_token_id, use_cache=True)


def _trim(ids: list[int], stops: set[int]) -> tuple[list[int], int]:
    """Tokens before the first stop token, and how many tokens the model produced (stop included)."""
    for i, tok in enumerate(ids):
        if tok in stops:
            return ids[:i], i + 1
    return ids, len(ids)


def generate_batch(model, tokenizer, prompts: list[list[int]], *, max_new_tokens: int, batch_size: int,
                   progress: Callable[[int, int], None] | None = None) -> list[GenerationResult]:
    """Greedy answers to token-id `prompts`, in their order, `batch_size` at a time.

    Prompts are sorted by length (longest first, so an out-of-memory shows up at once) to keep padding
    small, left-padded so every row's last position is its own last token, then put back in order.
    Greedy + left padding + the attention mask gives the same tokens as one at a time (up to
    floating-point ties). `progress(done, total)` is called after each batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: expected at least 1, got {batch_size}")
    device, pad = _device(model), tokenizer.pad_token_id
    stops = set(stop_token_ids(tokenizer))
    kwargs = _greedy_kwargs(tokenizer, max_new_tokens)
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    results: list[GenerationResult | None] = [None] * len(prompts)
    model.eval()
    done = 0
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        width = max(len(prompts[i]) for i in chunk)
        input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            ids = prompts[i]
            input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            mask[row, width - len(ids):] = 1
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device), **kwargs)
        seconds = time.perf_counter() - t0
        for row, i in enumerate(chunk):
            kept, produced = _trim(out[row, width:].tolist(), stops)
            results[i] = GenerationResult(tokenizer.decode(kept, skip_special_tokens=True), produced,
                                          seconds / len(chunk))
        done += len(chunk)
        if progress is not None:
            progress(done, len(prompts))
    return results  # type: ignore[return-value]


class _Cancelled:
    """A stopping criterion the consumer flips when it stops reading a stream (closed tab, new question)."""

    def __init__(self):
        self.event = threading.Event()

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def stream(model, tokenizer, prompt_ids: list[int], *, max_new_tokens: int, temperature: float = 0.0,
           top_p: float = 1.0, repetition_penalty: float = 1.0) -> Iterator[str]:
    """Yield the growing answer text while the model writes it (temperature 0: greedy).

    generate() runs in a thread feeding transformers' TextIteratorStreamer; closing the generator early
    stops that thread at its next token.
    """
    from transformers import StoppingCriteriaList, TextIteratorStreamer

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    cancelled = _Cancelled()
    kwargs = _greedy_kwargs(tokenizer, max_new_tokens)
    kwargs["repetition_penalty"] = repetition_penalty
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
    input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=_device(model))
    errors: list[BaseException] = []

    def run():
        try:
            with torch.inference_mode():
                model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), streamer=streamer,
                               stopping_criteria=StoppingCriteriaList([cancelled]), **kwargs)
        except BaseException as e:  # surfaced in the consumer's thread below
            errors.append(e)
            streamer.end()

    model.eval()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    text = ""
    try:
        for piece in streamer:
            text += piece
            yield text
    finally:
        cancelled.event.set()
        thread.join()
    if errors:
        raise errors[0]
