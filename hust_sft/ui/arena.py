"""Blind A/B tab: two arms' answers (base and tuned by default, either with retrieval) as "Answer A"/"Answer B"
in random order; identities after the vote.

Pairs and votes live in SQLite through `hust_sft.arena`. Each browser keeps a voter id in localStorage
(gr.BrowserState), so a reload re-shows the pair it has not voted on yet, and a second vote is refused.
The id is issued and signed by the server (`hust_sft.voters`): a made-up id is replaced by a fresh one.
Pairs are rate-limited per voter and per client address (`hust_sft.limits`), and answered by sampling with
a secret seed, so /chat's greedy answer to the same question does not reveal which side is which.
"""
from __future__ import annotations

import random
from pathlib import Path

import gradio as gr

from hust_sft import access
from hust_sft import settings as S
from hust_sft.i18n import t
from hust_sft.ui.common import (
    ANSWER_CONCURRENCY,
    ANSWER_QUEUE,
    AppConfig,
    Ctx,
    answer_retrieval,
    df_or_empty,
    error_text,
    gpu,
    lang_of,
    resolve,
    run_dir_of,
    run_picker,
    system_prompt_of,
    tr,
)

CHOICES = ("a", "b", "tie", "both_bad")  # i18n key suffixes and element ids
BACKEND_CHOICE = {"a": "A", "b": "B", "tie": "tie", "both_bad": "both_bad"}


def client_address(request) -> str | None:
    """The address a request came from, as the server sees it (behind a proxy that is not trusted for
    X-Forwarded-For, such as a Space's, every visitor shares the proxy's: the limit is then for all)."""
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or None


def shown(answer: str) -> str:
    """An answer as displayed: without the blank lines a model may start or end with. The database keeps
    the raw text, so what was voted on can be audited exactly."""
    return (answer or "").strip()


def draw_question(config: AppConfig, run_dir: str | None, lang: str, rng: random.Random | None = None) -> str:
    """A random question from the run's held-out test split (its own data settings)."""
    from hust_sft import runs
    from hust_sft.data import load_data

    lang = lang_of(lang)
    folder = run_dir_of(config, run_dir)
    trained = runs.load_settings(folder) if folder else None
    data = (trained or config.default_run_settings()).data
    try:
        test = load_data(data).splits["test"]
    except Exception as e:  # noqa: BLE001 - DataError/DataSourceError: shown, not raised to the page
        raise gr.Error(access.public_text(config, error_text(e, lang))) from None
    if not test:
        raise gr.Error(t("ui.arena.no_test", lang))
    return (rng or random).choice(test).question


def results_frame(db, lang: str):
    """Per adapter: tuned model's win rate over base with its 95% interval, and the vote counts."""
    from hust_sft.arena import Arena

    keys = ("model", "against", "win_rate", "ci", "votes", "tuned_wins", "base_wins", "ties", "both_bad")
    cols = [t(f"ui.arena.col.{k}", lang) for k in keys]
    rows = []
    for r in Arena(db).results():
        pct = (lambda v: None if v is None else round(100 * v, 1))
        ci = "–" if r["win_rate_lo"] is None else f"[{pct(r['win_rate_lo'])}, {pct(r['win_rate_hi'])}]"
        rows.append(dict(zip(cols, [r["tuned_name"], r["base_name"], pct(r["win_rate"]), ci, r["votes"],
                                    r["tuned_wins"], r["base_wins"], r["ties"], r["both_bad"]])))
    return df_or_empty(rows, cols)


def voter_ids(config: AppConfig):
    """The app's signer of voter ids (its secret beside the arena database), made once per app."""
    from hust_sft.voters import VoterIds

    ids = config.extra.get("voter_ids")
    if ids is None:
        ids = config.extra["voter_ids"] = VoterIds.beside(config.arena_db)
    return ids


def arena_rate(config: AppConfig):
    """The app's blind-pair rate limits (hust_sft.limits.ArenaRate), made once per app."""
    from hust_sft.limits import ArenaRate

    rate = config.extra.get("arena_rate")
    if rate is None:
        rate = config.extra["arena_rate"] = ArenaRate()
    return rate


def arm_name(kind: str, adapter, model_id: str) -> str:
    """What a revealed arm is called: "base (model)" or the run's name (`adapter`: an adapters.AdapterRef),
    each with "+retrieval" when it retrieves."""
    from hust_sft.evaluation import RETRIEVAL_SUFFIX

    name = (adapter.label if kind.startswith("tuned") and adapter else
            t("ui.arena.base_name", "en", model=Path(model_id).name))
    return name + (RETRIEVAL_SUFFIX if kind.endswith(RETRIEVAL_SUFFIX) else "")


def new_pair(config: AppConfig, cache, lang: str, voter: str | None, question: str, run_dir: str | None,
             hub_id: str | None, seed: int | None = None, *, address: str | None = None, owner: bool = True,
             reference: str = "base", candidate: str = "tuned"):
    """Answer with two arms (`reference`, `candidate`: two different of "base", "base+retrieval", "tuned",
    "tuned+retrieval", checked here: the API takes any value) and store them as a blind pair for this voter.
    Retrieval arms ask with the passages of the run's index (retrieval.for_answering through
    ui.common.answer_retrieval: a listed run's folder only), the same passages for both sides.

    `voter` is the browser's token; one the server did not sign is replaced by a fresh one. Refused over
    the rate limits (per voter and per client `address`) or, for a visitor, over the question's bound.
    The answers are sampled (settings.arena_generation) with secret seeds unless `seed` is given (tests),
    which then also fixes the side. Returns (voter token, pair id, A, B, status).
    """
    from hust_sft import limits
    from hust_sft.arena import Arena
    from hust_sft.evaluation import ARM_KINDS, RETRIEVAL_SUFFIX

    lang = lang_of(lang)
    token, voter_id = voter_ids(config).resolve(voter)
    question = (question or "").strip()
    if not question:
        raise gr.Error(t("ui.arena.empty_question", lang))
    if reference not in ARM_KINDS or candidate not in ARM_KINDS or reference == candidate:
        raise gr.Error(t("ui.arena.two_arms", lang))
    adapter = resolve(config, run_dir, hub_id, lang)
    if not adapter and any(k.startswith("tuned") for k in (reference, candidate)):
        raise gr.Error(t("ui.arena.need_run", lang))
    try:
        limits.check_text("question", question, limits.QUESTION_MAX_CHARS, owner=owner)
        arena_rate(config).take(voter_id, address)
    except limits.LimitError as e:
        raise gr.Error(e.text(lang)) from None
    model_id = access.base_model_of(config, adapter)
    system_prompt = system_prompt_of(config, run_dir)
    gen = S.arena_generation(config.arena_max_new_tokens)
    msgs = [{"role": "user", "content": question}]
    try:
        found = (answer_retrieval(config, adapter)
                 if any(k.endswith(RETRIEVAL_SUFFIX) for k in (reference, candidate)) else None)

        def answer(kind: str, seed: int | None) -> str:
            tuned, extra = kind.startswith("tuned"), {}
            if kind.endswith(RETRIEVAL_SUFFIX):
                asked = found.ask(question, tuned=tuned)
                tuned, extra = asked.use_adapter, {"passages": asked.passages,
                                                   "passage_max_chars": found.passage_max_chars}
            return cache.answer(model_id, adapter, msgs, system_prompt, gen, use_adapter=tuned, seed=seed, **extra)
        ref_answer = answer(reference, seed)
        cand_answer = answer(candidate, None if seed is None else seed + 1)
        pair = Arena(config.arena_db).create_pair(
            question, ref_answer, cand_answer, base_name=arm_name(reference, adapter, model_id),
            tuned_name=arm_name(candidate, adapter, model_id), adapter=adapter.spec if adapter else "", seed=seed,
            voter=voter_id, base_arm=reference, tuned_arm=candidate)
    except Exception as e:  # noqa: BLE001 - model, adapter, retrieval and database errors are shown, not raised
        raise gr.Error(t("ui.arena.failed", lang, error=access.public_text(config, error_text(e, lang)))) from None
    return token, pair.id, shown(pair.answer_a), shown(pair.answer_b), ""


def vote(config: AppConfig, lang: str, voter: str | None, pair_id: str | None, choice: str):
    """Record a vote; returns (pair id left pending, status markdown revealing identities, results).

    The vote is recorded under the voter id inside `voter` when the server signed it, else under none."""
    from hust_sft.arena import AlreadyVoted, Arena, ArenaError

    lang = lang_of(lang)
    if not pair_id:
        return None, t("ui.arena.no_pair", lang), results_frame(config.arena_db, lang)
    try:
        reveal = Arena(config.arena_db).vote(pair_id, BACKEND_CHOICE[choice], voter_ids(config).verify(voter))
    except AlreadyVoted:
        return None, t("ui.arena.already", lang), results_frame(config.arena_db, lang)
    except ArenaError as e:
        return None, e.text(lang), results_frame(config.arena_db, lang)
    text = t("ui.arena.reveal", lang, a=reveal.name_a, b=reveal.name_b, vote=t(f"ui.arena.vote_{choice}", lang))
    return None, text, results_frame(config.arena_db, lang)


def restore(config: AppConfig, lang: str, voter: str | None):
    """On page load: this browser's voter id (new if none) and the pair it has not voted on yet, if any."""
    from hust_sft.arena import Arena

    lang = lang_of(lang)
    voter, voter_id = voter_ids(config).resolve(voter)
    pair = Arena(config.arena_db).pending_pair(voter_id)
    results = results_frame(config.arena_db, lang)
    if pair is None:
        return voter, None, gr.update(), "", "", "", results
    return (voter, pair.id, pair.question, shown(pair.answer_a), shown(pair.answer_b), t("ui.arena.pending", lang),
            results)


def build(ctx: Ctx) -> None:
    config, texts, cache = ctx.config, ctx.texts, ctx.cache
    voter = ctx.voter  # a gr.BrowserState made by app.py, outside the lazily mounted tabs
    pair_id = gr.State(None)
    texts.make(gr.Markdown, value=tr("ui.arena.intro"))
    with gr.Row():
        picker = run_picker(ctx, "arena", hub_info=False)
    run, hub = picker.run, picker.hub
    from hust_sft.evaluation import ARM_KINDS

    with gr.Row():  # which two arms answer; the voter sees neither name until after the vote
        ref_arm = texts.make(gr.Dropdown, choices=list(ARM_KINDS), value="base", label=tr("ui.arena.arm_1"),
                             elem_id="arena-arm-1")
        cand_arm = texts.make(gr.Dropdown, choices=list(ARM_KINDS), value="tuned", label=tr("ui.arena.arm_2"),
                              elem_id="arena-arm-2")
    with gr.Row():
        question = texts.make(gr.Textbox, label=tr("ui.arena.question"), elem_id="arena-question", scale=4)
        draw = texts.make(gr.Button, value=tr("ui.arena.draw"), scale=1, elem_id="arena-draw")
        new = texts.make(gr.Button, value=tr("ui.arena.new"), variant="primary", scale=1, elem_id="arena-new")
    with gr.Row():
        ans_a = texts.make(gr.Textbox, label=tr("ui.arena.answer_a"), lines=8, interactive=False, elem_id="arena-a")
        ans_b = texts.make(gr.Textbox, label=tr("ui.arena.answer_b"), lines=8, interactive=False, elem_id="arena-b")
    with gr.Row():
        buttons = {c: texts.make(gr.Button, value=tr(f"ui.arena.vote_{c}"), elem_id=f"arena-vote-{c}")
                   for c in CHOICES}
    status = gr.Markdown(elem_id="arena-status")
    texts.make(gr.Markdown, value=tr(lambda lang: "### " + t("ui.arena.results", lang)))
    table = gr.Dataframe(interactive=False, elem_id="arena-results")

    draw.click(lambda r, lang: draw_question(config, r, lang), [run, ctx.lang], question, api_name="arena_draw")

    def do_new(request: gr.Request, profile: gr.OAuthProfile | None, lang_value, v, q, r, h, ref, cand):
        return new_pair(config, cache, lang_value, v, q, r, h, address=client_address(request),
                        owner=access.is_owner(config, profile), reference=ref, candidate=cand)
    new.click(gpu(config, do_new), [ctx.lang, voter, question, run, hub, ref_arm, cand_arm],
              [voter, pair_id, ans_a, ans_b, status], api_name="arena_new", concurrency_id=ANSWER_QUEUE,
              concurrency_limit=ANSWER_CONCURRENCY)
    for choice, btn in buttons.items():
        btn.click(lambda lang_value, v, pid, c=choice: vote(config, lang_value, v, pid, c),
                  [ctx.lang, voter, pair_id], [pair_id, status, table], api_name=f"arena_vote_{choice}")

    def do_results(lang_value):
        return results_frame(config.arena_db, lang_of(lang_value))
    refresh = texts.make(gr.Button, value=tr("ui.refresh"), elem_id="arena-refresh")
    refresh.click(do_results, ctx.lang, table, api_name="arena_results")
    ctx.on_lang(do_results, [], [table])  # its column heads are made on the server, in the language asked

    def do_restore(lang_value, v):
        return restore(config, lang_value, v)
    ctx.on_load(do_restore, [ctx.lang, voter], [voter, pair_id, question, ans_a, ans_b, status, table])
