"""Downloads: ``resolve`` (and ``raw``) for every repo type, GET and HEAD, with ``Range``."""

from __future__ import annotations

import mimetypes
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from ... import errors
from ...storage import validate_path
from ..deps import ReadableFileRepo, Storage
from ..http import parse_range
from ..xet_auth import read_token_url

router = APIRouter(tags=["files"])
RESOLVE = "/{repo:repo}/resolve/{revision:seg}/{path:rpath}"
RAW = "/{repo:repo}/raw/{revision:seg}/{path:rpath}"
# Types a browser would render or execute: served as plain text, so repo files never run on the hub's origin.
_ACTIVE_TYPES = ("text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/xml",
                 "text/javascript", "application/javascript")  # fmt: skip


def safe_media_type(path: str) -> str:
    """The content type to serve a repo file with."""
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return "text/plain" if media_type in _ACTIVE_TYPES else media_type


@router.get(RESOLVE)
@router.get(RAW)
@router.head(RESOLVE, include_in_schema=False)
@router.head(RAW, include_in_schema=False)
def resolve(request: Request, repo: ReadableFileRepo, revision: str, path: str, storage: Storage) -> Response:
    """A file at a branch, tag or commit, with the headers ``hf_hub_download`` relies on."""
    if not path:
        raise errors.EntryNotFound("No file path given")
    try:
        validate_path(path)
    except errors.InvalidPath as exc:
        raise errors.EntryNotFound(exc.message) from None
    sha, entry = storage.stat(repo, revision, path)
    visibility = "private" if storage.meta.get_repo(repo).private else "public"
    etag = f'"{entry.etag}"'
    headers = {
        "X-Repo-Commit": sha,
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}",
        "Cache-Control": "private, max-age=0" if sha != revision else f"{visibility}, max-age=31536000, immutable",
        # repo files are untrusted: never let a browser run them on the hub's origin
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    if entry.lfs:
        headers["X-Linked-Etag"] = etag
        headers["X-Linked-Size"] = str(entry.size)
    if entry.xet_hash:  # stored in the CAS: Xet clients fetch it from there, others GET it here
        refresh = read_token_url(request, repo, sha)
        headers.update(
            {"X-Xet-Hash": entry.xet_hash, "X-Xet-Refresh-Route": refresh, "Link": f'<{refresh}>; rel="xet-auth"'}
        )
    size = entry.size
    status, start, end = 200, 0, size - 1
    byte_range = parse_range(request.headers.get("range"), size) if size else None
    if byte_range is not None:
        start, end = byte_range
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1 if size else 0)
    media_type = safe_media_type(path)
    if request.method == "GET" and entry.lfs is not None:
        direct = storage.lfs_download_url(repo, entry.lfs.oid)
        if direct is not None:  # the object store serves the bytes; the client keeps these headers
            kept = {k: v for k, v in headers.items() if k not in ("Content-Length", "Content-Range")}
            return Response(status_code=302, headers={**kept, "Location": direct})
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type)
    stream = storage.iter_entry(repo, entry, start, end + 1) if size else iter([b""])
    return StreamingResponse(stream, status_code=status, headers=headers, media_type=media_type)
