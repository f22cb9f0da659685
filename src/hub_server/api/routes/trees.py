"""Listing files: ``tree`` (paginated) and ``paths-info``."""

from __future__ import annotations

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ... import errors
from ...storage import HubStorage, RepoRef, TreeEntry, validate_path
from ..deps import ReadableRepo, State, Storage
from ..http import next_link, truthy
from ..limits import run_limited
from ..paths import API_REPO
from ..serialize import entry_json

router = APIRouter(tags=["files"])
EXPANDED_PAGE = 50  # entries per page when expanding, unless the client asks for fewer…
EXPANDED_PAGE_MAX = 100  # …or for more, up to this (one history walk serves the whole page)


def _entries_json(storage: HubStorage, ref: RepoRef, sha: str, entries: list[TreeEntry], expand: bool) -> list[dict]:
    """Entries as JSON; with ``expand``, each with its last commit (folders too), found in one history walk."""
    last = storage.repos.last_commits(ref, sha, [e.path for e in entries]) if expand else {}
    return [entry_json(storage, e, last.get(e.path)) for e in entries]


@router.get(API_REPO + "/tree/{revision:seg}")
@router.get(API_REPO + "/tree/{revision:seg}/{path:rpath}")
async def tree(
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
    path = path.strip("/")
    if path:
        validate_path(path)
    expanded = truthy(expand)
    page = min(limit or EXPANDED_PAGE, EXPANDED_PAGE_MAX) if expanded else limit or state.settings.tree_page_size
    args = (state.storage, repo, revision, path, recursive, cursor, page, expanded)
    if expanded:  # history walks: a small limiter of their own, so they cannot starve other requests
        body, sha, more = await run_limited(request, "expand", _tree_page, *args)
    else:
        body, sha, more = await run_in_threadpool(_tree_page, *args)
    headers = {"X-Repo-Commit": sha}
    if more:
        headers["Link"] = next_link(request, cursor=cursor + page)
    return JSONResponse(body, headers=headers)


def _tree_page(storage: HubStorage, repo: RepoRef, revision: str, path: str, recursive: str | None, cursor: int,
               page: int, expand: bool) -> tuple[list[dict], str, bool]:  # fmt: skip
    sha, entries = storage.tree(repo, revision, path, recursive=truthy(recursive))
    entries.sort(key=(lambda e: e.path) if truthy(recursive) else (lambda e: (e.type != "directory", e.path)))
    body = _entries_json(storage, repo, sha, entries[cursor : cursor + page], expand)
    return body, sha, cursor + page < len(entries)


@router.post(API_REPO + "/paths-info/{revision:rpath}")
async def paths_info(
    request: Request,
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
    args = (storage, repo, revision or "main", valid, truthy(expand))
    if truthy(expand):
        body, sha = await run_limited(request, "expand", _paths_info, *args)
    else:
        body, sha = await run_in_threadpool(_paths_info, *args)
    return JSONResponse(body, headers={"X-Repo-Commit": sha})


def _paths_info(storage: HubStorage, repo: RepoRef, revision: str, paths: list[str], expand: bool):
    sha, entries = storage.paths_info(repo, revision, paths)
    return _entries_json(storage, repo, sha, entries, expand), sha
