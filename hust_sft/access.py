"""Who may do what: the one place that decides what a visitor of a public Space may do.

The UI tabs ask this module (and hand the model cache its `read_token`); they never decide themselves.

- **Owner or visitor.** Off a Space (no `SPACE_ID`) the person at the keyboard owns the app. On a Space
  the owner is the OAuth user named `SPACE_AUTHOR_NAME`, and OAuth is trusted only when `SYSTEM=spaces`
  (the Hub sets it; elsewhere Gradio's *mock* login signs anyone in as the machine token's user).
  `HUST_SFT_OPEN_TRAINING=1` opens the owner actions to everyone.
- **Owner actions** (`OWNER_ACTIONS`): train, stop, publish, upload data, preview data. Everything else
  (chat, evaluate, blind votes) is open to every visitor, within the public limits.
- **The owner's token** (`HF_TOKEN`) is taken out of the process environment on a Space (`seal_token`), so
  no library sends it implicitly; it is handed explicitly to Publish and to the owner's training
  subprocess only. Every Hub read a visitor triggers is anonymous.
- **Adapters a visitor names** are a listed run (by its name in the runs table) or a validated Hub id,
  never a path (`resolve_adapter`); `adapters.check_adapter` then bounds rank, file size and base model
  before anything is loaded.

Policy only: the mechanisms it decides over live below it (`hust_sft.adapters`: references and checks;
`hust_sft.paths`: cutting paths out of text), so the model cache and publishing use them without this module.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from hust_sft import runs
from hust_sft.adapters import AdapterRef, parse_hub_id, ref_of_spec
from hust_sft.errors import LocalizedError
from hust_sft.i18n import DEFAULT_LANG, t
from hust_sft.paths import strip_paths

OWNER_ACTIONS = ("train", "stop", "publish", "upload", "data_preview")
# Server-side requests to an address a visitor types: the owner's alone even with HUST_SFT_OPEN_TRAINING=1.
STRICT_OWNER_ACTIONS = ("url_data",)
OPEN_ACTIONS = ("chat", "evaluate", "arena")
ACTIONS = OWNER_ACTIONS + STRICT_OWNER_ACTIONS + OPEN_ACTIONS


class AccessError(LocalizedError, ValueError):
    """A visitor asked for something this app does not allow; str() English, `.text(lang)` for the page."""


# ---------------------------------------------------------------------------------------------------
# Owner or visitor

def oauth_trusted() -> bool:
    """Gradio's login is the Hub's real OAuth only on a Space (`SYSTEM=spaces`); elsewhere it is mocked."""
    return os.environ.get("SYSTEM") == "spaces"


def on_space(config) -> bool:
    return bool(config.space_id)


def is_owner(config, profile: Any) -> bool:
    """Whether this visitor owns the app: always off a Space, else the real-OAuth user SPACE_AUTHOR_NAME."""
    if not on_space(config):
        return True
    if not config.oauth_trusted:
        return False
    user = getattr(profile, "username", None)
    return bool(user and config.space_owner and user == config.space_owner)


def visitor_may(config, profile: Any, action: str, lang: str = DEFAULT_LANG) -> str | None:
    """None when this visitor may do `action`, else the reason (in `lang`) shown instead of doing it."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if action in OPEN_ACTIONS or not on_space(config) or is_owner(config, profile):
        return None
    owner = config.space_owner or "?"
    if action in STRICT_OWNER_ACTIONS:
        return t("access.error.url_owner_only", lang, owner=owner)
    if config.open_training:
        return None
    if not config.oauth_trusted:
        return t("ui.lock.no_oauth", lang, owner=owner)
    user = getattr(profile, "username", None)
    if user:
        return t("ui.lock.not_owner", lang, user=user, owner=owner)
    return t("ui.lock.login", lang, owner=owner)


def data_source_refusal(config, profile: Any, spec: str | None, lang: str = DEFAULT_LANG) -> str | None:
    """Why this visitor may not use data source `spec`, or None: a URL (`data.sources.source_kind`) makes
    the server send requests, so on a public Space it is the owner's alone."""
    from hust_sft.data.sources import source_kind

    if spec and source_kind(str(spec)) == "url":
        return visitor_may(config, profile, "url_data", lang)
    return None


def knowledge_files_refusal(config, profile: Any, files, lang: str = DEFAULT_LANG) -> str | None:
    """Why this visitor may not index `files` (a run's `knowledge_files`), or None. Their text is shown
    under every answer, so a visitor (training opened with HUST_SFT_OPEN_TRAINING) may name only files
    uploaded to this app (under runs/uploads/); the owner any file."""
    if not files or is_owner(config, profile):
        return None
    for name in files:
        if not _uploaded(config, str(name)):
            return t("access.error.knowledge_not_uploaded", lang, file=Path(str(name)).name or str(name))
    return None


def local_paths_refusal(config, profile: Any, settings, lang: str = DEFAULT_LANG) -> str | None:
    """Why this visitor may not train or preview with `settings` (RunSettings), or None: a visitor (training
    opened with HUST_SFT_OPEN_TRAINING) never makes the server read a path of its own. The data must be the
    app's own, a file uploaded to this app (under runs/uploads/) or a remote source (`data_source_refusal`
    decides on URLs); the base and embedding models the app's own or a Hub id `owner/name` that is no
    existing path. The owner may name anything."""
    if is_owner(config, profile):
        return None
    from hust_sft.data.sources import source_kind
    from hust_sft.hub_ids import RepoIdError, validate_repo_id

    data = str(settings.data.data or "").strip()
    if data and source_kind(data) == "local" and not (_same_file(data, config.data) or _uploaded(config, data)):
        return t("access.error.local_data", lang, file=Path(data).name or data)
    for name, value, own in (("model", settings.model.model, config.model),
                             ("embedding_model", settings.retrieval.embedding_model, "")):
        value = str(value or "").strip()
        if not value or value == str(own):
            continue
        try:
            validate_repo_id(value)
            is_path = Path(value).expanduser().exists()
        except (RepoIdError, OSError):
            is_path = True
        if is_path:
            return t("access.error.local_model", lang, field=name, value=Path(value).name or value)
    return None


def _same_file(a: str, b: str | Path | None) -> bool:
    try:
        return b is not None and Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except (OSError, RuntimeError):
        return False


def _uploaded(config, name: str) -> bool:
    """Whether `name` is a file the app stored from an upload (under runs/uploads/, symlinks resolved)."""
    uploads = (Path(config.runs_dir) / "uploads").resolve()
    path = Path(name).expanduser().resolve()
    return uploads in path.parents and path.is_file()


def lock_reason(config, profile: Any, lang: str = DEFAULT_LANG) -> str | None:
    """Why Train/Publish are locked for this visitor (the owner actions share one lock), or None."""
    return visitor_may(config, profile, "train", lang)


# ---------------------------------------------------------------------------------------------------
# The owner's token

def seal_token(config) -> None:
    """On a Space: move HF_TOKEN from the environment into `config.hub_token` and forbid implicit tokens.

    After this no huggingface_hub/transformers/peft/datasets call sends the owner's token unless it is
    passed explicitly (`owner_token`), so every read a visitor triggers is anonymous. Off a Space the
    environment is left alone (a local user reads their own private repos).
    """
    if not on_space(config):
        return
    token = os.environ.pop("HF_TOKEN", None) or os.environ.pop("HUGGING_FACE_HUB_TOKEN", None)
    config.hub_token = config.hub_token or token
    os.environ["HF_HUB_DISABLE_IMPLICIT_TOKEN"] = "1"
    from huggingface_hub import constants

    constants.HF_HUB_DISABLE_IMPLICIT_TOKEN = True


def owner_token(config, profile: Any, oauth_token: Any = None) -> str | None:
    """The token for an owner action (Publish, training): the signed-in owner's OAuth token, else HF_TOKEN.

    None for anyone `visitor_may` refuses: the token never serves a visitor.
    """
    if visitor_may(config, profile, "publish") is not None:
        return None
    value = getattr(oauth_token, "token", oauth_token)
    if isinstance(value, str) and value.strip() and config.oauth_trusted:
        return value.strip()
    return config.hub_token if on_space(config) else (os.environ.get("HF_TOKEN") or None)


def training_env(config, profile: Any) -> dict[str, str]:
    """Environment for the owner's training subprocess: the sealed token, usable implicitly there.

    Empty for anyone else (a visitor on a Space with HUST_SFT_OPEN_TRAINING=1 trains anonymously)."""
    if not on_space(config) or not config.hub_token or visitor_may(config, profile, "train") is not None:
        return {}
    if not is_owner(config, profile):
        return {}
    return {"HF_TOKEN": config.hub_token, "HF_HUB_DISABLE_IMPLICIT_TOKEN": "0"}


def read_token(config) -> bool | None:
    """`token=` for Hub reads visitors trigger: False (anonymous) on a Space, the library default off one."""
    return False if config is not None and on_space(config) else None


# ---------------------------------------------------------------------------------------------------
# Adapters a visitor names (what an adapter must pass before loading is `hust_sft.adapters`)

def listed_runs(config) -> dict[str, Path]:
    """Run name → folder of every run with a saved adapter in the runs table, newest first."""
    return {r.name: Path(r.path) for r in runs.list_runs(config.runs_dir) if r.has_adapter}


def resolve_adapter(config, run: str | None, hub_id: str | None) -> AdapterRef | None:
    """The adapter of the Chat/Evaluate/Blind A/B boxes: a typed Hub id wins over the run dropdown.

    A run is accepted by its name in the runs table only (a path, even of a listed run, is refused); the
    Hub box takes `owner/name[@revision]`. Off a Space the Hub box also takes a local adapter folder.
    Raises AccessError (not a listed run, a path on a Space) or `adapters.AdapterError` (not a Hub id).
    """
    hub_id = (hub_id or "").strip()
    run = (run or "").strip()
    if hub_id:
        if not on_space(config) and Path(hub_id).expanduser().exists():
            return ref_of_spec(hub_id)
        parse_hub_id(hub_id)  # a path on a Space is refused here, whether it exists or not
        return ref_of_spec(hub_id) if not Path(hub_id).expanduser().exists() else _refuse_path(hub_id)
    if not run:
        return None
    listed = listed_runs(config)
    if run not in listed:
        raise AccessError("access.error.unknown_run", run=run)
    path = listed[run].resolve()
    return AdapterRef(key=str(path), label=run, run_dir=path)


def _refuse_path(value: str):
    raise AccessError("access.error.adapter_id", value=value)


def base_model_of(config, ref: AdapterRef | None) -> str:
    """The base model to load under `ref`: a listed run's own (the owner chose it), else the app's.

    A visitor's Hub adapter never picks the base model: it must match the app's (`adapters.check_adapter`).
    """
    if ref is not None and ref.run_dir is not None:
        try:
            trained = runs.load_settings(ref.run_dir)
        except (runs.RunFileError, ValueError):  # ValueError: SettingsError of a value no longer valid
            trained = None
        model = trained.model.model if trained is not None else None
        if model:
            return model
        from hust_sft.modeling import ModelError, base_model_of_adapter

        try:
            found = base_model_of_adapter(str(ref.run_dir))
        except (ModelError, OSError, ValueError):
            found = None
        if found:
            return found
    return config.model


# ---------------------------------------------------------------------------------------------------
# Where a visitor's files go, and what a visitor may read

def public_dir(config) -> Path:
    """The only folder (besides Gradio's own cache) whose files pages link to: a fresh temp folder per app."""
    if config.public_dir is None:
        config.public_dir = Path(tempfile.mkdtemp(prefix="hust-sft-public-"))
    config.public_dir.mkdir(parents=True, exist_ok=True)
    return config.public_dir


def publish_file(config, path: str | Path | None) -> str | None:
    """A copy of `path` in the public folder (a page may link to it), or None; the runs folder is never served."""
    if not path or not Path(path).is_file():
        return None
    path = Path(path)
    root = public_dir(config).resolve()
    if root in path.resolve().parents:
        return str(path)
    dest = root / uuid.uuid4().hex / path.name
    dest.parent.mkdir(parents=True)
    shutil.copyfile(path, dest)
    return str(dest)


def eval_output_dir(config, profile: Any, ref: AdapterRef, limit: int | None) -> Path | None:
    """Where an evaluation from the page writes: None (the run's own eval/ or eval-firstN/) only for the
    owner evaluating a listed run; anyone else gets a fresh folder outside the runs folder, so a
    visitor never replaces the evaluation that Publish copies into the model card."""
    if ref.run_dir is not None and is_owner(config, profile):
        return None
    return public_dir(config) / f"eval-{uuid.uuid4().hex}"


def unique_upload_path(config, name: str) -> Path:
    """A new file name under runs/uploads/ for an upload: a second upload never replaces the first."""
    src = Path(name)
    stem = runs.sanitize_run_name(src.stem) if src.stem.strip(".-_ ") else "upload"
    stem = stem[:48]
    dest_dir = Path(config.runs_dir) / "uploads"
    dest_dir.mkdir(parents=True, exist_ok=True)
    return dest_dir / f"{stem}-{uuid.uuid4().hex[:12]}{src.suffix.lower()}"


def public_text(config, text: str | None) -> str:
    """`text` without absolute server paths, for what a visitor of a Space sees (off a Space: unchanged).

    Known folders become names (`<runs>/x`, `<tmp>`, `~`); any other absolute path keeps only its last part.
    """
    if not text or not on_space(config):
        return text or ""
    roots = [(config.runs_dir, "<runs>"), (Path(tempfile.gettempdir()), "<tmp>"), (Path.home(), "~")]
    if config.public_dir is not None:
        roots.insert(0, (config.public_dir, "<public>"))
    return strip_paths(text, roots)
