"""Blind A/B votes between two arms (base and a tuned model by default), kept in SQLite across restarts.

An arm is one way of answering (see hust_sft.evaluation): "base", "base+retrieval", "tuned",
"tuned+retrieval". A pair compares a reference arm (stored in the `base_*` columns, "base" unless chosen)
with a candidate arm (the `tuned_*` columns); `base_arm`/`tuned_arm` hold which arms they were, so results
are counted per (adapter, reference arm, candidate arm). A pair is stored before anyone votes (a page
refresh never loses it) with the candidate's answer on a random side; the side is revealed only after
the vote. One vote per pair is enforced by the database (PRIMARY KEY on
votes.pair_id), so two browser tabs or two workers racing on the same pair cannot both count.
"""
from __future__ import annotations

import os
import random
import sqlite3
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from hust_sft.errors import LocalizedError

CHOICES = ("A", "B", "tie", "both_bad")

SCHEMA = """
CREATE TABLE IF NOT EXISTS pairs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    question TEXT NOT NULL,
    answer_a TEXT NOT NULL,
    answer_b TEXT NOT NULL,
    tuned_side TEXT NOT NULL CHECK (tuned_side IN ('A', 'B')),
    base_name TEXT NOT NULL,
    tuned_name TEXT NOT NULL,
    adapter TEXT NOT NULL,
    voter TEXT,
    base_arm TEXT,
    tuned_arm TEXT
);
CREATE INDEX IF NOT EXISTS pairs_voter ON pairs (voter, created);
CREATE TABLE IF NOT EXISTS votes (
    pair_id TEXT PRIMARY KEY REFERENCES pairs (id),
    choice TEXT NOT NULL CHECK (choice IN ('A', 'B', 'tie', 'both_bad')),
    voter TEXT,
    created REAL NOT NULL
);
"""


class ArenaError(LocalizedError, ValueError):
    """A vote that cannot be recorded; str() is English, `.text(lang)` for the page."""


class AlreadyVoted(ArenaError):
    pass


def data_dir() -> Path:
    """HUST_SFT_DATA_DIR, else a Space's persistent storage (/data) when writable, else ./data."""
    if os.environ.get("HUST_SFT_DATA_DIR"):
        return Path(os.environ["HUST_SFT_DATA_DIR"])
    if os.path.isdir("/data") and os.access("/data", os.W_OK):
        return Path("/data/hust-sft")
    return Path("data")


def default_db_path() -> Path:
    return data_dir() / "arena.sqlite"


@dataclass(frozen=True)
class Pair:
    id: str
    question: str
    answer_a: str
    answer_b: str


@dataclass(frozen=True)
class Reveal:
    pair_id: str
    choice: str
    tuned_side: str
    base_name: str
    tuned_name: str
    adapter: str

    @property
    def winner(self) -> str:
        """'tuned', 'base', 'tie' or 'both_bad'."""
        if self.choice in ("tie", "both_bad"):
            return self.choice
        return "tuned" if self.choice == self.tuned_side else "base"

    @property
    def name_a(self) -> str:
        return self.tuned_name if self.tuned_side == "A" else self.base_name

    @property
    def name_b(self) -> str:
        return self.base_name if self.tuned_side == "A" else self.tuned_name


class Arena:
    """One SQLite file; a short-lived connection per call, so any Gradio worker thread may use it."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            columns = {row["name"] for row in db.execute("PRAGMA table_info(pairs)")}
            for column in ("base_arm", "tuned_arm"):  # a database from before arms: its pairs are base/tuned
                if column not in columns:
                    try:
                        db.execute(f"ALTER TABLE pairs ADD COLUMN {column} TEXT")
                    except sqlite3.OperationalError:  # another process added it meanwhile
                        pass

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # autocommit; BEGIN explicitly
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=30000")
        return db

    def create_pair(self, question: str, answer_base: str, answer_tuned: str, *, base_name: str,
                    tuned_name: str, adapter: str, seed: int | None = None, voter: str | None = None,
                    base_arm: str = "base", tuned_arm: str = "tuned") -> Pair:
        """Store a pair with the candidate ("tuned") answer on a random side (reproducible with `seed`);
        `base_arm`/`tuned_arm` name the reference and candidate arms."""
        tuned_side = "A" if random.Random(seed).random() < 0.5 else "B"
        a, b = (answer_tuned, answer_base) if tuned_side == "A" else (answer_base, answer_tuned)
        pair = Pair(id=uuid.uuid4().hex, question=question, answer_a=a, answer_b=b)
        with closing(self._connect()) as db:
            db.execute("INSERT INTO pairs (id, created, question, answer_a, answer_b, tuned_side, base_name,"
                       " tuned_name, adapter, voter, base_arm, tuned_arm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (pair.id, time.time(), question, a, b, tuned_side, base_name, tuned_name, adapter, voter,
                        base_arm, tuned_arm))
        return pair

    def vote(self, pair_id: str, choice: str, voter: str | None = None) -> Reveal:
        """Record the one vote a pair gets and reveal which side was tuned; AlreadyVoted on a second vote."""
        if choice not in CHOICES:
            raise ArenaError("arena.error.bad_choice", choice=choice, choices=", ".join(CHOICES))
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM pairs WHERE id = ?", (pair_id,)).fetchone()
            if row is None:
                raise ArenaError("arena.error.unknown_pair", pair_id=pair_id)
            try:
                db.execute("INSERT INTO votes (pair_id, choice, voter, created) VALUES (?, ?, ?, ?)",
                           (pair_id, choice, voter, time.time()))
            except sqlite3.IntegrityError:
                raise AlreadyVoted("arena.error.already_voted", pair_id=pair_id) from None
        return Reveal(pair_id=pair_id, choice=choice, tuned_side=row["tuned_side"], base_name=row["base_name"],
                      tuned_name=row["tuned_name"], adapter=row["adapter"])

    def pending_pair(self, voter: str | None) -> Pair | None:
        """The newest pair shown to `voter` that has no vote yet (to show it again after a reload)."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT p.* FROM pairs p LEFT JOIN votes v ON v.pair_id = p.id"
                             " WHERE p.voter IS ? AND v.pair_id IS NULL ORDER BY p.created DESC LIMIT 1",
                             (voter,)).fetchone()
        return None if row is None else Pair(row["id"], row["question"], row["answer_a"], row["answer_b"])

    def results(self, adapter: str | None = None) -> list[dict]:
        """Per adapter and pair of arms: vote counts and the candidate ("tuned") arm's win rate over the
        reference ("base") arm with a 95% Wilson interval.

        Ties and "both bad" both say neither answer was better, so both count as ties in the rate
        (half a win each, see metrics.win_rate_interval); n is every vote.
        """
        from hust_sft.metrics import win_rate_interval

        sql = ("SELECT p.adapter AS adapter, COALESCE(p.base_arm, 'base') AS base_arm,"
               " COALESCE(p.tuned_arm, 'tuned') AS tuned_arm, MAX(p.base_name) AS base_name,"
               " MAX(p.tuned_name) AS tuned_name, COUNT(*) AS votes,"
               " SUM(v.choice = p.tuned_side) AS tuned_wins,"
               " SUM(v.choice IN ('A', 'B') AND v.choice != p.tuned_side) AS base_wins,"
               " SUM(v.choice = 'tie') AS ties, SUM(v.choice = 'both_bad') AS both_bad"
               " FROM votes v JOIN pairs p ON p.id = v.pair_id")
        args: tuple = ()
        if adapter is not None:
            sql, args = sql + " WHERE p.adapter = ?", (adapter,)
        with closing(self._connect()) as db:
            rows = [dict(r) for r in db.execute(sql + " GROUP BY p.adapter, COALESCE(p.base_arm, 'base'),"
                                                      " COALESCE(p.tuned_arm, 'tuned')"
                                                      " ORDER BY votes DESC, adapter, base_arm, tuned_arm", args)]
        for r in rows:
            rate, lo, hi = win_rate_interval(r["tuned_wins"], r["base_wins"], r["ties"] + r["both_bad"])
            r.update(win_rate=rate, win_rate_lo=lo, win_rate_hi=hi, n=r["votes"])
        return rows


# Module-level shortcuts on the default database (or `db=` another file), for callers that keep no Arena.

def create_pair(question: str, answer_base: str, answer_tuned: str, *, base_name: str, tuned_name: str,
                adapter: str, seed: int | None = None, voter: str | None = None,
                db: str | Path | None = None, base_arm: str = "base", tuned_arm: str = "tuned") -> Pair:
    return Arena(db).create_pair(question, answer_base, answer_tuned, base_name=base_name,
                                 tuned_name=tuned_name, adapter=adapter, seed=seed, voter=voter,
                                 base_arm=base_arm, tuned_arm=tuned_arm)


def vote(pair_id: str, choice: str, voter: str | None = None, *, db: str | Path | None = None) -> Reveal:
    return Arena(db).vote(pair_id, choice, voter)


def pending_pair(voter: str | None, *, db: str | Path | None = None) -> Pair | None:
    return Arena(db).pending_pair(voter)


def results(adapter: str | None = None, *, db: str | Path | None = None) -> list[dict]:
    return Arena(db).results(adapter)
