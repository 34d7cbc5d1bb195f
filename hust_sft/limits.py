"""What a visitor of a public Space may ask of the shared model: public maxima, text bounds, rate limits.

The owner (and everybody when the app does not run as a Space) gets the full ranges of
`hust_sft.settings`; a visitor gets each field's `public_max` (one place: the `opt(..., public_max=)`
metadata), questions, system prompts and chat histories up to the bounds below, and a few blind pairs per
minute. Who is a visitor is decided by the caller (`hust_sft.ui.common.is_owner`); this module only checks
values, so the UI and tests call the same functions. Blind pairs are rate-limited for everyone.

Everything here is checked on the server: a widget's maximum in the page is a hint, the API accepts any
JSON.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from hust_sft import settings as S
from hust_sft.errors import LocalizedError

# Text a visitor sends, in characters (a Qwen token is one or two CJK characters or ~4 Latin ones).
QUESTION_MAX_CHARS = 2000
SYSTEM_PROMPT_MAX_CHARS = 2000
HISTORY_MAX_TURNS = 8          # earlier questions (with their answers) carried into the next one
HISTORY_MAX_CHARS = 16000

# Defaults of the limits an owner may change with environment variables (read when used, so a test can
# start the app with other values).
QUEUE_MAX_SIZE = 32          # HUST_SFT_QUEUE_MAX: requests waiting in Gradio's queue; more are turned away
ARENA_PAIRS_PER_VOTER = 5    # HUST_SFT_ARENA_PAIRS_PER_VOTER: blind pairs per voter per window
ARENA_PAIRS_PER_ADDRESS = 30  # HUST_SFT_ARENA_PAIRS_PER_ADDRESS: blind pairs per client address per window
ARENA_WINDOW_S = 60          # HUST_SFT_ARENA_WINDOW_S: the window, in seconds
EVAL_WAITING = 2             # HUST_SFT_EVAL_WAITING: evaluations that may wait while one runs; more are refused


class LimitError(LocalizedError, ValueError):
    """A request over a visitor's limits; the message names the field, the limit and what was sent."""


class PublicLimitError(LimitError):
    pass


class TooLong(LimitError):
    pass


class RateLimited(LimitError):
    pass


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name}: expected at least 1, got {value}")
    return value


def queue_max_size() -> int:
    return _env_int("HUST_SFT_QUEUE_MAX", QUEUE_MAX_SIZE)


def eval_waiting() -> int:
    return _env_int("HUST_SFT_EVAL_WAITING", EVAL_WAITING)


def arena_rate_limits() -> tuple[int, int, int]:
    """(blind pairs per voter, per client address, window in seconds)."""
    return (_env_int("HUST_SFT_ARENA_PAIRS_PER_VOTER", ARENA_PAIRS_PER_VOTER),
            _env_int("HUST_SFT_ARENA_PAIRS_PER_ADDRESS", ARENA_PAIRS_PER_ADDRESS),
            _env_int("HUST_SFT_ARENA_WINDOW_S", ARENA_WINDOW_S))


# ---------------------------------------------------------------------------------------------------
# Settings

def public_max(cls_or_obj, name: str) -> float | None:
    """The visitor's maximum of setting `name` in a settings class (None: no separate public bound)."""
    for n, f, _ in S.fields_of(cls_or_obj):
        if n == name:
            return f.metadata.get("public_max")
    raise KeyError(name)


def public_maxima(cls_or_obj) -> dict[str, float]:
    """{setting name: public maximum} of every bounded setting of a settings class."""
    return {n: f.metadata["public_max"] for n, f, _ in S.fields_of(cls_or_obj)
            if f.metadata.get("public_max") is not None}


def enforce_public(settings, *, owner: bool):
    """`settings` as a visitor may run them: a value over its public maximum is refused (PublicLimitError
    naming the field, the maximum and the value); an unset optional value ("all", e.g. `limit`) becomes
    the maximum. The owner's settings pass unchanged. Returns `settings` (changed in place)."""
    if owner:
        return settings
    for name, maximum in public_maxima(settings).items():
        value = S.get_value(settings, name)
        if value is None:
            S.set_values(settings, {name: maximum})
        elif value > maximum:
            raise PublicLimitError("limits.error.public_max", field=name, maximum=maximum, got=value)
    return settings


# ---------------------------------------------------------------------------------------------------
# Text

def check_text(field: str, text: str | None, maximum: int, *, owner: bool) -> None:
    if not owner and text and len(text) > maximum:
        raise TooLong("limits.error.too_long", field=field, maximum=maximum, got=len(text))


def check_chat(question: str | None, system_prompt: str | None, history: Iterable[dict], *, owner: bool) -> None:
    """A visitor's chat request: question, system prompt and the history sent with it (role/content
    messages), each within its bound; TooLong names which one."""
    if owner:
        return
    check_text("question", question, QUESTION_MAX_CHARS, owner=owner)
    check_text("system_prompt", system_prompt, SYSTEM_PROMPT_MAX_CHARS, owner=owner)
    history = list(history)
    turns = sum(m.get("role") == "user" for m in history)
    if turns > HISTORY_MAX_TURNS:
        raise TooLong("limits.error.history_turns", maximum=HISTORY_MAX_TURNS, got=turns)
    chars = sum(len(m.get("content") or "") for m in history)
    if chars > HISTORY_MAX_CHARS:
        raise TooLong("limits.error.too_long", field="history", maximum=HISTORY_MAX_CHARS, got=chars)


# ---------------------------------------------------------------------------------------------------
# Rates

class RateLimiter:
    """At most `n` events per `window_s` seconds per key (a sliding window of event times).

    Hand-written: a deque of timestamps per key is all it takes, and the limit must hold across Gradio's
    worker threads, which a lock around `take` gives.
    """

    def __init__(self, n: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.n, self.window_s, self.clock = n, window_s, clock
        self._events: dict[str, deque] = {}
        self._lock = threading.Lock()

    def _wait(self, key: str, now: float) -> float:
        q = self._events.get(key)
        if q is None:
            return 0.0
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._events[key]
            return 0.0
        return 0.0 if len(q) < self.n else q[0] + self.window_s - now

    def wait_s(self, key: str) -> float:
        """Seconds until `key` may act again (0: now)."""
        with self._lock:
            return self._wait(key, self.clock())

    def record(self, key: str, now: float | None = None) -> None:
        with self._lock:
            self._events.setdefault(key, deque()).append(self.clock() if now is None else now)


class Busy(LimitError):
    pass


class Admission:
    """At most `running` jobs at once and `waiting` more waiting their turn; any further is refused at once.

    For evaluations (minutes each). Gradio's queue holds at most HUST_SFT_QUEUE_MAX requests for all
    endpoints together, so evaluations left waiting there would turn every chat away ("Queue is full")
    until they had all run: one script submitting that many held the Space. The evaluation endpoint has
    no Gradio concurrency limit and waits here instead, a bounded number at a time. Hand-written: two
    semaphores, the outer one taken without blocking."""

    def __init__(self, running: int = 1, waiting: int | None = None):
        self.running, self.waiting = running, eval_waiting() if waiting is None else waiting
        self._admitted = threading.BoundedSemaphore(self.running + self.waiting)
        self._turn = threading.Semaphore(self.running)

    @contextlib.contextmanager
    def admit(self):
        """Wait for a turn (among at most `waiting` others), or raise Busy at once when that many wait."""
        if not self._admitted.acquire(blocking=False):
            raise Busy("limits.error.eval_busy", running=self.running, waiting=self.waiting)
        try:
            with self._turn:
                yield
        finally:
            self._admitted.release()


class ArenaRate:
    """Blind pairs per voter and per client address, checked and counted in one step (so a burst of
    parallel requests cannot all pass before any is counted)."""

    def __init__(self, per_voter: int | None = None, per_address: int | None = None,
                 window_s: float | None = None, clock: Callable[[], float] = time.monotonic):
        default_voter, default_address, default_window = arena_rate_limits()
        window_s = window_s or default_window
        self.voter = RateLimiter(per_voter or default_voter, window_s, clock)
        self.address = RateLimiter(per_address or default_address, window_s, clock)
        self._lock = threading.Lock()

    def take(self, voter: str, address: str | None) -> None:
        """Count one pair for `voter` from `address`, or raise RateLimited (nothing counted)."""
        with self._lock:
            now = self.voter.clock()
            checks = [("voter", self.voter, voter)] + ([("address", self.address, address)] if address else [])
            for scope, limiter, key in checks:
                with limiter._lock:
                    wait = limiter._wait(key, now)
                if wait > 0:
                    raise RateLimited(f"limits.error.rate_{scope}", n=limiter.n,
                                      window=int(limiter.window_s), wait=max(1, round(wait)))
            for _, limiter, key in checks:
                limiter.record(key, now)
