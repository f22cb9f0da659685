"""Refs and history: list refs and commits, create and delete branches and tags."""

from __future__ import annotations

import html

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from ..deps import ReadableRepo, State, Storage, WritableRepo
from ..http import next_link, truthy
from ..paths import API_REPO
from ..schemas import BranchBody, TagBody
from ..serialize import commit_json

router = APIRouter(tags=["refs"])


@router.get(API_REPO + "/refs")
def list_refs(repo: ReadableRepo, storage: Storage, include_prs: str | None = None) -> dict:
    """Branches and tags with their target commits."""
    found = storage.repos.list_refs(repo)
    out: dict = {
        "branches": [
            {"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in sorted(found["branches"].items())
        ],
        "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in sorted(found["tags"].items())],
        "converts": [],
    }
    if truthy(include_prs):
        out["pullRequests"] = [
            {"name": n, "ref": f"refs/pr/{n}", "targetCommit": s}
            for n, s in sorted(found.get("pull_requests", {}).items(), key=lambda item: int(item[0]))
        ]
    return out


@router.get(API_REPO + "/commits/{revision:rpath}")
def list_commits(
    request: Request,
    repo: ReadableRepo,
    revision: str,
    state: State,
    p: int = Query(0, ge=0, le=10**6),
    limit: int | None = Query(None, ge=1, le=1000),
    expand: list[str] = Query([], alias="expand[]", max_length=10),
) -> Response:
    """First-parent history from a revision, newest first (paginated with a ``Link`` header)."""
    page = limit or state.settings.commits_page_size
    items, total = state.storage.repos.list_commits(repo, revision or "main", offset=p * page, limit=page)
    headers = {"X-Total-Count": str(total)}
    if (p + 1) * page < total:
        headers["Link"] = next_link(request, p=p + 1)
    body = [commit_json(c) for c in items]
    if "formatted" in expand:  # the Hub's rendered title and message (plain text, HTML-escaped)
        for item in body:
            item["formatted"] = {"title": html.escape(item["title"]), "message": html.escape(item["message"])}
    return JSONResponse(body, headers=headers)


@router.post(API_REPO + "/branch/{branch:rpath}")
def create_branch(access: WritableRepo, branch: str, storage: Storage, body: BranchBody | None = None) -> dict:
    """Create a branch from ``startingPoint`` (default: main)."""
    storage.repos.create_branch(access.ref, branch, body.startingPoint if body else None)
    return {}


@router.delete(API_REPO + "/branch/{branch:rpath}")
def delete_branch(access: WritableRepo, branch: str, storage: Storage) -> dict:
    """Delete a branch."""
    storage.repos.delete_branch(access.ref, branch)
    return {}


@router.post(API_REPO + "/tag/{revision:rpath}")
def create_tag(access: WritableRepo, revision: str, body: TagBody, storage: Storage) -> dict:
    """Tag a revision."""
    storage.repos.create_tag(access.ref, body.tag, revision or "main", body.message, access.token.user)
    return {}


@router.delete(API_REPO + "/tag/{tag:rpath}")
def delete_tag(access: WritableRepo, tag: str, storage: Storage) -> dict:
    """Delete a tag."""
    storage.repos.delete_tag(access.ref, tag)
    return {}
