"""Uploading: ``validate-yaml``, ``preupload`` (where each file goes) and ``commit`` (NDJSON operations)."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ... import errors
from ...gitignore import GitIgnore
from ...ndjson import parse_commit_body
from ...storage import HubStorage, validate_path
from ...storage.git import gitattributes_lfs_patterns, matches_gitattributes
from ..deps import ApiRepo, CurrentToken, State
from ..http import repo_url, spool_body, truthy
from ..paths import API_REPO
from ..pulls import abandon, commit_target, record_commit
from ..schemas import PreuploadBody, ValidateYamlBody
from ..yamlcheck import check_front_matter

router = APIRouter(tags=["commits"])


@router.post(
    "/api/validate-yaml",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": ValidateYamlBody.model_json_schema()}}}},
)
async def validate_yaml(request: Request) -> Response:
    """Check a README's YAML front matter (the clients read the JSON before the status); bounded work."""
    return await check_front_matter(request)


def _lfs_patterns(storage: HubStorage, ref, branch: str) -> list[str]:
    try:
        head = storage.repos.branch_head(ref, branch)
        text = storage.read_file(ref, head, ".gitattributes").decode("utf-8", "replace")
    except errors.EntryNotFound:
        text = ""
    return gitattributes_lfs_patterns(text)


def _offers_lfs(lfs_mode: str, request: Request) -> bool:
    """``auto``: huggingface_hub clients (0.x upload through the LFS batch API, later ones through Xet)."""
    agent = request.headers.get("user-agent", "")
    return lfs_mode == "always" or (lfs_mode == "auto" and ("hf_hub/" in agent or "hf_xet/" in agent))


@router.post(API_REPO + "/preupload/{revision:rpath}")
def preupload(
    request: Request,
    repo: ApiRepo,
    token: CurrentToken,
    revision: str,
    body: PreuploadBody,
    state: State,
    create_pr: str | None = None,
) -> dict:
    """Tell the client which files go through LFS and which inline in the commit."""
    if len(body.files) > 1000:
        raise errors.BadRequest("Too many files in one preupload request (at most 1000)")
    storage = state.storage
    access = commit_target(storage, repo, token, revision or "main", truthy(create_pr), prepare=False).access
    patterns = _lfs_patterns(storage, access.ref, revision or "main")
    offer_lfs = _offers_lfs(state.settings.lfs_mode, request)
    out = []
    for item in body.files:
        validate_path(item.path)
        if item.size < 0:
            raise errors.BadRequest(f"Invalid size for {item.path}: must be >= 0")
        mode = "regular"
        if offer_lfs and item.size > 0:
            try:
                sample = base64.b64decode(item.sample or "", validate=True)
            except (binascii.Error, ValueError):
                sample = b""
            large = item.size >= storage.settings.lfs_threshold
            if large or matches_gitattributes(item.path, patterns) or b"\0" in sample:
                mode = "lfs"
        out.append({"path": item.path, "uploadMode": mode, "shouldIgnore": False})
    return _with_remote_state(storage, access.ref, revision or "main", out, body.gitIgnore)


def _with_remote_state(storage: HubStorage, ref, revision: str, files: list[dict], gitignore: str | None) -> dict:
    """Each file's current ``oid`` at the revision (the client skips unchanged files) and ``shouldIgnore``
    from the given ``.gitignore`` text, else the revision's ``.gitignore``."""
    try:
        sha, entries = storage.paths_info(ref, revision, [f["path"] for f in files] + [".gitignore"])
    except errors.HubError:
        sha, entries = None, []
    found = {e.path: e for e in entries if e.type == "file"}
    if gitignore is None and ".gitignore" in found and found[".gitignore"].size < 1_000_000:
        gitignore = storage.read_file(ref, sha, ".gitignore").decode("utf-8", "replace")
    rules = GitIgnore(gitignore or "")
    for item in files:
        entry = found.get(item["path"])
        item["oid"] = entry.etag if entry is not None else None
        item["shouldIgnore"] = rules.ignored(item["path"])
    return {"files": files, "commitOid": sha}


@router.post(
    API_REPO + "/commit/{revision:rpath}",
    openapi_extra={
        "requestBody": {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}, "required": True}
    },
)
async def commit(
    request: Request, repo: ApiRepo, token: CurrentToken, revision: str, state: State, create_pr: str | None = None
) -> Response:
    """Apply an NDJSON list of file operations as one commit on a branch or pull request (``create_pr`` opens one)."""
    storage = state.storage
    branch, new_pr = revision or "main", truthy(create_pr)
    target = await run_in_threadpool(commit_target, storage, repo, token, branch, new_pr, prepare=False)
    await run_in_threadpool(storage.repos.branch_head, target.access.ref, branch)
    body = await spool_body(request, storage, state.settings.max_commit_bytes, hashed=False)
    try:
        if new_pr:
            target = await run_in_threadpool(commit_target, storage, repo, token, branch, True, prepare=True)
        try:
            sha, title = await run_in_threadpool(_apply_commit, storage, target.access, target.branch, body.path)
        except BaseException:
            await run_in_threadpool(abandon, storage, target)
            raise
    finally:
        body.path.unlink(missing_ok=True)
    await run_in_threadpool(record_commit, storage, target, sha, title)
    state.stats["commits"] += 1
    url = repo_url(request, target.access.ref)
    return JSONResponse(
        {
            "commitUrl": f"{url}/commit/{sha}",
            "commitOid": sha,
            "pullRequestUrl": f"{url}/discussions/{target.pr}" if target.pr is not None and new_pr else None,
            "success": True,
        }
    )


def _apply_commit(storage: HubStorage, access, branch: str, body_path) -> tuple[str, str]:
    header, operations = parse_commit_body(body_path, storage)
    summary = header.get("summary") or "Upload files"
    try:
        sha = storage.commit(
            access.ref,
            branch,
            operations,
            author=access.token.user,
            summary=summary,
            description=header.get("description") or "",
            parent_commit=header.get("parentCommit"),
        )
        return sha, summary
    finally:
        for op in operations:
            staged = getattr(op, "content", None)
            if staged is not None:
                staged.path.unlink(missing_ok=True)
