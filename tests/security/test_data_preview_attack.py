"""Issue 9, items 1 and 6 against the running app: /data_preview, called anonymously, cannot write outside
the data cache, cannot make the server fetch a loopback URL, and reads nothing of an answer back — on the
public Space (where previews are the owner's) and on one whose owner opened it to everyone, where only the
data-source guards (hust_sft/data/sources.py) stand in the way.

The "internal service" is a fake on 127.0.0.1 holding fake credentials; it must receive no request.
"""
from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest

from hust_sft.i18n import t

SECRET = {"AccessKeyId": "ASIA-FAKE-KEY", "SecretAccessKey": "fake-secret-value", "Token": "fake-token"}


@pytest.fixture
def internal_service():
    """A loopback 'metadata service' that logs every request and answers with fake credentials."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            body = json.dumps(SECRET).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module", params=["visitor", "open"])
def any_space(request, space, fake_hub, tmp_path_factory):
    """The public Space as an anonymous visitor sees it (previews are the owner's), and a Space whose owner
    opened training to everyone (HUST_SFT_OPEN_TRAINING=1), where only the data-source guards stand."""
    if request.param == "visitor":
        yield "visitor", space
        return
    from public_space import running_space

    with running_space(tmp_path_factory.mktemp("open-space"), fake_hub, HUST_SFT_OPEN_TRAINING="1") as opened:
        yield "open", opened


def preview(space, source: str) -> str:
    """The report text /data_preview answers for `source` (the table is empty on an error)."""
    _table, report = space.client.predict("en", source, api_name="/data_preview")
    return report


def files_in(folder: Path) -> set[Path]:
    return set(folder.rglob("*")) if folder.exists() else set()


def test_modelscope_path_attack_writes_nothing_outside_the_cache(any_space, tmp_path):
    mode, space = any_space
    """`modelscope://a/b//abs/path` used to join an absolute path onto the cache and create it."""
    target = tmp_path / "victim" / "app.py"
    escape = tmp_path / "escape.jsonl"
    up = "../" * (len(tmp_path.parts) + 8)  # enough '..' to climb from the cache to / and back down
    before = files_in(space.tmp)
    for source in (f"modelscope://a/b/{target}", f"modelscope://a/b//{target}",
                   f"modelscope://a/b/{up}{str(escape).lstrip('/')}", "modelscope://a/b/x\\..\\..\\y.jsonl"):
        report = preview(space, source)
        assert "Traceback" not in report
        if mode == "open":  # nothing else stands in the way: the name check refuses it
            assert t("data.source.bad_modelscope", "en") in report
    assert not target.parent.exists() and not escape.exists()
    cache = space.tmp / "cache"
    assert [p for p in files_in(space.tmp) - before if p != cache and cache not in p.parents] == []


def test_loopback_url_is_never_fetched_and_nothing_is_echoed(any_space, internal_service):
    mode, space = any_space
    base, seen = internal_service
    port = base.rsplit(":", 1)[1]
    for source in (f"{base}/latest/meta-data/iam/security-credentials/", f"http://localhost:{port}/x.jsonl",
                   f"http://[::ffff:127.0.0.1]:{port}/x.jsonl"):
        report = preview(space, source)
        for word in ("AccessKeyId", "SecretAccessKey", "ASIA-FAKE-KEY", "fake-secret-value", "ConnectError"):
            assert word not in report
    assert seen == []  # the server never sent the internal service a request
