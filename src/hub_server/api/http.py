"""HTTP helpers shared by the routers: URLs, pagination, ranges, body spooling and error responses."""

from __future__ import annotations

import functools
import hashlib
import re
from urllib.parse import urlencode

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from .. import errors
from ..storage import HubStorage, RepoRef, StagedFile

SPOOL_BUFFER = 1024 * 1024
_MAX_RANGE_DIGITS = 20


def base_url(request: Request) -> str:
    """The scheme and host the client used (returned URLs must use the same host:port)."""
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


def repo_url(request: Request, ref: RepoRef) -> str:
    """The absolute URL of a repo, on the request's own host."""
    return f"{base_url(request)}/{ref.url_prefix}{ref.id}"


def truthy(value: str | None) -> bool:
    """A query/form boolean as either client sends it (``True``, ``true``, ``1``…)."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def next_link(request: Request, **params: object) -> str:
    """A ``Link: <…>; rel="next"`` header value for the same request with updated query parameters."""
    query = dict(request.query_params)
    query.update({k: str(v) for k, v in params.items()})
    return f'<{base_url(request)}{request.url.path}?{urlencode(query)}>; rel="next"'


def header_value(text: str) -> str:
    """Text made safe for an HTTP header: one line, Latin-1, no control characters, at most 500 chars."""
    text = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(text.split()).encode("latin-1", "replace").decode("latin-1")[:500]


def error_response(exc: errors.HubError, request: Request) -> Response:
    """The response for a hub error: its status, ``X-Error-Code``/``X-Error-Message`` and a JSON body."""
    if isinstance(exc, errors.RepoNotFound):  # the Hub's wording, which the client folds into its own message
        exc = errors.RepoNotFound("Repository not found", extra=exc.extra, headers=exc.headers)
    headers = {"X-Error-Code": exc.code or "Error", "X-Error-Message": header_value(exc.message)}
    headers.update(exc.headers)
    if request.method == "HEAD":
        return Response(status_code=exc.status, headers=headers)
    return JSONResponse({"error": exc.message, **exc.extra}, status_code=exc.status, headers=headers)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range as (start, end inclusive); None when absent or not parseable."""
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if len(first) > _MAX_RANGE_DIGITS or len(last) > _MAX_RANGE_DIGITS:
        return None
    unsatisfiable = errors.RangeNotSatisfiable(
        f"Range {header} not satisfiable (size {size})", headers={"Content-Range": f"bytes */{size}"}
    )
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if start >= size or (last and int(last) < start):
            raise unsatisfiable
        return start, end
    suffix = int(last)
    if suffix == 0:
        raise unsatisfiable
    return max(size - suffix, 0), size - 1


async def spool_body(
    request: Request, storage: HubStorage, limit: int, suffix: str = ".body", *, hashed: bool = True
) -> StagedFile:
    """Stream a request body to a temporary file (hashing it unless ``hashed`` is false); 413 past ``limit``.

    Each piece the server hands over (tens of KiB) is hashed and written as it arrives, into a buffered file:
    page-cache writes of that size cost microseconds, far less than a hop to a worker thread would, and no
    more than one piece and the file buffer are held per request.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > limit
        except ValueError:
            raise errors.BadRequest("Invalid Content-Length") from None
        if too_big:
            raise errors.PayloadTooLarge(f"Request body too large ({declared} > {limit} bytes)")
    path = storage.new_temp_path(suffix)
    digest = hashlib.sha256() if hashed else None
    size = 0
    fh = await anyio.to_thread.run_sync(functools.partial(open, path, "wb", buffering=SPOOL_BUFFER))
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise errors.PayloadTooLarge(f"Request body too large (limit {limit} bytes)")
            if digest is not None:
                digest.update(chunk)
            fh.write(chunk)
        fh.flush()
    except BaseException:
        fh.close()
        path.unlink(missing_ok=True)
        raise
    fh.close()
    return StagedFile(path=path, sha256=digest.hexdigest() if digest is not None else "", size=size)
