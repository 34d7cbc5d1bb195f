"""Issue 19: Gradio's own routes and the sign-in, attacked on the running public Space as an anonymous visitor.

- /gradio_api/upload: over HUST_SFT_MAX_UPLOAD is refused (413) and nothing is kept; a file name can not
  place the file outside Gradio's upload folder.
- /gradio_api/file=: encoded, doubled and `..` paths, /proc, and a symlink planted inside Gradio's own
  upload folder never reach a file outside it.
- A file input (the Evaluate tab's OOD file) takes only files uploaded to Gradio, never a server path a
  visitor writes into the request.
- The owner is known only from the session cookie the Hub's OAuth sets, signed with the Space's
  OAUTH_CLIENT_SECRET: a cookie signed with another key, an `oauth_token` in the request body, and
  identity headers do not make a visitor the owner (a cookie signed with the real key does: the control).
"""
from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from pathlib import Path

import httpx
from helpers import wait_for

from hust_sft.i18n import t

from public_space import FAKE_TOKEN, OWNER


def upload(space, name: str, body: bytes) -> httpx.Response:
    return space.http.post("/gradio_api/upload", files={"files": (name, body)})


def test_uploads_over_the_limit_are_refused_and_names_cannot_leave_the_upload_folder(space, tmp_path):
    big = b"{}\n" * (50 * 1024 * 1024 // 3 + 1)  # just over the default 50mb
    response = upload(space, "big.jsonl", big)
    assert response.status_code == 413
    target = tmp_path / "planted.txt"
    for name in (f"../../../../../..{target}", str(target), f"..\\..\\..\\{target.name}", "%2e%2e%2fx.txt"):
        response = upload(space, name, b"hello")
        assert response.status_code == 200, response.text
        [stored] = response.json()
        folder = Path(stored).parent  # <Gradio's upload folder>/<sha256 of the content>/<a name>
        assert Path(stored).resolve().parent == folder and len(folder.name) == 64, stored
    assert not target.exists()


def test_the_file_route_serves_nothing_outside_gradio_s_folder_however_the_path_is_spelled(space, tmp_path):
    secret = space.runs_dir / "owner-secret.txt"
    secret.write_text("owner's secret", encoding="utf-8")
    [stored] = upload(space, "probe.txt", b"probe").json()  # where Gradio keeps uploads on this machine
    upload_dir = stored.rsplit("/", 2)[0]
    link = Path(upload_dir) / ("0" * 64) / f"link-{uuid.uuid4().hex}.txt"  # Gradio's folder is machine-wide
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(secret)  # as if something had left a symlink in Gradio's folder
    up = "/..%2f" * 12
    for path in (str(secret), str(secret).replace("/", "%2F"), str(secret).replace("/", "%252F"),
                 f"{upload_dir}/../../..{secret}", f"{upload_dir}{up}{secret}", f"{upload_dir}/%2e%2e/%2e%2e{secret}",
                 str(link), "/proc/self/environ", "/proc/self/cmdline", f"file://{secret}"):
        response = space.http.get("/gradio_api/file=" + path)
        assert response.status_code in (403, 404), (path, response.status_code)
        assert b"owner's secret" not in response.content and FAKE_TOKEN.encode() not in response.content
    link.unlink()
    assert space.http.get("/gradio_api/file=" + stored).content == b"probe"  # the route itself works


def call(space, api_name: str, data: list, *, headers: dict | None = None, **body) -> dict:
    """One call by hand, as a script on another machine sends it (gradio_client would upload a local file
    itself): the queue's join request (with `body`'s extra fields) and its event stream; the final message."""
    config = space.http.get("/config").json()
    fn_index = next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == api_name)
    params = space.client.view_api(print_info=False, return_format="dict")["named_endpoints"][f"/{api_name}"]
    defaults = [p.get("parameter_default") for p in params["parameters"]]
    session = uuid.uuid4().hex[:12]
    join = {"data": data + defaults[len(data):], "fn_index": fn_index, "session_hash": session,
            "trigger_id": None, **body}
    with httpx.Client(base_url=space.url, timeout=120, trust_env=False, headers=headers or {}) as http:
        response = http.post("/gradio_api/queue/join", json=join)
        if response.status_code != 200:
            return {"join_status": response.status_code, "detail": response.text}
        with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:") and '"process_completed"' in line:
                    return json.loads(line[5:])
    raise AssertionError("no answer")


def test_a_file_input_takes_no_server_path(space):
    """A FileData naming a file of the server (not one uploaded to Gradio) is refused before any handler."""
    secret = space.runs_dir / "owner-ood.jsonl"
    secret.write_text(json.dumps({"conversations": [{"role": "user", "content": "秘密问题"},
                                                    {"role": "assistant", "content": "秘密答案"}]}) + "\n")
    [stored] = upload(space, "probe.jsonl", b"{}").json()
    link = Path(stored).parent / f"link-{uuid.uuid4().hex}.jsonl"
    link.symlink_to(secret)  # a symlink inside Gradio's upload folder leads out of it: refused too
    for path in (str(secret), str(link), f"{Path(stored).parent}/../../..{secret}"):
        ood = {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "ood.jsonl"}
        refusals = space.log().count("it was not uploaded by a user")
        answer = call(space, "evaluate", ["en", None, "", ood, 2, 1, 100, 4])
        assert answer.get("success") is False, answer
        wait_for(lambda n=refusals: space.log().count("it was not uploaded by a user") > n, timeout=10,
                 what="Gradio's refusal in the app log")  # refused by Gradio, before the handler
        assert "秘密" not in json.dumps(answer, ensure_ascii=False)
    link.unlink()
    assert not list(space.runs_dir.glob("*/eval*/*ood*"))


def session_cookie(key_source: str, username: str) -> str:
    """A Starlette session cookie holding Gradio's `oauth_info` for `username`, signed with the key Gradio
    derives from `key_source` (its OAUTH_CLIENT_SECRET)."""
    from itsdangerous import TimestampSigner

    info = {"oauth_info": {"access_token": FAKE_TOKEN, "scope": "openid profile", "expires_at": time.time() + 3600,
                           "userinfo": {"preferred_username": username, "name": username, "sub": "1",
                                        "profile": f"https://huggingface.co/{username}", "picture": ""}}}
    key = hashlib.sha256((key_source + "-v4").encode()).hexdigest()
    return TimestampSigner(key).sign(base64.b64encode(json.dumps(info).encode())).decode()


def preview_as(space, *, cookie: str | None = None, headers: dict | None = None, **body) -> str:
    """/data_preview's answer (its report, or the error) for a caller with this session cookie, these
    headers and these extra body fields."""
    headers = {**(headers or {}), **({"Cookie": f"session={cookie}"} if cookie else {})}
    answer = call(space, "data_preview", ["en"], headers=headers, **body)
    output = answer.get("output") or {}
    data = output.get("data")
    return data[1] if data else json.dumps(answer, ensure_ascii=False)


def test_forged_sign_ins_do_not_make_a_visitor_the_owner(space):
    locked = t("ui.lock.login", "en", owner=OWNER)
    for key in ("", "fake-client-secret-guess", "hf_oauth"):
        assert preview_as(space, cookie=session_cookie(key, OWNER)) == locked
    assert preview_as(space, cookie="e30=.forged.signature") == locked
    assert preview_as(space, headers={"Authorization": f"Bearer {FAKE_TOKEN}", "X-Forwarded-User": OWNER,
                                      "X-Hf-User": OWNER, "X-Remote-User": OWNER, "Remote-User": OWNER}) == locked
    forged = {"oauth_token": FAKE_TOKEN, "username": OWNER, "oauth_profile": {"preferred_username": OWNER},
              "event_data": {"username": OWNER}}
    assert preview_as(space, **forged) == locked
    # The control: the same cookie signed with the Space's real OAUTH_CLIENT_SECRET is the owner's sign-in.
    owner = preview_as(space, cookie=session_cookie(space.env["OAUTH_CLIENT_SECRET"], OWNER))
    assert owner != locked and "sample_handbook.jsonl" in owner, owner
    assert FAKE_TOKEN not in space.log()
