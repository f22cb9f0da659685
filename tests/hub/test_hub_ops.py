"""Sessions, tokens and operations (issue #13, items 7, 16, 17): CSRF-protected forms and revocable sessions,
token expiry and revocation from the CLI, an access log without secrets, a private data directory, a
request-header deadline, and every kind of remote code in the banner and the audit."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import stat
import subprocess
import sys
import time

import httpx2 as httpx
import pytest
from huggingface_hub import HfApi

from hub_server import HubSettings, running_hub
from hub_server.cli import main as hub_cli
from resnet_toolkit.audit import collect_code_files
from resnet_toolkit.remote import Source
from resnet_toolkit.remote_code import code_references

# --------------------------------------------------------------------------- 16. login CSRF, sessions


def _login_form(client: httpx.Client) -> str:
    page = client.get("/login")
    assert "hub_csrf" in client.cookies
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_login_needs_this_browsers_csrf_token_and_same_origin(hub, alice):
    with httpx.Client(base_url=hub.url) as browser, httpx.Client(base_url=hub.url) as attacker:
        token = _login_form(browser)
        foreign = _login_form(attacker)
        for data, headers in (
            ({"token": alice}, {}),  # no token
            ({"token": alice, "csrf": foreign}, {}),  # another browser's token
            ({"token": alice, "csrf": token}, {"origin": "https://evil.example"}),
            ({"token": alice, "csrf": token}, {"sec-fetch-site": "cross-site"}),
        ):
            r = browser.post("/login", data=data, headers=headers)
            assert r.status_code == 403 and "hub_session" not in browser.cookies
        r = browser.post("/login", data={"token": alice, "csrf": token}, headers={"x-forwarded-proto": "https"})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie
        assert alice not in cookie


def test_logout_needs_csrf_and_ends_the_session_server_side(hub, alice):
    with httpx.Client(base_url=hub.url) as browser:
        token = _login_form(browser)
        assert browser.post("/login", data={"token": alice, "csrf": token}).status_code == 303
        session = browser.cookies["hub_session"]
        assert "Signed in as" in browser.get("/").text
        assert browser.post("/logout").status_code == 403
        assert "Signed in as" in browser.get("/").text
        assert browser.post("/logout", data={"csrf": token}).status_code == 303
    with httpx.Client(base_url=hub.url, cookies={"hub_session": session}) as replay:
        assert "Signed in as" not in replay.get("/").text


# --------------------------------------------------------------------------- 17. tokens from the CLI


def _cli(root, *args: str, capsys) -> tuple[int, str]:
    code = hub_cli([*args, "--root", str(root)])
    return code, capsys.readouterr().out


def test_tokens_expire_and_are_listed_and_revoked_from_the_cli(tmp_path, capsys):
    root = tmp_path / "root"
    code, out = _cli(root, "add-user", "gina", "--expires-in", "30", capsys=capsys)
    assert code == 0 and "expires" in out
    first = out.strip().splitlines()[-1]
    _, out = _cli(root, "add-user", "gina", capsys=capsys)
    second = out.strip().splitlines()[-1]
    with running_hub(root) as hub:
        api = HfApi(endpoint=hub.url, token=first)
        assert api.whoami()["name"] == "gina"
        _, listing = _cli(root, "list-tokens", capsys=capsys)
        assert first not in listing and second not in listing and len(listing.strip().splitlines()) == 3
        assert _cli(root, "revoke-token", first, capsys=capsys)[0] == 0
        assert httpx.get(f"{hub.url}/api/whoami-v2", headers={"authorization": f"Bearer {first}"}).status_code == 401
        assert _cli(root, "revoke-token", first, capsys=capsys)[0] == 1  # already revoked
        expired = hub.storage.meta.create_token("gina", expires_at=dt.datetime.now(dt.timezone.utc))
        assert httpx.get(f"{hub.url}/api/whoami-v2", headers={"authorization": f"Bearer {expired}"}).status_code == 401
        with httpx.Client(base_url=hub.url) as browser:
            csrf = _login_form(browser)
            assert browser.post("/login", data={"token": second, "csrf": csrf}).status_code == 303
            assert _cli(root, "revoke-token", "--user", "gina", capsys=capsys)[0] == 0
            assert "Signed in as" not in browser.get("/").text  # the user's sessions ended with the tokens
        assert httpx.get(f"{hub.url}/api/whoami-v2", headers={"authorization": f"Bearer {second}"}).status_code == 401
    assert hub_cli(["add-user", "gina", "--expires-in", "0", "--root", str(root)]) == 2


def test_the_data_directory_is_private(hub):
    assert stat.S_IMODE(hub.storage.root.stat().st_mode) == 0o700
    assert stat.S_IMODE((hub.storage.root / "secret.key").stat().st_mode) == 0o600


# --------------------------------------------------------------------------- 17. access log, header deadline


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_access_log_at_the_default_level_without_tickets(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub_server", "serve", "--root", str(tmp_path / "r"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):  # wait for the server to answer (as test_hub_crash does)
            if proc.poll() is not None:
                break
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/models?search=probe", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        secret = "SECRETTICKET123"
        url = f"http://127.0.0.1:{port}/a/b.git/info/lfs/objects/{'0' * 64}?size=1&ticket={secret}"
        assert httpx.get(url, timeout=10).status_code in (403, 404)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    lines = [line for line in err.splitlines() if "hub_server.access" in line]
    assert any("/info/lfs/objects/" in line and "ticket=REDACTED" in line for line in lines), err[-2000:]
    assert secret not in err


def test_slow_request_headers_are_cut_off(tmp_path):
    settings = HubSettings(root=tmp_path / "r", header_timeout=1)
    with running_hub(tmp_path / "r", settings=settings) as hub:
        host, port = hub.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            sock.sendall(b"GET /api/models HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            assert sock.recv(1024) == b""  # the server closed the connection
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            sock.sendall(b"GET /api/models HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")


# --------------------------------------------------------------------------- 7. every kind of remote code


CONFIGS = {
    "config.json": {
        "auto_map": {"AutoConfig": "configuration_x.XConfig", "AutoModel": "bob/code--modeling_x.XModel"},
        "custom_pipelines": {"x-task": {"impl": "pipeline_x.XPipeline", "pt": ["AutoModel"]}},
    },
    "preprocessor_config.json": {"auto_map": {"AutoImageProcessor": "processing_x.XImageProcessor"}},
    "tokenizer_config.json": {"auto_map": {"AutoTokenizer": ["tokenization_x.XTokenizer", None]}},
    "processor_config.json": {"auto_map": {"AutoProcessor": "processor_x.XProcessor"}},
}


def test_code_references_cover_processors_tokenizers_and_pipelines():
    refs = {(r.source, r.key, r.module_file, r.class_name, r.repo) for r in code_references(CONFIGS)}
    assert refs == {
        ("config.json", "AutoConfig", "configuration_x.py", "XConfig", None),
        ("config.json", "AutoModel", "modeling_x.py", "XModel", "bob/code"),
        ("config.json", "custom_pipelines.x-task", "pipeline_x.py", "XPipeline", None),
        ("preprocessor_config.json", "AutoImageProcessor", "processing_x.py", "XImageProcessor", None),
        ("tokenizer_config.json", "AutoTokenizer", "tokenization_x.py", "XTokenizer", None),
        ("processor_config.json", "AutoProcessor", "processor_x.py", "XProcessor", None),
    }
    legacy = code_references({"tokenizer_config.json": {"auto_map": ["tok.Slow", "tok.Fast"]}})
    assert [(r.key, r.class_name) for r in legacy] == [("AutoTokenizer", "Slow"), ("AutoTokenizer", "Fast")]


def test_banner_and_audit_list_code_outside_config_auto_map(hub, repo, tmp_path):
    api, repo_id = repo
    configs = {k: v for k, v in CONFIGS.items() if k != "config.json"}
    configs["config.json"] = {"custom_pipelines": CONFIGS["config.json"]["custom_pipelines"]}
    for name, data in configs.items():
        api.upload_file(path_or_fileobj=json.dumps(data).encode(), path_in_repo=name, repo_id=repo_id)
        (tmp_path / name).write_text(json.dumps(data))
    page = httpx.get(f"{hub.url}/{repo_id}", timeout=60).text
    assert "data-remote-code" in page
    for text in ("XPipeline", "XImageProcessor", "XTokenizer", "XProcessor", "preprocessor_config.json"):
        assert text in page, text
    for module in ("pipeline_x", "processing_x", "tokenization_x", "processor_x"):
        (tmp_path / f"{module}.py").write_text("X = 1\n")
    files = {f.path for f in collect_code_files(Source(location=str(tmp_path), is_local=True))}
    assert files == {"pipeline_x.py", "processing_x.py", "tokenization_x.py", "processor_x.py"}


@pytest.mark.parametrize("name", ["config.json", "tokenizer_config.json"])
def test_no_banner_without_remote_code(hub, repo, name):
    api, repo_id = repo
    api.upload_file(path_or_fileobj=b'{"model_type": "bert"}', path_in_repo=name, repo_id=repo_id)
    assert "data-remote-code" not in httpx.get(f"{hub.url}/{repo_id}", timeout=60).text
