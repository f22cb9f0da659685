"""Hostile input from any client: repo files never run in a browser, bodies stay bounded, odd text is a 4xx."""

from __future__ import annotations

import gzip
import json

import httpx2 as httpx
import pytest


@pytest.mark.parametrize("name", ["index.html", "logo.svg", "page.xhtml", "app.js"])
def test_repo_files_are_served_inert(hub, repo, name):
    api, repo_id = repo
    api.upload_file(repo_id=repo_id, path_or_fileobj=b"<script>fetch('/')</script>", path_in_repo=name)
    response = httpx.get(f"{hub.url}/{repo_id}/resolve/main/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]


def test_private_files_are_not_publicly_cacheable(hub, make_api, alice, repo_name):
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id, private=True)
    sha = api.upload_file(repo_id=repo_id, path_or_fileobj=b"secret", path_in_repo="a.txt").oid
    response = httpx.get(f"{hub.url}/{repo_id}/resolve/{sha}/a.txt", headers={"authorization": f"Bearer {alice}"})
    assert response.status_code == 200 and response.headers["cache-control"].startswith("private")


def test_gzip_bomb_in_git_negotiation_is_refused(hub, repo):
    _, repo_id = repo
    bomb = gzip.compress(b"0" * (256 * 1024 * 1024))  # 256 MiB of output from ~256 KiB on the wire
    response = httpx.post(
        f"{hub.url}/{repo_id}/git-upload-pack",
        content=bomb,
        headers={"content-encoding": "gzip", "content-type": "application/x-git-upload-pack-request"},
        timeout=60,
    )
    assert response.status_code == 413


@pytest.mark.parametrize("repo_id", ["x/commit", "commit/y"])
def test_body_limit_cannot_be_skipped_with_a_route_lookalike_name(hub, repo_id):
    body = json.dumps({"files": [{"path": "a" * 100, "sample": "", "size": 1}] * 200_000}).encode()
    assert len(body) > 16 * 1024 * 1024
    response = httpx.post(
        f"{hub.url}/api/models/{repo_id}/preupload/main",
        content=body,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413


def test_commit_summary_that_is_not_unicode_is_a_400(hub, repo, alice):
    api, repo_id = repo
    head = api.model_info(repo_id).sha
    body = (
        b'{"key": "header", "value": {"summary": "bad \\udc80", "description": ""}}\n'
        b'{"key": "file", "value": {"path": "a.txt", "content": "eA==", "encoding": "base64"}}'
    )
    response = httpx.post(
        f"{hub.url}/api/models/{repo_id}/commit/main",
        content=body,
        headers={"authorization": f"Bearer {alice}", "content-type": "application/x-ndjson"},
        timeout=60,
    )
    assert response.status_code == 400 and "UTF-8" in response.json()["error"]
    assert api.model_info(repo_id).sha == head
