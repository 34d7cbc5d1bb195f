"""One copy of the base weights per process, with LoRA adapters loaded by name on demand.

The Chat, Evaluate and Arena tabs all answer with "base" and "tuned" from the same weights:
PEFT keeps several adapters on one model and switches between them, so a 0.5B model costs its weights
once however many runs are compared. Generation switches adapters (global model state), so every
answer (a whole chat stream, one batch of an evaluation) is produced under one lock. The lock is first
come, first served, and an evaluation takes it per batch: a chat question asked during a long evaluation
waits for one batch, not the whole run. Hand-written: no library keeps such a process-wide cache.
"""
from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator
from pathlib import Path

from hust_sft import modeling
from hust_sft.adapters import MAX_CACHED_ADAPTERS, check_adapter, ref_of_spec
from hust_sft.errors import LocalizedError
from hust_sft.settings import GenerationSettings, ModelSettings


def adapter_name(spec: str) -> str:
    """A stable PEFT adapter name for a run dir / adapter dir / Hub id (PEFT names must be identifiers)."""
    return "a" + hashlib.sha1(str(spec).encode("utf-8")).hexdigest()[:12]


class ModelBusy(LocalizedError, RuntimeError):
    """Another base model is asked for while an evaluation works on the loaded one."""


class FairLock:
    """A mutex handed to waiters in arrival order, releasable from any thread.

    `threading.Lock` is neither: a thread that releases and at once re-acquires it (an evaluation going
    from one batch to the next) usually wins over one that has waited all along, and Gradio may resume a
    streaming generator on another worker thread than the one that took the lock. Hand-written because
    the standard library has no FIFO lock.
    """

    def __init__(self):
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Event] = deque()

    def acquire(self) -> bool:
        with self._mutex:
            if not self._held and not self._waiters:
                self._held = True
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        try:
            turn.wait()
        except BaseException:  # interrupted while waiting: leave the queue, or pass on a lock handed over
            with self._mutex:
                if turn.is_set():
                    self._release_locked()
                else:
                    self._waiters.remove(turn)
            raise
        return True  # handed over by release(): _held stayed True

    def _release_locked(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self._held = False

    def release(self) -> None:
        with self._mutex:
            if not self._held:
                raise RuntimeError("release of an unheld FairLock")
            self._release_locked()

    def locked(self) -> bool:
        with self._mutex:
            return self._held

    @property
    def waiting(self) -> int:
        with self._mutex:
            return len(self._waiters)

    __enter__ = acquire

    def __exit__(self, *exc) -> None:
        self.release()


class Held:
    """What `ModelCache.hold` gives: the model, tokenizer and PEFT names, without the lock; `batch(name)`
    takes the lock for one batch of generation answering as adapter `name` (None: the base)."""

    def __init__(self, cache: ModelCache, model, tokenizer, names: list[str]):
        self.cache, self.model, self.tokenizer, self.names = cache, model, tokenizer, names

    @contextlib.contextmanager
    def batch(self, adapter_name: str | None):
        from hust_sft.generation import answer_with

        with self.cache.lock:
            # The cache's current object: a chat that loaded another adapter meanwhile may have wrapped a
            # plain base into a PeftModel, whose switches are the ones that act on the shared layers.
            model = self.cache._model
            with answer_with(model, adapter_name):
                yield model


class ModelCache:
    """Holds (base model id → PeftModel with adapters by name); loading another base evicts the old one.

    Adapters are `hust_sft.adapters.AdapterRef`s (a plain folder or Hub id string is turned into one) and
    are checked by `adapters.check_adapter` before anything touches the model. They are cached by resolved
    identity (folder, or repo@commit), at most `max_adapters` at a time: the least recently used one is
    removed with PEFT's `delete_adapter`. A load that fails drops the whole model, so the next request
    reloads the base from disk: a half-injected adapter can never change anyone's answers.
    """

    def __init__(self, device: str = "auto", dtype: str = "auto", *, hub_token: bool | str | None = None,
                 max_adapters: int | None = None):
        self.device, self.dtype = device, dtype
        self.hub_token = hub_token  # `token=` of a Hub adapter's reads: the app passes access.read_token
        self.max_adapters = max(1, max_adapters or MAX_CACHED_ADAPTERS)
        self.lock = FairLock()
        self._holds = 0  # evaluations working on the loaded model: it may not be swapped for another base
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
        if self._model_id != model_id:
            if self._holds and self._model_id is not None:
                raise ModelBusy("serving.error.busy", loaded=Path(self._model_id).name, asked=Path(model_id).name)
            self._drop()
            self._tokenizer = modeling.load_tokenizer(model_id)
            self._model = modeling.load_base_model(
                ModelSettings(model=model_id, dtype=self.dtype, device=self.device))
            self._model.eval()
            self._model_id = model_id
        if not adapter:
            return self._model, self._tokenizer, None
        ref = ref_of_spec(adapter) if isinstance(adapter, (str, Path)) else adapter
        identity = self._aliases.get(ref.key)
        if identity is None or identity not in self._adapters:
            checked = check_adapter(ref, model_id, token=self.hub_token)  # raises before the model is touched
            identity = checked.identity
            self._aliases[ref.key] = identity
            self._aliases.move_to_end(ref.key)
            while len(self._aliases) > 16 * self.max_adapters:
                self._aliases.popitem(last=False)
            if identity not in self._adapters:
                if self._holds:  # loading may evict an adapter, or drop the model, the evaluation is using
                    raise ModelBusy("serving.error.busy_adapter", loaded=Path(model_id).name)
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
    def hold(self, model_id: str, adapters: list[str]) -> Iterator[Held]:
        """The model with `adapters` loaded (a `Held`), for work that switches adapters itself (an
        evaluation). The lock is taken only to load, then per batch through `Held.batch`, so chats and
        blind pairs interleave with a long evaluation; the held adapters stay loaded until the block ends.
        """
        if len(adapters) > self.max_adapters:
            raise ValueError(f"{len(adapters)} adapters at once; this cache holds at most {self.max_adapters}")
        with self.lock:
            _, tok, _ = self._get(model_id, None)
            names = [self._get(model_id, spec)[2] for spec in adapters]
            model = self._model  # after the loads: the first adapter turns the base into a PeftModel
            self._holds += 1
        try:
            yield Held(self, model, tok, names)
        finally:
            with self.lock:
                self._holds -= 1

    def stream(self, model_id: str, adapter, messages: list[dict], system_prompt: str,
               gen: GenerationSettings, *, use_adapter: bool = True, seed: int | None = None,
               passages: list | None = None, passage_max_chars: int | None = None) -> Iterator[str]:
        """Growing answer text from the base (`use_adapter=False`) or the tuned model, under the lock.

        With `passages` (retrieved, see retrieval.AnswerRetrieval) the question is asked with them.
        Sampled answers (temperature > 0) draw from a seed nobody outside can know (`secrets`) unless
        `seed` is given: torch's default generator starts from a fixed seed in every process, which would
        make a fresh Space's sampled answers reproducible by anyone with the same model.
        """
        from hust_sft.data.encoding import prompt_ids
        from hust_sft.generation import answer_with, stream

        with self.lock:
            model, tok, name = self._get(model_id, adapter)
            extra = {} if passages is None else {"passages": passages, **(
                {"passage_max_chars": passage_max_chars} if passage_max_chars else {})}
            ids = prompt_ids(tok, messages, system_prompt, **extra)
            if gen.temperature > 0:
                import torch

                torch.manual_seed(secrets.randbits(63) if seed is None else seed)
            with answer_with(model, name if use_adapter else None):
                yield from stream(model, tok, ids, max_new_tokens=gen.max_new_tokens,
                                  temperature=gen.temperature, top_p=gen.top_p,
                                  repetition_penalty=gen.repetition_penalty)

    def answer(self, *args, **kwargs) -> str:
        text = ""
        for text in self.stream(*args, **kwargs):  # noqa: B007 - keep the last (full) text
            pass
        return text
