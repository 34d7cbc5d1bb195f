"""A visitor's limits (hust_sft.limits), server-signed voter ids (hust_sft.voters) and the fair model lock."""
import os
import threading

import gradio as gr
import pytest

from hust_sft import access, i18n, limits
from hust_sft import settings as S
from hust_sft.serving import FairLock, ModelCache
from hust_sft.ui import chat, common
from hust_sft.ui.common import AppConfig
from hust_sft.voters import VoterIds, load_secret

VISITOR_SPACE = AppConfig(space_id="alice/space", space_owner="alice", oauth_trusted=True)  # SYSTEM=spaces
ALICE = type("Profile", (), {"username": "alice"})()
BOB = type("Profile", (), {"username": "bob"})()


def test_public_maxima_are_declared_once_in_the_settings():
    assert limits.public_maxima(S.EvalSettings) == {"max_new_tokens": 512, "batch_size": 8, "limit": 50,
                                                    "bootstrap": 2000, "train_sample": 50}
    assert limits.public_maxima(S.GenerationSettings) == {"max_new_tokens": 512}
    assert limits.public_max(S.EvalSettings, "limit") == 50 and limits.public_max(S.EvalSettings, "top_p") is None
    with pytest.raises(KeyError):
        limits.public_max(S.EvalSettings, "no_such_setting")


def test_a_visitor_over_a_public_maximum_is_refused_with_field_maximum_and_value():
    es = S.set_values(S.EvalSettings(), {"batch_size": 64})
    with pytest.raises(limits.PublicLimitError) as e:
        limits.enforce_public(es, owner=False)
    assert str(e.value) == ("batch_size: at most 8 for visitors of this public Space (its owner may set more); "
                            "got 64.")
    assert e.value.text("zh") == "batch_size：这个公开 Space 的访客最多可设为 8（所有者可以设得更大）；收到 64。"
    assert limits.enforce_public(es, owner=True).batch_size == 64                # the owner: full range


def test_a_visitor_s_unbounded_limit_becomes_the_public_maximum_and_values_at_the_maximum_pass():
    es = S.set_values(S.EvalSettings(), {"max_new_tokens": 512, "bootstrap": 2000, "batch_size": 8})
    assert es.limit is None                                                       # "every test question"
    limits.enforce_public(es, owner=False)
    assert (es.limit, es.generation.max_new_tokens, es.bootstrap, es.batch_size) == (50, 512, 2000, 8)
    with pytest.raises(limits.PublicLimitError, match=r"max_new_tokens: at most 512 .* got 513\."):
        limits.enforce_public(S.set_values(S.GenerationSettings(), {"max_new_tokens": 513}), owner=False)


def test_chat_text_bounds_name_the_field():
    long_q = "问" * (limits.QUESTION_MAX_CHARS + 1)
    with pytest.raises(limits.TooLong) as e:
        limits.check_chat(long_q, "", [], owner=False)
    assert str(e.value) == (f"question: at most {limits.QUESTION_MAX_CHARS} characters for visitors of this "
                            f"public Space; got {limits.QUESTION_MAX_CHARS + 1}.")
    with pytest.raises(limits.TooLong, match="system_prompt: at most 2000 characters"):
        limits.check_chat("q", "x" * 2001, [], owner=False)
    turns = [{"role": r, "content": "x"} for _ in range(limits.HISTORY_MAX_TURNS + 1) for r in ("user", "assistant")]
    with pytest.raises(limits.TooLong, match=f"history: at most {limits.HISTORY_MAX_TURNS} earlier questions.*got 9"):
        limits.check_chat("q", "", turns, owner=False)
    with pytest.raises(limits.TooLong, match="history: at most 16000 characters.*got 16001"):
        limits.check_chat("q", "", [{"role": "user", "content": "x" * 16001}], owner=False)
    limits.check_chat("q", "", turns[:-2], owner=False)                          # 8 turns: allowed
    limits.check_chat(long_q, "x" * 5000, turns * 3, owner=True)                 # the owner: unbounded


def test_the_chat_tab_refuses_a_visitor_before_generating_and_lets_the_owner_through():
    cache = ModelCache()                                    # never loaded: refusals come before any model work
    gen = {"max_new_tokens": 1000, "temperature": 0.0, "top_p": 0.9, "repetition_penalty": 1.0}
    with pytest.raises(gr.Error) as e:
        list(chat.chat(VISITOR_SPACE, cache, "en", "q", None, "", "", [], [], gen, owner=False))  # restore, raise
    assert e.value.message == i18n.t("limits.error.public_max", "en", field="max_new_tokens", maximum=512, got=1000)
    history = [{"role": "user", "content": "x" * 20000}, {"role": "assistant", "content": "y"}]
    with pytest.raises(gr.Error, match="history: at most 16000"):
        list(chat.chat(VISITOR_SPACE, cache, "en", "q", None, "", "", history, [], {**gen, "max_new_tokens": 8},
                       owner=False))
    assert cache.loaded == (None, [])


def test_who_is_owner():
    assert access.is_owner(AppConfig(), None)                                     # not a Space: everyone
    assert access.is_owner(VISITOR_SPACE, ALICE)
    assert not access.is_owner(VISITOR_SPACE, BOB) and not access.is_owner(VISITOR_SPACE, None)
    open_space = AppConfig(space_id="alice/space", space_owner="alice", open_training=True, oauth_trusted=True)
    assert not access.is_owner(open_space, None)            # open training does not lift the chat limits


def test_a_visitor_s_page_shows_the_public_maxima_and_the_owner_s_the_full_ranges():
    texts = common.Texts()
    fields = {n: (f, tp) for n, f, tp in S.fields_of(S.EvalSettings)}
    with gr.Blocks():
        widgets = {n: common.widget_for(n, *fields[n], S.get_value(S.EvalSettings(), n), texts, "en")
                   for n in ("limit", "batch_size", "bootstrap", "max_new_tokens", "top_p")}
    # Built with the full ranges: an API call over a public maximum gets limits' named error, not Gradio's.
    assert [w.maximum for w in widgets.values()] == [100000, 128, 100000, 4096, 1.0]
    shown = common.visitor_ranges(VISITOR_SPACE, BOB, widgets, S.EvalSettings)
    assert [(u.get("maximum"), u.get("value")) for u in shown] == [(50, 50), (8, None), (2000, None), (512, None),
                                                                   (None, None)]
    assert common.visitor_ranges(VISITOR_SPACE, None, widgets, S.EvalSettings) == shown
    for owner_page in (common.visitor_ranges(VISITOR_SPACE, ALICE, widgets, S.EvalSettings),
                       common.visitor_ranges(AppConfig(), None, widgets, S.EvalSettings)):
        assert all(u == gr.update() for u in owner_page)
    # The Chat bounds one setting: its load event has one output, which Gradio does not unpack.
    with gr.Blocks():
        one = {"max_new_tokens": common.widget_for("max_new_tokens", *fields["max_new_tokens"], 256, texts, "en")}
    assert common.visitor_ranges(VISITOR_SPACE, BOB, one, S.GenerationSettings) == gr.update(maximum=512)
    assert common.visitor_ranges(VISITOR_SPACE, ALICE, one, S.GenerationSettings) == gr.update()


def test_rate_limit_per_voter_and_per_address_with_the_wait_in_the_message():
    now = [1000.0]
    rate = limits.ArenaRate(per_voter=2, per_address=3, clock=lambda: now[0])
    rate.take("v1", "1.2.3.4")
    rate.take("v1", "1.2.3.4")
    with pytest.raises(limits.RateLimited) as e:
        rate.take("v1", "1.2.3.4")
    assert str(e.value) == "Blind pairs: at most 2 every 60 s for each voter; try again in 60 s."
    rate.take("v2", "1.2.3.4")                      # another voter from the same address: the 3rd from there
    with pytest.raises(limits.RateLimited, match="at most 3 every 60 s from one address"):
        rate.take("v3", "1.2.3.4")                  # a refused request is not counted against v3
    rate.take("v3", "5.6.7.8")
    now[0] += 45
    with pytest.raises(limits.RateLimited, match="try again in 15 s"):
        rate.take("v1", "9.9.9.9")
    now[0] += 15
    rate.take("v1", "1.2.3.4")                      # the window slid past the first two


def test_rate_limit_holds_for_a_burst_of_parallel_requests():
    rate = limits.ArenaRate(per_voter=5, per_address=100)
    ok, refused = [], []

    def one():
        try:
            rate.take("v", "a")
            ok.append(1)
        except limits.RateLimited:
            refused.append(1)
    threads = [threading.Thread(target=one) for _ in range(40)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert (len(ok), len(refused)) == (5, 35)


def test_limits_read_from_the_environment(monkeypatch):
    assert limits.queue_max_size() == limits.QUEUE_MAX_SIZE
    assert limits.arena_rate_limits() == (5, 30, 60)
    monkeypatch.setenv("HUST_SFT_QUEUE_MAX", "3")
    monkeypatch.setenv("HUST_SFT_ARENA_PAIRS_PER_VOTER", "2")
    monkeypatch.setenv("HUST_SFT_ARENA_WINDOW_S", "3600")
    assert limits.queue_max_size() == 3 and limits.arena_rate_limits() == (2, 30, 3600)
    rate = limits.ArenaRate()
    rate.take("v", None)
    rate.take("v", None)
    with pytest.raises(limits.RateLimited, match="at most 2 every 3600 s for each voter"):
        rate.take("v", None)
    monkeypatch.setenv("HUST_SFT_QUEUE_MAX", "lots")
    with pytest.raises(ValueError, match="HUST_SFT_QUEUE_MAX: expected a whole number, got 'lots'"):
        limits.queue_max_size()


def test_voter_ids_are_signed_by_the_server_and_forgeries_get_a_fresh_id(tmp_path, monkeypatch):
    monkeypatch.delenv("HUST_SFT_VOTER_SECRET", raising=False)
    ids = VoterIds.beside(tmp_path / "arena.sqlite")
    secret_file = tmp_path / "voter-secret"
    assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
    token = ids.issue()
    voter = ids.verify(token)
    assert voter == token[:32] and ids.resolve(token) == (token, voter)
    assert VoterIds.beside(tmp_path / "arena.sqlite").verify(token) == voter     # same secret after a restart
    forged = voter + "." + "0" * 32
    for bad in (forged, "browser-1", None, 42, token[:-1] + ("0" if token[-1] != "0" else "1"), "é" * 65):
        assert ids.verify(bad) is None
        fresh, fresh_voter = ids.resolve(bad)
        assert fresh != bad and ids.verify(fresh) == fresh_voter != voter
    other_server = VoterIds(b"another secret")
    assert other_server.verify(token) is None
    monkeypatch.setenv("HUST_SFT_VOTER_SECRET", "from-env")
    assert load_secret(tmp_path / "elsewhere") == b"from-env" and not (tmp_path / "elsewhere").exists()


def test_fair_lock_serves_waiters_in_arrival_order():
    """The holder releasing and at once re-acquiring (an evaluation's next batch) queues behind a waiter."""
    lock, order = FairLock(), []
    lock.acquire()

    def waiter():
        with lock:
            order.append("chat")
    th = threading.Thread(target=waiter)
    th.start()
    while lock.waiting != 1:
        threading.Event().wait(0.001)
    lock.release()
    lock.acquire()
    order.append("next batch")
    lock.release()
    th.join()
    assert order == ["chat", "next batch"] and not lock.locked()


def test_fair_lock_may_be_released_by_another_thread_and_refuses_a_double_release():
    lock = FairLock()
    lock.acquire()
    th = threading.Thread(target=lock.release)
    th.start()
    th.join()
    assert not lock.locked()
    with pytest.raises(RuntimeError, match="unheld"):
        lock.release()


def test_secret_file_is_not_shared_between_folders(tmp_path, monkeypatch):
    monkeypatch.delenv("HUST_SFT_VOTER_SECRET", raising=False)
    a, b = load_secret(tmp_path / "a"), load_secret(tmp_path / "b")
    assert a != b and len(a) == 64 and os.path.isfile(tmp_path / "a" / "voter-secret")
