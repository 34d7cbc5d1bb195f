"""Publish tab: push a run's adapter (+ model card) to the Hub with the visitor's OAuth token or HF_TOKEN.

The token is passed straight to `hust_sft.hub.publish`; it is never put in a component, a message or a log.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from hust_sft import access, runs
from hust_sft.i18n import DEFAULT_LANG, LANGS, t
from hust_sft.ui.common import AppConfig, Ctx, lang_of, run_dir_of, run_picker, tr, training_lock


def publish_run(config: AppConfig, profile: Any, oauth_token: Any, lang: str, run: str | None,
                repo_id: str, private: bool, merged: bool = False, cache: Any = None, said: dict | None = None) -> str:
    """Markdown saying where the adapter (or merged model) went and how its export check came out, or exactly
    why it did not go (a failed export check included). `run`: a listed run's name. `said`: filled with the
    message in every language (the push is made once; the language switch shows the message again)."""
    lang = lang_of(lang)
    message = _publish(config, profile, oauth_token, lang, run, repo_id, private, merged, cache)
    texts = {code: message(code) for code in LANGS}
    if said is not None:
        said.update(texts)
    return texts[lang]


def _publish(config: AppConfig, profile: Any, oauth_token: Any, lang: str, run: str | None, repo_id: str,
             private: bool, merged: bool, cache: Any):
    """One publish attempt; its message as a function of the language (the token is used and scrubbed here,
    never kept in what is returned)."""
    from hust_sft import hub

    if training_lock(config, profile, lang):
        return lambda code: training_lock(config, profile, code)
    run_dir = run_dir_of(config, run)
    if not run_dir or not runs.has_adapter(run_dir):
        return lambda code: t("ui.publish.no_run", code)
    token = None
    try:
        repo_id = hub.validate_repo_id(repo_id, default_owner=getattr(profile, "username", None))
        token = access.owner_token(config, profile, oauth_token)
        url = hub.publish(run_dir, repo_id, token, private=bool(private), lang=lang, merged=bool(merged),
                          cache=cache)
    except hub.HubError as e:
        if getattr(e, "key", None) == "hub.error.no_token" and not has_login(config):  # no button to point at
            return lambda code: t("ui.publish.failed", code, error=t("hub.error.no_token_local", code))
        errors = {code: hub.scrub(e.text(code), token) for code in LANGS}
        return lambda code: t("ui.publish.failed", code, error=errors[code])
    except Exception as e:  # noqa: BLE001 - anything else from the Hub client: shown, never raised to the page
        error = hub.scrub(f"{type(e).__name__}: {e}", token)
        return lambda code: t("ui.publish.failed", code, error=error)
    check = getattr(url, "check", None)
    if check is None:
        return lambda code: t("ui.publish.done", code, url=url)
    return lambda code: t("ui.publish.done_checked", code, url=url, identical=check.identical, total=check.total)


def has_login(config: AppConfig) -> bool:
    """Whether the tab shows a sign-in button: only on a real Space (see `build`)."""
    return bool(config.space_id and config.oauth_trusted)


def suggested_repo(profile: Any, run_dir: str | None) -> str:
    user = getattr(profile, "username", None)
    name = f"hust-sft-{runs.sanitize_run_name(run_dir.rstrip('/').split('/')[-1])}" if run_dir else "hust-sft-lora"
    return f"{user}/{name}" if user else name


def build(ctx: Ctx) -> None:
    config, texts = ctx.config, ctx.texts
    lock_md = gr.Markdown(visible=False, elem_id="publish-lock")
    login = has_login(config)
    # Off a Space there is no button to sign in with: the intro says to set HF_TOKEN instead.
    texts.make(gr.Markdown, value=tr("ui.publish.intro" if login else "ui.publish.intro_local"),
               elem_id="publish-intro")
    if login:
        # Only on a real Space (SYSTEM=spaces, hust_sft.access): elsewhere Gradio mocks OAuth with the
        # machine's own HF login (signing anyone in as that user) and refuses to start without one; off a
        # Space the HF_TOKEN environment variable is used instead. Labels are fixed at
        # build time: Gradio's JS rewrites this button's text on login.
        gr.LoginButton(value=t("ui.publish.login", DEFAULT_LANG), logout_value=t("ui.publish.logout", DEFAULT_LANG),
                       elem_id="publish-login")
    with gr.Row():
        run = run_picker(ctx, "publish", hub=False, scale=None).run
        repo = texts.make(gr.Textbox, label=tr("ui.publish.repo"), info=tr("ui.publish.repo_help"),
                          elem_id="publish-repo")
        private = texts.make(gr.Checkbox, value=True, label=tr("ui.publish.private"))
        merged = texts.make(gr.Checkbox, value=False, label=tr("ui.publish.merged"), info=tr("ui.publish.merged_help"),
                            elem_id="publish-merged")
    go = texts.make(gr.Button, value=tr("ui.publish.go"), variant="primary", elem_id="publish-go")
    result = gr.Markdown(elem_id="publish-result")

    # The last result in every language (a gr.State, not part of /publish's API; never the token): the
    # zh/en switch shows it in the new language instead of leaving it in the one it was made in.
    said = gr.State({})

    def do_publish(profile: gr.OAuthProfile | None, oauth_token: gr.OAuthToken | None, lang_value, r, repo_id,
                   priv, merge):
        kept: dict = {}
        text = publish_run(config, profile, oauth_token, lang_value, r, repo_id, priv, merge, ctx.cache, said=kept)
        return text, kept
    go.click(do_publish, [ctx.lang, run, repo, private, merged], [result, said], api_name="publish")
    ctx.on_lang(lambda lang_value, kept: (kept or {}).get(lang_of(lang_value), gr.skip()), [said], [result])

    def on_run(profile: gr.OAuthProfile | None, r):
        return suggested_repo(profile, r)
    run.change(on_run, run, repo, api_name=False)

    def on_load(profile: gr.OAuthProfile | None, lang_value):
        reason = training_lock(config, profile, lang_of(lang_value))
        return gr.update(value=reason or "", visible=bool(reason)), gr.update(interactive=reason is None)
    ctx.on_load(on_load, [ctx.lang], [lock_md, go])
