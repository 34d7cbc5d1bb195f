"""Blind-vote voter ids that only the server can issue.

A browser keeps its voter id in localStorage so a reload finds its unvoted pair again, and the API accepts
whatever a client sends in that slot. So the id is signed: `<random id>.<HMAC-SHA256(server secret, id)>`.
A value the server did not sign (forged, edited, or from another server) is replaced by a fresh id, so a
script cannot pick ids, claim another browser's pending pair, or choose whose rate limit it spends.

The secret comes from `HUST_SFT_VOTER_SECRET`, else a file beside the arena database (created once with
mode 0600), so ids stay valid across restarts of a Space with persistent storage.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_FILE = "voter-secret"
ID_HEX = 32      # 128 random bits
SIG_HEX = 32     # HMAC-SHA256 truncated to 128 bits


def load_secret(folder: str | Path) -> bytes:
    """The signing secret: HUST_SFT_VOTER_SECRET, else `folder/voter-secret` (made on first use)."""
    env = os.environ.get("HUST_SFT_VOTER_SECRET", "")
    if env:
        return env.encode("utf-8")
    path = Path(folder) / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(32))
    value = path.read_text(encoding="ascii").strip()
    if not value:  # a concurrent first start saw the file before its content: read again
        value = path.read_text(encoding="ascii").strip()
    return value.encode("ascii")


class VoterIds:
    def __init__(self, secret: bytes):
        if not secret:
            raise ValueError("voter ids need a non-empty secret")
        self._secret = secret

    @classmethod
    def beside(cls, db_path: str | Path) -> VoterIds:
        return cls(load_secret(Path(db_path).parent))

    def _sign(self, voter: str) -> str:
        return hmac.new(self._secret, voter.encode("ascii"), hashlib.sha256).hexdigest()[:SIG_HEX]

    def issue(self) -> str:
        """A new signed token."""
        voter = secrets.token_hex(ID_HEX // 2)
        return f"{voter}.{self._sign(voter)}"

    def verify(self, token) -> str | None:
        """The voter id inside a token this server signed, else None."""
        if not isinstance(token, str) or len(token) != ID_HEX + 1 + SIG_HEX or token[ID_HEX] != ".":
            return None
        voter, sig = token[:ID_HEX], token[ID_HEX + 1:]
        try:
            voter.encode("ascii")
        except UnicodeEncodeError:
            return None
        return voter if hmac.compare_digest(sig, self._sign(voter)) else None

    def resolve(self, token) -> tuple[str, str]:
        """(token, voter id): the client's token when the server signed it, else a fresh one."""
        voter = self.verify(token)
        if voter is None:
            token = self.issue()
            voter = token[:ID_HEX]
        return token, voter
