"""Repo administration: move, auth-check, super-squash, LFS files, and gated repos' access requests."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request

from ... import errors
from ...storage import RepoRef, format_date
from ...storage import repo_admin as admin
from ..deps import (
    SINGULAR,
    CurrentToken,
    ReadableRepo,
    RequiredToken,
    Storage,
    WritableRepo,
    check_gate,
    check_write,
    may_write_namespace,
)
from ..http import repo_url
from ..paths import API_REPO
from ..schemas import AccessRequestBody, LfsDeleteBody, MoveBody, SquashBody

router = APIRouter(tags=["repo administration"])


@router.post("/api/repos/move")
def move_repo(request: Request, body: MoveBody, token: RequiredToken, storage: Storage) -> dict:
    """Rename a repo (writers of its namespace), or move it to another namespace: that needs the admin role of
    the namespace it leaves, and write in the one it joins."""
    repo_type = body.type or "model"
    source = check_write(storage, RepoRef.parse(repo_type, body.fromRepo), token)
    target = RepoRef.parse(repo_type, body.toRepo)
    if not admin.same_namespace(source, target) and storage.orgs.role_in(source.namespace, token.user) != "admin":
        raise errors.Forbidden(f"Moving {source.id} out of {source.namespace!r} needs the admin role there")
    if not may_write_namespace(storage, target.namespace, token.user):
        raise errors.Forbidden(f"You don't have the rights to create a repo under the namespace {target.namespace!r}")
    admin.move_repo(storage, source, target)
    return {"url": repo_url(request, target)}


@router.get(API_REPO + "/auth-check")
def auth_check(repo: ReadableRepo, token: CurrentToken, storage: Storage) -> dict:
    """Whether the caller may download the repo's files (GatedRepo when gated without access)."""
    check_gate(storage, repo, token)
    return {"allowed": True}


@router.post(API_REPO + "/super-squash/{branch:rpath}")
def super_squash(access: WritableRepo, branch: str, storage: Storage, body: SquashBody | None = None) -> dict:
    """Replace a branch's history by a single commit."""
    message = (body.message if body and body.message else None) or "Super-squash branch using huggingface_hub"
    sha = storage.refs.squash(access.ref, branch or "main", author=access.token.user, title=message)
    return {"commitId": sha}


@router.get(API_REPO + "/lfs-files")
def list_lfs_files(access: WritableRepo, storage: Storage) -> list[dict]:
    """The LFS objects the repo owns (writers only: this is storage administration)."""
    pushed = format_date(admin.pushed_at(storage, access.ref))
    return [
        {
            "fileOid": f.oid,
            "oid": f.pointer_oid,
            "filename": f.filename,
            "ref": f.ref,
            "size": f.size,
            "pushedAt": pushed,
        }
        for f in admin.lfs_files(storage, access.ref)
    ]


@router.post(API_REPO + "/lfs-files/batch")
def delete_lfs_files(access: WritableRepo, body: LfsDeleteBody, storage: Storage) -> dict:
    """Permanently delete LFS objects of the repo; storage no other repo uses is freed."""
    shas = body.deletions.get("sha") if isinstance(body.deletions, dict) else None
    if not isinstance(shas, list) or not all(isinstance(s, str) for s in shas) or len(shas) > 1000:
        raise errors.BadRequest("Invalid deletions: expected {'sha': [sha256, ...]} with at most 1000 items")
    for sha in shas:
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise errors.BadRequest(f"Invalid LFS oid {sha!r}")
    remove = body.deletions.get("rewriteHistory", True) is not False
    freed = admin.delete_lfs_files(storage, access.ref, shas, author=access.token.user, remove_pointers=remove)
    return {"freed": freed}


# ----------------------------------------------------------------- access requests


def _request_id(ref: RepoRef, user: str) -> str:
    return hashlib.sha1(f"{ref.key.lower()}:{user}".encode()).hexdigest()[:24]


@router.get(API_REPO + "/user-access-request/{status:seg}")
def list_access_requests(access: WritableRepo, status: str, storage: Storage) -> list[dict]:
    """Access requests with a status (pending, accepted, rejected)."""
    if status not in ("pending", "accepted", "rejected"):
        raise errors.BadRequest(f"Invalid status {status!r}: expected pending, accepted or rejected")
    return [
        {
            "user": {"user": r.user, "fullname": r.user},
            "requestId": _request_id(access.ref, r.user),
            "status": r.status,
            "timestamp": format_date(r.created_at),
            **({"fields": r.fields} if r.fields else {}),
        }
        for r in storage.discussions.list_access_requests(access.ref, status)
    ]


@router.post(API_REPO + "/user-access-request/handle")
def handle_access_request(access: WritableRepo, body: AccessRequestBody, storage: Storage) -> dict:
    """Accept, reject or set back to pending one user's request."""
    user = body.user
    if user is None and body.requestId is not None:
        candidates = [
            r.user
            for status in ("pending", "accepted", "rejected")
            for r in storage.discussions.list_access_requests(access.ref, status)
        ]
        user = next((u for u in candidates if _request_id(access.ref, u) == body.requestId), None)
    if user is None:
        raise errors.NotFound("Access request not found")
    current = storage.discussions.access_request(access.ref, user)
    if current is None:
        raise errors.NotFound(f"No access request from {user!r}")
    if body.status == current.status:
        raise errors.BadRequest(f"The access request of {user!r} is already {current.status}")
    storage.discussions.set_access_request(access.ref, user, body.status or "")
    return {}


@router.post(API_REPO + "/user-access-request/grant")
def grant_access(access: WritableRepo, body: AccessRequestBody, storage: Storage) -> dict:
    """Give a user access to the gated repo."""
    if not body.user or not storage.meta.user_exists(body.user):
        raise errors.NotFound(f"User {body.user!r} not found")
    current = storage.discussions.access_request(access.ref, body.user)
    if current is not None and current.status == "accepted":
        raise errors.Conflict(f"{body.user!r} already has access to this repo")
    storage.discussions.set_access_request(access.ref, body.user, "accepted")
    return {}


@router.post(API_REPO + "/ask-access")
def ask_access(repo: ReadableRepo, token: RequiredToken, storage: Storage) -> dict:
    """Request access to a gated repo (accepted at once when the repo is gated "auto")."""
    mode = storage.discussions.gated(repo)
    if mode is None:
        raise errors.BadRequest(f"{SINGULAR.get(repo.type + 's', repo.type)} {repo.id} is not gated")
    if storage.discussions.access_request(repo, token.user) is None:
        storage.discussions.set_access_request(repo, token.user, "accepted" if mode == "auto" else "pending")
    return {"status": storage.discussions.access_request(repo, token.user).status}
