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
from collections import OrderedDict
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
    """Holds (base model id → PeftModel with adapters by name); loading another base evicts the old one.

    Adapters are `hust_sft.access.AdapterRef`s (a plain folder or Hub id string is turned into one) and
    are checked by `access.check_adapter` before anything touches the model. They are cached by resolved
    identity (folder, or repo@commit), at most `max_adapters` at a time: the least recently used one is
    removed with PEFT's `delete_adapter`. A load that fails drops the whole model, so the next request
    reloads the base from disk: a half-injected adapter can never change anyone's answers.
    """

    def __init__(self, device: str = "auto", dtype: str = "auto", *, config=None, max_adapters: int | None = None):
        from hust_sft import access

        self.device, self.dtype = device, dtype
        self.config = config  # the app's AppConfig: whether Hub reads go anonymous (access.read_token)
        self.max_adapters = max(1, max_adapters or access.MAX_CACHED_ADAPTERS)
        # A plain Lock, not an RLock: Gradio may resume a streaming generator on another worker thread,
        # and only a plain Lock may be released from a thread other than the one that took it.
        self.lock = threading.Lock()
        self._model_id: str | None = None
        self._model = None
        self._tokenizer = None
        self._adapters: OrderedDict[str, str] = OrderedDict()  # identity → PEFT adapter name, LRU order
        self._aliases: OrderedDict[str, str] = OrderedDict()   # AdapterRef.key → identity

    @property
    def loaded(self) -> tuple[str | None, list[str]]:
        """(base model id, identities of the loaded adapters, least recently used first)."""
        return self._model_id, list(self._adapters)

    def get(self, model_id: str, adapter=None):
        """(model, tokenizer, adapter name or None), loading the base and the adapter when missing."""
        with self.lock:
            return self._get(model_id, adapter)

    def _drop(self) -> None:
        self._model = self._tokenizer = self._model_id = None
        self._adapters.clear()
        self._aliases.clear()

    def _get(self, model_id: str, adapter):
        """`get` without the lock, for callers that already hold it."""
        from hust_sft import access

        if self._model_id != model_id:
            self._drop()
            self._tokenizer = modeling.load_tokenizer(model_id)
            self._model = modeling.load_base_model(
                ModelSettings(model=model_id, dtype=self.dtype, device=self.device))
            self._model.eval()
            self._model_id = model_id
        if not adapter:
            return self._model, self._tokenizer, None
        ref = access.ref_of_spec(adapter) if isinstance(adapter, (str, Path)) else adapter
        identity = self._aliases.get(ref.key)
        if identity is None or identity not in self._adapters:
            checked = access.check_adapter(self.config, ref, model_id)  # raises before the model is touched
            identity = checked.identity
            self._aliases[ref.key] = identity
            self._aliases.move_to_end(ref.key)
            while len(self._aliases) > 16 * self.max_adapters:
                self._aliases.popitem(last=False)
            if identity not in self._adapters:
                self._load(checked.folder, identity)
        self._adapters.move_to_end(identity)
        return self._model, self._tokenizer, self._adapters[identity]

    def _load(self, folder: str, identity: str) -> None:
        while len(self._adapters) >= self.max_adapters:
            _, old = self._adapters.popitem(last=False)
            self._model.delete_adapter(old)
        name = adapter_name(identity)
        try:
            self._model = modeling.load_adapters(self._model, [folder], [name])
        except BaseException:
            self._drop()
            raise
        self._adapters[identity] = name

    @contextlib.contextmanager
    def hold(self, model_id: str, adapters: list):
        """(model, tokenizer, PEFT names of `adapters` in order), with the lock held for the whole block.

        For work that switches adapters itself (an evaluation): nothing else generates on the model meanwhile.
        """
        if len(adapters) > self.max_adapters:
            raise ValueError(f"{len(adapters)} adapters at once; this cache holds at most {self.max_adapters}")
        with self.lock:
            _, tok, _ = self._get(model_id, None)
            names = [self._get(model_id, spec)[2] for spec in adapters]
            yield self._model, tok, names  # after the loads: the first adapter turns the base into a PeftModel

    def stream(self, model_id: str, adapter, messages: list[dict], system_prompt: str,
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
