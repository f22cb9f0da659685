"""Repo lifecycle and info: create, delete, settings, list, ``model_info``."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ... import errors
from ...storage import RepoRef, format_date
from ..deps import (
    SINGULAR,
    CurrentToken,
    ReadableRepo,
    RepoTypePlural,
    RequiredToken,
    Storage,
    WritableRepo,
    check_write,
    may_read_private,
    may_write_namespace,
)
from ..http import repo_url
from ..paths import API_REPO
from ..schemas import CreateRepoBody, DeleteRepoBody, SettingsBody
from ..serialize import repo_info_json

router = APIRouter(tags=["repos"])


def _split(name: str, namespace: str | None) -> tuple[str | None, str]:
    if "/" in name and namespace is None:
        namespace, _, name = name.partition("/")
    return namespace, name


@router.post("/api/repos/create")
def create_repo(request: Request, body: CreateRepoBody, token: RequiredToken, storage: Storage) -> Response:
    """Create a repo (409 with its ``url`` when it exists)."""
    namespace, name = _split(body.name, body.organization)
    namespace = namespace or token.user
    ref = RepoRef.parse(body.type or "model", f"{namespace}/{name}")
    if not may_write_namespace(storage, namespace, token.user):
        raise errors.Forbidden(f"You don't have the rights to create a repo under the namespace {namespace!r}")
    if token.role != "write":
        raise errors.Forbidden("This token is read-only")
    private = body.private if body.private is not None else body.visibility == "private"
    url = repo_url(request, ref)
    try:
        storage.create_repo(ref, owner=token.user, private=bool(private))
    except errors.Conflict as exc:
        raise errors.Conflict(exc.message, extra={"url": url}) from None
    return JSONResponse({"url": url, "name": ref.id, "id": ref.id})


@router.delete("/api/repos/delete")
def delete_repo(body: DeleteRepoBody, token: CurrentToken, storage: Storage) -> dict:
    """Delete a repo."""
    namespace, name = _split(body.name, body.organization)
    if namespace is None:
        if token is None:
            raise errors.Unauthorized("You must be authenticated to delete a repo")
        namespace = token.user
    try:
        ref = RepoRef.parse(body.type or "model", f"{namespace}/{name}")
    except errors.InvalidRepoId:
        raise errors.RepoNotFound(f"Repository {namespace}/{name} not found") from None
    storage.delete_repo(check_write(storage, ref, token))
    return {}


@router.put(API_REPO + "/settings")
def repo_settings(access: WritableRepo, body: SettingsBody, storage: Storage) -> dict:
    """Change a repo's visibility."""
    private = body.private
    if private is None and body.visibility is not None:
        if body.visibility not in ("private", "public"):
            raise errors.BadRequest(f"Invalid visibility {body.visibility!r}: expected 'private' or 'public'")
        private = body.visibility == "private"
    meta = storage.meta.update_repo(access.ref, private=private)
    if body.gated is not None:
        if body.gated not in (False, "auto", "manual"):
            raise errors.BadRequest(f"Invalid gated value {body.gated!r}: expected 'auto', 'manual' or false")
        storage.discussions.set_gated(access.ref, body.gated or None)
    return {"private": meta.private, "gated": storage.discussions.gated(access.ref) or False}


@router.get("/api/{repo_type:rtype}")
def list_repos(
    repo_type: RepoTypePlural,
    token: CurrentToken,
    storage: Storage,
    author: str | None = None,
    search: str | None = None,
) -> list[dict]:
    """Repos visible to the caller, optionally filtered by author and a name substring."""
    if author is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,96}", author):
        return []
    out = []
    for meta in storage.meta.list_repos(SINGULAR[repo_type.value], author):
        if meta.private and not may_read_private(storage, meta.ref, token):
            continue
        if search and search.lower() not in meta.ref.id.lower():
            continue
        try:
            commit = storage.repos.commit_info(meta.ref, "main")
        except errors.HubError:
            continue
        out.append(
            {
                "id": meta.ref.id,
                "modelId": meta.ref.id,
                "author": meta.ref.namespace,
                "sha": commit.id,
                "private": meta.private,
                "lastModified": format_date(commit.date),
                "createdAt": format_date(meta.created_at),
                "tags": [],
                "downloads": 0,
                "likes": 0,
            }
        )
    return out


@router.get(API_REPO)
def repo_info(repo: ReadableRepo, storage: Storage) -> dict:
    """A repo's info at ``main``: sha, siblings, privacy, dates."""
    return repo_info_json(storage, repo, "main")


@router.get(API_REPO + "/revision/{revision:rpath}")
def repo_info_revision(repo: ReadableRepo, revision: str, storage: Storage) -> dict:
    """A repo's info at a branch, tag or commit."""
    return repo_info_json(storage, repo, revision or "main")
