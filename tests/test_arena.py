"""Blind A/B arena: pairs persist before the vote, one vote per pair (enforced by SQLite), exact tallies."""
from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from hust_sft import arena
from hust_sft.arena import AlreadyVoted, Arena, ArenaError


def _pair(a: Arena, seed: int, adapter: str = "runs/hust", voter: str | None = "u1"):
    return a.create_pair("怎么申请休学？", "base answer", "tuned answer", base_name="Qwen2.5-0.5B-Instruct",
                         tuned_name=f"tuned:{adapter}", adapter=adapter, seed=seed, voter=voter)


def _tuned_side(seed: int) -> str:
    import random
    return "A" if random.Random(seed).random() < 0.5 else "B"


def test_pair_hides_the_side_and_vote_reveals_it(tmp_path):
    a = Arena(tmp_path / "arena.sqlite")
    seeds = [s for s in range(20)]
    sides = {_tuned_side(s) for s in seeds}
    assert sides == {"A", "B"}  # both sides occur, so the test below covers both
    for seed in seeds:
        pair = _pair(a, seed)
        side = _tuned_side(seed)
        tuned_text = pair.answer_a if side == "A" else pair.answer_b
        assert tuned_text == "tuned answer" and {pair.answer_a, pair.answer_b} == {"base answer", "tuned answer"}
        reveal = a.vote(pair.id, side)
        assert (reveal.tuned_side, reveal.winner, reveal.tuned_name) == (side, "tuned", "tuned:runs/hust")
        assert {reveal.name_a, reveal.name_b} == {"Qwen2.5-0.5B-Instruct", "tuned:runs/hust"}


def test_pair_survives_a_reload_and_is_shown_again_until_voted(tmp_path):
    db = tmp_path / "arena.sqlite"
    pair = _pair(Arena(db), seed=1, voter="session-1")
    _pair(Arena(db), seed=2, voter="someone-else")
    again = Arena(db).pending_pair("session-1")       # a new Arena object = a new page load / worker
    assert again == pair
    Arena(db).vote(pair.id, "tie", voter="session-1")
    assert Arena(db).pending_pair("session-1") is None
    assert Arena(db).pending_pair(None) is None


def test_second_vote_is_refused_by_the_database(tmp_path):
    a = Arena(tmp_path / "arena.sqlite")
    pair = _pair(a, seed=3)
    a.vote(pair.id, "A")
    with pytest.raises(AlreadyVoted, match="already has a vote"):
        a.vote(pair.id, "B")
    with sqlite3.connect(a.path) as db:  # the UNIQUE rule lives in the schema, not only in Python
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO votes (pair_id, choice, created) VALUES (?, 'tie', 0)", (pair.id,))
    assert a.results()[0]["votes"] == 1


def test_bad_choice_and_unknown_pair(tmp_path):
    a = Arena(tmp_path / "arena.sqlite")
    pair = _pair(a, seed=4)
    with pytest.raises(ArenaError, match=r"expected one of A, B, tie, both_bad, got 'C'"):
        a.vote(pair.id, "C")
    with pytest.raises(ArenaError, match="no pair with id 'nope'"):
        a.vote("nope", "A")


def test_results_exact_counts_per_adapter(tmp_path):
    a = Arena(tmp_path / "arena.sqlite")

    def cast(adapter, outcome, seed):
        pair = _pair(a, seed, adapter=adapter)
        side = _tuned_side(seed)
        other = "B" if side == "A" else "A"
        a.vote(pair.id, {"tuned": side, "base": other}.get(outcome, outcome))

    seed = 0
    for adapter, outcomes in {"run-1": ["tuned"] * 5 + ["base"] * 2 + ["tie"] * 2 + ["both_bad"],
                              "run-2": ["base", "tuned"]}.items():
        for outcome in outcomes:
            cast(adapter, outcome, seed)
            seed += 1
    _pair(a, seed=99, adapter="run-3")  # shown but never voted: not counted

    rows = {r["adapter"]: r for r in a.results()}
    assert set(rows) == {"run-1", "run-2"}
    r1 = rows["run-1"]
    assert (r1["votes"], r1["tuned_wins"], r1["base_wins"], r1["ties"], r1["both_bad"], r1["n"]) == (10, 5, 2, 2, 1, 10)
    # ties and both-bad count half a win: (5 + 0.5 * 3) / 10
    assert r1["win_rate"] == pytest.approx(0.65)
    assert 0 < r1["win_rate_lo"] < 0.65 < r1["win_rate_hi"] < 1
    from hust_sft.metrics import win_rate_interval
    assert (r1["win_rate"], r1["win_rate_lo"], r1["win_rate_hi"]) == win_rate_interval(5, 2, 3)
    assert (rows["run-2"]["tuned_wins"], rows["run-2"]["base_wins"], rows["run-2"]["win_rate"]) == (1, 1, 0.5)
    assert [r["adapter"] for r in a.results("run-2")] == ["run-2"]
    assert arena.results(db=a.path)[0]["adapter"] == "run-1"   # most votes first


def test_two_connections_racing_on_one_pair_count_once(tmp_path):
    db = tmp_path / "arena.sqlite"
    pair = _pair(Arena(db), seed=5)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def voter(choice):
        a = Arena(db)
        barrier.wait()
        try:
            a.vote(pair.id, choice)
            outcomes.append("ok")
        except AlreadyVoted:
            outcomes.append("refused")

    threads = [threading.Thread(target=voter, args=(c,)) for c in ("A", "B")]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sorted(outcomes) == ["ok", "refused"]
    assert Arena(db).results()[0]["votes"] == 1


def test_data_dir_prefers_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HUST_SFT_DATA_DIR", str(tmp_path / "store"))
    assert arena.default_db_path() == tmp_path / "store" / "arena.sqlite"
    pair = arena.create_pair("q", "b", "t", base_name="base", tuned_name="tuned", adapter="x", seed=0)
    assert (tmp_path / "store" / "arena.sqlite").is_file()
    assert arena.vote(pair.id, "both_bad").winner == "both_bad"
    monkeypatch.delenv("HUST_SFT_DATA_DIR")
    space_storage = os.path.isdir("/data") and os.access("/data", os.W_OK)
    assert arena.data_dir() == (Path("/data/hust-sft") if space_storage else Path("data"))


def test_results_are_counted_per_pair_of_arms(tmp_path):
    a = Arena(tmp_path / "arena.sqlite")
    for seed, (ref, cand, win) in enumerate([("base", "tuned", True), ("base", "tuned", False),
                                              ("base+retrieval", "tuned+retrieval", True),
                                              ("base+retrieval", "tuned+retrieval", True)]):
        pair = a.create_pair("q", "ref answer", "cand answer", base_name=ref, tuned_name=f"run-1 {cand}",
                             adapter="run-1", seed=seed, base_arm=ref, tuned_arm=cand)
        row = sqlite3.connect(a.path).execute("SELECT tuned_side FROM pairs WHERE id = ?", (pair.id,)).fetchone()
        reveal = a.vote(pair.id, row[0] if win else ("B" if row[0] == "A" else "A"))
        assert reveal.winner == ("tuned" if win else "base")
    rows = {(r["base_arm"], r["tuned_arm"]): r for r in a.results()}
    assert set(rows) == {("base", "tuned"), ("base+retrieval", "tuned+retrieval")}
    assert (rows[("base", "tuned")]["tuned_wins"], rows[("base", "tuned")]["base_wins"]) == (1, 1)
    rag = rows[("base+retrieval", "tuned+retrieval")]
    assert (rag["votes"], rag["tuned_wins"], rag["base_name"], rag["tuned_name"]) == (
        2, 2, "base+retrieval", "run-1 tuned+retrieval")


def test_a_database_from_before_arms_gets_the_columns_and_its_pairs_count_as_base_vs_tuned(tmp_path):
    db = tmp_path / "old.sqlite"
    with closing(sqlite3.connect(db)) as con:
        con.executescript(arena.SCHEMA.replace("    voter TEXT,\n    base_arm TEXT,\n    tuned_arm TEXT\n",
                                               "    voter TEXT\n"))
        con.execute("INSERT INTO pairs (id, created, question, answer_a, answer_b, tuned_side, base_name,"
                    " tuned_name, adapter) VALUES ('p1', 0, 'q', 'a', 'b', 'A', 'base', 'run', 'run')")
        con.execute("INSERT INTO votes (pair_id, choice, created) VALUES ('p1', 'A', 0)")
        con.commit()
    a = Arena(db)
    (row,) = a.results()
    assert (row["base_arm"], row["tuned_arm"], row["tuned_wins"]) == ("base", "tuned", 1)
    a.create_pair("q2", "x", "y", base_name="base", tuned_name="run", adapter="run", seed=1)
