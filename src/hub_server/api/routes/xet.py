"""The Xet CAS protocol (``huggingface/xet-core`` ``spec/``), one CAS URL per repo incarnation.

Under ``/cas/{type}s/{ns}/{name}/{generation}``: xorb upload (``/v1/xorbs``), upload grants (declined, so
the client uploads directly), shard upload (``/v1/shards``, ``/v2/shards`` with NDJSON progress), the
global-dedup query (``/v1/chunks``) and reconstructions (``/v1|v2/reconstructions``). Every one takes a
Xet token of that repo. Fetch URLs (``/cas/fetch/{xorb}``) authorize themselves: a signed, expiring
ticket bound to one xorb and one byte range. ``POST /v1/telemetry`` sits at the host root, where the
client sends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ... import errors, xet
from ...storage import HubStorage
from ...storage.xet_store import fetch_message
from ..deps import Storage
from ..http import base_url, spool_body
from ..xet_auth import XetAccess, XetGrant, XetWriteAccess

router = APIRouter(tags=["xet"])
log = logging.getLogger("hub_server.xet")
CAS = "/cas/{repo_type:rtype}/{namespace:seg}/{name:seg}/{generation:seg}"
_KEEPALIVE_SECONDS = 15
_BYTES = re.compile(r"bytes=(\d{1,15})-(\d{1,15})")
_SIGNED_RANGE = re.compile(r"(\d{1,15})-(\d{1,15})")


def _hash(text: str, what: str) -> str:
    """A hash in its URL text form; 400 for anything else."""
    if not xet.is_hex_hash(text):
        raise errors.BadRequest(f"Invalid {what} hash {text!r}: expected 64 lowercase hexadecimal characters")
    return xet.hash_to_hex(xet.hex_to_hash(text))


def _prefix(prefix: str) -> None:
    if prefix not in xet.QUERY_PREFIXES:
        raise errors.BadRequest(f"Unknown prefix {prefix!r}: expected one of {', '.join(xet.QUERY_PREFIXES)}")


@contextlib.contextmanager
def _xet_errors() -> Iterator[None]:
    """Format and range errors of the Xet library as the hub's 400 and 416."""
    try:
        yield
    except xet.XetRangeError as exc:
        raise errors.RangeNotSatisfiable(exc.message) from None
    except xet.XetFormatError as exc:
        raise errors.BadRequest(exc.message) from None


async def _spool(request: Request, storage: HubStorage, limit: int) -> Path:
    """Stream the request body to a temporary file (413 past ``limit``, nothing left behind on failure)."""
    staged = await spool_body(request, storage, limit, suffix=".xet", hashed=False)
    return staged.path


# --------------------------------------------------------------------------- uploads


@router.post(CAS + "/v1/xorb-grants/{prefix:seg}/{xorb:seg}")
def xorb_upload_grant(prefix: str, xorb: str, grant: XetWriteAccess) -> Response:
    """Upload grants (uploading elsewhere) are not offered: a 404 makes the client POST the xorb here."""
    raise errors.NotFound("Upload grants are not offered by this CAS: upload the xorb to /v1/xorbs")


@router.post(CAS + "/v1/xorbs/{prefix:seg}/{xorb:seg}")
async def upload_xorb(request: Request, prefix: str, xorb: str, grant: XetWriteAccess, storage: Storage) -> Response:
    """Receive a xorb; every chunk and the xorb hash are verified before it is stored (400 otherwise)."""
    name = _hash(xorb, "xorb")
    _prefix(prefix)
    body = await _spool(request, storage, xet.MAX_XORB_SIZE)
    try:
        with _xet_errors():
            inserted = await run_in_threadpool(storage.xet.store_xorb, grant.ref, name, body)
    finally:
        body.unlink(missing_ok=True)
    return JSONResponse({"was_inserted": inserted})


@router.post(CAS + "/v1/shards")
async def upload_shard_v1(request: Request, grant: XetWriteAccess, storage: Storage) -> Response:
    """Register the files of a shard (400 when anything in it does not verify, and nothing is recorded)."""
    body = await _spool(request, storage, xet.MAX_SHARD_SIZE)
    try:
        with _xet_errors():
            added = await run_in_threadpool(storage.xet.accept_shard, grant.ref, grant.user, body)
    finally:
        body.unlink(missing_ok=True)
    return JSONResponse({"result": 1 if added else 0})


@router.post(CAS + "/v2/shards")
async def upload_shard_v2(request: Request, grant: XetWriteAccess, storage: Storage) -> Response:
    """Register the files of a shard, answering NDJSON progress frames and a final result or error frame."""
    body = await _spool(request, storage, xet.MAX_SHARD_SIZE)
    return StreamingResponse(_shard_frames(storage, grant, body), media_type="application/x-ndjson")


def _frame(value: dict) -> bytes:
    return json.dumps(value).encode() + b"\n"


async def _shard_frames(storage: HubStorage, grant: XetGrant, body: Path) -> AsyncIterator[bytes]:
    """Run the verification in a thread; repeat the last progress frame while it works (keeps the link alive)."""
    progress = {"type": "validating", "verified": 0, "total": 1}

    def report(done: int, total: int) -> None:
        progress.update(verified=done, total=total)

    task = asyncio.ensure_future(run_in_threadpool(storage.xet.accept_shard, grant.ref, grant.user, body, report))
    task.add_done_callback(lambda _: body.unlink(missing_ok=True))
    yield _frame(progress)
    while not (await asyncio.wait({task}, timeout=_KEEPALIVE_SECONDS))[0]:
        yield _frame(progress)
    try:
        task.result()
    except (xet.XetFormatError, xet.XetRangeError, errors.HubError) as exc:
        yield _frame({"type": "error", "message": exc.message, "retryable": False})
    except Exception:  # noqa: BLE001 - a server fault: logged, and the client may retry
        log.exception("Shard registration failed")
        yield _frame({"type": "error", "message": "Internal error while registering the shard", "retryable": True})
    else:
        yield _frame({"type": "result"})


# --------------------------------------------------------------------------- dedup and downloads


@router.get(CAS + "/v1/chunks/{prefix:seg}/{chunk:seg}")
def dedup_query(prefix: str, chunk: str, grant: XetAccess, storage: Storage) -> Response:
    """A shard listing xorbs that hold this chunk and that this repo may use (404 when there is none)."""
    name = _hash(chunk, "chunk")
    _prefix(prefix)
    answer = storage.xet.dedup_answer(grant.ref, grant.user, name, grant=grant.scope == "write")
    if answer is None:
        raise errors.NotFound(f"Chunk {name} is not known to this repository's storage")
    return Response(answer, media_type="application/octet-stream")


def _reconstruction(request: Request, file: str, grant: XetGrant, storage: HubStorage, version: str) -> Response:
    name = _hash(file, "file")
    with _xet_errors():
        plan = storage.xet.reconstruction(grant.ref, name, request.headers.get("range"))
    base = base_url(request)

    def sign(xorb: str, start: int, end: int) -> str:
        return storage.xet.fetch_url(base, xorb, start, end)

    return JSONResponse(plan.to_v2(sign) if version == "v2" else plan.to_v1(sign))


@router.get(CAS + "/v1/reconstructions/{file:seg}")
def reconstruction_v1(request: Request, file: str, grant: XetAccess, storage: Storage) -> Response:
    """Terms and fetch URLs that rebuild the file (or the ``Range`` asked for)."""
    return _reconstruction(request, file, grant, storage, "v1")


@router.get(CAS + "/v2/reconstructions/{file:seg}")
def reconstruction_v2(request: Request, file: str, grant: XetAccess, storage: Storage) -> Response:
    """Terms and fetch URLs that rebuild the file (or the ``Range`` asked for), grouped per xorb."""
    return _reconstruction(request, file, grant, storage, "v2")


@router.get("/cas/fetch/{xorb:seg}")
def fetch_xorb_range(
    request: Request,
    xorb: str,
    storage: Storage,
    signed_range: str = Query(..., alias="range"),
    ticket: str = Query(...),
) -> Response:
    """Serve the byte range of a xorb that the URL's ticket signs (403 when invalid, expired or exceeded)."""
    name = _hash(xorb, "xorb")
    match = _SIGNED_RANGE.fullmatch(signed_range)
    start, end = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not match or not storage.signer.check(fetch_message(name, start, end), ticket):
        raise errors.Forbidden("Invalid or expired fetch URL")
    first, last, status = start, end - 1, 200
    header = request.headers.get("range")
    if header is not None:
        asked = _BYTES.fullmatch(header.strip())
        if not asked or not start <= int(asked.group(1)) <= int(asked.group(2)) < end:
            raise errors.Forbidden(f"This URL serves bytes {start}-{end - 1} only")
        first, last, status = int(asked.group(1)), int(asked.group(2)), 206
    headers = {"Content-Length": str(last - first + 1), "Cache-Control": "private, max-age=0"}
    if status == 206:
        headers["Content-Range"] = f"bytes {first}-{last}/*"
    stream = storage.xet.iter_xorb(name, first, last + 1)
    return StreamingResponse(stream, status_code=status, headers=headers, media_type="application/octet-stream")


@router.post("/v1/telemetry", include_in_schema=False)
def telemetry() -> Response:
    """Client telemetry is accepted and dropped."""
    return JSONResponse({})
