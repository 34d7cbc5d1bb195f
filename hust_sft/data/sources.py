"""Turn a data source string into a local file: a path, an http(s) URL, a Hub dataset or ModelScope.

ModelScope is read over its plain HTTP file API (the same GET the ModelScope SDK issues) so the Space
does not need the SDK. Any failure becomes one `DataSourceError` that names the source, gives the
reason in one line and tells the user how to upload the file instead.

Guards, one per kind of input (a Space fetches what a visitor types, so these are the security boundary):
- names: `modelscope://owner/name/file`, Hub ids and data files match strict patterns (`parse_modelscope`,
  `parse_hub`, `check_repo_file`); no '..', no absolute path, no backslash, no empty segment;
- cache: every file written goes through `cache_target`, which refuses a path that resolves outside the
  cache root;
- network: `fetch_url` follows redirects itself and, on every hop, resolves the host and refuses any
  address that is not public (private, loopback, link-local, multicast, reserved, unspecified, cloud
  metadata) before connecting; the connection is then made to the checked address (no second DNS
  lookup to rebind); the body is streamed with a size cap; error texts never quote the response.
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import socket
import tempfile
import time
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urljoin, urlsplit

import httpx

from hust_sft.errors import LocalizedError
from hust_sft.i18n import DEFAULT_LANG, t

log = logging.getLogger(__name__)

CACHE_ENV = "HUST_SFT_CACHE"
DEFAULT_CACHE = Path("~/.cache/hust-sft/data")
HTTP_TIMEOUT_S = 30.0
MAX_DOWNLOAD_ENV = "HUST_SFT_MAX_DOWNLOAD_MB"
MAX_DOWNLOAD_MB = 200        # a download larger than this is aborted (streamed; never held in memory)
MAX_DOWNLOAD_S = 600.0       # a server that drips bytes slower than this cannot hold a worker for ever
MAX_REDIRECTS = 5
MODELSCOPE_HOST = "https://www.modelscope.cn"
NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
HUB_ID = re.compile(rf"^{NAME}/{NAME}$")
SPLIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
JSON_SUFFIXES = (".json", ".jsonl")
# Names that reach a cloud's instance metadata service whatever they resolve to.
METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                            "instance-data.ec2.internal", "metadata.azure.internal"})
KINDS = ("local", "url", "hub", "modelscope")


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


# ---------------------------------------------------------------------------------------------------
# What kind of source a string names, and its strict parsing.

def source_kind(spec: str) -> str:
    """"url", "modelscope", "hub" or "local" — what `fetch` would do with `spec` (without doing it).

    The UI's access checks call this: a URL makes the server send requests, so it is an owner action on
    a public Space. A string that is neither a URL nor ModelScope nor an existing path, and looks like
    owner/name, is a Hub id.
    """
    spec = (spec or "").strip()
    if spec.lower().startswith(("http://", "https://")):
        return "url"
    if spec.startswith("modelscope://"):
        return "modelscope"
    if spec.startswith("hf://"):
        return "hub"
    path = Path(spec).expanduser()
    if not path.exists() and HUB_ID.match(spec) and path.suffix.lower() not in JSON_SUFFIXES:
        return "hub"
    return "local"


def is_url_source(spec: str) -> bool:
    return source_kind(spec) == "url"


def check_repo_file(source: str, file: str, key: str = "data.source.bad_file") -> str:
    """A relative path inside a repo: '/'-separated non-empty segments, none '.' or '..', no backslash,
    no control character, not absolute."""
    segments = file.split("/")
    if (not file or file.startswith("/") or "\\" in file or any(ord(c) < 32 or c == "\x7f" for c in file)
            or any(s in ("", ".", "..") for s in segments)):
        raise DataSourceError(source, key=key)
    return file


def parse_modelscope(source: str) -> tuple[str, str, str]:
    """modelscope://owner/name/path/to/file -> (owner, name, file), or DataSourceError."""
    parts = source[len("modelscope://"):].split("/", 2)
    if len(parts) < 3 or not all(re.fullmatch(NAME, p) for p in parts[:2]):
        raise DataSourceError(source, key="data.source.bad_modelscope")
    check_repo_file(source, parts[2], key="data.source.bad_modelscope")
    return parts[0], parts[1], parts[2]


def parse_hub(source: str, data_file: str | None = None) -> tuple[str, str | None]:
    """`owner/name` or `hf://owner/name[/file]` (+ --data-file) -> (repo id, file or None)."""
    rest = source[len("hf://"):] if source.startswith("hf://") else source
    parts = rest.split("/", 2)
    repo = "/".join(parts[:2])
    if not HUB_ID.match(repo):
        raise DataSourceError(source, key="data.source.bad_hub_id")
    file = data_file or (parts[2] if len(parts) > 2 else None)
    if file is not None:
        check_repo_file(source, file)
    return repo, file


# ---------------------------------------------------------------------------------------------------
# The cache: every file written by a fetcher lands under its root.

def cache_root(cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def cache_target(source: str, cache_dir: str | Path | None, *parts: str) -> Path:
    """The cache file for `parts`, refused unless it resolves (symlinks included) under the cache root."""
    root = cache_root(cache_dir).resolve()
    target = root.joinpath(*parts).resolve()
    if target == root or not target.is_relative_to(root):
        raise DataSourceError(source, key="data.source.outside_cache")
    return target


def _safe_file_name(name: str) -> str:
    """A URL's last path segment as a file name: only letters, digits, '.', '_', '-'; no leading dot."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")[:100]
    return name or "data.jsonl"


def modelscope_url(owner: str, name: str, file: str) -> str:
    return (f"{MODELSCOPE_HOST}/api/v1/datasets/{owner}/{name}/repo"
            f"?Revision=master&FilePath={quote(file, safe='/')}")


# ---------------------------------------------------------------------------------------------------
# Fetching over HTTP without reaching private addresses.

def max_download_bytes() -> int:
    try:
        mb = float(os.environ.get(MAX_DOWNLOAD_ENV, MAX_DOWNLOAD_MB))
    except ValueError:
        mb = MAX_DOWNLOAD_MB
    return int(mb * 2**20)


def address_allowed(ip: str, *, allow_loopback: bool = False) -> bool:
    """True for a public unicast address. `allow_loopback` (tests only) also admits 127.0.0.0/8 and ::1."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if allow_loopback and addr.is_loopback:
        return True
    return addr.is_global and not (addr.is_private or addr.is_loopback or addr.is_link_local
                                   or addr.is_multicast or addr.is_reserved or addr.is_unspecified)


def resolve_public(host: str, port: int, *, allow_loopback: bool = False) -> list[str]:
    """The addresses of `host`, all of them public, or `_Refused` — decided before any connection."""
    name = host.strip("[]").rstrip(".").lower()
    if name in METADATA_HOSTS:
        raise _Refused()
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as e:
        raise httpx.ConnectError("name resolution failed") from e
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses or not all(address_allowed(a, allow_loopback=allow_loopback) for a in addresses):
        raise _Refused()
    return addresses


class _Refused(Exception):
    """The host is not a public address; raised before any connection is attempted."""


class _CheckedBackend:
    """httpcore network backend that connects only to addresses `resolve_public` accepted.

    Written by hand because httpx has no hook between name resolution and connect: checking the name
    first and letting the library resolve it again would let DNS answer differently the second time.
    """

    def __init__(self, allow_loopback: bool):
        import httpcore

        self._inner = httpcore.SyncBackend()
        self.allow_loopback = allow_loopback

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = resolve_public(host, port, allow_loopback=self.allow_loopback)
        error = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                               socket_options=socket_options)
            except Exception as e:  # try the next address of the name, as socket.create_connection does
                error = e
        raise error

    def connect_unix_socket(self, *args, **kwargs):
        raise _Refused()

    def sleep(self, seconds):
        self._inner.sleep(seconds)


def _client(allow_loopback: bool) -> httpx.Client:
    import httpcore

    transport = httpx.HTTPTransport(trust_env=False)
    # Same pool httpx builds, with the checking backend. trust_env=False: a proxy would connect for us,
    # past the check.
    transport._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(),
                                              network_backend=_CheckedBackend(allow_loopback))
    return httpx.Client(transport=transport, timeout=HTTP_TIMEOUT_S, follow_redirects=False, trust_env=False)


def fetch_url(url: str, target: Path, source: str, *, allow_loopback: bool = False,
              check=None) -> Path:
    """GET `url` into `target` atomically, following at most MAX_REDIRECTS redirects by hand.

    Every hop must be http(s) to a public address (checked before connecting); the body is capped at
    `max_download_bytes()`. Failures never quote the response: one generic "could not fetch" for any
    network error (so refused, closed and filtered ports look alike), the HTTP status otherwise.
    `allow_loopback` is for the tests' own server on 127.0.0.1 only; nothing in the product sets it.
    `check(path)` may inspect the finished download before it replaces `target`.
    """
    limit, deadline = max_download_bytes(), time.monotonic() + MAX_DOWNLOAD_S
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, _client(allow_loopback) as client:
            for _ in range(MAX_REDIRECTS + 1):
                parts = urlsplit(url)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    raise DataSourceError(source, key="data.source.bad_url")
                # The check before any connection; the backend repeats it on the addresses it connects to.
                resolve_public(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                               allow_loopback=allow_loopback)
                with client.stream("GET", url) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("location", ""))
                        continue
                    if response.status_code >= 400:
                        raise DataSourceError(source, key="data.source.http_status",
                                              status=response.status_code,
                                              phrase=httpx.codes.get_reason_phrase(response.status_code))
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise DataSourceError(source, key="data.source.too_large", mb=limit // 2**20,
                                              env=MAX_DOWNLOAD_ENV)
                    for chunk in response.iter_bytes():  # decoded bytes: a gzip bomb is capped too
                        if out.tell() + len(chunk) > limit:
                            raise DataSourceError(source, key="data.source.too_large", mb=limit // 2**20,
                                                  env=MAX_DOWNLOAD_ENV)
                        if time.monotonic() > deadline:
                            raise httpx.ReadTimeout("download took too long")
                        out.write(chunk)
                    break
            else:
                raise DataSourceError(source, key="data.source.too_many_redirects", n=MAX_REDIRECTS)
        if check is not None:
            check(Path(tmp))
        os.replace(tmp, target)
        return target
    except _Refused:
        raise DataSourceError(source, key="data.source.not_public") from None
    except httpx.HTTPError as e:
        if target.is_file():
            log.warning("%s: could not fetch (%s); using the copy downloaded earlier: %s", source,
                        type(e).__name__, target)
            return target
        raise DataSourceError(source, key="data.source.fetch_failed") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------------------------------------------

def fetch(source: str, *, data_file: str | None = None, data_split: str | None = None,
          cache_dir: str | Path | None = None, allow_loopback: bool = False) -> Path:
    """A local file holding the data of `source` (downloaded into the cache when remote).

    `allow_loopback` lets the tests reach their own HTTP server on 127.0.0.1; never set it in the product.
    """
    source = source.strip()
    kind = source_kind(source)
    if kind == "url":
        name = _safe_file_name(PurePosixPath(urlsplit(source).path).name)
        target = cache_target(source, cache_dir, "http", _digest(source), name)
        return fetch_url(source, target, source, allow_loopback=allow_loopback)
    if kind == "modelscope":
        owner, name, file = parse_modelscope(source)
        target = cache_target(source, cache_dir, "modelscope", owner, name, *file.split("/"))
        return fetch_url(modelscope_url(owner, name, file), target, source, allow_loopback=allow_loopback,
                         check=lambda path: _check_modelscope_answer(path, source))
    if kind == "hub":
        repo, file = parse_hub(source, data_file)
        return _from_hub(source, repo, file, data_split, cache_dir)
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise DataSourceError(source, key="data.source.is_dir")
    raise DataSourceError(source, key="data.source.not_found")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _check_modelscope_answer(path: Path, source: str) -> None:
    """ModelScope reports some failures as a small JSON body {"Code", "Message", "Success": false}.
    Its text is not repeated: error messages never quote what a server sent."""
    if path.stat().st_size > 4096:
        return
    import json

    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return
    if isinstance(body, dict) and body.get("Success") is False:
        raise DataSourceError(source, key="data.source.modelscope_error")


def _from_hub(source: str, repo: str, data_file: str | None, data_split: str | None,
              cache_dir: str | Path | None) -> Path:
    """One JSON file of a Hub dataset as is, or any other dataset/file exported to JSON Lines."""
    split = data_split or "train"
    if not SPLIT.match(split):
        raise DataSourceError(source, key="data.source.bad_split")
    name = f"{split}-{_digest(data_file)}.jsonl" if data_file else f"{split}.jsonl"
    target = cache_target(source, cache_dir, "hub", repo.replace("/", "__"), name)
    try:
        if data_file and Path(data_file).suffix.lower() in JSON_SUFFIXES:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(repo, data_file, repo_type="dataset"))
        import datasets

        kwargs = {"data_files": data_file} if data_file else {}
        dataset = datasets.load_dataset(repo, split=split, **kwargs)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        dataset.to_json(tmp, force_ascii=False)
        os.replace(tmp, target)
        return target
    except DataSourceError:
        raise
    except Exception as e:  # any Hub/datasets/network failure reaches the user as one message
        raise DataSourceError(source, _one_line(e)) from e
