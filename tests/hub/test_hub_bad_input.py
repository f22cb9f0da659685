"""Bad input is refused with a 4xx and a message, and nothing is written."""

from __future__ import annotations

import base64
import hashlib
import json

import httpx2 as httpx
import pytest


def _ndjson(*lines: dict) -> bytes:
    return b"\n".join(json.dumps(line).encode() for line in lines)


def _header(**extra) -> dict:
    return {"key": "header", "value": {"summary": "test", "description": "", **extra}}


def _file(path: str, data: bytes = b"x") -> dict:
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


def _commit(hub, token, repo_id, body: bytes, **headers) -> httpx.Response:
    return httpx.post(
        f"{hub.url}/api/models/{repo_id}/commit/main",
        content=body,
        headers={"authorization": f"Bearer {token}", "content-type": "application/x-ndjson", **headers},
        timeout=60,
    )


BAD_PATHS = [
    "../x",
    "a/../../x",
    "/etc/passwd",
    "a\\b",
    ".git/config",
    "sub/.git/hooks/x",
    "a//b",
    "./a",
    "",
    "a/",
    "x\x00y",
]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_bad_paths_are_refused(hub, alice, repo, path):
    api, repo_id = repo
    head = api.model_info(repo_id).sha
    r = _commit(hub, alice, repo_id, _ndjson(_header(), _file("ok.txt"), _file(path)))
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"] and r.headers["x-error-code"]
    assert api.model_info(repo_id).sha == head


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"key": "header"}',
        _ndjson(_file("a.txt")),
        _ndjson(_header(), {"key": "file", "value": {"path": "a.txt", "content": "***notbase64***"}}),
        _ndjson(_header(), {"key": "unknown", "value": {"path": "a.txt"}}),
        _ndjson(_header(), {"key": "lfsFile", "value": {"path": "a.bin", "algo": "sha256", "oid": "abc", "size": 1}}),
        _ndjson(
            _header(), {"key": "lfsFile", "value": {"path": "a.bin", "algo": "sha256", "oid": "a" * 64, "size": 1}}
        ),
        _ndjson(_header(), {"key": "deletedFile", "value": {"path": "missing.txt"}}),
        _ndjson(_header(parentCommit="zzzz")),
        _ndjson(_header(), _file("a"), _file("a/b")),
        b"",
    ],
)
def test_malformed_commits_are_refused(hub, alice, repo, body):
    api, repo_id = repo
    head = api.model_info(repo_id).sha
    r = _commit(hub, alice, repo_id, body)
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["x-error-code"]
    assert api.model_info(repo_id).sha == head


def test_large_inline_file_is_streamed(hub, alice, repo):
    api, repo_id = repo
    data = bytes(range(256)) * 8192  # 2 MiB: over the single-line parsing threshold
    r = _commit(hub, alice, repo_id, _ndjson(_header(), _file("big.dat", data), _file("small.txt", b"s")))
    assert r.status_code == 200, r.text
    (entry,) = api.get_paths_info(repo_id, ["big.dat"])
    assert entry.size == len(data)
    got = httpx.get(f"{hub.url}/{repo_id}/resolve/main/big.dat", headers={"authorization": f"Bearer {alice}"})
    assert got.content == data


def test_lfs_upload_with_wrong_content_is_refused(hub, alice, repo):
    api, repo_id = repo
    data = b"real content" * 100
    oid = hashlib.sha256(data).hexdigest()
    auth = {"authorization": f"Bearer {alice}"}
    batch = httpx.post(
        f"{hub.url}/{repo_id}.git/info/lfs/objects/batch",
        json={"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(data)}]},
        headers={**auth, "accept": "application/vnd.git-lfs+json"},
    ).json()
    href = batch["objects"][0]["actions"]["upload"]["href"]
    assert href.startswith(hub.url)
    assert httpx.put(href, content=b"other content").status_code == 400
    assert httpx.put(href, content=data + b"extra").status_code in (400, 413)
    assert hub.storage.lfs_size(oid) is None
    assert httpx.put(href.replace("ticket=", "ticket=x"), content=data).status_code == 403
    assert httpx.put(href, content=data).status_code == 200
    assert hub.storage.lfs_size(oid) == len(data)
    lfs_line = {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid, "size": len(data) + 1}}
    head = api.model_info(repo_id).sha
    assert _commit(hub, alice, repo_id, _ndjson(_header(), lfs_line)).status_code == 400
    assert api.model_info(repo_id).sha == head
    lfs_line["value"]["size"] = len(data)
    assert _commit(hub, alice, repo_id, _ndjson(_header(), lfs_line)).status_code == 200


def test_oversized_bodies_are_refused(hub, alice, repo):
    api, repo_id = repo
    big = {"content": "x" * (17 * 1024 * 1024), "repoType": "model"}
    r = httpx.post(f"{hub.url}/api/validate-yaml", json=big, timeout=60)
    assert r.status_code == 413
    settings = hub.server.config.app.state.hub.settings
    old, settings.max_commit_bytes = settings.max_commit_bytes, 1000
    try:
        head = api.model_info(repo_id).sha
        r = _commit(hub, alice, repo_id, _ndjson(_header(), _file("a.bin", b"y" * 5000)))
        assert r.status_code == 413 and r.headers["x-error-code"] == "PayloadTooLarge"
        assert api.model_info(repo_id).sha == head
    finally:
        settings.max_commit_bytes = old


@pytest.mark.parametrize("name", ["a--b", "-x", "x.", "a..b", "x" * 100, "api", "with space", "ok.git"])
def test_invalid_repo_ids_are_refused(hub, alice, name):
    r = httpx.post(f"{hub.url}/api/repos/create", json={"name": name}, headers={"authorization": f"Bearer {alice}"})
    assert r.status_code == 400 and r.headers["x-error-code"] == "InvalidRepoId", (name, r.text)


def test_invalid_ref_names_are_refused(hub, make_api, alice, repo):
    _, repo_id = repo
    for bad in ("a..b", "x.lock", "refs%2Fheads%2Fx", "-x", "a%20b"):
        r = httpx.post(
            f"{hub.url}/api/models/{repo_id}/branch/{bad}", json={}, headers={"authorization": f"Bearer {alice}"}
        )
        assert r.status_code == 400, (bad, r.text)
