"""Git LFS basic transfer: the batch API, self-authorizing upload/download hrefs, verify."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ... import errors
from ...storage import HubStorage, RepoRef
from ...storage.service import DIRECT_URL_TTL
from ..deps import CurrentToken, FileRepo, State, Storage, check_download
from ..http import base_url, spool_body
from ..pulls import participant
from ..schemas import LfsBatchBody, LfsVerifyBody

router = APIRouter(tags=["lfs"])
LFS_JSON = "application/vnd.git-lfs+json"
_OID = re.compile(r"^[0-9a-f]{64}$")


def _upload_message(ref: RepoRef, oid: str, size: int) -> str:
    return f"{ref.type}/{ref.id}/{oid}/{size}"


def _download_message(storage: HubStorage, ref: RepoRef, oid: str, size: int) -> str:
    """What a download ticket signs; it includes the repo's visibility, so going private revokes tickets."""
    visibility = "private" if storage.meta.get_repo(ref).private else "public"
    return f"{ref.type}/{ref.id}/{oid}/{size}/download/{visibility}"


def _object_item(request: Request, state, ref: RepoRef, operation: str, oid: str, size: int) -> dict:
    """One object of a batch answer: actions to take, nothing (already stored), or an error."""
    storage, limit = state.storage, state.settings.max_lfs_bytes
    item: dict = {"oid": oid, "size": size}
    if not _OID.match(oid) or size < 0:
        item["error"] = {"code": 422, "message": "Invalid oid or size"}
        return item
    if size > limit:
        item["error"] = {"code": 422, "message": f"Object larger than {limit} bytes"}
        return item
    href = f"{base_url(request)}/{ref.url_prefix}{ref.id}.git/info/lfs"
    stored = storage.repo_lfs_size(ref, oid) == size
    if operation == "upload":
        if not stored:
            query = urlencode({"size": size, "ticket": storage.signer.sign(_upload_message(ref, oid, size))})
            item["authenticated"] = True
            item["actions"] = {
                "upload": {"href": f"{href}/objects/{oid}?{query}", "expires_in": 3600},
                "verify": {"href": f"{href}/verify", "expires_in": 3600},
            }
    elif not stored:
        item["error"] = {"code": 404, "message": "Object does not exist"}
    else:
        direct, ttl = storage.lfs_download_url(ref, oid), DIRECT_URL_TTL
        if direct is None:
            ticket = storage.signer.sign(_download_message(storage, ref, oid, size))
            direct, ttl = f"{href}/objects/{oid}?{urlencode({'size': size, 'ticket': ticket})}", 3600
        item["actions"] = {"download": {"href": direct, "expires_in": ttl}}
    return item


@router.post("/{repo:repo}/info/lfs/objects/batch")
def batch(request: Request, ref: FileRepo, body: LfsBatchBody, token: CurrentToken, state: State) -> Response:
    """Where to upload or download each object."""
    if body.operation == "upload":  # writers, and anyone who may open a pull request with the objects
        ref = participant(state.storage, ref, token)[0]
    elif body.operation == "download":
        ref = check_download(state.storage, ref, token)
    else:
        raise errors.BadRequest(f"Unknown LFS operation {body.operation!r}: expected 'upload' or 'download'")
    if len(body.objects) > 1000:
        raise errors.BadRequest("Too many objects in one LFS batch (at most 1000)")
    objects = [_object_item(request, state, ref, body.operation, o.oid, o.size) for o in body.objects]
    return JSONResponse({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}, media_type=LFS_JSON)


@router.put(
    "/{repo:repo}/info/lfs/objects/{oid:seg}",
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string"}}}}},
)
async def upload(
    request: Request, ref: FileRepo, oid: str, state: State, size: int = Query(..., ge=0), ticket: str = Query(...)
) -> Response:
    """Receive an object's bytes (the href's ticket authorizes the upload)."""
    storage = state.storage
    if not _OID.match(oid) or not storage.signer.check(_upload_message(ref, oid, size), ticket):
        raise errors.Forbidden("Invalid or expired upload ticket")
    staged = await spool_body(request, storage, size, suffix=".lfs")
    try:
        await run_in_threadpool(storage.lfs_import, staged, oid, size, ref)
    finally:
        staged.path.unlink(missing_ok=True)
    state.stats["lfs_uploads"] += 1
    return Response(status_code=200)


@router.get("/{repo:repo}/info/lfs/objects/{oid:seg}")
def download(
    ref: FileRepo, oid: str, storage: Storage, size: int = Query(..., ge=0), ticket: str = Query(...)
) -> Response:
    """Send an object's bytes (the href's ticket authorizes the download)."""
    if not _OID.match(oid) or not storage.signer.check(_download_message(storage, ref, oid, size), ticket):
        raise errors.Forbidden("Invalid or expired download ticket")
    if storage.repo_lfs_size(ref, oid) != size:
        raise errors.NotFound(f"LFS object {oid} ({size} bytes) not found")
    return StreamingResponse(
        storage.iter_lfs_object(ref, oid),
        media_type="application/octet-stream",
        headers={"Content-Length": str(size)},
    )


@router.post("/{repo:repo}/info/lfs/verify")
def verify(ref: FileRepo, body: LfsVerifyBody, token: CurrentToken, storage: Storage) -> Response:
    """Confirm that an uploaded object is stored for this repo."""
    ref = participant(storage, ref, token)[0]
    if not _OID.match(body.oid):
        raise errors.BadRequest("Invalid oid: expected 64 lowercase hex characters")
    if storage.repo_lfs_size(ref, body.oid) != body.size:
        raise errors.NotFound(f"LFS object {body.oid} ({body.size} bytes) not found")
    return JSONResponse({"message": "Object verified"}, media_type=LFS_JSON)
