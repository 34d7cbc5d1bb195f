"""Public limits and blind votes (issue 9, items 8 and 9), attacked through the running app's API.

One app instance for the module (its own runs folder with one finished run, and blind-pair limits low
enough to reach: 2 pairs per voter, 12 per address, in an hour), driven as anonymous visitors with
gradio_client and httpx on 127.0.0.1.
"""
from __future__ import annotations

import sqlite3
import time
from contextlib import closing

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from helpers import write_tuned_run

from hust_sft import i18n, limits
from hust_sft import settings as S
from hust_sft.ui.chat import text_of
from hust_sft.ui.common import DEMO_ARENA_MAX_NEW_TOKENS

from public_space import demo_model_dir, running_space

PER_VOTER, PER_ADDRESS, WINDOW_S = 2, 12, 3600
EVAL_WAITING = 1
ARMS = ["base", "base+retrieval", "tuned", "tuned+retrieval"]
RUN = "sec-run"
QUESTION = "图书馆几点开门？"


@pytest.fixture(scope="module")
def app(tmp_path_factory, fake_hub):
    """The Space with a finished run of the demo model (the app's own, by path) whose adapter changes answers."""
    from hust_sft.ui.common import SAMPLE_DATA

    tmp = tmp_path_factory.mktemp("limits-space")
    write_tuned_run(tmp / "runs" / RUN, demo_model_dir(), SAMPLE_DATA)
    with running_space(tmp, fake_hub, HUST_SFT_ARENA_PAIRS_PER_VOTER=str(PER_VOTER),
                       HUST_SFT_ARENA_PAIRS_PER_ADDRESS=str(PER_ADDRESS), HUST_SFT_ARENA_WINDOW_S=str(WINDOW_S),
                       HUST_SFT_EVAL_WAITING=str(EVAL_WAITING)) as sp:
        yield sp


def visitor(app) -> Client:
    """A new anonymous visitor (its own Gradio session)."""
    return Client(app.url, verbose=False, download_files=False)


def props(app, elem_id: str) -> list[dict]:
    return [c["props"] for c in app.http.get("/config").json()["components"] if c["props"].get("elem_id") == elem_id]


def run_value(app, elem_id: str) -> str:
    """The value the page's run dropdown sends for our run."""
    return next(value for label, value in props(app, elem_id)[0]["choices"] if label == RUN)


def pair_rows(app) -> list[dict]:
    """Every stored pair with its vote, oldest first (read-only; none before the app made its database)."""
    path = app.data_dir / "arena.sqlite"
    if not path.is_file():
        return []
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT p.*, v.choice, v.voter AS vote_voter FROM pairs p"
                                            " LEFT JOIN votes v ON v.pair_id = p.id ORDER BY p.created")]


def chat(client: Client, app, question: str, *, history=None, max_new_tokens: int = 4, temperature: float = 0.0):
    return client.predict("en", question, run_value(app, "chat-run"), "", "", history or [], history or [],
                          max_new_tokens, temperature, 0.9, 1.0, api_name="/chat")


def new_pair(client: Client, app, voter, question: str = QUESTION):
    """(voter token the server returned, answer A, answer B, status)."""
    return client.predict("en", voter, question, run_value(app, "arena-run"), "", api_name="/arena_new")


# ---------------------------------------------------------------------------------------------------
# Item 8: public limits

def test_values_over_the_public_maxima_are_refused_on_the_server(app):
    client = visitor(app)
    with pytest.raises(AppError) as e:
        chat(client, app, "你好", max_new_tokens=4096)
    assert i18n.t("limits.error.public_max", "en", field="max_new_tokens", maximum=512, got=4096) in str(e.value)
    for field, value in (("batch_size", 64), ("limit", 1000), ("bootstrap", 100000), ("max_new_tokens", 513),
                         ("train_sample", 51)):
        values = {"limit": 2, "batch_size": 1, "bootstrap": 100, "max_new_tokens": 4, "train_sample": 0,
                  field: value}
        with pytest.raises(AppError) as e:
            client.predict("en", run_value(app, "eval-run"), "", None, *values.values(), api_name="/evaluate")
        maximum = limits.public_max(S.EvalSettings, field)
        assert i18n.t("limits.error.public_max", "en", field=field, maximum=maximum, got=value) in str(e.value)


def test_long_prompts_and_histories_are_refused_on_the_server(app):
    client = visitor(app)
    n = limits.QUESTION_MAX_CHARS + 1
    with pytest.raises(AppError, match=f"question: at most {limits.QUESTION_MAX_CHARS} characters .* got {n}"):
        chat(client, app, "问" * n)
    with pytest.raises(AppError, match=f"question: at most {limits.QUESTION_MAX_CHARS} characters .* got {n}"):
        new_pair(client, app, None, "问" * n)
    turns = limits.HISTORY_MAX_TURNS + 1
    history = [{"role": r, "content": [{"type": "text", "text": "x"}]}       # Gradio 6's message format
               for _ in range(turns) for r in ("user", "assistant")]
    with pytest.raises(AppError, match=f"history: at most {limits.HISTORY_MAX_TURNS} earlier questions .* got {turns}"):
        chat(client, app, "你好", history=history)
    assert pair_rows(app) == []                          # the refused pair generated and stored nothing


def test_a_chat_asked_during_an_evaluation_is_answered_before_the_evaluation_ends(app):
    """The evaluation (10 batches of one answer: 5 test questions, base and tuned) runs in its own queue
    group and takes the model lock per batch; a chat sent after its first batch comes back while the
    evaluation is still running."""
    evaluator, chatter = visitor(app), visitor(app)
    job = evaluator.submit("en", run_value(app, "eval-run"), "", None, 5, 1, 100, 24, 0, ["base", "tuned"],
                           api_name="/evaluate")
    deadline = time.time() + 600
    while not any((u.progress or 0) > 0.05 for u in (job.status().progress_data or [])):  # first batch done
        assert not job.done(), job.result()
        assert time.time() < deadline, "the evaluation never reported a finished batch"
        time.sleep(0.05)
    base, tuned, *_ = chat(chatter, app, "你好", max_new_tokens=4)
    assert [m["role"] for m in base] == [m["role"] for m in tuned] == ["user", "assistant"]   # both answered
    assert not job.done()                                # the chat came back first
    summary_md = job.result(timeout=600)[0]
    assert summary_md.startswith("# ")                   # and the evaluation still finished normally


def test_evaluations_past_the_waiting_limit_are_refused_at_once_and_leave_the_queue_to_chats(app):
    """Issue 19: evaluations waited in Gradio's queue, whose HUST_SFT_QUEUE_MAX is shared by every endpoint,
    so a script submitting that many four-arm evaluations turned every chat away ("Queue is full") for as
    long as they took. Now one runs, EVAL_WAITING wait, and one more is refused at once, by name; a chat
    is still answered, and once they are done a new evaluation is admitted again (nothing is held)."""
    from gradio_client.utils import Status

    run = run_value(app, "eval-run")
    long_one = visitor(app).submit("en", run, "", None, 5, 1, 100, 24, 0, ARMS[::2], api_name="/evaluate")
    deadline = time.time() + 600
    while not any((u.progress or 0) > 0 for u in (long_one.status().progress_data or [])):
        assert not long_one.done(), long_one.result()
        assert time.time() < deadline, "the evaluation never started"
        time.sleep(0.05)
    waiting = [visitor(app).submit("en", run, "", None, 1, 1, 100, 2, 0, ["base"], api_name="/evaluate")
               for _ in range(EVAL_WAITING)]
    admitted_by = time.time() + 120  # in Gradio's queue instead (IN_QUEUE), they would hold its places
    while not all(j.status().code == Status.PROCESSING for j in waiting):  # admitted: waiting for their turn
        assert time.time() < admitted_by, [j.status().code for j in waiting]
        time.sleep(0.05)
    time.sleep(0.5)  # inside the handler by now
    with pytest.raises(AppError) as e:
        visitor(app).predict("en", run, "", None, 1, 1, 100, 2, 0, ["base"], api_name="/evaluate")
    assert i18n.t("limits.error.eval_busy", "en", running=1, waiting=EVAL_WAITING) in str(e.value)
    assert not long_one.done()                           # refused at once, not after waiting
    base, tuned, *_ = chat(visitor(app), app, "你好", max_new_tokens=2)
    assert base[-1]["role"] == tuned[-1]["role"] == "assistant"
    for job in (long_one, *waiting):
        assert job.result(timeout=600)[0].startswith("# ")
    assert visitor(app).predict("en", run, "", None, 1, 1, 100, 2, 0, ["base"],
                                api_name="/evaluate")[0].startswith("# ")


def test_a_chat_cancelled_mid_answer_leaves_the_model_to_the_next_visitor(app):
    """Issue 19: an answer streams under the model lock; a visitor who cancels (or leaves) mid-answer must
    not keep it. Gradio closes the generator, which releases the lock; the next visitor is answered."""
    quitter = visitor(app)
    job = quitter.submit("en", QUESTION, run_value(app, "chat-run"), "", "", [], [], 512, 0.0, 0.9, 1.0,
                         api_name="/chat")
    deadline = time.time() + 300
    while not job.outputs():                             # the first tokens are out: the lock is held
        assert not job.done() and time.time() < deadline, job.status()
        time.sleep(0.05)
    job.cancel()
    quitter.close()
    started = time.time()
    base, tuned, *_ = chat(visitor(app), app, "你好", max_new_tokens=2)
    assert tuned[-1]["role"] == "assistant" and time.time() - started < 120


# ---------------------------------------------------------------------------------------------------
# Item 9: blind votes resist scripting

def test_a_made_up_voter_id_is_replaced_by_one_the_server_signed(app):
    forged = "0" * 32 + "." + "0" * 32                     # shaped like a real one, not signed by the server
    token, a, b, _ = new_pair(visitor(app), app, forged)
    assert token != forged and len(token) == len(forged) and a and b and a != b
    assert pair_rows(app)[-1]["voter"] == token[:32]       # stored under the server's id, not the forged one
    assert new_pair(visitor(app), app, token)[0] == token  # the server's own token is kept (any session)
    other, *_ = new_pair(visitor(app), app, "attacker-chosen")
    assert other not in (token, "attacker-chosen") and pair_rows(app)[-1]["voter"] == other[:32]


def test_one_vote_per_pair_whatever_voter_id_is_sent(app):
    client = visitor(app)
    token, a, b, _ = new_pair(client, app, None)
    status, _table = client.predict("en", token, api_name="/arena_vote_a")
    assert RUN in status                                   # the reveal names the tuned run
    for forged in (token, "someone-else", None):
        status, _table = client.predict("en", forged, api_name="/arena_vote_b")
        assert status == i18n.t("ui.arena.no_pair", "en")
    voted = [r for r in pair_rows(app) if (r["answer_a"].strip(), r["answer_b"].strip()) == (a, b)]
    assert len(voted) == 1 and voted[0]["choice"] == "A" and voted[0]["vote_voter"] == token[:32]


def test_chat_s_greedy_answers_do_not_identify_the_tuned_side(app):
    """Today's attack: ask /chat the pair's question (greedy, base and tuned) and vote for the side that
    matches the tuned answer. With sampled answers and a secret seed it never finds a match, so its votes
    are guesses (here always "A"): its hit rate is the coin flip of which side the tuned answer got."""
    attacker = visitor(app)
    base, tuned, *_ = chat(attacker, app, QUESTION, max_new_tokens=DEMO_ARENA_MAX_NEW_TOKENS)
    greedy_base, greedy_tuned = text_of(base[-1]["content"]).strip(), text_of(tuned[-1]["content"]).strip()
    assert greedy_base != greedy_tuned                     # greedy pairs could be told apart this way
    matched, answers = 0, set()
    for _ in range(4):
        client = visitor(app)
        token, a, b, _ = new_pair(client, app, None)
        answers |= {a, b}
        matched += bool({a, b} & {greedy_base, greedy_tuned})
        client.predict("en", token, api_name="/arena_vote_a")
    assert matched == 0 and len(answers) == 8              # no answer repeats, none is /chat's


def test_pairs_are_rate_limited_per_voter_and_forged_ids_do_not_escape_the_address_limit(app):
    used = len(pair_rows(app))                             # pairs made from 127.0.0.1 so far, all in the window
    assert used + PER_VOTER < PER_ADDRESS
    client = visitor(app)
    token = None
    for _ in range(PER_VOTER):
        token, *_ = new_pair(client, app, token)
    with pytest.raises(AppError) as e:
        new_pair(client, app, token)
    refusal = i18n.t("limits.error.rate_voter", "en", n=PER_VOTER, window=WINDOW_S, wait=0)
    assert refusal.split(" try again")[0] in str(e.value)
    # A script sending a new made-up id each time gets a fresh voter each time, but not past the address limit.
    made = 0
    while True:
        try:
            new_pair(visitor(app), app, f"forged-{made}")
        except AppError as e:
            assert "Blind pairs: at most 12 every 3600 s from one address" in str(e)
            break
        made += 1
        assert made <= PER_ADDRESS
    assert used + PER_VOTER + made == PER_ADDRESS == len(pair_rows(app))
