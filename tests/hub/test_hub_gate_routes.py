"""The gate holds on every route to the bytes (hardening round 2).

A manually gated repo shows its card, file list and discussions to anyone who may read it, as on the Hub; its file
content, diffs and transfer grants only to its namespace and to users whose access request was accepted. Every
route of the app is classified below: a route added later without a classification fails
`test_every_route_is_classified`, and every content route is driven as the attack.
"""

from __future__ import annotations

import datetime as dt
import subprocess

import httpx2 as httpx
import pytest
from hubtools import app_routes, client_env, seeded_bytes
from huggingface_hub import CommitOperationDelete

MARKER = b"gated-marker-7c1f0e"
OIDS: dict[str, str] = {}  # repo id -> the LFS file's sha256

# Routes that serve file content, diffs or grants to download them: each is driven in the attack below.
CONTENT = {
    ("GET", "/{repo:repo}/resolve/{revision:seg}/{path:rpath}"),
    ("HEAD", "/{repo:repo}/resolve/{revision:seg}/{path:rpath}"),
    ("GET", "/{repo:repo}/raw/{revision:seg}/{path:rpath}"),
    ("GET", "/{namespace:seg}/{name:seg}/blob/{revision:seg}/{path:rpath}"),
    ("GET", "/{namespace:seg}/{name:seg}/commit/{sha:seg}"),
    ("GET", "/{namespace:seg}/{name:seg}/compare/{spec:seg}"),
    ("GET", "/{namespace:seg}/{name:seg}/discussions/{num:seg}"),
    ("GET", "/api/{repo_type:rtype}/{namespace:seg}/{name:seg}/discussions/{num:seg}"),
    ("POST", "/{repo:repo}/info/lfs/objects/batch"),
    ("GET", "/api/{repo_type:rtype}/{namespace:seg}/{name:seg}/xet-read-token/{revision:rpath}"),
    ("GET", "/{repo:repo}/info/refs"),
    ("POST", "/{repo:repo}/git-upload-pack"),
    ("GET", "/{repo:repo}/HEAD"),
    ("GET", "/{repo:repo}/objects/{path:rpath}"),
}


def test_every_route_is_classified(hub) -> None:
    """Each route serves content (gated, driven below) or is metadata / writing / transfer by ticket."""
    routes = app_routes(hub.server.config.app.routes)
    assert len(routes) > 60
    content = {r for r in routes if r in CONTENT}
    assert content == CONTENT, f"content routes missing from the app: {sorted(CONTENT - content)}"
    unclassified = sorted(r for r in routes - CONTENT if not _metadata(r))
    assert not unclassified, f"classify these routes in {__name__} (content, or metadata with a reason): {unclassified}"


# Everything else, by what it is (a reason per family): no file content leaves through these.
METADATA_PREFIXES = {
    "/api/whoami": "the caller's identity",
    "/api/repos/": "create, delete, move, settings: writing, checked by the write rule",
    "/api/validate-yaml": "checks text the caller sends",
    "/api/models": "repo info, listings, trees, paths-info, refs, commits list: metadata, as on the Hub",
    "/api/datasets": "as /api/models",
    "/api/spaces": "as /api/models",
    "/api/{repo_type:rtype}": "repo info, trees, paths-info, refs, commits, discussions list and comments, "
    "settings, access requests, PR creation, merges, commits (writes): metadata or writing",
    "/api/{path:rpath}": "the Hub's 404 for unknown API paths",
    "/cas/": "Xet CAS: only reachable with a grant minted by xet-read-token / xet-write-token (gated above)",
    "/{repo:repo}/info/lfs/objects/{oid:seg}": "LFS transfer by ticket, minted by the gated batch API",
    "/{repo:repo}/info/lfs/verify": "upload verification: writers",
    "/{repo:repo}/info/lfs/locks": "LFS locking: writers",
    "/{repo:repo}/git-receive-pack": "push: writers",
    "/{namespace:seg}/{name:seg}/discussions": "discussion pages other than a PR's diff: metadata, or forms that write",
    "/{namespace:seg}/{name:seg}/tree/": "file list: shown on gated repos, as on the Hub",
    "/{namespace:seg}/{name:seg}/commits/": "history: titles and authors",
    "/{namespace:seg}/{name:seg}": "the repo page: card and file list, as on the Hub",
    "/-/": "static assets",
    "/login": "sessions",
    "/logout": "sessions",
    "/": "the repo list",
}


def _metadata(route: tuple[str, str]) -> bool:
    return any(route[1] == p or route[1].startswith(p) for p in METADATA_PREFIXES)


@pytest.fixture
def gated_repo(hub, make_api, alice, repo_name):
    """alice's manually gated repo: an inline file and an LFS file holding the marker, a PR by alice deleting it."""
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    initial = api.model_info(repo_id).sha
    api.upload_file(repo_id=repo_id, path_or_fileobj=MARKER + b"\n", path_in_repo="secret.txt")
    first = api.model_info(repo_id).sha
    big = MARKER + seeded_bytes(200_000, seed=5)
    api.upload_file(repo_id=repo_id, path_or_fileobj=big, path_in_repo="weights.bin")
    api.upload_file(repo_id=repo_id, path_or_fileobj=b"card\n", path_in_repo="README.md")
    pr = api.create_commit(repo_id, [CommitOperationDelete("secret.txt")], commit_message="drop", create_pr=True)
    api.update_repo_settings(repo_id, gated="manual")
    [info] = api.get_paths_info(repo_id, ["weights.bin"])
    OIDS[repo_id] = info.lfs.sha256
    return api, repo_id, (initial, first), pr.pr_num


def _session(hub, token: str) -> dict[str, str]:
    info = hub.storage.meta.token_info(token)
    return {"hub_session": hub.storage.meta.create_session(info, ttl=dt.timedelta(minutes=5))}


def _attempts(hub, repo_id: str, shas: tuple[str, str], pr: int, token: str | None) -> dict[str, bytes]:
    """What each content route answers the caller (the body, whatever the status)."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    cookies = _session(hub, token) if token else {}
    api = f"{hub.url}/api/models/{repo_id}"
    oid = OIDS[repo_id]
    with httpx.Client(base_url=hub.url, headers=headers, cookies=cookies, timeout=60) as client:
        out = {
            "resolve": client.get(f"/{repo_id}/resolve/main/secret.txt").content,
            "raw": client.get(f"/{repo_id}/raw/main/secret.txt").content,
            "blob page": client.get(f"/{repo_id}/blob/main/secret.txt").content,
            "commit page": client.get(f"/{repo_id}/commit/{shas[1]}").content,
            "compare page": client.get(f"/{repo_id}/compare/{shas[0]}...main").content,
            "PR page": client.get(f"/{repo_id}/discussions/{pr}").content,
            "PR diff API": client.get(f"{api}/discussions/{pr}", params={"diff": "1"}).content,
            "xet-read-token": client.get(f"{api}/xet-read-token/main").content,
            "info/refs": client.get(f"/{repo_id}.git/info/refs", params={"service": "git-upload-pack"}).content,
            "HEAD": client.get(f"/{repo_id}.git/HEAD").content,
        }
        batch = client.post(
            f"/{repo_id}.git/info/lfs/objects/batch",
            json={"operation": "download", "objects": [{"oid": oid, "size": 200_000 + len(MARKER)}]},
        )
        hrefs = [o.get("actions", {}).get("download", {}).get("href") for o in batch.json().get("objects", [])]
        out["LFS batch"] = batch.content + b"".join(client.get(h).content for h in hrefs if h)
    return out


def _leaks(answers: dict[str, bytes]) -> list[str]:
    return sorted(
        k for k, body in answers.items() if MARKER in body or b'"accessToken"' in body or b"refs/heads/main" in body
    )


def test_outsiders_get_no_gated_bytes_through_any_route(hub, gated_repo, bob, tmp_path) -> None:
    api, repo_id, shas, pr = gated_repo
    assert _leaks(_attempts(hub, repo_id, shas, pr, None)) == [], "anonymous"
    assert _leaks(_attempts(hub, repo_id, shas, pr, bob)) == [], "bob without approval"
    clone = subprocess.run(
        ["git", "clone", f"{hub.url.replace('://', '://bob:' + bob + '@')}/{repo_id}", str(tmp_path / "c")],
        capture_output=True,
        text=True,
        env=client_env(hub.url, tmp_path / "home", GIT_TERMINAL_PROMPT="0"),
        check=False,
    )
    assert clone.returncode != 0 and not (tmp_path / "c" / "secret.txt").exists(), clone.stdout
    owner = _attempts(hub, repo_id, shas, pr, api.token)
    assert MARKER in owner["blob page"] and MARKER in owner["resolve"] and b'"accessToken"' in owner["xet-read-token"]


def test_accepted_users_read_every_route(hub, gated_repo, make_api, bob) -> None:
    api, repo_id, shas, pr = gated_repo
    httpx.post(
        f"{hub.url}/api/models/{repo_id}/ask-access", headers={"authorization": f"Bearer {bob}"}
    ).raise_for_status()
    api.accept_access_request(repo_id, "bob")
    answers = _attempts(hub, repo_id, shas, pr, bob)
    for route in ("resolve", "raw", "blob page", "commit page", "compare page", "PR diff API", "LFS batch"):
        assert MARKER in answers[route], route
    assert b'"accessToken"' in answers["xet-read-token"] and b"refs/heads/main" in answers["info/refs"]
