"""What every tab shares: the app's configuration, the zh/en switch, the run picker, the public-Space lock
and ZeroGPU.

The language switch works by registering every translatable property of every component here
(`Texts.make`, each i18n key named once); switching language returns one `gr.update` per registered
component. Why not Gradio's own `gr.I18n`: see `Texts`.
"""
from __future__ import annotations

import dataclasses
import functools
import html
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from hust_sft import access, runs
from hust_sft import settings as S
from hust_sft.adapters import AdapterError
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

            cfg.model = str(demo_model.build_demo())
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


@dataclass(frozen=True)
class tr:  # noqa: N801 - used like Gradio's `i18n("key")` marker, so lower case reads as in its docs
    """A translated property for `Texts.make`: `label=tr("ui.chat.run")` names the i18n key once (as Gradio's
    `label=i18n("key")`), `value=tr(lambda lang: ...)` builds text from several strings."""
    key: str | Callable[[str], Any]

    def __call__(self, lang: str) -> Any:
        return self.key(lang) if callable(self.key) else t(self.key, lang)


class Texts:
    """Registry of translatable component properties; `updates(lang)` re-labels the whole page.

    Hand-written rather than Gradio's `gr.I18n` (label=i18n("key")) on purpose: gr.I18n translates in the
    browser from the browser's locale, for static text only. The page has a zh/en switch whose value every
    handler receives, and most text is made on the server in that language (tables, reports, errors,
    markdown built from several strings); gr.I18n would add a second, disagreeing language choice and a
    copy of `hust_sft.i18n`'s tables. `make` takes each key once, in the style of Gradio's i18n.
    """

    def __init__(self):
        self._items: list[tuple[gr.components.Component | gr.blocks.Block, dict[str, Callable[[str], Any]]]] = []

    def make(self, cls, /, **props):
        """`cls(**props)` with each `tr(...)` property in the default language, registered for the switch:
        `texts.make(gr.Button, value=tr("ui.train.start"), variant="primary")`."""
        comp = cls(**{p: v(DEFAULT_LANG) if isinstance(v, tr) else v for p, v in props.items()})
        self._items.append((comp, {p: v for p, v in props.items() if isinstance(v, tr)}))
        return comp

    def add(self, comp, **keys: str | Callable[[str], Any]):
        """Register a component built elsewhere; each keyword is a property and an i18n key or a function of
        the language. Returns `comp`. (Tabs use `make`, which builds and registers with the key once.)"""
        self._items.append((comp, {p: tr(k) for p, k in keys.items()}))
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


def as_outputs(updates: list):
    """A handler's return value for one update per output component: Gradio hands a single output the
    value as it is (a one-item list would be taken as the value), several outputs a list."""
    return updates[0] if len(updates) == 1 else updates


@dataclass
class Ctx:
    """Handed to each tab's `build`: the config, the language radio, the text registry, the model cache, the
    voter id (a gr.BrowserState app.py makes outside the lazily mounted tabs) and what a page load runs."""
    config: AppConfig
    lang: gr.components.Component
    texts: Texts
    cache: Any  # hust_sft.serving.ModelCache
    voter: Any = None
    loads: list[tuple[Callable, list, list]] = field(default_factory=list)
    run_dropdowns: list = field(default_factory=list)  # every run_picker's dropdown, re-listed by one load

    lang_changes: list[tuple[Callable, list, list]] = field(default_factory=list)

    def on_load(self, fn: Callable, inputs: list, outputs: list) -> None:
        """Run `fn(*inputs) -> outputs` on every page load (app.py wires them after all tabs)."""
        self.loads.append((fn, inputs, outputs))

    def on_lang(self, fn: Callable, inputs: list, outputs: list) -> None:
        """Run `fn(lang, *inputs) -> outputs` when the zh/en switch changes: for text made on the server from
        a result (an answer's sources, an evaluation, Publish's message), which `Texts` cannot re-label."""
        self.lang_changes.append((fn, inputs, outputs))


# ---------------------------------------------------------------------------------------------------
# Picking a run (Chat, Evaluate, Blind A/B, Publish): listed runs by name, or an adapter on the Hub.

def adapter_choices(config: AppConfig) -> list[tuple[str, str]]:
    """(name, name) of every run that has a saved adapter, newest first: runs are picked by name only."""
    return [(name, name) for name in access.listed_runs(config)]


def resolve(config: AppConfig, run: str | None, hub_id: str | None, lang: str):
    """The AdapterRef of the run dropdown / Hub id box (a typed Hub id wins), or None; gr.Error if refused."""
    try:
        return access.resolve_adapter(config, run, hub_id)
    except (access.AccessError, AdapterError) as e:
        raise gr.Error(e.text(lang)) from None


def run_dir_of(config: AppConfig, run: str | None) -> Path | None:
    """The folder of a listed run picked by name, else None."""
    return access.listed_runs(config).get((run or "").strip()) if run else None


def _trained(run_dir: Path | None) -> S.RunSettings | None:
    """A run's settings; None without a run, or for one whose settings are unreadable or no longer valid."""
    if not run_dir:
        return None
    try:
        return runs.load_settings(run_dir)
    except (runs.RunFileError, S.SettingsError):
        return None


def _system_prompt(config: AppConfig, trained: S.RunSettings | None) -> str:
    if trained is not None and trained.data.system_prompt:
        return trained.data.system_prompt
    return config.default_run_settings().data.system_prompt


def _retrieval_mode(trained: S.RunSettings | None) -> str:
    return trained.retrieval.retrieval if trained is not None else "off"


def system_prompt_of(config: AppConfig, run: str | None) -> str:
    """The system prompt a run was trained with (chat must ask the way training taught), else the default."""
    return _system_prompt(config, _trained(run_dir_of(config, run)))


def run_retrieval_mode(config: AppConfig, run: str | None) -> str:
    """A listed run's `retrieval` setting ("off", "answer", "train"); "off" without a run or setting."""
    return _retrieval_mode(_trained(run_dir_of(config, run)))


def run_defaults(config: AppConfig, run: str | None) -> tuple[str, str]:
    """(`system_prompt_of`, `run_retrieval_mode`) of a run picked by name, from one listing of the runs and one
    read of its settings: what a tab fills in when a run is picked."""
    trained = _trained(run_dir_of(config, run))
    return _system_prompt(config, trained), _retrieval_mode(trained)


# ---------------------------------------------------------------------------------------------------
# Answering with retrieval (Chat, Blind A/B): which index, read from where, and the passages as shown.

def data_settings_of(config: AppConfig, run_dir: Path | None) -> S.DataSettings:
    """The data a run trained on (its training split is what retrieval searches), else the app's default."""
    trained = _trained(run_dir)
    return trained.data if trained is not None else config.default_run_settings().data


def retrieval_folder(ref) -> Path | None:
    """The only folder retrieval may read for adapter `ref` (an adapters.AdapterRef): a listed run's own
    folder (its retrieval/ index and settings, resolved by the server from the run's name), or a local
    adapter folder typed off a Space (the owner's machine). None for a Hub adapter and for no adapter:
    the index is then built from the app's default data. A string a visitor typed never becomes a path."""
    if ref is None:
        return None
    if ref.run_dir is not None:
        return Path(ref.run_dir)
    return None if ref.is_hub else Path(ref.key)


@functools.lru_cache(maxsize=4)
def _answer_retrieval(folder: str | None, data_json: str):
    from hust_sft import retrieval

    return retrieval.for_answering(folder, data_settings=S.from_dict(S.DataSettings, json.loads(data_json)))


def answer_retrieval(config: AppConfig, ref):
    """The retrieval an answer uses: the adapter's run index (base answers read the same passages), or
    an index over the training split of the run's data (the app's default data without a run). A few
    are kept in memory."""
    folder = retrieval_folder(ref)
    data = data_settings_of(config, folder)
    return _answer_retrieval(str(folder) if folder else None, json.dumps(S.to_dict(data), sort_keys=True))


_MARKDOWN_PUNCTUATION = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()#+-.!|~>"})


def markdown_text(text: str) -> str:
    """Stored text (a passage, a question someone uploaded) as Markdown that shows it verbatim: HTML is
    escaped (Gradio's sanitizer drops scripts but keeps harmless-looking tags, so `<img src=x>` would still
    become an element) and Markdown's punctuation backslash-escaped (no link, image or list is made)."""
    return html.escape(text, quote=False).translate(_MARKDOWN_PUNCTUATION)


def sources_markdown(asked, lang: str) -> str:
    """The passages an answer was given (`asked`: retrieval.Asked, None without retrieval), numbered as
    in its prompt, with their relevance: what a student can check. An off-topic question says so, and
    who answered it.

    Each passage shows its id, where it comes from (file name and line or page only, `retrieval.cite`:
    no server path) and its text."""
    from hust_sft.retrieval import cite

    if asked is None:
        return ""
    if asked.passages is None:
        return t("ui.chat.sources_off_topic", lang)
    if not asked.passages:
        return t("ui.chat.sources_none", lang)
    lines = [t("ui.chat.sources", lang)]
    for n, p in enumerate(asked.passages, 1):
        text = markdown_text(" ".join(p.text.split()))
        where = t("ui.chat.source_where", lang, source=cite(p), pct=f"{100 * p.relevance:.0f}")
        lines.append(f"{n}. `{p.id}` ({where}) {text}")
    return "\n".join(lines)


@dataclass
class RunPicker:
    run: Any              # gr.Dropdown of listed runs (names)
    hub: Any = None       # gr.Textbox for a Hub adapter id, if the tab takes one
    refresh: Any = None   # gr.Button re-listing the runs, if the tab has one


def run_picker(ctx: Ctx, prefix: str, *, info: str | None = None, hub: bool = True, hub_info: bool = True,
               placeholder: str | None = None, refresh_api: str | None = None, scale: int | None = 2,
               **dropdown) -> RunPicker:
    """The run dropdown (elem_id `<prefix>-run`), the Hub id box (`<prefix>-hub`) and a refresh button
    (`<prefix>-refresh`, API `refresh_api`) when `refresh_api` is given, in the caller's row; every page
    load re-lists the runs (once for all pickers). `info`: the dropdown's help key; `dropdown`: more gr.Dropdown
    arguments."""
    config, texts = ctx.config, ctx.texts

    def relist():
        return gr.update(choices=adapter_choices(config))
    run = texts.make(gr.Dropdown, choices=adapter_choices(config), label=tr("ui.chat.run"),
                     **({"info": tr(info)} if info else {}), elem_id=f"{prefix}-run", scale=scale, **dropdown)
    box = refresh = None
    if hub:
        box = texts.make(gr.Textbox, label=tr("ui.chat.hub"), **({"info": tr("ui.chat.hub_help")} if hub_info else {}),
                         **({"placeholder": placeholder} if placeholder else {}), elem_id=f"{prefix}-hub", scale=scale)
    if refresh_api:
        refresh = texts.make(gr.Button, value=tr("ui.refresh"), scale=0, elem_id=f"{prefix}-refresh")
        refresh.click(relist, None, run, api_name=refresh_api)
    if not ctx.run_dropdowns:
        def relist_all():  # the runs folder is read once per page load, whatever the number of pickers
            return as_outputs([relist()] * len(ctx.run_dropdowns))
        ctx.on_load(relist_all, [], ctx.run_dropdowns)  # the list grows as later tabs add their pickers
    ctx.run_dropdowns.append(run)
    return RunPicker(run=run, hub=box, refresh=refresh)


# ---------------------------------------------------------------------------------------------------
# Settings widgets generated from the dataclasses, so the UI's defaults are train.py's by construction.

SLIDER_MAX_STEPS = 2000  # beyond this many slider positions a number box is easier to use


def widget_for(name: str, f: dataclasses.Field, tp, default: Any, texts: Texts, lang: str = DEFAULT_LANG):
    """One Gradio input for one settings field, labelled and explained from the i18n table (built in `lang`,
    registered with `texts` for the switch)."""
    meta = f.metadata
    base = S._base_type(tp)
    common = dict(label=field_label(name, lang), info=field_help(name, lang), value=default,
                  elem_id=f"setting-{name}")
    if base is bool:
        comp = gr.Checkbox(**common)
    elif meta.get("choices") and base is list:   # pick several (e.g. the evaluation's arms)
        comp = gr.CheckboxGroup(choices=list(meta["choices"]), **common)
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


def visitor_ranges(config: AppConfig, profile: Any, widgets: dict[str, Any], cls):
    """On page load: one update per widget in `widgets` ({setting name: widget}) that shows a visitor of a
    public Space each setting's public maximum (and it as the value where the default is unbounded or
    larger, e.g. `limit`); no change for the owner or off a Space (`as_outputs`: one widget, one update).

    Only the visitor's page is narrowed: the widgets are built with the full ranges, so an API call over a
    public maximum reaches `hust_sft.limits` and gets its named error, and the owner's API calls keep the
    full ranges. (Gradio checks a session's values against that session's widget maxima.)
    """
    fields = {n: f for n, f, _ in S.fields_of(cls)}
    updates = []
    for name in widgets:
        top, default = fields[name].metadata.get("public_max"), S.get_value(cls(), name)
        if top is None or access.is_owner(config, profile):
            updates.append(gr.update())
        elif default is None or default > top:
            updates.append(gr.update(maximum=top, value=top))
        else:
            updates.append(gr.update(maximum=top))
    return as_outputs(updates)


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
