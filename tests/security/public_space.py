"""Helpers of tests/security: the app as a public Hugging Face Space, attacked from outside.

A real `python app.py --demo` subprocess.

`space` (session scope) starts it with the variables a Space sets (SPACE_ID, SPACE_AUTHOR_NAME,
SYSTEM=spaces, OAUTH_*), a fake owner token in HF_TOKEN, and HF_ENDPOINT pointing at `FakeHub`: a tiny
HTTP server on 127.0.0.1 that logs every request (method, path, Authorization header) and answers 404
(or what a test registers). Tests talk to the app only through its public surface — `gradio_client`
and plain HTTP (`httpx`) — as an anonymous visitor would, and read `space.hub.requests` to see which
Hub calls the app made and with which credentials. All traffic stays on 127.0.0.1.

`start_space(tmp, **env)` starts another instance with other variables (e.g. a Space without SYSTEM).
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from helpers import start_app, stop_app

FAKE_TOKEN = "hf_fakeOwnerToken0123456789abcdefABCDEF"
OWNER = "owner"
SPACE = f"{OWNER}/space"
START_TIMEOUT_S = 240


@dataclass
class HubRequest:
    method: str
    path: str
    authorization: str | None
    body: bytes = b""


class FakeHub:
    """A stand-in for huggingface.co on 127.0.0.1: logs every request; serves registered routes, else 404.

    `routes[path] = (status, headers, body bytes)` (path without the query string). `whoami` answers as the
    token's user, `OWNER`, as the real Hub would for the owner's token (Gradio's mock login asks it).
    """

    def __init__(self):
        self.requests: list[HubRequest] = []
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.models: dict[str, tuple[str, dict[str, bytes]]] = {}  # repo id (lower case) → (sha, files)
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with hub._lock:
                    hub.requests.append(HubRequest(self.command, self.path, self.headers.get("Authorization"), body))
                path = self.path.split("?", 1)[0]
                model = hub._model_answer(path) or hub._upload_answer(self.command, path, body)
                if path in hub.routes:
                    status, headers, body = hub.routes[path]
                elif model is not None:
                    status, headers, body = model
                elif path.startswith("/api/whoami"):
                    status, headers, body = 200, {"Content-Type": "application/json"}, json.dumps(
                        {"type": "user", "name": OWNER, "fullname": "Space Owner", "avatarUrl": ""}).encode()
                else:
                    status, headers = 404, {"Content-Type": "application/json", "X-Error-Code": "RepoNotFound"}
                    body = json.dumps({"error": "Repository Not Found"}).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = _serve

            def log_message(self, *args):  # quiet: the request list is the log
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def add_model(self, repo: str, files: dict[str, bytes], sha: str | None = None) -> str:
        """Serve a public model repo (its info and its files at any revision); returns its commit sha."""
        import hashlib

        sha = sha or hashlib.sha1(repo.encode() + b"".join(sorted(files.values()))).hexdigest()
        self.models[repo.lower()] = (sha, dict(files))
        return sha

    def _model_answer(self, path: str):
        """(status, headers, body) for /api/models/<repo>[/revision/<rev>] and /<repo>/resolve/<rev>/<file>."""
        import hashlib
        from urllib.parse import unquote

        parts = unquote(path).strip("/").split("/")
        if len(parts) >= 4 and parts[0] == "api" and parts[1] == "models":
            repo = "/".join(parts[2:4]).lower()
            if repo in self.models and (len(parts) == 4 or parts[4] == "revision"):
                sha, files = self.models[repo]
                body = {"id": "/".join(parts[2:4]), "modelId": "/".join(parts[2:4]), "sha": sha, "private": False,
                        "siblings": [{"rfilename": n, "size": len(b)} for n, b in files.items()]}
                return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()
        if len(parts) >= 5 and parts[2] == "resolve":
            repo = "/".join(parts[:2]).lower()
            name = "/".join(parts[4:])
            if repo in self.models and name in self.models[repo][1]:
                sha, files = self.models[repo]
                body = files[name]
                etag = '"' + hashlib.sha1(body).hexdigest() + '"'
                return 200, {"X-Repo-Commit": sha, "ETag": etag, "Content-Type": "application/octet-stream"}, body
        return None

    def _upload_answer(self, method: str, path: str, body: bytes):
        """Accept what `HfApi.create_repo` and `upload_folder` send (every file inline, "regular" mode)."""
        if method != "POST":
            return None
        ok = {"Content-Type": "application/json"}
        parts = path.strip("/").split("/")
        if path == "/api/validate-yaml":
            return 200, ok, json.dumps({"errors": [], "warnings": []}).encode()
        if path == "/api/repos/create":
            name = json.loads(body or b"{}")
            repo = f"{name.get('organization') or OWNER}/{name.get('name')}"
            return 200, ok, json.dumps({"url": f"{self.url}/{repo}", "name": repo}).encode()
        if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "preupload":
            files = json.loads(body or b"{}").get("files", [])
            answer = {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
            return 200, ok, json.dumps(answer).encode()
        if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "commit":
            repo = "/".join(parts[2:4])
            return 200, ok, json.dumps({"commitUrl": f"{self.url}/{repo}/commit/{'0' * 40}",
                                        "commitOid": "0" * 40, "pullRequestUrl": None}).encode()
        return None

    def committed_files(self) -> dict[str, bytes]:
        """path → content of every file the app committed (regular uploads carry their content inline)."""
        import base64

        out = {}
        for r in self.seen():
            if r.method == "POST" and "/commit/" in r.path:
                for line in r.body.decode().splitlines():
                    item = json.loads(line)
                    if item.get("key") == "file":
                        out[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
        return out

    def downloads(self, name: str) -> list[HubRequest]:
        """GET requests for a file called `name` (any repo, any revision)."""
        return [r for r in self.seen() if r.method == "GET" and "/resolve/" in r.path
                and r.path.split("?", 1)[0].endswith("/" + name)]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def seen(self) -> list[HubRequest]:
        with self._lock:
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Space:
    url: str
    proc: subprocess.Popen
    runs_dir: Path
    data_dir: Path
    tmp: Path
    hub: FakeHub
    log_path: Path
    env: dict[str, str]
    _client: Any = None
    _http: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def client(self):
        """A `gradio_client.Client` of an anonymous visitor (made on first use)."""
        if self._client is None:
            from gradio_client import Client

            self._client = Client(self.url, verbose=False, download_files=False)
        return self._client

    @property
    def http(self):
        """An `httpx.Client` on the app's base URL (no credentials)."""
        if self._http is None:
            import httpx

            self._http = httpx.Client(base_url=self.url, timeout=60, trust_env=False)
        return self._http

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        if self._http is not None:
            self._http.close()
        stop_app(self.proc, self.runs_dir)


def space_env(tmp: Path, hub: FakeHub, **overrides: str | None) -> dict[str, str]:
    """The environment of a public Space whose owner set HF_TOKEN; `NAME=None` removes a variable."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_", "SPACE", "OAUTH_", "HUST_SFT_", "GRADIO_"))
           and k not in ("SYSTEM", "OPENID_PROVIDER_URL")}
    env.update({
        "SPACE_ID": SPACE, "SPACE_AUTHOR_NAME": OWNER, "SYSTEM": "spaces", "HF_TOKEN": FAKE_TOKEN,
        # What a Space with `hf_oauth: true` receives; the provider is the fake Hub (asked only on a login).
        "OAUTH_CLIENT_ID": "fake-client-id", "OAUTH_CLIENT_SECRET": "fake-client-secret",
        "OAUTH_SCOPES": "openid profile", "OPENID_PROVIDER_URL": hub.url,
        "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_ETAG_TIMEOUT": "5", "HF_HUB_DOWNLOAD_TIMEOUT": "5",
        "HUST_SFT_RUNS": str(tmp / "runs"), "HUST_SFT_DATA_DIR": str(tmp / "data"),
        "HUST_SFT_CACHE": str(tmp / "cache"),
        # Small enough that a test can serve a too-large adapter; the tiny demo adapters are kilobytes.
        "HUST_SFT_MAX_ADAPTER_MB": "1",
        "GRADIO_ANALYTICS_ENABLED": "False", "TOKENIZERS_PARALLELISM": "false",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    })
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def start_space(tmp: Path, hub: FakeHub | None = None, args: tuple[str, ...] = (), **env_overrides) -> Space:
    """Start `python app.py --demo --port P` as a public Space and wait until its page answers."""
    hub = hub or FakeHub()
    tmp.mkdir(parents=True, exist_ok=True)
    env = space_env(tmp, hub, **env_overrides)
    proc, url = start_app(tmp, env, args, timeout_s=START_TIMEOUT_S)
    return Space(url=url, proc=proc, runs_dir=Path(env.get("HUST_SFT_RUNS", tmp / "runs")),
                 data_dir=Path(env.get("HUST_SFT_DATA_DIR", tmp / "data")), tmp=tmp, hub=hub,
                 log_path=tmp / "app.log", env=env)


@contextlib.contextmanager
def running_space(tmp: Path, hub: FakeHub | None = None, args: tuple[str, ...] = (),
                  **env_overrides) -> Iterator[Space]:
    """`start_space` for a fixture: an app that does not start fails the test with its log (no traceback);
    the app is closed when the block ends."""
    import pytest

    try:
        space = start_space(tmp, hub, args, **env_overrides)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield space
    finally:
        space.close()


# ---------------------------------------------------------------------------------------------------
# What the owner left on the Space: runs with adapters, and adapters on the (fake) Hub

SYSTEM_PROMPT = "你是华中科技大学的校园助手。"


def demo_model_dir() -> Path:
    """The tiny model `app.py --demo` answers with (built once per machine, shared with the app)."""
    from hust_sft import demo_model

    return demo_model.build_demo()


def adapter_files(*, r: int = 4, seed: int = 1, base: str | None = None, random_b: bool = True,
                  config_overrides: dict | None = None) -> dict[str, bytes]:
    """adapter_config.json + adapter_model.safetensors of a real LoRA adapter on the demo model.

    `random_b`: LoRA B weights drawn at random (a fresh adapter is the identity: tuned would equal base).
    """
    import tempfile

    from helpers import randomize_lora_b
    from peft import LoraConfig, get_peft_model

    from hust_sft.modeling import load_base_model
    from hust_sft.settings import ModelSettings

    model_dir = str(demo_model_dir())
    model = get_peft_model(load_base_model(ModelSettings(model=model_dir)),
                           LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"]))
    if random_b:
        randomize_lora_b(model, seed)
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        cfg = json.loads((Path(d) / "adapter_config.json").read_text())
        cfg["base_model_name_or_path"] = base or model_dir
        cfg.update(config_overrides or {})
        return {"adapter_config.json": json.dumps(cfg).encode(),
                "adapter_model.safetensors": (Path(d) / "adapter_model.safetensors").read_bytes()}


def make_run(runs_dir: Path, name: str, data: Path, *, files: dict[str, bytes] | None = None,
             train_log: str = "", status: str = "completed", message: str = "") -> Path:
    """A finished run folder as training leaves it: settings.json, run.json (data path + sha256),
    events.jsonl, train.log and adapter/ (a stand-in for the owner's training, which the tests do not
    wait for)."""
    import hashlib

    from hust_sft import settings as S

    run = Path(runs_dir) / name
    (run / "adapter").mkdir(parents=True)
    rs = S.RunSettings()
    rs.model.model, rs.data.data, rs.data.system_prompt = str(demo_model_dir()), str(data), SYSTEM_PROMPT
    rs.retrieval.retrieval = "off"  # a plain run: it saved no retrieval/ index
    rs.train.output, rs.train.runs_dir = str(run), str(runs_dir)
    (run / "settings.json").write_text(json.dumps(S.to_dict(rs), ensure_ascii=False), encoding="utf-8")
    sha = hashlib.sha256(Path(data).read_bytes()).hexdigest()
    from datetime import datetime

    (run / "run.json").write_text(json.dumps({
        "started_at": datetime.now(UTC).isoformat(timespec="microseconds"), "status": status,
        "settings": S.to_dict(rs), "error": message or None,
        "data": {"source": str(data), "path": str(data), "sha256": sha}}), encoding="utf-8")
    (run / "events.jsonl").write_text(
        json.dumps({"type": "status", "status": "running", "time": 1.0}) + "\n"
        + json.dumps({"type": "status", "status": status, "message": message, "time": 2.0}) + "\n",
        encoding="utf-8")
    (run / "train.log").write_text(train_log, encoding="utf-8")
    for fname, body in (files or adapter_files()).items():
        (run / "adapter" / fname).write_bytes(body)
    return run
