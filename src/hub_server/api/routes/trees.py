"""Listing files: ``tree`` (paginated) and ``paths-info``."""

from __future__ import annotations

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, Response

from ... import errors
from ...storage import HubStorage, RepoRef, TreeEntry, validate_path
from ..deps import ReadableRepo, State, Storage
from ..http import next_link, truthy
from ..paths import API_REPO
from ..serialize import entry_json

router = APIRouter(tags=["files"])
EXPANDED_PAGE = 50


def _entries_json(storage: HubStorage, ref: RepoRef, sha: str, entries: list[TreeEntry], expand: bool) -> list[dict]:
    return [entry_json(storage, e, storage.repos.last_commit(ref, sha, e.path) if expand else None) for e in entries]


@router.get(API_REPO + "/tree/{revision:seg}")
@router.get(API_REPO + "/tree/{revision:seg}/{path:rpath}")
def tree(
    request: Request,
    repo: ReadableRepo,
    revision: str,
    state: State,
    path: str = "",
    recursive: str | None = None,
    expand: str | None = None,
    cursor: int = Query(0, ge=0),
    limit: int | None = Query(None, ge=1, le=10000),
) -> Response:
    """Files and folders under a path at a revision (paginated with a ``Link`` header)."""
    storage = state.storage
    path = path.strip("/")
    if path:
        validate_path(path)
    sha, entries = storage.tree(repo, revision, path, recursive=truthy(recursive))
    entries.sort(key=(lambda e: e.path) if truthy(recursive) else (lambda e: (e.type != "directory", e.path)))
    page = limit or (EXPANDED_PAGE if truthy(expand) else state.settings.tree_page_size)
    body = _entries_json(storage, repo, sha, entries[cursor : cursor + page], truthy(expand))
    headers = {"X-Repo-Commit": sha}
    if cursor + page < len(entries):
        headers["Link"] = next_link(request, cursor=cursor + page)
    return JSONResponse(body, headers=headers)


@router.post(API_REPO + "/paths-info/{revision:rpath}")
def paths_info(
    repo: ReadableRepo,
    revision: str,
    storage: Storage,
    paths: list[str] = Form(default=[]),
    expand: str | None = Form(None),
) -> Response:
    """Entries for the requested paths (missing paths are left out)."""
    if len(paths) > 10000:
        raise errors.BadRequest("Too many paths (at most 10000)")
    valid = []
    for p in paths:
        try:
            valid.append(validate_path(p.strip("/")))
        except errors.InvalidPath:
            continue
    sha, entries = storage.paths_info(repo, revision or "main", valid)
    return JSONResponse(_entries_json(storage, repo, sha, entries, truthy(expand)), headers={"X-Repo-Commit": sha})
