"""One base for errors a user reads: an i18n key plus its parameters, shown in whatever language asks.

The message is looked up in `hust_sft.i18n` only when it is shown, so the same exception reads in English
in a log or the CLI (`str()`) and in the page's language in the UI (`.text(lang)`).
"""
from __future__ import annotations

from hust_sft.i18n import DEFAULT_LANG, t


class LocalizedError(Exception):
    """`key`/`params` name the message; `str()` is in `str_lang`, `.text(lang)` in any other language.

    Mix it in before a builtin so callers can keep catching ValueError/RuntimeError:
    `class HubError(LocalizedError, ValueError)`.
    """

    str_lang = "en"

    def __init__(self, key: str, /, **params):  # positional-only: a message may have a {key}
        self.key, self.params = key, params
        super().__init__(self.text(self.str_lang))

    def text(self, lang: str = DEFAULT_LANG) -> str:
        return t(self.key, lang, **self.params)

    def __str__(self) -> str:
        return self.text(self.str_lang)
