"""Publish tab: push a run's adapter (+ model card) to the Hub with the visitor's OAuth token or HF_TOKEN.

The token is passed straight to `hust_sft.hub.publish`; it is never put in a component, a message or a log.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from hust_sft import access, runs
from hust_sft.i18n import DEFAULT_LANG, t
from hust_sft.ui.common import AppConfig, Ctx, lang_of, run_dir_of, run_picker, tr, training_lock


def publish_run(config: AppConfig, profile: Any, oauth_token: Any, lang: str, run: str | None,
                repo_id: str, private: bool, merged: bool = False, cache: Any = None) -> str:
    """Markdown saying where the adapter (or merged model) went and how its export check came out, or exactly
    why it did not go (a failed export check included). `run`: a listed run's name."""
    from hust_sft import hub

    lang = lang_of(lang)
    lock = training_lock(config, profile, lang)
    if lock:
        return lock
    run_dir = run_dir_of(config, run)
    if not run_dir or not runs.has_adapter(run_dir):
        return t("ui.publish.no_run", lang)
    token = None
    try:
        repo_id = hub.validate_repo_id(repo_id, default_owner=getattr(profile, "username", None))
        token = access.owner_token(config, profile, oauth_token)
        url = hub.publish(run_dir, repo_id, token, private=bool(private), lang=lang, merged=bool(merged),
                          cache=cache)
    except hub.HubError as e:
        return t("ui.publish.failed", lang, error=hub.scrub(e.text(lang), token))
    except Exception as e:  # noqa: BLE001 - anything else from the Hub client: shown, never raised to the page
        return t("ui.publish.failed", lang, error=hub.scrub(f"{type(e).__name__}: {e}", token))
    check = getattr(url, "check", None)
    if check is None:
        return t("ui.publish.done", lang, url=url)
    return t("ui.publish.done_checked", lang, url=url, identical=check.identical, total=check.total)


def suggested_repo(profile: Any, run_dir: str | None) -> str:
    user = getattr(profile, "username", None)
    name = f"hust-sft-{runs.sanitize_run_name(run_dir.rstrip('/').split('/')[-1])}" if run_dir else "hust-sft-lora"
    return f"{user}/{name}" if user else name


def build(ctx: Ctx) -> None:
    config, texts = ctx.config, ctx.texts
    lock_md = gr.Markdown(visible=False, elem_id="publish-lock")
    texts.make(gr.Markdown, value=tr("ui.publish.intro"))
    if config.space_id and config.oauth_trusted:
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

    def do_publish(profile: gr.OAuthProfile | None, oauth_token: gr.OAuthToken | None, lang_value, r, repo_id,
                   priv, merge):
        return publish_run(config, profile, oauth_token, lang_value, r, repo_id, priv, merge, ctx.cache)
    go.click(do_publish, [ctx.lang, run, repo, private, merged], result, api_name="publish")

    def on_run(profile: gr.OAuthProfile | None, r):
        return suggested_repo(profile, r)
    run.change(on_run, run, repo, api_name=False)

    def on_load(profile: gr.OAuthProfile | None, lang_value):
        reason = training_lock(config, profile, lang_of(lang_value))
        return gr.update(value=reason or "", visible=bool(reason)), gr.update(interactive=reason is None)
    ctx.on_load(on_load, [ctx.lang], [lock_md, go])
