"""Issue 9, items 1 and 6: data sources cannot write outside the cache or reach private addresses.

A fake server on 127.0.0.1 plays both a public server (reached with the test-only `allow_loopback`) and an
internal service (reached with the default, which must refuse it). Refusing link-local, private and
metadata addresses is proved by the check that runs before connecting: `socket.create_connection` is
wrapped for every test here so that any attempt to connect anywhere but loopback fails the test instead
of leaving the machine.
"""
from __future__ import annotations

import http.server
import json
import socket
import threading
from pathlib import Path

import pytest

from hust_sft.data import DataError, DataSourceError, fetch, is_url_source, load_data, source_kind, sources
from hust_sft.settings import DataSettings

SAMPLE = Path(__file__).resolve().parents[2] / "hust_sft" / "assets" / "sample_handbook.jsonl"
FETCH_FAILED = "could not fetch the URL (no answer, connection refused or broken, or too slow)"
NOT_PUBLIC = ("the URL (or a redirect) points at an address that is not public (private, loopback, link-local, "
              "multicast, reserved or cloud metadata); only public servers are fetched")


@pytest.fixture(autouse=True)
def connections(monkeypatch):
    """Every address a test's code connects to; connecting anywhere but loopback fails the test."""
    seen = []
    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        seen.append(address[0])
        assert address[0] in ("127.0.0.1", "::1"), f"tried to connect to {address[0]}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    return seen


class FakeServer:
    """An HTTP server on 127.0.0.1: `routes[path] = (status, headers, body)`; `requests` lists the paths asked."""

    def __init__(self):
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                server.requests.append(self.path)
                status, headers, body = server.routes.get(self.path, (404, {}, b"no route"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Transfer-Encoding" in headers:  # chunked: no Content-Length, the cap must count bytes
                    self.end_headers()
                    for i in range(0, len(body), 65536):
                        piece = body[i:i + 65536]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.close()


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ---- item 1: names and the cache ----------------------------------------------------------------

@pytest.mark.parametrize("spec", [
    "modelscope://a/b//abs/path", "modelscope://a/b//tmp/x.jsonl", "modelscope://a/b/x/../../../y.jsonl",
    "modelscope://a/b/./x.jsonl", "modelscope://a/b/x//y.jsonl", "modelscope://a/b/x\\..\\..\\y.jsonl",
    "modelscope://../b/x.jsonl", "modelscope://a/../x.jsonl", "modelscope://.a/b/x.jsonl",
    "modelscope://a/b/", "modelscope://a/b/x\n.jsonl", "modelscope://a/b/x\x00.jsonl", "modelscope://a b/c/x.jsonl",
])
def test_malformed_modelscope_names_are_refused_before_anything_is_written(spec, tmp_path, connections):
    cache = tmp_path / "cache"
    with pytest.raises(DataSourceError) as err:
        fetch(spec, cache_dir=cache, allow_loopback=True)
    assert err.value.reason_key == "data.source.bad_modelscope"
    assert not cache.exists() and connections == []


def test_absolute_modelscope_path_creates_nothing_where_it_points(tmp_path):
    """The attack of the issue: the file part names an absolute path."""
    victim = tmp_path / "victim" / "app.py"
    with pytest.raises(DataSourceError):
        fetch(f"modelscope://a/b/{victim}", cache_dir=tmp_path / "cache")
    with pytest.raises(DataSourceError):
        fetch(f"modelscope://a/b//{victim}", cache_dir=tmp_path / "cache")
    assert not victim.parent.exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("spec,kwargs,key", [
    ("hf://../x", {}, "data.source.bad_hub_id"),
    ("hf://a/..", {}, "data.source.bad_hub_id"),
    ("hf://a/b/../../c.jsonl", {}, "data.source.bad_file"),
    ("hf://a/b//etc/passwd.jsonl", {}, "data.source.bad_file"),
    ("owner/name", {"data_file": "/etc/passwd.jsonl"}, "data.source.bad_file"),
    ("owner/name", {"data_file": "..\\x.jsonl"}, "data.source.bad_file"),
    ("owner/name", {"data_split": "../../../../tmp/x"}, "data.source.bad_split"),
])
def test_hub_names_are_checked_before_any_request(spec, kwargs, key, tmp_path):
    with pytest.raises(DataSourceError) as err:
        fetch(spec, cache_dir=tmp_path / "cache", **kwargs)
    assert err.value.reason_key == key
    assert not (tmp_path / "cache").exists()


def test_a_symlink_inside_the_cache_cannot_lead_outside(server, tmp_path):
    """The cache guard resolves links: a link planted in the cache does not carry a download out of it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    cache = tmp_path / "cache"
    (cache / "modelscope").mkdir(parents=True)
    (cache / "modelscope" / "alice").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DataSourceError) as err:
        fetch("modelscope://alice/hb/x.jsonl", cache_dir=cache, allow_loopback=True)
    assert err.value.reason_key == "data.source.outside_cache"
    assert files_under(outside) == [] and server.requests == []


def test_url_file_names_stay_in_their_cache_folder(server, tmp_path):
    server.routes["/"] = (200, {}, b"x\n")  # httpx sends "/.." as "/"
    server.routes["/a/%2E%2E"] = (200, {}, b"y\n")
    cache = tmp_path / "cache"
    first = fetch(f"{server.base}/..", cache_dir=cache, allow_loopback=True)
    second = fetch(f"{server.base}/a/%2E%2E", cache_dir=cache, allow_loopback=True)
    assert first.name == "data.jsonl" and first.read_bytes() == b"x\n"
    assert second.name == "_2E_2E" and second.read_bytes() == b"y\n"
    assert {p.parent.parent for p in (first, second)} == {cache.resolve() / "http"}


def test_cache_target_is_the_one_guard():
    with pytest.raises(DataSourceError):
        sources.cache_target("s", "/tmp/c", "..", "x")
    with pytest.raises(DataSourceError):
        sources.cache_target("s", "/tmp/c", "/etc/passwd")
    with pytest.raises(DataSourceError):
        sources.cache_target("s", "/tmp/c")
    assert sources.cache_target("s", "/tmp/c", "hub", "a__b", "train.jsonl") == Path(
        "/tmp/c").resolve() / "hub" / "a__b" / "train.jsonl"


@pytest.mark.parametrize("spec,kind", [
    ("https://example.com/d.jsonl", "url"), ("HTTP://example.com/d.jsonl", "url"),
    ("modelscope://a/b/c.jsonl", "modelscope"), ("hf://a/b", "hub"), ("owner/name", "hub"),
    ("data/missing.jsonl", "local"), (str(SAMPLE), "local"), ("", "local"),
])
def test_source_kind(spec, kind):
    assert source_kind(spec) == kind
    assert is_url_source(spec) is (kind == "url")


# ---- item 6: addresses, redirects, size, error texts -----------------------------------------------

@pytest.mark.parametrize("ip", [
    "127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.100.100.200",
    "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "::1", "::",
    "fe80::1", "fe80::1%eth0", "fc00::1", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
    "ff02::1", "198.18.0.1",
])
def test_non_public_addresses_are_refused(ip):
    assert not sources.address_allowed(ip)


@pytest.mark.parametrize("ip", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(ip):
    assert sources.address_allowed(ip)


def test_allow_loopback_admits_loopback_only():
    assert sources.address_allowed("127.0.0.1", allow_loopback=True)
    assert sources.address_allowed("::1", allow_loopback=True)
    for ip in ("169.254.169.254", "10.0.0.1", "192.168.0.1", "0.0.0.0", "fe80::1"):
        assert not sources.address_allowed(ip, allow_loopback=True), ip


@pytest.mark.parametrize("host", ["metadata.google.internal", "METADATA.google.internal.", "metadata",
                                  "localhost", "127.0.0.1", "2130706433", "0x7f.1", "[::1]", "0"])
def test_names_of_private_addresses_are_refused_before_connecting(host, connections):
    with pytest.raises(sources._Refused):
        sources.resolve_public(host, 80)
    assert connections == []


def test_default_refuses_the_loopback_server_without_a_request(server, tmp_path, connections):
    server.routes["/d.jsonl"] = (200, {}, SAMPLE.read_bytes())
    for url in (f"{server.base}/d.jsonl", f"http://localhost:{server.port}/d.jsonl",
                f"http://[::ffff:127.0.0.1]:{server.port}/d.jsonl"):
        with pytest.raises(DataSourceError) as err:
            fetch(url, cache_dir=tmp_path / "cache")
        assert err.value.reason_text("en") == NOT_PUBLIC
    assert server.requests == [] and connections == []
    assert files_under(tmp_path / "cache") == []


@pytest.mark.parametrize("location", [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://10.0.0.7:8080/admin", "http://[fd00:ec2::254]/latest/", "http://0.0.0.0:22/",
])
def test_redirects_to_private_addresses_are_refused_before_connecting(location, server, tmp_path, connections):
    server.routes["/data.jsonl"] = (302, {"Location": location}, b"")
    with pytest.raises(DataSourceError) as err:
        fetch(f"{server.base}/data.jsonl", cache_dir=tmp_path / "cache", allow_loopback=True)
    assert err.value.reason_text("en") == NOT_PUBLIC
    assert server.requests == ["/data.jsonl"]
    assert set(connections) == {"127.0.0.1"}  # the redirect target was never dialled
    assert files_under(tmp_path / "cache") == []


def test_redirects_are_followed_by_hand_and_bounded(server, tmp_path):
    server.routes["/a"] = (301, {"Location": "/b"}, b"")
    server.routes["/b"] = (307, {"Location": f"{server.base}/d.jsonl"}, b"")
    server.routes["/d.jsonl"] = (200, {}, SAMPLE.read_bytes())
    assert fetch(f"{server.base}/a", cache_dir=tmp_path / "c", allow_loopback=True).read_bytes() == \
        SAMPLE.read_bytes()
    server.routes["/loop"] = (302, {"Location": "/loop"}, b"")
    with pytest.raises(DataSourceError) as err:
        fetch(f"{server.base}/loop", cache_dir=tmp_path / "c", allow_loopback=True)
    assert err.value.reason_text("en") == "more than 5 redirects"
    assert server.requests.count("/loop") == 6
    server.routes["/file"] = (302, {"Location": "file:///etc/passwd"}, b"")
    with pytest.raises(DataSourceError) as err:
        fetch(f"{server.base}/file", cache_dir=tmp_path / "c", allow_loopback=True)
    assert err.value.reason_key == "data.source.bad_url"


@pytest.mark.parametrize("chunked", [False, True])
def test_downloads_are_capped(chunked, server, tmp_path, monkeypatch):
    monkeypatch.setenv(sources.MAX_DOWNLOAD_ENV, "1")
    headers = {"Transfer-Encoding": "chunked"} if chunked else {}
    server.routes["/big.jsonl"] = (200, headers, b"x" * (3 * 2**20))
    server.routes["/ok.jsonl"] = (200, headers, b"y" * 2**20)  # exactly at the limit
    cache = tmp_path / "cache"
    with pytest.raises(DataSourceError) as err:
        fetch(f"{server.base}/big.jsonl", cache_dir=cache, allow_loopback=True)
    assert err.value.reason_text("en") == ("the file is larger than 1 MB, the download limit "
                                           "(set HUST_SFT_MAX_DOWNLOAD_MB to change it)")
    assert files_under(cache) == []  # no partial file left
    assert fetch(f"{server.base}/ok.jsonl", cache_dir=cache, allow_loopback=True).stat().st_size == 2**20


def test_error_texts_never_quote_the_response(server, tmp_path):
    secret = {"AccessKeyId": "ASIA-SECRET", "SecretAccessKey": "s3cr3t-value", "Token": "tok"}
    server.routes["/500"] = (500, {"Content-Type": "application/json"}, json.dumps(secret).encode())
    server.routes["/200.jsonl"] = (200, {"Content-Type": "application/json"}, json.dumps(secret).encode())
    with pytest.raises(DataSourceError) as err:
        fetch(f"{server.base}/500", cache_dir=tmp_path / "c", allow_loopback=True)
    texts = [err.value.text(lang) for lang in ("en", "zh")]
    assert "HTTP 500 Internal Server Error" in texts[0]
    # A JSON answer is data: it downloads, but the unknown-format message does not list its keys.
    with pytest.raises(DataError) as derr:
        load_data(DataSettings(data=f"{server.base}/200.jsonl"), cache_dir=tmp_path / "c", allow_loopback=True)
    texts += [derr.value.text(lang) for lang in ("en", "zh")]
    assert "unknown format" in texts[2]
    for text in texts:
        for word in ("AccessKeyId", "SecretAccessKey", "ASIA-SECRET", "s3cr3t", "Token"):
            assert word not in text


def test_closed_and_misbehaving_ports_read_alike(tmp_path):
    """No port-scanner oracle: a closed port and a port that hangs up say the same thing."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def hang_up():
        conn, _ = listener.accept()
        conn.recv(1024)
        conn.sendall(b"SSH-2.0-OpenSSH_9.6 banner\r\n")  # not HTTP: its text must not come back
        conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    reasons = []
    for port in (closed, listener.getsockname()[1]):
        with pytest.raises(DataSourceError) as err:
            fetch(f"http://127.0.0.1:{port}/d.jsonl", cache_dir=tmp_path / "c", allow_loopback=True)
        reasons.append(err.value.reason_text("en"))
    listener.close()
    assert reasons == [FETCH_FAILED, FETCH_FAILED]


def test_the_connecting_backend_checks_addresses_itself(connections):
    """The second check, at connect time on the resolved addresses: a name that resolves differently
    after the first check (DNS rebinding) is still refused before a socket is opened."""
    backend = sources._CheckedBackend(allow_loopback=False)
    for host in ("127.0.0.1", "localhost", "169.254.169.254", "10.0.0.1"):
        with pytest.raises(sources._Refused):
            backend.connect_tcp(host, 80, timeout=1.0)
    assert connections == []
