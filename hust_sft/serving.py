"""One copy of the base weights per process, with LoRA adapters loaded by name on demand.

The Chat, Evaluate and Arena tabs all answer with "base" and "tuned" from the same weights:
PEFT keeps several adapters on one model and switches between them, so a 0.5B model costs its weights
once however many runs are compared. Generation switches adapters (global model state), so every
answer (a whole stream, a whole evaluation) is produced under one lock. Hand-written: no library keeps
such a process-wide cache.
"""
from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

from hust_sft import modeling, runs
from hust_sft.settings import GenerationSettings, ModelSettings


def adapter_name(spec: str) -> str:
    """A stable PEFT adapter name for a run dir / adapter dir / Hub id (PEFT names must be identifiers)."""
    return "a" + hashlib.sha1(str(spec).encode("utf-8")).hexdigest()[:12]


def base_model_for(spec: str | None, default: str) -> str:
    """The base model an adapter was trained on: the run's settings.json, else adapter_config.json, else
    the Hub adapter's config, else `default`."""
    if not spec:
        return default
    if Path(spec).is_dir():
        try:
            trained = runs.load_settings(spec)
        except (OSError, ValueError):  # RunFileError / SettingsError: fall back to the adapter's own config
            trained = None
        if trained is not None and trained.model.model:
            return trained.model.model
    try:
        found = modeling.base_model_of_adapter(spec)
    except modeling.ModelError:
        found = None
    if found is None and not Path(spec).exists():
        try:
            from peft import PeftConfig

            found = PeftConfig.from_pretrained(spec).base_model_name_or_path
        except Exception:  # noqa: BLE001 - unreachable Hub/offline: fall back to the default base
            found = None
    return found or default


class ModelCache:
    """Holds (base model id → PeftModel with adapters by name); loading another base evicts the old one."""

    def __init__(self, device: str = "auto", dtype: str = "auto"):
        self.device, self.dtype = device, dtype
        # A plain Lock, not an RLock: Gradio may resume a streaming generator on another worker thread,
        # and only a plain Lock may be released from a thread other than the one that took it.
        self.lock = threading.Lock()
        self._model_id: str | None = None
        self._model = None
        self._tokenizer = None
        self._adapters: dict[str, str] = {}  # spec → adapter name

    @property
    def loaded(self) -> tuple[str | None, list[str]]:
        return self._model_id, list(self._adapters)

    def get(self, model_id: str, adapter: str | None = None):
        """(model, tokenizer, adapter name or None), loading the base and the adapter when missing."""
        with self.lock:
            return self._get(model_id, adapter)

    def _get(self, model_id: str, adapter: str | None):
        """`get` without the lock, for callers that already hold it."""
        if self._model_id != model_id:
            self._model = self._tokenizer = None
            self._adapters = {}
            self._tokenizer = modeling.load_tokenizer(model_id)
            self._model = modeling.load_base_model(
                ModelSettings(model=model_id, dtype=self.dtype, device=self.device))
            self._model.eval()
            self._model_id = model_id
        name = None
        if adapter:
            name = self._adapters.get(adapter)
            if name is None:
                name = adapter_name(adapter)
                self._model = modeling.load_adapters(self._model, [adapter], [name])
                self._adapters[adapter] = name
        return self._model, self._tokenizer, name

    @contextlib.contextmanager
    def hold(self, model_id: str, adapters: list[str]):
        """(model, tokenizer, PEFT names of `adapters` in order), with the lock held for the whole block.

        For work that switches adapters itself (an evaluation): nothing else generates on the model meanwhile.
        """
        with self.lock:
            _, tok, _ = self._get(model_id, None)
            names = [self._get(model_id, spec)[2] for spec in adapters]
            yield self._model, tok, names  # after the loads: the first adapter turns the base into a PeftModel

    def stream(self, model_id: str, adapter: str | None, messages: list[dict], system_prompt: str,
               gen: GenerationSettings, *, use_adapter: bool = True) -> Iterator[str]:
        """Growing answer text from the base (`use_adapter=False`) or the tuned model, under the lock."""
        from hust_sft.data.encoding import prompt_ids
        from hust_sft.generation import answer_with, stream

        with self.lock:
            model, tok, name = self._get(model_id, adapter)
            ids = prompt_ids(tok, messages, system_prompt)
            with answer_with(model, name if use_adapter else None):
                yield from stream(model, tok, ids, max_new_tokens=gen.max_new_tokens,
                                  temperature=gen.temperature, top_p=gen.top_p,
                                  repetition_penalty=gen.repetition_penalty)

    def answer(self, *args, **kwargs) -> str:
        text = ""
        for text in self.stream(*args, **kwargs):  # noqa: B007 - keep the last (full) text
            pass
        return text
