"""Xet access rules: tokens follow the Hub's rules, the CAS takes only its own repo's tokens, bad input changes
nothing, and no hash (of a chunk, a xorb or a file) reaches another repo's private bytes."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import time
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pytest
from hubtools import seeded_bytes
from xettools import Cas, auth, commit, lfs_line, pack, token_response, upload

from hub_server import xet
from hub_server.api.xet_auth import mint_token
from hub_server.storage import RepoRef


def _ref(repo_id: str) -> RepoRef:
    return RepoRef.parse("model", repo_id)


def test_token_routes_follow_the_hub_rules(hub, make_api, alice, bob, repo_name):
    api = make_api(alice)
    public, private = f"alice/{repo_name}", f"alice/{repo_name}-p"
    api.create_repo(public)
    api.create_repo(private, private=True)
    reader = hub.add_user("alice", role="read")

    ok = token_response(hub, alice, public)
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert set(body) == {"accessToken", "exp", "casUrl"} and body["exp"] > time.time() + 60
    assert ok.headers["X-Xet-Access-Token"] == body["accessToken"] and ok.headers["X-Xet-Cas-Url"] == body["casUrl"]
    assert int(ok.headers["X-Xet-Token-Expiration"]) == body["exp"]
    assert body["casUrl"].startswith(f"{hub.url}/cas/models/{public}/")
    assert token_response(hub, alice, private).json()["casUrl"] != body["casUrl"], "one CAS URL per repo"
    assert token_response(hub, None, public, "read").status_code == 200

    assert token_response(hub, None, public).status_code == 401
    assert token_response(hub, reader, public).status_code == 403
    assert token_response(hub, bob, public).status_code == 403
    for kind in ("read", "write"):
        refused = token_response(hub, bob, private, kind)
        assert refused.status_code == 404 and refused.headers["X-Error-Code"] == "RepoNotFound"
        assert token_response(hub, None, private, kind).status_code in (401, 404)
    missing = token_response(hub, alice, public, revision="no-such-branch")
    assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "RevisionNotFound"
    assert token_response(hub, alice, public, "read", revision="no-such-rev").status_code == 404
    assert token_response(hub, "hf_invalid", public, "read").status_code == 401


def test_pull_request_write_tokens(hub, make_api, alice, bob, repo_name):
    public, private = f"alice/{repo_name}", f"alice/{repo_name}-p"
    make_api(alice).create_repo(public)
    make_api(alice).create_repo(private, private=True)
    for who in (alice, bob):
        for revision, query in (("None", "?create_pr=1"), ("refs%2Fpr%2F1", ""), ("main", "?create_pr=1")):
            response = token_response(hub, who, public, revision=revision, query=query)
            assert response.status_code == 200, (revision, response.text)
    assert token_response(hub, bob, private, revision="None", query="?create_pr=1").status_code == 404
    assert token_response(hub, None, public, revision="None", query="?create_pr=1").status_code == 401


def test_the_cas_takes_only_xet_tokens_of_its_repo(hub, make_api, alice, repo_name):
    api = make_api(alice)
    one, two = f"alice/{repo_name}-1", f"alice/{repo_name}-2"
    api.create_repo(one)
    api.create_repo(two)
    item = pack(seeded_bytes(40_000, seed=3))
    cas1, cas2 = Cas.of(hub, alice, one), Cas.of(hub, alice, two)
    url = f"{cas1.url}/v1/xorbs/default/{item.xorb_name}"
    assert httpx.post(url, content=item.xorb).status_code == 401
    assert httpx.post(url, content=item.xorb, headers=auth(alice)).status_code == 401, "a Hub token is not a Xet token"
    assert httpx.post(url, content=item.xorb, headers=auth(cas2.token)).status_code == 403, "another repo's token"
    assert httpx.post(url, content=item.xorb, headers=auth(cas1.token[:-2] + "00")).status_code == 401
    meta = hub.storage.meta.get_repo(_ref(one))
    expired, _ = mint_token(hub.storage.signer, meta, hub.storage.token_info(alice), "write", "main", ttl=-5)
    assert httpx.post(url, content=item.xorb, headers=auth(expired)).status_code == 401
    read = Cas.of(hub, alice, one, "read")
    assert read.post_xorb(item.xorb, item.xorb_name).status_code == 403
    assert read.post_shard(item.shard()).status_code == 403
    grant = httpx.post(f"{cas1.url}/v1/xorb-grants/default/{item.xorb_name}", json={}, headers=auth(read.token))
    assert grant.status_code == 403
    assert hub.storage.xet.index.xorb_table(item.xorb_name) is None, "refused uploads store nothing"
    grant = httpx.post(f"{cas1.url}/v1/xorb-grants/default/{item.xorb_name}", json={}, headers=auth(cas1.token))
    assert grant.status_code == 404, "no upload grants: the client then uploads to /v1/xorbs"
    upload(cas1, item)
    assert read.reconstruction(item.file_hash).status_code == 200


def test_tokens_stop_working_when_the_repo_changes(hub, make_api, alice, repo_name):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    item = pack(seeded_bytes(30_000, seed=4))
    upload(Cas.of(hub, alice, repo_id), item)
    response = token_response(hub, None, repo_id, "read").json()
    anonymous = Cas(response["casUrl"], response["accessToken"])
    assert anonymous.reconstruction(item.file_hash).status_code == 200
    api.update_repo_settings(repo_id, private=True)
    assert anonymous.reconstruction(item.file_hash).status_code == 401, "private now: the anonymous token is void"
    old = Cas.of(hub, alice, repo_id)
    api.delete_repo(repo_id)
    api.create_repo(repo_id)
    assert old.post_xorb(item.xorb, item.xorb_name).status_code == 401, "a re-created repo ignores old tokens"
    assert Cas.of(hub, alice, repo_id).reconstruction(item.file_hash).status_code == 404, "and holds nothing"


def test_bad_xorbs_are_refused_and_store_nothing(hub, alice, repo):
    _, repo_id = repo
    cas = Cas.of(hub, alice, repo_id)
    item = pack(seeded_bytes(50_000, seed=5))
    other = pack(seeded_bytes(50_000, seed=6))
    cases = {
        "truncated": (item.xorb[:-10], item.xorb_name),
        "wrong hash": (other.xorb, item.xorb_name),
        "garbage": (b"\x00" * 100, item.xorb_name),
        "empty": (b"", item.xorb_name),
        "trailing bytes": (item.xorb + b"junk", item.xorb_name),
    }
    for case, (body, name) in cases.items():
        response = cas.post_xorb(body, name)
        assert response.status_code == 400, case
        assert response.headers["X-Error-Code"] == "BadRequest" and response.json()["error"], case
    assert cas.post_xorb(item.xorb, "not-a-hash").status_code == 400
    assert cas.post_xorb(item.xorb, item.xorb_name, prefix="other").status_code == 400
    assert _declared_too_big(cas, item.xorb_name).startswith(b"HTTP/1.1 413")
    assert hub.storage.xet.index.xorb_table(item.xorb_name) is None
    assert not hub.storage.objects.exists(f"xorbs/{item.xorb_name}")
    assert cas.post_xorb(item.xorb, item.xorb_name).json() == {"was_inserted": True}
    assert cas.post_xorb(item.xorb, item.xorb_name).json() == {"was_inserted": False}


def _declared_too_big(cas: Cas, name: str) -> bytes:
    """The status line of a xorb upload that declares more bytes than any xorb may have (sent raw)."""
    url = urlsplit(f"{cas.url}/v1/xorbs/default/{name}")
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        head = f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {cas.token}\r\n"
        sock.sendall(f"{head}Content-Length: {xet.MAX_XORB_SIZE + 1}\r\n\r\nxx".encode())
        return sock.recv(200).split(b"\r\n", 1)[0]


def test_bad_shards_are_refused_and_record_nothing(hub, alice, repo):
    _, repo_id = repo
    cas = Cas.of(hub, alice, repo_id)
    item = pack(seeded_bytes(60_000, seed=7))
    missing = pack(seeded_bytes(60_000, seed=8))
    assert cas.post_shard(missing.shard()).status_code == 400, "its xorb was never uploaded"
    assert cas.post_xorb(item.xorb, item.xorb_name).status_code == 200
    wrong = {
        "verification": {"verification": (bytes(32),)},
        "file hash": {"file_hash": bytes(32)},
        "sha256": {"sha256": "0" * 64},
        "term size": {"terms": (xet.FileTerm(item.info.hash, 0, len(item.info.chunks), 1),)},
    }
    for case, change in wrong.items():
        response = cas.post_shard(item.shard(**change))
        assert response.status_code == 400, case
        frames = [json.loads(line) for line in cas.post_shard(item.shard(**change), "v2").text.splitlines()]
        assert frames[-1]["type"] == "error" and frames[-1]["message"], case
    for case, body in {"truncated": item.shard()[:-7], "trailing": item.shard() + b"x" * 48, "junk": b"junk"}.items():
        assert cas.post_shard(body).status_code == 400, case
    assert cas.reconstruction(item.file_hash).status_code == 404
    assert hub.storage.xet.file_for_sha256(_ref(repo_id), item.sha256) is None
    frames = [json.loads(line) for line in cas.post_shard(item.shard(), "v2").text.splitlines()]
    assert frames[-1] == {"type": "result"}
    assert hub.storage.xet.file_for_sha256(_ref(repo_id), item.sha256).size == len(item.data)


@pytest.fixture
def alice_private(hub, make_api, alice, bob, repo_name):
    """A private repo of alice with a file uploaded through the CAS and committed, and a repo of bob."""
    item = pack(seeded_bytes(70_000, seed=9) + b"alice's private weights")
    mine, theirs = f"alice/{repo_name}", f"bob/{repo_name}"
    make_api(alice).create_repo(mine, private=True)
    make_api(bob).create_repo(theirs)
    upload(Cas.of(hub, alice, mine), item)
    assert commit(hub, alice, mine, lfs_line("secret.bin", item.sha256, len(item.data))).status_code == 200
    return item, mine, theirs


def test_no_hash_reaches_a_private_repo(hub, bob, alice_private):
    item, mine, theirs = alice_private
    cas = Cas.of(hub, bob, theirs)
    first_chunk = xet.hash_to_hex(item.info.chunks.hashes[0])
    assert cas.dedup(first_chunk).status_code == 404, "by chunk hash"
    refused = cas.post_shard(item.shard())
    assert refused.status_code == 400 and "not uploaded" in refused.json()["error"], "by xorb hash"
    assert cas.reconstruction(item.file_hash).status_code == 404, "by file hash"
    forged = f"{hub.url}/cas/fetch/{item.xorb_name}?range=0-{len(item.xorb)}&ticket=9999999999.{'0' * 64}"
    assert httpx.get(forged).status_code == 403, "by fetch URL"
    assert commit(hub, bob, theirs, lfs_line("stolen.bin", item.sha256, len(item.data))).status_code == 400
    batch = httpx.post(
        f"{hub.url}/{theirs}.git/info/lfs/objects/batch",
        json={"operation": "download", "objects": [{"oid": item.sha256, "size": len(item.data)}]},
        headers=auth(bob) | {"accept": "application/vnd.git-lfs+json"},
    ).json()
    assert batch["objects"][0]["error"]["code"] == 404, "by sha256"
    alice_cas_url = Cas.of(hub, hub.add_user("alice"), mine).url
    with_bob_token = httpx.get(f"{alice_cas_url}/v1/reconstructions/{item.file_hash}", headers=auth(cas.token))
    assert with_bob_token.status_code == 403
    # Having the bytes is the only way in: uploading them makes them bob's too.
    upload(cas, item)
    assert cas.reconstruction(item.file_hash).status_code == 200


def test_dedup_grants_only_readable_xorbs(hub, make_api, alice, bob, repo_name):
    public = f"alice/{repo_name}"
    make_api(alice).create_repo(public)
    make_api(bob).create_repo(f"bob/{repo_name}")
    item = pack(seeded_bytes(80_000, seed=10))
    upload(Cas.of(hub, alice, public), item)
    cas = Cas.of(hub, bob, f"bob/{repo_name}")
    answer = cas.dedup(xet.hash_to_hex(item.info.chunks.hashes[0]))
    assert answer.status_code == 200
    listed = xet.parse_shard(answer.content)
    assert [x.hash for x in listed.xorbs] == [item.info.hash] and not listed.files
    assert listed.footer is not None and listed.xorbs[0].chunks[0].hash != item.info.chunks.hashes[0], "keyed hashes"
    response = cas.post_shard(item.shard())  # granted by the answer: referenced without uploading
    assert response.status_code == 200, response.text
    assert cas.reconstruction(item.file_hash).status_code == 200


def test_fetch_urls_are_bound_to_one_xorb_and_range(hub, alice, repo):
    _, repo_id = repo
    cas = Cas.of(hub, alice, repo_id, "write")
    item = pack(seeded_bytes(200_000, seed=11))
    upload(cas, item)
    plan = cas.reconstruction(item.file_hash, "bytes=50000-99999").json()
    assert plan["offset_into_first_range"] < 16 * 1024
    (fetch,) = plan["fetch_info"][item.xorb_name]
    url, first, last = fetch["url"], fetch["url_range"]["start"], fetch["url_range"]["end"]
    got = httpx.get(url, headers={"range": f"bytes={first}-{last}"})
    assert got.status_code == 206 and got.content == item.xorb[first : last + 1]
    query = parse_qs(urlsplit(url).query)
    if not url.startswith(f"{hub.url}/cas/fetch/"):  # the object store's presigned URL: its signature covers
        assert "range" in query["X-Amz-SignedHeaders"][0].split(";")  # the Range header (the store enforces it)
        assert "600" == query["X-Amz-Expires"][0]
        return
    assert httpx.get(url, headers={"range": f"bytes={first}-{last + 1}"}).status_code == 403
    moved = url.replace(f"range={query['range'][0]}", f"range={first}-{last + 2}")
    assert httpx.get(moved).status_code == 403
    assert httpx.get(url.replace(item.xorb_name, "0" * 64)).status_code == 403
    ticket = hub.storage.signer.sign(f"xet-fetch/{item.xorb_name}/{first}/{last + 1}", -1)
    expired = url.replace(query["ticket"][0], ticket)
    assert httpx.get(expired).status_code == 403
    v2 = cas.reconstruction(item.file_hash, "bytes=0-", "v2").json()
    assert v2["xorbs"][item.xorb_name][0]["ranges"][0]["bytes"] == {"start": 0, "end": len(item.xorb) - 1}
    assert cas.reconstruction(item.file_hash, f"bytes={len(item.data)}-").status_code == 416
    assert cas.reconstruction(item.file_hash, "bytes=9-3").status_code == 400
    assert cas.reconstruction(item.file_hash, f"bytes=0-{10 * len(item.data)}").status_code == 200


def test_concurrent_uploads_of_one_xorb(hub, alice, repo):
    _, repo_id = repo
    cas = Cas.of(hub, alice, repo_id)
    item = pack(seeded_bytes(300_000, seed=12))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: cas.post_xorb(item.xorb, item.xorb_name).status_code, range(8)))
    assert statuses == [200] * 8
    assert hub.storage.objects.read(f"xorbs/{item.xorb_name}") == item.xorb
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: cas.post_shard(item.shard()).status_code, range(4)))
    assert statuses == [200] * 4
    assert cas.reconstruction(item.file_hash).status_code == 200


def test_commits_reference_cas_files_of_their_own_repo(hub, make_api, alice, repo_name):
    api = make_api(alice)
    one, two = f"alice/{repo_name}-1", f"alice/{repo_name}-2"
    api.create_repo(one)
    api.create_repo(two)
    item = pack(seeded_bytes(90_000, seed=13))
    upload(Cas.of(hub, alice, one), item)
    assert commit(hub, alice, two, lfs_line("w.bin", item.sha256, len(item.data))).status_code == 400
    assert commit(hub, alice, one, lfs_line("w.bin", item.sha256, len(item.data) + 1)).status_code == 400
    assert commit(hub, alice, one, lfs_line("w.bin", item.sha256, len(item.data))).status_code == 200
    (entry,) = api.get_paths_info(one, ["w.bin"])
    assert entry.lfs.sha256 == item.sha256 and entry.xet_hash == item.file_hash
    assert httpx.get(f"{hub.url}/{one}/resolve/main/w.bin").content == item.data
