"""Turn a data source string into a local file: a path, an http(s) URL, a Hub dataset or ModelScope.

ModelScope is read over its plain HTTP file API (the same GET the ModelScope SDK issues) so the Space
does not need the SDK. Any failure becomes one `DataSourceError` that names the source, gives the
reason in one line and tells the user how to upload the file instead.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx

from hust_sft.errors import LocalizedError
from hust_sft.i18n import DEFAULT_LANG, t

log = logging.getLogger(__name__)

CACHE_ENV = "HUST_SFT_CACHE"
DEFAULT_CACHE = Path("~/.cache/hust-sft/data")
HTTP_TIMEOUT_S = 30.0
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
JSON_SUFFIXES = (".json", ".jsonl")


class DataSourceError(LocalizedError, RuntimeError):
    """The source could not be read ("data.source.error": the source, a one-line reason, how to upload instead).

    The reason is a library's error text (`reason`, not translated) or an i18n key (`key` with `params`).
    """

    def __init__(self, source: str, reason: str = "", *, key: str | None = None, **params):
        self.source, self._reason, self.reason_key, self.reason_params = source, reason, key, params
        super().__init__("data.source.error", source=source)

    def reason_text(self, lang: str = DEFAULT_LANG) -> str:
        return t(self.reason_key, lang, **self.reason_params) if self.reason_key else self._reason

    @property
    def reason(self) -> str:
        return self.reason_text(self.str_lang)

    def text(self, lang: str = DEFAULT_LANG) -> str:
        return t(self.key, lang, **self.params, reason=self.reason_text(lang))


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"


def cache_root(cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def modelscope_url(owner: str, name: str, file: str) -> str:
    return (f"https://www.modelscope.cn/api/v1/datasets/{owner}/{name}/repo"
            f"?Revision=master&FilePath={quote(file, safe='/')}")


def fetch(source: str, *, data_file: str | None = None, data_split: str | None = None,
          cache_dir: str | Path | None = None) -> Path:
    """A local file holding the data of `source` (downloaded into the cache when remote)."""
    source = source.strip()
    if source.startswith(("http://", "https://")):
        name = Path(urlsplit(source).path).name or "data.jsonl"
        target = cache_root(cache_dir) / "http" / _digest(source) / name
        return _download(source, target, source)
    if source.startswith("modelscope://"):
        parts = source[len("modelscope://"):].split("/", 2)
        if len(parts) < 3 or not all(parts) or {".", ".."} & set("/".join(parts).split("/")):
            raise DataSourceError(source, key="data.source.bad_modelscope")
        owner, name, file = parts
        target = cache_root(cache_dir) / "modelscope" / owner / name / file
        return _download(modelscope_url(owner, name, file), target, source, modelscope=True)
    if source.startswith("hf://"):
        parts = source[len("hf://"):].split("/", 2)
        repo = "/".join(parts[:2])
        return _from_hub(source, repo, data_file or (parts[2] if len(parts) > 2 else None), data_split,
                         cache_dir)
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise DataSourceError(source, key="data.source.is_dir")
    if HUB_ID.match(source) and path.suffix.lower() not in JSON_SUFFIXES:
        return _from_hub(source, source, data_file, data_split, cache_dir)
    raise DataSourceError(source, key="data.source.not_found")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _download(url: str, target: Path, source: str, *, modelscope: bool = False) -> Path:
    """GET `url` into `target` atomically. On a network error an earlier copy is used, with a warning."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, httpx.stream("GET", url, follow_redirects=True,
                                                      timeout=HTTP_TIMEOUT_S) as response:
            if response.status_code >= 400:
                raise DataSourceError(source, key="data.source.http_status", status=response.status_code,
                                      phrase=httpx.codes.get_reason_phrase(response.status_code))
            for chunk in response.iter_bytes():
                out.write(chunk)
        if modelscope:
            _check_modelscope_answer(Path(tmp), source)
        os.replace(tmp, target)
        return target
    except httpx.HTTPError as e:
        if target.is_file():
            log.warning("%s: %s; using the copy downloaded earlier: %s", source, _one_line(e), target)
            return target
        raise DataSourceError(source, _one_line(e)) from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _check_modelscope_answer(path: Path, source: str) -> None:
    """ModelScope reports some failures as a small JSON body {"Code", "Message", "Success": false}."""
    if path.stat().st_size > 4096:
        return
    import json

    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return
    if isinstance(body, dict) and body.get("Success") is False:
        raise DataSourceError(source, key="data.source.modelscope_error",
                              message=body.get("Message") or body.get("Code"))


def _from_hub(source: str, repo: str, data_file: str | None, data_split: str | None,
              cache_dir: str | Path | None) -> Path:
    """One JSON file of a Hub dataset as is, or any other dataset/file exported to JSON Lines."""
    try:
        if data_file and Path(data_file).suffix.lower() in JSON_SUFFIXES:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(repo, data_file, repo_type="dataset"))
        import datasets

        split = data_split or "train"
        kwargs = {"data_files": data_file} if data_file else {}
        dataset = datasets.load_dataset(repo, split=split, **kwargs)
        name = f"{split}-{_digest(data_file)}.jsonl" if data_file else f"{split}.jsonl"
        target = cache_root(cache_dir) / "hub" / repo.replace("/", "__") / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        dataset.to_json(tmp, force_ascii=False)
        os.replace(tmp, target)
        return target
    except DataSourceError:
        raise
    except Exception as e:  # any Hub/datasets/network failure reaches the user as one message
        raise DataSourceError(source, _one_line(e)) from e
