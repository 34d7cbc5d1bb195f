"""Chat tab: one question, base and tuned answers streamed side by side from one copy of the base weights.

Each side has its own retrieval switch; with it on, the question is asked with the passages retrieval
finds (the run's own index, or one built from the training split: `retrieval.for_answering`), and those
passages are listed under the answer, so a student can check where it came from.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from hust_sft import access, limits
from hust_sft import settings as S
from hust_sft.i18n import LANGS, t
from hust_sft.ui.common import (
    ANSWER_CONCURRENCY,
    ANSWER_QUEUE,
    AppConfig,
    Ctx,
    answer_retrieval,
    error_text,
    gpu,
    lang_of,
    resolve,
    run_defaults,
    run_picker,
    sources_markdown,
    system_prompt_of,
    tr,
    visitor_ranges,
    widget_for,
)

GEN_NAMES = [name for name, _, _ in S.fields_of(S.GenerationSettings)]


def text_of(content: Any) -> str:
    """Chatbot message content (a string, or Gradio 6's list of {"type": "text", "text": ...}) as text."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content.get("text") or ""
    if isinstance(content, (list, tuple)):
        return "".join(text_of(c) for c in content)
    return ""


def history_messages(history: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": text_of(m["content"])} for m in history or []
            if m.get("role") in ("user", "assistant")]


def chat(config: AppConfig, cache, lang: str, question: str, run: str | None, hub_id: str | None,
         system_prompt: str, base_hist: list, tuned_hist: list, gen_values: dict, base_retrieval: bool = False,
         tuned_retrieval: bool = False, *, owner: bool = True, sources: dict | None = None) -> Iterator[tuple]:
    """Yield (base chat, tuned chat, question box, base sources, tuned sources) while the base, then the
    tuned model, write their answers; a side with retrieval on is asked with the retrieved passages.

    `run`: a listed run's name. `owner` False (a visitor of a public Space): settings, question, system
    prompt and history are held to the public limits (hust_sft.limits) before anything is generated.
    `sources`: filled with {lang: (base sources, tuned sources)} in every language, for the language switch.

    A failure after the first yield puts the page back as it was before the question (the question in its
    box, the chats without the unanswered turn) and then raises the one gr.Error the page shows."""
    prior = (list(base_hist or []), list(tuned_hist or []))
    try:
        yield from _chat(config, cache, lang, question, run, hub_id, system_prompt, base_hist, tuned_hist,
                         gen_values, base_retrieval, tuned_retrieval, owner=owner, sources=sources)
    except gr.Error:
        yield prior[0], prior[1], question, "", ""
        raise


def _chat(config: AppConfig, cache, lang: str, question: str, run: str | None, hub_id: str | None,
          system_prompt: str, base_hist: list, tuned_hist: list, gen_values: dict, base_retrieval: bool,
          tuned_retrieval: bool, *, owner: bool, sources: dict | None) -> Iterator[tuple]:
    lang = lang_of(lang)
    question = (question or "").strip()
    if not question:
        raise gr.Error(t("ui.chat.empty_question", lang))
    try:
        gen = limits.enforce_public(S.set_values(S.GenerationSettings(), gen_values), owner=owner)
        base_prior, tuned_prior = history_messages(base_hist), history_messages(tuned_hist)
        for prior in (base_prior, tuned_prior):
            limits.check_chat(question, system_prompt, prior, owner=owner)
    except (S.SettingsError, limits.LimitError) as e:
        raise gr.Error(error_text(e, lang)) from None
    adapter = resolve(config, run, hub_id, lang)
    model_id = access.base_model_of(config, adapter)
    system_prompt = system_prompt or system_prompt_of(config, run)
    base_msgs = base_prior + [{"role": "user", "content": question}]
    tuned_msgs = tuned_prior + [{"role": "user", "content": question}]
    base_retrieval, tuned_retrieval = bool(base_retrieval), bool(tuned_retrieval) and adapter is not None
    try:
        found = answer_retrieval(config, adapter) if base_retrieval or tuned_retrieval else None
    except Exception as e:  # noqa: BLE001 - RetrievalError (a run's index missing), data errors
        raise gr.Error(t("ui.chat.failed", lang, error=access.public_text(config, error_text(e, lang)))) from None
    base_asked = found.ask(question, tuned=False) if base_retrieval else None
    tuned_asked = found.ask(question, tuned=True) if tuned_retrieval else None
    extra = {"passage_max_chars": found.passage_max_chars} if found else {}
    base_src, tuned_src = sources_markdown(base_asked, lang), sources_markdown(tuned_asked, lang)
    if sources is not None:
        sources.update({code: (sources_markdown(base_asked, code), sources_markdown(tuned_asked, code))
                        for code in LANGS})
    base_hist = base_msgs + [{"role": "assistant", "content": "…"}]
    tuned_hist = tuned_msgs + [{"role": "assistant", "content": "…" if adapter else t("ui.chat.no_adapter", lang)}]
    yield base_hist, tuned_hist, "", base_src, tuned_src
    try:
        for text in cache.stream(model_id, adapter, base_msgs, system_prompt, gen, use_adapter=False,
                                 passages=None if base_asked is None else base_asked.passages, **extra):
            base_hist[-1] = {"role": "assistant", "content": text}
            yield base_hist, tuned_hist, "", base_src, tuned_src
        if adapter:
            for text in cache.stream(model_id, adapter, tuned_msgs, system_prompt, gen,
                                     use_adapter=tuned_asked is None or tuned_asked.use_adapter,
                                     passages=None if tuned_asked is None else tuned_asked.passages, **extra):
                tuned_hist[-1] = {"role": "assistant", "content": text}
                yield base_hist, tuned_hist, "", base_src, tuned_src
    except Exception as e:  # noqa: BLE001 - model/adapter loading errors of every library end up here
        raise gr.Error(t("ui.chat.failed", lang, error=access.public_text(config, error_text(e, lang)))) from None


def clear_chat() -> tuple:
    """Clear's outputs: both chats, both source lists and the kept sources emptied."""
    return [], [], "", "", {}


def run_changed(config: AppConfig, run: str | None) -> tuple[str, bool, bool]:
    """(system prompt, base retrieval switch, tuned retrieval switch) for a run just picked: its training
    prompt, and retrieval on for both sides when it trained with retrieval (it learnt to read passages; base
    beside it compares like with like: README, both score higher on facts with retrieval)."""
    system_prompt, mode = run_defaults(config, run)
    return system_prompt, mode != "off", mode != "off"


def build(ctx: Ctx) -> None:
    config, texts, cache = ctx.config, ctx.texts, ctx.cache
    gen_defaults = S.GenerationSettings()
    with gr.Row():
        picker = run_picker(ctx, "chat", info="ui.chat.run_help", placeholder="owner/hust-sft-lora",
                            refresh_api="chat_runs", value=None)
    run, hub = picker.run, picker.hub
    system = widget_for("system_prompt", _field("system_prompt"), str, system_prompt_of(config, None), texts)
    with gr.Row():
        with gr.Column():
            base_bot = texts.make(gr.Chatbot, label=tr("ui.chat.base"), height=380, elem_id="chat-base")
            base_rag = texts.make(gr.Checkbox, value=False, label=tr("ui.chat.retrieval"),
                                  info=tr("ui.chat.retrieval_help"), elem_id="chat-base-retrieval")
            base_src = gr.Markdown(elem_id="chat-base-sources")
        with gr.Column():
            tuned_bot = texts.make(gr.Chatbot, label=tr("ui.chat.tuned"), height=380, elem_id="chat-tuned")
            tuned_rag = texts.make(gr.Checkbox, value=False, label=tr("ui.chat.retrieval"),
                                   info=tr("ui.chat.retrieval_help"), elem_id="chat-tuned-retrieval")
            tuned_src = gr.Markdown(elem_id="chat-tuned-sources")
    with gr.Row():
        question = texts.make(gr.Textbox, label=tr("ui.chat.question"), placeholder=tr("ui.chat.placeholder"),
                              elem_id="chat-question", scale=4)
        send = texts.make(gr.Button, value=tr("ui.chat.send"), variant="primary", scale=1, elem_id="chat-send")
        clear = texts.make(gr.Button, value=tr("ui.chat.clear"), scale=1, elem_id="chat-clear")
    with texts.make(gr.Accordion, label=tr("ui.chat.generation"), open=False):
        with gr.Row():
            gen_widgets = [widget_for(name, f, tp, getattr(gen_defaults, name), texts)
                           for name, f, tp in S.fields_of(S.GenerationSettings)]

    bounded = dict(zip(GEN_NAMES, gen_widgets))
    bounded = {n: w for n, w in bounded.items() if n in limits.public_maxima(S.GenerationSettings)}

    def on_load(profile: gr.OAuthProfile | None):
        return visitor_ranges(config, profile, bounded, S.GenerationSettings)
    ctx.on_load(on_load, [], list(bounded.values()))
    run.change(lambda r: run_changed(config, r), run, [system, base_rag, tuned_rag], api_name=False)

    # The retrieval switches come last, so /chat keeps its earlier parameters in their places.
    # The sources of the last answer in every language (a gr.State: not part of /chat's API), so the zh/en
    # switch re-renders them instead of leaving them in the language they were asked in.
    shown_sources = gr.State({})

    def do_chat(profile: gr.OAuthProfile | None, lang_value, q, r, h, sp, bh, th, *rest) -> Iterator[tuple]:
        gen_vals, (b_rag, t_rag) = rest[:len(GEN_NAMES)], rest[len(GEN_NAMES):]
        kept: dict = {}
        for out in chat(config, cache, lang_value, q, r, h, sp, bh, th, dict(zip(GEN_NAMES, gen_vals)),
                        bool(b_rag), bool(t_rag), owner=access.is_owner(config, profile), sources=kept):
            yield (*out, dict(kept))
    inputs = [ctx.lang, question, run, hub, system, base_bot, tuned_bot, *gen_widgets, base_rag, tuned_rag]
    outputs = [base_bot, tuned_bot, question, base_src, tuned_src, shown_sources]
    fn = gpu(config, do_chat)
    # Chat and blind pairs share one queue group, evaluations have their own (limits.py, app.py): a long
    # evaluation never takes the workers a chat needs, and the model lock lets them interleave per batch.
    # A failed answer raises one gr.Error: its toast is the message. Gradio 6.31 also stamps "Error" on every
    # component the event shows its progress on, show_progress="hidden" or not, so that is the one output
    # never drawn: the kept-sources State. The "…" bubbles show the wait.
    quiet = {"concurrency_id": ANSWER_QUEUE, "concurrency_limit": ANSWER_CONCURRENCY, "show_progress": "hidden",
             "show_progress_on": [shown_sources]}
    asked = [send.click(fn, inputs, outputs, api_name="chat", **quiet),
             question.submit(fn, inputs, outputs, api_name=False, **quiet)]
    # Clear cancels an answer still streaming: its next chunk would otherwise be drawn over the cleared
    # chats (Gradio streams diffs), and a second question then showed the first one again.
    clear.click(clear_chat, None, [base_bot, tuned_bot, base_src, tuned_src, shown_sources], api_name=False,
                cancels=asked)
    ctx.on_lang(lambda lang_value, kept: tuple((kept or {}).get(lang_of(lang_value), ("", ""))),
                [shown_sources], [base_src, tuned_src])


def _field(name: str):
    return next(f for n, f, _ in S.fields_of(S.DataSettings) if n == name)
