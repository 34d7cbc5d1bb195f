"""Hub repo ids checked against the Hub's naming rules before any request is made with one.

Two callers above it need the same rules: publishing (`hub.publish`, the Publish tab's repo box) and a
visitor's Hub adapter id (`adapters.parse_hub_id`). It sits below both, so neither imports the other.
"""
from __future__ import annotations

import re

from hust_sft.errors import LocalizedError

MAX_NAME = 96
_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


class HubError(LocalizedError, ValueError):
    """A Hub repo cannot be named or published to (`hub.PublishError` is one); str() is English (tokens
    scrubbed), `.text(lang)` for the page."""


class RepoIdError(HubError):
    """A repo id the Hub would refuse."""


def validate_repo_id(repo_id: str, default_owner: str | None = None) -> str:
    """`owner/name` checked against the Hub's naming rules; a bare name gets `default_owner/`."""
    text = (repo_id or "").strip()
    if not text:
        raise RepoIdError("hub.error.repo_id_empty")
    if "/" not in text:
        if not default_owner:
            raise RepoIdError("hub.error.repo_id_owner", repo_id=text)
        text = f"{default_owner.strip()}/{text}"
    parts = text.split("/")
    if len(parts) != 2:
        raise RepoIdError("hub.error.repo_id_slashes", repo_id=text)
    for part in parts:
        if len(part) > MAX_NAME:
            raise RepoIdError("hub.error.repo_id_length", repo_id=text, part=part, max=MAX_NAME)
        if not _PART.fullmatch(part):
            raise RepoIdError("hub.error.repo_id_chars", repo_id=text, part=part)
        if "--" in part or ".." in part:
            raise RepoIdError("hub.error.repo_id_double", repo_id=text, part=part)
    if text.lower().endswith(".git"):
        raise RepoIdError("hub.error.repo_id_git", repo_id=text)
    from huggingface_hub.utils import validate_repo_id as hub_validate

    hub_validate(text)  # the library's own check, in case the Hub's rules grew stricter than ours
    return text
