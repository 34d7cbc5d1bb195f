"""What every tab shares: the app's configuration, the zh/en switch, the public-Space lock and ZeroGPU.

The language switch works by registering every translatable property of every component here
(`Texts`); switching language returns one `gr.update` per registered component. Gradio's own `gr.I18n`
follows the browser locale instead of a switch and would put a second string table beside
`hust_sft.i18n`, so it is not used.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from hust_sft import access, runs
from hust_sft import settings as S
from hust_sft.i18n import DEFAULT_LANG, LANGS, field_help, field_label, t

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEMO_ARENA_MAX_NEW_TOKENS = 32  # the demo model's answers are noise: short blind pairs keep the demo quick
SAMPLE_DATA = ASSETS / "sample_handbook.jsonl"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class AppConfig:
    """Where runs live, which model/data are the defaults, and who may train (read from the environment)."""
    runs_dir: Path = Path("runs")
    demo: bool = False
    model: str = S.DEFAULT_MODEL
    data: str = S.DEFAULT_DATA
    space_id: str | None = None
    space_owner: str | None = None
    oauth_trusted: bool = False  # SYSTEM=spaces: Gradio's login is the Hub's real OAuth (hust_sft.access)
    open_training: bool = False
    zero_gpu: bool = False
    max_file_size: str = "50mb"
    arena_path: Path | None = None  # None: hust_sft.arena's default (the Space's persistent /data)
    public_dir: Path | None = None  # the only app folder pages link files from (hust_sft.access.public_dir)
    hub_token: str | None = field(default=None, repr=False)  # the owner's HF_TOKEN once sealed (access.seal_token)
    arena_max_new_tokens: int | None = None  # None: the chat default; the demo's noise model answers short
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, *, runs_dir: str | Path | None = None, demo: bool | None = None) -> AppConfig:
        demo = _env_flag("HUST_SFT_DEMO") if demo is None else demo
        cfg = cls(
            # HUST_SFT_RUNS, else /data/runs on a Space with persistent storage (kept across restarts), else runs
            runs_dir=Path(runs_dir) if runs_dir else runs.default_runs_dir(),
            demo=demo,
            space_id=os.environ.get("SPACE_ID") or None,
            space_owner=os.environ.get("SPACE_AUTHOR_NAME") or None,
            oauth_trusted=access.oauth_trusted(),
            open_training=_env_flag("HUST_SFT_OPEN_TRAINING"),
            zero_gpu=_env_flag("SPACES_ZERO_GPU"),
            max_file_size=os.environ.get("HUST_SFT_MAX_UPLOAD", "50mb"),
        )
        if demo:
            from hust_sft import demo_model

            cfg.model = str(demo_model.build(demo_model.default_dir()))
            cfg.data = str(SAMPLE_DATA)
            cfg.arena_max_new_tokens = DEMO_ARENA_MAX_NEW_TOKENS
        return cfg

    @property
    def arena_db(self) -> Path:
        from hust_sft.arena import default_db_path

        return self.arena_path or default_db_path()

    def default_run_settings(self) -> S.RunSettings:
        """The dataclass defaults, except model/data in demo mode and the runs directory of this app."""
        rs = S.RunSettings()
        rs.model.model, rs.data.data, rs.train.runs_dir = self.model, self.data, str(self.runs_dir)
        return rs


def training_lock(config: AppConfig, profile: Any, lang: str) -> str | None:
    """Why Train/Publish are locked for this visitor, or None (decided by `hust_sft.access`)."""
    return access.lock_reason(config, profile, lang)


# Gradio queue groups (concurrency_id) and their worker counts. Chat and blind pairs answer in seconds,
# an evaluation for minutes: separate groups, so evaluations never occupy the workers chats need (the
# model lock then lets them take turns per batch, see hust_sft.serving).
ANSWER_QUEUE, ANSWER_CONCURRENCY = "answer", 2
EVAL_QUEUE, EVAL_CONCURRENCY = "evaluate", 1


def is_owner(config: AppConfig, profile: Any) -> bool:
    """Whether this request may use the full ranges of every setting (hust_sft.limits); decided by
    `hust_sft.access` (real OAuth only)."""
    return access.is_owner(config, profile)


def gpu(config: AppConfig, fn: Callable, duration: int = 120) -> Callable:
    """`spaces.GPU(fn)` on a ZeroGPU Space (the GPU is attached only while `fn` runs), else `fn` itself."""
    if not config.zero_gpu:
        return fn
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=duration)(fn)


def lang_of(value: str | None) -> str:
    return value if value in LANGS else DEFAULT_LANG


class Texts:
    """Registry of translatable component properties; `updates(lang)` re-labels the whole page."""

    def __init__(self):
        self._items: list[tuple[gr.components.Component | gr.blocks.Block, dict[str, Callable[[str], Any]]]] = []

    def add(self, comp, **keys: str | Callable[[str], Any]):
        """Register `comp`; each keyword is a property (label, info, value, placeholder, choices) and
        either an i18n key or a function of the language. Returns `comp` for inline use."""
        props = {p: (k if callable(k) else (lambda lang, k=k: t(k, lang))) for p, k in keys.items()}
        self._items.append((comp, props))
        return comp

    def field(self, comp, name: str, **extra):
        return self.add(comp, label=lambda lang: field_label(name, lang),
                        info=lambda lang: field_help(name, lang), **extra)

    @property
    def components(self) -> list:
        return [c for c, _ in self._items]

    def updates(self, lang: str) -> list:
        lang = lang_of(lang)
        return [gr.update(**{p: f(lang) for p, f in props.items()}) for _, props in self._items]


@dataclass
class Ctx:
    """Handed to each tab's `build`: the config, the language radio, the text registry and the model cache."""
    config: AppConfig
    lang: gr.components.Component
    texts: Texts
    cache: Any  # hust_sft.serving.ModelCache
    shared: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# Settings widgets generated from the dataclasses, so the UI's defaults are train.py's by construction.

SLIDER_MAX_STEPS = 2000  # beyond this many slider positions a number box is easier to use


def widget_for(name: str, f: dataclasses.Field, tp, default: Any, lang: str, texts: Texts):
    """One Gradio input for one settings field, labelled and explained from the i18n table."""
    meta = f.metadata
    base = S._base_type(tp)
    common = dict(label=field_label(name, lang), info=field_help(name, lang), value=default,
                  elem_id=f"setting-{name}")
    if base is bool:
        comp = gr.Checkbox(**common)
    elif meta.get("choices"):
        comp = gr.Dropdown(choices=list(meta["choices"]), **common)
    elif base in (int, float):
        lo, hi, step = meta.get("min"), meta.get("max"), meta.get("step")
        bounded = lo is not None and hi is not None and step
        if bounded and (hi - lo) / step <= SLIDER_MAX_STEPS:
            comp = gr.Slider(minimum=lo, maximum=hi, step=step, **common)
        else:
            comp = gr.Number(minimum=lo, maximum=hi, precision=0 if base is int else None,
                             step=step or (1 if base is int else None), **common)
    elif base is list:
        comp = gr.Dropdown(choices=[], multiselect=True, allow_custom_value=True, **common)
    else:
        comp = gr.Textbox(lines=3 if name == "system_prompt" else 1,
                          **{**common, "value": "" if default is None else default})
    texts.field(comp, name)
    return comp


def visitor_ranges(config: AppConfig, profile: Any, widgets: dict[str, Any], cls) -> list:
    """On page load: one update per widget in `widgets` ({setting name: widget}) that shows a visitor of a
    public Space each setting's public maximum (and it as the value where the default is unbounded or
    larger, e.g. `limit`); no change for the owner or off a Space.

    Only the visitor's page is narrowed: the widgets are built with the full ranges, so an API call over a
    public maximum reaches `hust_sft.limits` and gets its named error, and the owner's API calls keep the
    full ranges. (Gradio checks a session's values against that session's widget maxima.)
    """
    if is_owner(config, profile):
        return [gr.update() for _ in widgets]
    fields = {n: f for n, f, _ in S.fields_of(cls)}
    updates = []
    for name in widgets:
        top, default = fields[name].metadata.get("public_max"), S.get_value(cls(), name)
        if top is None:
            updates.append(gr.update())
        elif default is None or default > top:
            updates.append(gr.update(maximum=top, value=top))
        else:
            updates.append(gr.update(maximum=top))
    return updates


def settings_from(cls_or_obj, names: list[str], values: list[Any]):
    """Widget values → a settings object via `settings.set_values` (raises SettingsError on bad input)."""
    obj = cls_or_obj() if isinstance(cls_or_obj, type) else cls_or_obj
    return S.set_values(obj, dict(zip(names, values)))


def df_or_empty(rows: list[dict], columns: list[str]):
    import pandas as pd

    return pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)


def error_text(e: BaseException, lang: str) -> str:
    """A backend error in the page's language: their errors carry an i18n key and `.text(lang)`."""
    text = getattr(e, "text", None)
    if callable(text):
        try:
            return text(lang)
        except TypeError:
            pass
    return str(e)
