"""LoRA adapters the app loads: how one is named (`AdapterRef`), and the checks it passes before loading.

The mechanism, below everything that loads or names adapters (`serving`, `access`, the UI): a reference
from a folder or a Hub id (`ref_of_spec`, `parse_hub_id`), and `check_adapter` — its adapter_config.json
(rank, base model), its weight sizes and, for a Hub adapter, the repo's file list and the download, pinned
to the commit that was checked. *Which* adapters a visitor may name is `access.resolve_adapter`'s decision.
The limits come from environment variables (SECURITY.md).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from hust_sft.errors import LocalizedError
from hust_sft.hub_ids import RepoIdError, validate_repo_id

# A default run (r=16, all linear layers) of Qwen2.5-0.5B is r=16 and ~35 MB; the presets stay under r=256.
MAX_ADAPTER_RANK = int(os.environ.get("HUST_SFT_MAX_ADAPTER_RANK", 256))
MAX_ADAPTER_MB = float(os.environ.get("HUST_SFT_MAX_ADAPTER_MB", 256))
MAX_ADAPTER_CONFIG_BYTES = 64 * 1024
MAX_CACHED_ADAPTERS = int(os.environ.get("HUST_SFT_MAX_CACHED_ADAPTERS", 4))
ADAPTER_WEIGHTS = "adapter_model.safetensors"  # visitors' Hub adapters: safetensors only, never pickles
HUB_ADAPTER_FILES = ("adapter_config.json", ADAPTER_WEIGHTS)
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")


class AdapterError(LocalizedError, ValueError):
    """An adapter this app will not load (its id, rank, size, base model or files); str() English,
    `.text(lang)` for the page."""


@dataclass(frozen=True)
class AdapterRef:
    """An adapter the app agreed to load. `key` is its identity (resolved folder, or repo@revision):
    two spellings of one adapter have one key, so the cache holds it once."""
    key: str
    label: str               # what tables and pairs call it
    run_dir: Path | None     # a listed run (its settings.json names the base model and the data)
    repo_id: str | None = None
    revision: str | None = None

    @property
    def is_hub(self) -> bool:
        return self.repo_id is not None

    @property
    def spec(self) -> str:
        """What `hust_sft.evaluation` names and describes it by: the run folder, or the repo id."""
        return self.repo_id if self.is_hub else str(self.run_dir or self.key)


@dataclass(frozen=True)
class CheckedAdapter:
    folder: str    # a local folder PEFT loads (for a Hub adapter: the downloaded snapshot)
    identity: str  # resolved folder, or repo@commit


def ref_of_spec(spec: str | Path) -> AdapterRef:
    """An AdapterRef for trusted callers (the CLI, tests): an existing folder, else a Hub id."""
    path = Path(spec).expanduser()
    if path.exists():
        path = path.resolve()
        return AdapterRef(key=str(path), label=path.name if path.name != "adapter" else path.parent.name,
                          run_dir=path if (path / "adapter").is_dir() else None)
    repo, revision = parse_hub_id(str(spec))
    return AdapterRef(key=f"{repo.lower()}@{revision or 'main'}", label=repo.split("/")[1], run_dir=None,
                      repo_id=repo, revision=revision)


def parse_hub_id(text: str) -> tuple[str, str | None]:
    """`owner/name` or `owner/name@revision`, checked against the Hub's naming rules; AdapterError if not."""
    repo, _, revision = text.partition("@")
    try:
        repo = validate_repo_id(repo)
    except (RepoIdError, ValueError):  # ValueError: huggingface_hub's own HFValidationError
        raise AdapterError("access.error.adapter_id", value=text) from None
    if revision and (not _REVISION.fullmatch(revision) or ".." in revision):
        raise AdapterError("access.error.adapter_id", value=text)
    return repo, revision or None


def check_adapter_config(cfg: dict, base_model: str, source: str) -> None:
    """Refuse an adapter_config.json whose rank or base model is outside what this app loads."""
    ranks = [cfg.get("r")] + list((cfg.get("rank_pattern") or {}).values())
    ranks = [r for r in ranks if r is not None]
    if not ranks or not all(isinstance(r, int) and 0 < r for r in ranks):
        raise AdapterError("access.error.adapter_config", source=source, field="r", value=cfg.get("r"))
    if max(ranks) > MAX_ADAPTER_RANK:
        raise AdapterError("access.error.adapter_rank", source=source, rank=max(ranks), max=MAX_ADAPTER_RANK)
    trained_on = cfg.get("base_model_name_or_path")
    if trained_on and not _same_model(trained_on, base_model):
        raise AdapterError("access.error.adapter_base", source=source, trained=_short(trained_on),
                           base=_short(base_model))


def _same_model(a: str, b: str) -> bool:
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


def _short(model: str) -> str:
    """A model id as shown to a visitor: a Hub id as is, a local folder by its name only."""
    return Path(model).name if Path(model).expanduser().is_absolute() else model


def _check_size(size: int, source: str) -> None:
    if size > MAX_ADAPTER_MB * 2 ** 20:
        raise AdapterError("access.error.adapter_size", source=source, mb=f"{size / 2 ** 20:.0f}",
                           max=f"{MAX_ADAPTER_MB:g}")


def check_adapter(ref: AdapterRef, base_model: str, *, token: bool | str | None = None) -> CheckedAdapter:
    """Check `ref` before loading it; returns the local adapter folder PEFT should load.

    A local adapter: its adapter_config.json (rank, base model) and weight file sizes. A Hub adapter:
    the repo's file list, sizes, then only adapter_config.json and the safetensors weights are downloaded,
    pinned to the commit the check saw. `token` is huggingface_hub's `token=` for those reads: the app
    passes `access.read_token` (False, anonymous, on a Space).
    """
    from hust_sft.modeling import adapter_dir

    if not ref.is_hub:
        folder = Path(adapter_dir(str(ref.run_dir or ref.key)))
        cfg_path = folder / "adapter_config.json"
        if not cfg_path.is_file():
            raise AdapterError("access.error.adapter_missing", source=ref.label)
        if cfg_path.stat().st_size > MAX_ADAPTER_CONFIG_BYTES:
            raise AdapterError("access.error.adapter_config", source=ref.label, field="adapter_config.json",
                               value=f"{cfg_path.stat().st_size} bytes")
        cfg = _read_config(cfg_path, ref.label)
        check_adapter_config(cfg, base_model, ref.label)
        weights = [p for p in folder.iterdir() if p.name.startswith("adapter_model")]
        _check_size(sum(p.stat().st_size for p in weights), ref.label)
        return CheckedAdapter(folder=str(folder), identity=str(folder.resolve()))
    return _fetch_hub_adapter(ref, base_model, token)


def _read_config(path: Path, source: str) -> dict:
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise AdapterError("access.error.adapter_config", source=source, field="adapter_config.json",
                           value=type(e).__name__) from None
    if not isinstance(cfg, dict):
        raise AdapterError("access.error.adapter_config", source=source, field="adapter_config.json",
                           value=type(cfg).__name__)
    return cfg


def _fetch_hub_adapter(ref: AdapterRef, base_model: str, token: bool | str | None) -> CheckedAdapter:
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    source = ref.repo_id
    try:
        info = HfApi().model_info(ref.repo_id, revision=ref.revision, files_metadata=True, token=token)
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise AdapterError("access.error.adapter_not_found", source=source) from None
    except (HfHubHTTPError, OSError, ValueError) as e:
        raise AdapterError("access.error.adapter_hub", source=source, error=type(e).__name__) from None
    sizes = {s.rfilename: s.size for s in (info.siblings or [])}
    for name in HUB_ADAPTER_FILES:
        if name not in sizes:
            raise AdapterError("access.error.adapter_files", source=source, file=name)
    if (sizes["adapter_config.json"] or 0) > MAX_ADAPTER_CONFIG_BYTES:
        raise AdapterError("access.error.adapter_config", source=source, field="adapter_config.json",
                           value=f"{sizes['adapter_config.json']} bytes")
    _check_size(sizes[ADAPTER_WEIGHTS] or 0, source)
    try:
        cfg_path = hf_hub_download(ref.repo_id, "adapter_config.json", revision=info.sha, token=token)
        check_adapter_config(_read_config(Path(cfg_path), source), base_model, source)
        weights = hf_hub_download(ref.repo_id, ADAPTER_WEIGHTS, revision=info.sha, token=token)
    except AdapterError:
        raise
    except (HfHubHTTPError, OSError, ValueError) as e:
        raise AdapterError("access.error.adapter_hub", source=source, error=type(e).__name__) from None
    _check_size(Path(weights).stat().st_size, source)  # the bytes that came, not only what the listing said
    return CheckedAdapter(folder=str(Path(cfg_path).parent), identity=f"{ref.repo_id.lower()}@{info.sha}")
