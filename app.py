"""The hust-sft Space: Train, Chat, Evaluate, Blind A/B and Publish tabs over the same package as the CLIs.

    python app.py [--demo] [--model DIR] [--host 0.0.0.0] [--port 7860] [--share] [--runs runs]

`--demo` (or HUST_SFT_DEMO=1) swaps in a tiny random-weight model and the bundled sample handbook, so the
whole page works offline; a banner says so.
"""
from __future__ import annotations

import argparse
import os

import gradio as gr

from hust_sft import access, limits
from hust_sft.i18n import DEFAULT_LANG, t
from hust_sft.serving import ModelCache
from hust_sft.ui import arena, chat, evaluate, publish, train
from hust_sft.ui.common import AppConfig, Ctx, Texts, lang_of, tr

TABS = [("train", train), ("chat", chat), ("evaluate", evaluate), ("arena", arena), ("publish", publish)]


def build_app(config: AppConfig | None = None) -> gr.Blocks:
    config = config or AppConfig.from_env()
    config.runs_dir.mkdir(parents=True, exist_ok=True)
    access.seal_token(config)  # on a Space: HF_TOKEN leaves the environment; only owner actions get it
    texts = Texts()
    with gr.Blocks(title=t("ui.title", "en")) as demo:
        with gr.Row():
            texts.make(gr.Markdown, value=tr(lambda lang: f"# {t('ui.title', lang)}\n{t('ui.subtitle', lang)}"))
            lang = gr.Radio([("中文", "zh"), ("English", "en")], value=DEFAULT_LANG, show_label=False, scale=0,
                            min_width=180, elem_id="lang-switch")
        if config.demo:
            texts.make(gr.Markdown, value=tr("ui.demo_banner"), elem_id="demo-banner")
        # Outside the tabs on purpose: Gradio mounts a tab's components only when it is first opened, and a
        # BrowserState reads/writes localStorage only while mounted. It holds a voter id the server signed
        # (hust_sft.voters; Gradio's `secret` only obfuscates), so a fixed key keeps it across restarts.
        voter = gr.BrowserState(None, storage_key="hust-sft-voter", secret="hust-sft-voter-id")
        ctx = Ctx(config=config, lang=lang, texts=texts, cache=ModelCache(hub_token=access.read_token(config)),
                  voter=voter)
        for key, module in TABS:
            with texts.make(gr.Tab, label=tr(f"ui.tab.{key}"), id=key, elem_id=f"tab-{key}"):
                module.build(ctx)
        comps = texts.components
        lang.change(lambda l: texts.updates(lang_of(l)), lang, comps, api_name=False, queue=False)
        for fn, inputs, outputs in ctx.lang_changes:
            lang.change(fn, [lang, *inputs], outputs, api_name=False, queue=False)
        for fn, inputs, outputs in ctx.loads:
            demo.load(fn, inputs, outputs, api_name=False)
    demo.hust_config = config  # for tests and launch()
    return demo


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="hust-sft Space")
    p.add_argument("--demo", action="store_true", help="offline demo: tiny random model + sample data")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    p.add_argument("--share", action="store_true")
    p.add_argument("--runs", default=None, help="runs directory (default: runs, or HUST_SFT_RUNS)")
    p.add_argument("--model", default=None, help="base model: a Hub id or a model folder on this machine "
                   "(default: Qwen/Qwen2.5-0.5B-Instruct; the demo's tiny model with --demo)")
    args = p.parse_args(argv)
    config = AppConfig.from_env(runs_dir=args.runs, demo=True if args.demo else None)
    if args.model:  # e.g. a folder copied to a machine that cannot reach the Hub
        config.model = args.model
    demo = build_app(config)
    # No allowed_paths: nothing under the runs folder is served. Files a page shows (an evaluation's CSV)
    # are copied to the app's public temp folder first (hust_sft.access.publish_file).
    # max_size: requests waiting beyond it are turned away ("Queue is full") instead of piling up; chat and
    # evaluation have their own queue groups (hust_sft.ui.common.ANSWER_QUEUE / EVAL_QUEUE).
    demo.queue(default_concurrency_limit=2, max_size=limits.queue_max_size()).launch(
        server_name=args.host, server_port=args.port, share=args.share, max_file_size=config.max_file_size,
        footer_links=["api", "gradio"])


if __name__ == "__main__":
    main()
