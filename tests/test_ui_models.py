"""Chat, Evaluate, Blind A/B and Publish tab functions on the tiny model with a real (perturbed) LoRA adapter."""
import json
from pathlib import Path

import gradio as gr
import pytest
from helpers import write_tuned_run

from hust_sft import i18n
from hust_sft import settings as S
from hust_sft.serving import ModelCache
from hust_sft.ui import arena, chat, common, evaluate, publish
from hust_sft.ui.common import AppConfig

SYSTEM = "你是华中科技大学的校园助手。"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model_dir):
    """A finished run folder: settings.json naming the tiny model + sample data, and a saved adapter whose
    LoRA B weights are random (a fresh LoRA is the identity, which would make tuned == base)."""
    return write_tuned_run(tmp_path_factory.mktemp("runs") / "my-run", tiny_model_dir, common.SAMPLE_DATA, SYSTEM)


@pytest.fixture(scope="module")
def config(run_dir, tiny_model_dir, tmp_path_factory):
    return AppConfig(runs_dir=run_dir.parent, model=str(tiny_model_dir), data=str(common.SAMPLE_DATA),
                     arena_path=tmp_path_factory.mktemp("arena") / "arena.sqlite", arena_max_new_tokens=16)


@pytest.fixture(scope="module")
def cache():
    return ModelCache()


GEN = {"max_new_tokens": 6, "temperature": 0.0, "top_p": 0.9, "repetition_penalty": 1.0}


def test_the_run_dropdown_lists_runs_with_an_adapter_and_their_system_prompt(config, run_dir):
    assert common.adapter_choices(config) == [("my-run", "my-run")]   # runs are picked by name, never by path
    assert common.system_prompt_of(config, "my-run") == SYSTEM
    assert common.system_prompt_of(config, None) == S.QWEN25_SYSTEM_PROMPT
    assert common.resolve(config, "my-run", "  owner/x ", "en").repo_id == "owner/x"  # a typed Hub id wins
    assert common.resolve(config, "my-run", "", "en").run_dir == run_dir.resolve()
    with pytest.raises(gr.Error, match="not in the runs table"):
        common.resolve(config, str(run_dir), "", "en")



def test_picking_a_run_lists_the_runs_and_reads_its_settings_once(config, monkeypatch):
    """Chat's run change fills the system prompt and both retrieval switches from one look at the run."""
    from hust_sft import runs

    calls = []
    for name in ("list_runs", "load_settings"):
        real = getattr(runs, name)
        monkeypatch.setattr(runs, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    assert chat.run_changed(config, "my-run") == (SYSTEM, False, False)   # a plain run: retrieval off
    assert calls == ["list_runs", "load_settings"]
    assert chat.run_changed(config, None) == (S.QWEN25_SYSTEM_PROMPT, False, False)

def test_gradio_6_message_content_becomes_plain_text():
    history = [{"role": "user", "content": [{"type": "text", "text": "问"}]},
               {"role": "assistant", "content": "答"}, {"role": "system", "content": "x"}]
    assert chat.history_messages(history) == [{"role": "user", "content": "问"},
                                              {"role": "assistant", "content": "答"}]


def test_chat_streams_base_then_tuned_from_one_copy_of_the_weights(config, cache, run_dir, tiny_model_dir):
    steps = list(chat.chat(config, cache, "en", "校园卡丢了怎么办？", "my-run", "", "", [], [], GEN))
    base, tuned, box, base_src, tuned_src = steps[-1]
    assert base_src == tuned_src == ""                  # retrieval off: no sources listed
    assert box == "" and len(steps) > 3
    assert [m["role"] for m in base] == [m["role"] for m in tuned] == ["user", "assistant"]
    assert base[0]["content"] == tuned[0]["content"] == "校园卡丢了怎么办？"
    assert base[1]["content"] and tuned[1]["content"] and base[1]["content"] != tuned[1]["content"]
    # The answers are exactly what the cache gives for each side (greedy), with the run's own system prompt.
    msgs = [{"role": "user", "content": "校园卡丢了怎么办？"}]
    gen = S.set_values(S.GenerationSettings(), GEN)
    assert cache.answer(str(tiny_model_dir), str(run_dir), msgs, SYSTEM, gen, use_adapter=False) == base[1]["content"]
    assert cache.answer(str(tiny_model_dir), str(run_dir), msgs, SYSTEM, gen) == tuned[1]["content"]
    assert cache.loaded[0] == str(tiny_model_dir) and len(cache.loaded[1]) == 1
    # A second question continues each side's own conversation.
    base2, tuned2, *_ = list(chat.chat(config, cache, "en", "还有呢？", "my-run", "", "", base, tuned, GEN))[-1]
    assert len(base2) == len(tuned2) == 4 and base2[:2] == base


def test_chat_with_retrieval_asks_with_the_passages_and_lists_them(config, cache, run_dir, tiny_model_dir):
    """The run trained without retrieval: both sides search the index built from its training split."""
    from hust_sft import retrieval
    from hust_sft.data import load_data

    question = "校园卡丢了怎么办？"
    steps = list(chat.chat(config, cache, "en", question, "my-run", "", "", [], [], GEN, False, True))
    base, tuned, _, base_src, tuned_src = steps[-1]
    train = load_data(S.from_dict(S.DataSettings, {"data": str(common.SAMPLE_DATA)})).splits["train"]
    defaults = S.RetrievalSettings()
    found = retrieval.Retriever.build(train).search(question, defaults.answer_k,
                                                    min_relevance=defaults.min_relevance)
    assert len(found) == defaults.answer_k
    assert base_src == ""
    # Each passage with its file name and line (never the folder the data lives in on the server) and
    # its relevance.
    assert tuned_src == "\n".join([i18n.t("ui.chat.sources", "en")] + [
        f"{n}. `{p.id}` (sample_handbook.jsonl:{p.source.rsplit(':', 1)[1]}, relevance "
        f"{100 * p.relevance:.0f}%) {' '.join(p.text.split())}" for n, p in enumerate(found, 1)])
    assert str(common.SAMPLE_DATA.parent) not in tuned_src
    gen = S.set_values(S.GenerationSettings(), GEN)
    msgs = [{"role": "user", "content": question}]
    assert tuned[1]["content"] == cache.answer(str(tiny_model_dir), str(run_dir), msgs, SYSTEM, gen,
                                               passages=found, passage_max_chars=defaults.passage_max_chars)
    assert base[1]["content"] == cache.answer(str(tiny_model_dir), str(run_dir), msgs, SYSTEM, gen,
                                              use_adapter=False)
    # base with retrieval reads the same passages as the tuned side
    *_, base_src2, _ = list(chat.chat(config, cache, "en", question, "my-run", "", "", [], [], GEN,
                                      True, False))[-1]
    assert base_src2 == tuned_src
    assert common.run_retrieval_mode(config, "my-run") == "off"


def test_chat_hands_an_off_topic_question_to_the_base_model_and_says_so(config, cache, run_dir, tiny_model_dir):
    """No handbook passage is relevant to "1+1=?": with retrieval on, the tuned side's answer is the base
    model's plain answer, and the sources line says why."""
    steps = list(chat.chat(config, cache, "en", "1+1=?", "my-run", "", "", [], [], GEN, True, True))
    base, tuned, _, base_src, tuned_src = steps[-1]
    assert base_src == tuned_src == i18n.t("ui.chat.sources_off_topic", "en")
    gen = S.set_values(S.GenerationSettings(), GEN)
    msgs = [{"role": "user", "content": "1+1=?"}]
    plain_base = cache.answer(str(tiny_model_dir), str(run_dir), msgs, SYSTEM, gen, use_adapter=False)
    assert tuned[1]["content"] == base[1]["content"] == plain_base
    assert plain_base != cache.answer(str(tiny_model_dir), str(run_dir), msgs, SYSTEM, gen)  # the adapter differs


def test_chat_without_an_adapter_answers_with_the_base_and_says_why(config, cache):
    base, tuned, *_ = list(chat.chat(config, cache, "zh", "你好", None, "", "", [], [], GEN))[-1]
    assert base[1]["content"] and tuned[1]["content"] == i18n.t("ui.chat.no_adapter", "zh")


def test_chat_errors_are_shown_not_raised_as_tracebacks(config, cache, run_dir):
    with pytest.raises(gr.Error, match="Type a question first"):
        list(chat.chat(config, cache, "en", "  ", "my-run", "", "", [], [], GEN))
    lo, hi = (S.GenerationSettings.__dataclass_fields__["max_new_tokens"].metadata[k] for k in ("min", "max"))
    with pytest.raises(gr.Error, match=rf"max_new_tokens: expected a value in \[{lo}, {hi}\], got {lo - 1}"):
        list(chat.chat(config, cache, "en", "q", "my-run", "", "", [], [], {**GEN, "max_new_tokens": lo - 1}))


def test_evaluate_tab_runs_on_the_run_s_test_split_and_shows_its_files(config, cache, run_dir, tiny_model_dir,
                                                                         monkeypatch):
    from hust_sft import metrics, modeling

    cache.get(str(tiny_model_dir), str(run_dir))           # what Chat / Blind A/B left in the cache
    def no_second_copy(*a, **k):
        raise AssertionError("the Evaluate tab loaded a second copy of the base weights")
    monkeypatch.setattr(modeling, "load_base_model", no_second_copy)
    values = {"limit": 2, "batch_size": 2, "bootstrap": 100, "max_new_tokens": 4, "train_sample": 1,
              "arms": ["base", "base+retrieval", "tuned", "tuned+retrieval"]}
    arms = ["base", "base+retrieval", "my-run", "my-run+retrieval"]
    seen, locked = [], []
    def progress(f, desc):
        seen.append(f)
        locked.append(cache.lock.locked())                 # the lock is taken per batch, free in between
    md, table, learn, bars, per_q, csv = evaluate.run_eval(config, cache, "en", "my-run", "", None, values,
                                                    progress=progress)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and not any(locked)
    assert not cache.lock.locked()
    out = run_dir / "eval-first2"  # limit 2: written beside the run's full evaluation
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["arms"] == arms
    assert summary["settings"]["data"]["system_prompt"] == SYSTEM   # the run's data settings, not defaults
    n_metrics = len(summary["metrics"])
    per_split = n_metrics + len(summary["fact_metrics"])           # the metrics, then where the facts went
    assert list(summary["splits"]) == ["test", "train"]             # the held-out split, then 1 training question
    assert len(table) == 2 * per_split and list(table.columns)[:6] == ["Set", "Metric", *arms]
    assert table.iloc[0]["n"] == 2 == summary["splits"]["test"]["n"]
    assert table.iloc[per_split]["n"] == 1 and table.iloc[per_split]["Set"] == "Training questions (sample)"
    assert list(table["Metric"])[n_metrics:per_split] == [
        "Facts in the passages", "Facts in the answer", "Kept (of the passages' facts, share stated)",
        "Invented (specifics per answer in neither passages nor question)"]
    invented = summary["splits"]["test"]["means"]["base"]["invented"]
    assert table.iloc[per_split - 1]["base"] == f"{invented:.2f}" and table.iloc[n_metrics]["base"] == "–"
    assert list(table.columns)[6:11] == [       # the four-arm comparisons, then n
        "base+retrieval − base [95% CI]", "my-run − base [95% CI]", "my-run+retrieval − base [95% CI]",
        "my-run+retrieval − base+retrieval [95% CI]", "n"]
    # "Did it learn?": one row per arm, the held-out and training scores side by side
    assert list(learn["Model"]) == arms
    f1 = summary["splits"]["train"]["means"]["my-run"]["token_f1"]
    assert learn.iloc[2]["Token F1 training"] == f"{100 * f1:.1f}"
    assert learn.iloc[0]["Identical to base (%)"] == "–" and learn.iloc[2]["Looping answers"].endswith(" / 2")
    first = summary["metrics"][0]
    assert table.iloc[0]["base"] == round(100 * summary["splits"]["test"]["means"]["base"][first], 1)

    # The chart: metrics on x in the table's order (not alphabetical), base and tuned side by side.
    assert list(bars["model"]) == arms * len(metrics.METRICS)
    assert [x.replace("\u200b", "") for x in bars["metric"][::4]] == list(table["Metric"])[:n_metrics]  # test split
    assert len(set(bars["metric"])) == len(bars)             # one x per bar: Vega-Lite would stack equal x
    means = summary["splits"]["test"]["means"]
    assert list(bars["value"][2::4]) == [round(100 * means["my-run"][k], 1) for k in metrics.METRICS]
    order = evaluate.bar_order()                             # the chart's fixed x order, in either language
    for lang in ("en", "zh"):
        xs = list(evaluate.bar_frame(summary, lang)["metric"])
        assert sorted(xs, key=order.index) == xs

    rows = per_q["value"]
    assert len(rows) == 3 and "Answer: my-run" in rows.columns
    assert list(rows.columns)[-4:] == [f"Facts: {a}" for a in arms]   # which question lost what
    assert all(cell.startswith("passages – · answer ") for cell in rows["Facts: base"])
    assert len(per_q["column_widths"]) == len(rows.columns)
    assert sum(float(w.rstrip("%")) for w in per_q["column_widths"]) == pytest.approx(100, abs=0.5)
    raw = [json.loads(line) for line in (out / "per_example.jsonl").read_text(encoding="utf-8").splitlines()]
    assert list(rows["Answer: my-run"]) == [r["answer"].strip() for r in raw if r["arm"] == "my-run"]
    # The CSV is offered from the app's public folder, never from the runs folder (hust_sft.access).
    assert csv != str(out / "per_example.csv") and Path(csv).parent.parent == config.public_dir.resolve()
    assert Path(csv).read_bytes() == (out / "per_example.csv").read_bytes()
    assert md.startswith("# ")
    # Picking the run again shows the same files without recomputing.
    assert evaluate.show(out, "en")[1].equals(table)


def test_evaluate_waits_for_a_chat_answer_in_progress(config, cache, run_dir, tiny_model_dir):
    """A chat stream holds the model; an evaluation started meanwhile only begins once it is done."""
    import threading

    cache.get(str(tiny_model_dir), str(run_dir))
    gen = S.set_values(S.GenerationSettings(), GEN)
    stream = cache.stream(str(tiny_model_dir), str(run_dir), [{"role": "user", "content": "你好"}], SYSTEM, gen)
    next(stream)                                            # mid-answer, adapter switched on
    started = []
    worker = threading.Thread(target=lambda: evaluate.run_eval(
        config, cache, "en", "my-run", "", None, {"limit": 1, "bootstrap": 100, "max_new_tokens": 2,
                                                 "arms": ["base", "tuned"], "train_sample": 0},
        progress=lambda f, desc: started.append(f)), daemon=True)
    try:
        worker.start()
        worker.join(timeout=2)
        assert worker.is_alive() and started == []
        for _ in stream:
            pass
    finally:
        stream.close()                                      # releases the lock even when an assert failed
    worker.join(timeout=120)
    assert not worker.is_alive() and started[-1] == 1.0


def test_a_chat_asked_during_an_evaluation_is_answered_before_the_evaluation_ends(config, cache, run_dir,
                                                                                  tiny_model_dir):
    """The evaluation takes the model lock per batch and the lock serves waiters in order: a chat asked
    after its first batch waits for at most one more batch, not for the remaining nine."""
    import threading

    cache.get(str(tiny_model_dir), str(run_dir))
    gen = S.set_values(S.GenerationSettings(), GEN)
    events, asker = [], []

    def ask():
        cache.answer(str(tiny_model_dir), str(run_dir), [{"role": "user", "content": "你好"}], SYSTEM, gen)
        events.append("chat answered")

    def progress(f, desc):
        events.append("evaluation progress")
        if f > 0.05 and not asker:                         # the first batch is done
            asker.append(threading.Thread(target=ask))
            asker[0].start()
    evaluate.run_eval(config, cache, "en", "my-run", "", None,
                      {"limit": 5, "batch_size": 1, "bootstrap": 100, "max_new_tokens": 16, "train_sample": 0},
                      progress=progress)
    events.append("evaluation done")
    asker[0].join(timeout=60)
    batches_after_chat = events[events.index("chat answered"):].count("evaluation progress")
    assert batches_after_chat >= 5, events                 # 10 batches (5 questions x base, tuned), 1 at a time


def test_evaluate_without_an_adapter_is_a_clear_error(config):
    with pytest.raises(gr.Error, match="adapter: pick a run"):
        evaluate.run_eval(config, ModelCache(), "en", None, "", None, {})


def test_blind_pair_hides_identities_until_the_vote_and_refuses_a_second_vote(config, cache, run_dir,
                                                                              tiny_model_dir):
    voter = arena.restore(config, "en", None)[0]           # a fresh, server-signed voter id for a new browser
    token, pid, a, b, msg = arena.new_pair(config, cache, "en", voter, "校园卡丢了怎么办？", "my-run", "", seed=0)
    assert token == voter and a and b and a != b and msg == ""
    # A reload re-shows the pending pair for this browser only.
    restored = arena.restore(config, "en", voter)
    assert restored[:5] == (voter, pid, "校园卡丢了怎么办？", a, b)
    other = arena.restore(config, "en", "someone-else")
    assert other[1] is None and other[0] != "someone-else"  # a made-up id is replaced by a fresh one
    kept, text, table = arena.vote(config, "en", voter, pid, "a")
    assert kept is None and "my-run" in text and "base" in text
    row = table.iloc[0].to_dict()
    assert (row["Arm"], row["Votes"], row["Arm better"] + row["Against better"]) == ("my-run", 1, 1)
    assert row["Against"] == f"base ({tiny_model_dir.name})"
    assert arena.vote(config, "en", voter, pid, "b")[1] == i18n.t("ui.arena.already", "en")
    assert arena.results_frame(config.arena_db, "en").iloc[0]["Votes"] == 1
    assert arena.restore(config, "en", voter)[1] is None
    assert arena.vote(config, "en", voter, None, "tie")[1] == i18n.t("ui.arena.no_pair", "en")


def test_blind_answers_are_sampled_so_chat_s_greedy_answer_does_not_reveal_a_side(config, cache, run_dir,
                                                                                 tiny_model_dir):
    q = "图书馆几点开门？"
    voter = arena.restore(config, "en", None)[0]
    greedy = S.set_values(S.GenerationSettings(), {"max_new_tokens": 16})            # what /chat answers
    msgs = [{"role": "user", "content": q}]
    base = cache.answer(str(tiny_model_dir), str(run_dir), msgs, SYSTEM, greedy, use_adapter=False)
    tuned = cache.answer(str(tiny_model_dir), str(run_dir), msgs, SYSTEM, greedy, use_adapter=True)
    _, _, a, b, _ = arena.new_pair(config, cache, "en", voter, q, "my-run", "")
    _, _, a2, b2, _ = arena.new_pair(config, cache, "en", voter, q, "my-run", "")
    assert {a, b}.isdisjoint({base.strip(), tuned.strip()})
    assert {a, b}.isdisjoint({a2, b2})                      # secret seeds: the same question never repeats
    # A given seed reproduces a pair (for tests and audits), sides included.
    assert arena.new_pair(config, cache, "en", voter, q, "my-run", "", seed=7)[2:4] == \
        arena.new_pair(config, cache, "en", voter, q, "my-run", "", seed=7)[2:4]


def test_blind_pair_of_any_two_arms_retrieval_included(config, cache, run_dir, tiny_model_dir, monkeypatch):
    from hust_sft.arena import Arena
    from hust_sft.ui.common import answer_retrieval

    monkeypatch.setattr(config, "arena_max_new_tokens", 8)        # keep the answers short
    short = S.arena_generation(8)
    question = "图书馆几点开门？"
    voter = arena.restore(config, "en", None)[0]
    _, pid, a, b, _ = arena.new_pair(config, cache, "en", voter, question, "my-run", "", seed=3,
                                     reference="base+retrieval", candidate="tuned+retrieval")
    found = answer_retrieval(config, common.resolve(config, "my-run", "", "en"))
    gen, msgs = short, [{"role": "user", "content": question}]
    assert found.ask(question, tuned=True).use_adapter            # on topic: the tuned model answers
    extra = {"passages": found.search(question), "passage_max_chars": found.passage_max_chars}
    ref = cache.answer(str(tiny_model_dir), str(run_dir), msgs, SYSTEM, gen, use_adapter=False, seed=3, **extra)
    cand = cache.answer(str(tiny_model_dir), str(run_dir), msgs, SYSTEM, gen, use_adapter=True, seed=4, **extra)
    assert sorted([a, b]) == sorted([ref.strip(), cand.strip()])
    _, text, table = arena.vote(config, "en", voter, pid, "tie")
    assert f"base ({tiny_model_dir.name})+retrieval" in text and "my-run+retrieval" in text
    (row,) = [r for r in Arena(config.arena_db).results() if r["tuned_arm"] == "tuned+retrieval"]
    assert (row["base_arm"], row["ties"], row["tuned_name"]) == ("base+retrieval", 1, "my-run+retrieval")
    # Arm names are checked on the server: the API accepts any value.
    for ref_arm, cand_arm in (("tuned", "tuned"), ("base", "../tuned"), ("base", ["tuned"])):
        with pytest.raises(gr.Error, match="Pick two different arms"):
            arena.new_pair(config, cache, "en", voter, question, "my-run", "", reference=ref_arm, candidate=cand_arm)
    with pytest.raises(gr.Error, match="Pick a trained run"):
        arena.new_pair(config, cache, "en", voter, question, None, "", reference="base", candidate="tuned")


def test_blind_answers_are_shown_without_surrounding_blank_lines_but_stored_raw(config):
    from hust_sft.arena import Arena

    db = Arena(config.arena_db)
    token = arena.voter_ids(config).issue()
    voter = arena.voter_ids(config).verify(token)
    pair = db.create_pair("q?", "\n\n  base says\n", "\ntuned says  \n\n", base_name="base", tuned_name="t",
                          adapter="t", seed=0, voter=voter)
    shown = arena.restore(config, "en", token)
    assert shown[1] == pair.id and sorted(shown[3:5]) == ["base says", "tuned says"]
    assert db.pending_pair(voter).answer_a == pair.answer_a          # the database keeps the raw text
    assert pair.answer_a != pair.answer_a.strip()


def test_draw_question_comes_from_the_test_split(config, run_dir):
    import random

    from hust_sft.data import load_data

    data = S.from_dict(S.DataSettings, json.loads((run_dir / "settings.json").read_text())["data"])
    test_questions = {r.question for r in load_data(data).splits["test"]}
    assert arena.draw_question(config, "my-run", "en", random.Random(0)) in test_questions


def test_publish_checks_the_run_and_repo_and_never_shows_the_token(config, run_dir, monkeypatch):
    assert publish.publish_run(config, None, None, "en", None, "a/b", True) == i18n.t("ui.publish.no_run", "en")
    bad = publish.publish_run(config, None, None, "en", "my-run", "a/b/c", True)
    assert bad.startswith("✗") and "a/b/c" in bad
    token = "hf_" + "x" * 30
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    msg = publish.publish_run(config, None, type("T", (), {"token": token})(), "en", "my-run", "alice/r", True)
    assert msg.startswith("✗") and token not in msg
    space = AppConfig(runs_dir=config.runs_dir, space_id="alice/s", space_owner="alice")
    assert publish.publish_run(space, None, None, "en", "my-run", "a/b", True) == common.training_lock(
        space, None, "en")
    assert publish.suggested_repo(type("P", (), {"username": "alice"})(), str(run_dir)) == "alice/hust-sft-my-run"
