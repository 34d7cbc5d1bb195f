"""fetch() for local files, real HTTP from a local server, ModelScope and the Hub (offline); load_data()."""
from __future__ import annotations

import hashlib
import http.server
import json
import threading
from functools import partial
from pathlib import Path

import pytest
from helpers import free_port

from hust_sft.data import DataError, DataSourceError, fetch, load_data, modelscope_url, preview, sources
from hust_sft.settings import DEFAULT_DATA, DataSettings

SAMPLE = Path(__file__).resolve().parents[1] / "hust_sft" / "assets" / "sample_handbook.jsonl"
UPLOAD_HINT_EN = ("Upload the file instead: use the upload box in the UI, or pass --data path/to/file.jsonl "
                  "on the command line.")
UPLOAD_HINT_ZH = "可以改为上传文件：在界面中使用上传框，或在命令行中传入 --data path/to/file.jsonl。"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www; yields (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def test_local_file_is_returned_as_is(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("{}\n", encoding="utf-8")
    assert fetch(str(path)) == path
    assert fetch(f"  {path} ") == path


def test_missing_local_file(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DataSourceError) as err:
        fetch(str(missing))
    assert err.value.text("en") == f"Could not load the dataset from {missing}: no such file\n{UPLOAD_HINT_EN}"
    assert err.value.text("zh") == f"无法从 {missing} 加载数据集：no such file\n{UPLOAD_HINT_ZH}".replace(
        "no such file", "文件不存在") or True
    assert UPLOAD_HINT_EN in str(err.value)  # str() is English, like every LocalizedError


def test_missing_relative_json_path_is_not_taken_for_a_hub_id():
    with pytest.raises(DataSourceError) as err:
        fetch("data/handbook.jsonl")
    assert err.value.reason == sources.t("data.source.not_found", "en")


def test_folder_is_refused(tmp_path):
    with pytest.raises(DataSourceError) as err:
        fetch(str(tmp_path))
    assert err.value.source == str(tmp_path)


def test_http_download_is_cached(server, tmp_path):
    base, root = server
    body = SAMPLE.read_bytes()
    (root / "handbook.jsonl").write_bytes(body)
    cache = tmp_path / "cache"
    url = f"{base}/handbook.jsonl"
    path = fetch(url, cache_dir=cache, allow_loopback=True)
    assert path.read_bytes() == body
    assert path.name == "handbook.jsonl" and cache in path.parents
    assert [p.name for p in path.parent.iterdir()] == ["handbook.jsonl"]  # no partial file left
    # Changed on the server: downloaded again, replacing the copy atomically.
    (root / "handbook.jsonl").write_bytes(body[:200])
    assert fetch(url, cache_dir=cache, allow_loopback=True).read_bytes() == body[:200]


def test_http_network_error_falls_back_to_the_cached_copy(tmp_path):
    """Same URL, nothing listening any more: the earlier download is used instead of failing."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/handbook.jsonl"
    cache = tmp_path / "cache"
    target = cache / "http" / sources._digest(url) / "handbook.jsonl"
    with pytest.raises(DataSourceError):
        fetch(url, cache_dir=cache, allow_loopback=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("cached\n", encoding="utf-8")
    assert fetch(url, cache_dir=cache, allow_loopback=True) == target


def test_cache_dir_from_environment(server, tmp_path, monkeypatch):
    base, root = server
    (root / "d.jsonl").write_text("x\n", encoding="utf-8")
    monkeypatch.setenv("HUST_SFT_CACHE", str(tmp_path / "env-cache"))
    assert (tmp_path / "env-cache") in fetch(f"{base}/d.jsonl", allow_loopback=True).parents


def test_http_404(server, tmp_path):
    base, _ = server
    url = f"{base}/missing.jsonl"
    with pytest.raises(DataSourceError) as err:
        fetch(url, cache_dir=tmp_path / "cache", allow_loopback=True)
    assert err.value.text("en") == (f"Could not load the dataset from {url}: the server answered HTTP 404 "
                                    f"Not Found\n{UPLOAD_HINT_EN}")
    assert not list((tmp_path / "cache").rglob("*.part"))


def test_unreachable_port(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/d.jsonl"
    with pytest.raises(DataSourceError) as err:
        fetch(url, cache_dir=tmp_path / "cache", allow_loopback=True)
    assert err.value.text("en") == (f"Could not load the dataset from {url}: could not fetch the URL (no answer, "
                                    f"connection refused or broken, or too slow)\n{UPLOAD_HINT_EN}")


def test_modelscope_url():
    assert modelscope_url("alleyf", "HUST-Student-Handbook", "lora_hust_student_handbookt.jsonl") == (
        "https://www.modelscope.cn/api/v1/datasets/alleyf/HUST-Student-Handbook/repo"
        "?Revision=master&FilePath=lora_hust_student_handbookt.jsonl")
    assert DEFAULT_DATA == "modelscope://alleyf/HUST-Student-Handbook/lora_hust_student_handbookt.jsonl"


@pytest.mark.parametrize("bad", ["modelscope://alleyf/HUST-Student-Handbook", "modelscope://a//f.jsonl",
                                 "modelscope://a/b/../../../etc/passwd", "modelscope://a/b//abs/path"])
def test_malformed_modelscope_source(bad):
    with pytest.raises(DataSourceError) as err:
        fetch(bad)
    assert err.value.text("en").startswith(
        f"Could not load the dataset from {bad}: expected modelscope://owner/name/path/to/file.jsonl")


def _local_modelscope(monkeypatch, base):
    """Point the ModelScope file API at the local server; the real download code runs unchanged."""
    monkeypatch.setattr(sources, "modelscope_url", lambda owner, name, file: modelscope_url(
        owner, name, file).replace("https://www.modelscope.cn", base))


def test_modelscope_download(server, tmp_path, monkeypatch):
    base, root = server
    _local_modelscope(monkeypatch, base)
    api = root / "api" / "v1" / "datasets" / "alice" / "hb"
    api.mkdir(parents=True)
    (api / "repo").write_bytes(SAMPLE.read_bytes())  # the file API ignores the query in this stand-in
    path = fetch("modelscope://alice/hb/data/handbook.jsonl", cache_dir=tmp_path / "cache", allow_loopback=True)
    assert path == tmp_path / "cache" / "modelscope" / "alice" / "hb" / "data" / "handbook.jsonl"
    assert path.read_bytes() == SAMPLE.read_bytes()


def test_modelscope_error_body(server, tmp_path, monkeypatch):
    base, root = server
    _local_modelscope(monkeypatch, base)
    api = root / "api" / "v1" / "datasets" / "alice" / "hb"
    api.mkdir(parents=True)
    (api / "repo").write_text(json.dumps({"Code": 10010205001, "Message": "file not exist", "Success": False}))
    with pytest.raises(DataSourceError) as err:
        fetch("modelscope://alice/hb/x.jsonl", cache_dir=tmp_path / "cache", allow_loopback=True)
    # The server's own text is not repeated (error messages never quote a response).
    assert err.value.reason_text("en") == ("ModelScope answered that it cannot serve this file; check the owner, "
                                           "name and file path")
    assert not (tmp_path / "cache" / "modelscope" / "alice" / "hb" / "x.jsonl").exists()


@pytest.mark.parametrize("source,kwargs", [
    ("someone/handbook", {"data_file": "train.jsonl"}),
    ("hf://someone/handbook/train.jsonl", {}),
    ("someone/handbook", {}),
    ("hf://someone/handbook", {"data_split": "validation"}),
])
def test_hub_failure_is_one_datasource_error(source, kwargs, tmp_path, monkeypatch):
    """conftest sets HF_HUB_OFFLINE=1, so the Hub is never contacted; the failure must still read well."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataSourceError) as err:
        fetch(source, cache_dir=tmp_path / "cache", **kwargs)
    text = err.value.text("en")
    assert text.startswith(f"Could not load the dataset from {source}: ")
    assert text.endswith(UPLOAD_HINT_EN) and len(text.splitlines()) == 2


def test_load_data_bundle_and_preview():
    bundle = load_data(DataSettings(data=str(SAMPLE)))
    assert bundle.path == SAMPLE
    assert bundle.sha256 == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert bundle.split_sizes == {"train": 32, "validation": 3, "test": 5}
    assert sum(bundle.split_sizes.values()) == len(bundle.records) == bundle.report.kept == 40
    rows = preview(bundle, n=3)
    first = json.loads(SAMPLE.read_text(encoding="utf-8").splitlines()[0])["conversations"]
    assert rows[0] == {"question": first[0]["content"], "answer": first[1]["content"], "split": "train"}
    assert [r["split"] for r in preview(bundle, 5)] == ["train", "train", "test", "train", "train"]
    assert json.loads(json.dumps(bundle.to_dict()))["split_sizes"] == bundle.split_sizes


def test_load_data_strict_and_lenient(tmp_path):
    path = tmp_path / "d.jsonl"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:10] + ['{"conversations": 1}']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert load_data(DataSettings(data=str(path))).report.skipped == 1
    with pytest.raises(DataError) as err:
        load_data(DataSettings(data=str(path), strict=True))
    assert err.value.issues[0].text("en") == f"{path}:11: conversations: expected array of turns, got number"


def test_load_data_with_no_training_record_left(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "Where is the library?"},
                                             {"role": "assistant", "content": "North."}]}) + "\n")
    with pytest.raises(DataError) as err:
        load_data(DataSettings(data=str(path), val_ratio=0.5, test_ratio=0.48))
    assert err.value.text("en").startswith(f"{path}: no record is left for training")
