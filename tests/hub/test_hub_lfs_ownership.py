"""LFS objects are shared on disk but owned per repo: knowing a sha256 gives neither a commit nor a download."""

from __future__ import annotations

import base64
import hashlib
import json

import httpx2 as httpx
import pytest
from hubtools import seeded_bytes

from hub_server.storage import lfs_pointer

LFS_JSON = "application/vnd.git-lfs+json"


def _ndjson(*lines: dict) -> bytes:
    return b"\n".join(json.dumps(line).encode() for line in lines)


def _header() -> dict:
    return {"key": "header", "value": {"summary": "test", "description": ""}}


def _lfs_line(path: str, oid: str, size: int) -> dict:
    return {"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oid, "size": size}}


def _commit(hub, token: str, repo_id: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{hub.url}/api/models/{repo_id}/commit/main",
        content=body,
        headers={"authorization": f"Bearer {token}", "content-type": "application/x-ndjson"},
        timeout=60,
    )


def _batch(hub, token: str, repo_id: str, operation: str, oid: str, size: int) -> dict:
    response = httpx.post(
        f"{hub.url}/{repo_id}.git/info/lfs/objects/batch",
        json={"operation": operation, "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]},
        headers={"authorization": f"Bearer {token}", "accept": LFS_JSON, "content-type": LFS_JSON},
    )
    assert response.status_code == 200, response.text
    return response.json()["objects"][0]


@pytest.fixture
def secret(hub, make_api, alice, bob, repo_name, monkeypatch):
    """A private repo of alice holding an LFS file (uploaded through the LFS batch API), and an empty repo of bob."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_DISABLE_XET", True)  # Xet uploads: test_xet_security.py
    data = seeded_bytes(4096, seed=1) + b"alice's secret weights"
    alice_repo, bob_repo = f"alice/{repo_name}", f"bob/{repo_name}"
    make_api(alice).create_repo(alice_repo, private=True)
    make_api(alice).upload_file(path_or_fileobj=data, path_in_repo="secret.bin", repo_id=alice_repo)
    make_api(bob).create_repo(bob_repo)
    oid = hashlib.sha256(data).hexdigest()
    assert hub.storage.lfs_size(oid) == len(data)
    return data, oid, alice_repo, bob_repo


def test_lfs_file_operation_for_a_foreign_object_is_refused(hub, make_api, bob, secret):
    data, oid, _, bob_repo = secret
    head = make_api(bob).model_info(bob_repo).sha
    response = _commit(hub, bob, bob_repo, _ndjson(_header(), _lfs_line("stolen.bin", oid, len(data))))
    assert response.status_code == 400
    assert "stolen.bin" in response.json()["error"]
    missing = _commit(hub, bob, bob_repo, _ndjson(_header(), _lfs_line("x.bin", "0" * 64, 1)))
    assert missing.status_code == 400
    assert missing.json()["error"].replace("x.bin", "").replace("0" * 64, "") == response.json()["error"].replace(
        "stolen.bin", ""
    ).replace(oid, ""), "a foreign object and a missing one must look the same"
    assert make_api(bob).model_info(bob_repo).sha == head


def test_batch_upload_of_a_foreign_object_asks_for_the_bytes(hub, make_api, bob, secret):
    data, oid, _, bob_repo = secret
    item = _batch(hub, bob, bob_repo, "upload", oid, len(data))
    assert "upload" in item.get("actions", {}), "a foreign object must never be answered as already stored"
    verify = httpx.post(
        item["actions"]["verify"]["href"],
        json={"oid": oid, "size": len(data)},
        headers={"authorization": f"Bearer {bob}", "accept": LFS_JSON},
    )
    assert verify.status_code == 404
    bad = httpx.put(item["actions"]["upload"]["href"], content=b"\0" * len(data))
    assert bad.status_code == 400
    assert _commit(hub, bob, bob_repo, _ndjson(_header(), _lfs_line("w.bin", oid, len(data)))).status_code == 400

    # With the real bytes, bob's upload is legitimate and the object becomes his repo's too.
    assert httpx.put(item["actions"]["upload"]["href"], content=data).status_code == 200
    assert _batch(hub, bob, bob_repo, "upload", oid, len(data)).get("actions") is None
    assert _commit(hub, bob, bob_repo, _ndjson(_header(), _lfs_line("w.bin", oid, len(data)))).status_code == 200
    got = httpx.get(
        f"{hub.url}/{bob_repo}/resolve/main/w.bin", headers={"authorization": f"Bearer {bob}"}, follow_redirects=True
    )
    assert got.content == data


def test_foreign_objects_cannot_be_downloaded(hub, alice, bob, secret):
    data, oid, alice_repo, bob_repo = secret
    item = _batch(hub, bob, bob_repo, "download", oid, len(data))
    assert "actions" not in item and item["error"]["code"] == 404
    ticket = hub.storage.sign(f"model/{bob_repo}/{oid}/{len(data)}/download/public")  # a validly signed link
    got = httpx.get(f"{hub.url}/{bob_repo}.git/info/lfs/objects/{oid}", params={"size": len(data), "ticket": ticket})
    assert got.status_code == 404 and data not in got.content
    assert _batch(hub, alice, bob_repo, "download", oid, len(data))["error"]["code"] == 404

    # Alice's own downloads keep working.
    item = _batch(hub, alice, alice_repo, "download", oid, len(data))
    assert httpx.get(item["actions"]["download"]["href"]).content == data


def test_private_repo_batch_is_hidden_from_others(hub, bob, secret):
    data, oid, alice_repo, _ = secret
    response = httpx.post(
        f"{hub.url}/{alice_repo}.git/info/lfs/objects/batch",
        json={"operation": "download", "objects": [{"oid": oid, "size": len(data)}]},
        headers={"authorization": f"Bearer {bob}", "accept": LFS_JSON},
    )
    assert response.status_code == 404


def test_a_pointer_committed_as_a_regular_file_does_not_serve_foreign_bytes(hub, make_api, bob, secret):
    data, oid, _, bob_repo = secret
    pointer = lfs_pointer(oid, len(data))
    line = {"key": "file", "value": {"path": "p.txt", "content": base64.b64encode(pointer).decode()}}
    assert _commit(hub, bob, bob_repo, _ndjson(_header(), line)).status_code == 200
    got = httpx.get(f"{hub.url}/{bob_repo}/resolve/main/p.txt", headers={"authorization": f"Bearer {bob}"})
    assert got.status_code == 200 and got.content == pointer
    (entry,) = make_api(bob).get_paths_info(bob_repo, ["p.txt"])
    assert entry.lfs is None and entry.size == len(pointer)


def test_making_a_repo_private_revokes_its_download_links(hub, make_api, alice, repo_name):
    data = seeded_bytes(2048, seed=2)
    repo_id = f"alice/{repo_name}"
    api = make_api(alice)
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=data, path_in_repo="weights.bin", repo_id=repo_id)
    oid = hashlib.sha256(data).hexdigest()
    href = _batch(hub, alice, repo_id, "download", oid, len(data))["actions"]["download"]["href"]
    assert httpx.get(href).content == data
    api.update_repo_settings(repo_id, private=True)
    assert httpx.get(href).status_code == 403
