"""Helpers of tests/security: the app as a public Hugging Face Space, attacked from outside: a real
`python app.py --demo` subprocess.

`space` (session scope) starts it with the variables a Space sets (SPACE_ID, SPACE_AUTHOR_NAME,
SYSTEM=spaces, OAUTH_*), a fake owner token in HF_TOKEN, and HF_ENDPOINT pointing at `FakeHub`: a tiny
HTTP server on 127.0.0.1 that logs every request (method, path, Authorization header) and answers 404
(or what a test registers). Tests talk to the app only through its public surface — `gradio_client`
and plain HTTP (`httpx`) — as an anonymous visitor would, and read `space.hub.requests` to see which
Hub calls the app made and with which credentials. All traffic stays on 127.0.0.1.

`start_space(tmp, **env)` starts another instance with other variables (e.g. a Space without SYSTEM).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FAKE_TOKEN = "hf_fakeOwnerToken0123456789abcdefABCDEF"
OWNER = "owner"
SPACE = f"{OWNER}/space"
START_TIMEOUT_S = 240


@dataclass
class HubRequest:
    method: str
    path: str
    authorization: str | None


class FakeHub:
    """A stand-in for huggingface.co on 127.0.0.1: logs every request; serves registered routes, else 404.

    `routes[path] = (status, headers, body bytes)` (path without the query string). `whoami` answers as the
    token's user, `OWNER`, as the real Hub would for the owner's token (Gradio's mock login asks it).
    """

    def __init__(self):
        self.requests: list[HubRequest] = []
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                with hub._lock:
                    hub.requests.append(HubRequest(self.command, self.path, self.headers.get("Authorization")))
                path = self.path.split("?", 1)[0]
                if path in hub.routes:
                    status, headers, body = hub.routes[path]
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
        try:
            from hust_sft import jobs

            jobs.stop(self.runs_dir, grace_s=5, wait=True)
        except Exception:  # noqa: BLE001 - no job, or already gone
            pass
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    import httpx

    hub = hub or FakeHub()
    tmp.mkdir(parents=True, exist_ok=True)
    env = space_env(tmp, hub, **env_overrides)
    port = free_port()
    log_path = tmp / "app.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--demo", "--port", str(port), *args],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    space = Space(url=url, proc=proc, runs_dir=Path(env.get("HUST_SFT_RUNS", tmp / "runs")),
                  data_dir=Path(env.get("HUST_SFT_DATA_DIR", tmp / "data")), tmp=tmp, hub=hub,
                  log_path=log_path, env=env)
    deadline = time.time() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}:\n{space.log()[-4000:]}")
        try:
            if httpx.get(url + "/config", timeout=2, trust_env=False).status_code == 200:
                return space
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            space.close()
            raise RuntimeError(f"app.py did not answer within {START_TIMEOUT_S} s:\n{space.log()[-4000:]}")
        time.sleep(0.5)


