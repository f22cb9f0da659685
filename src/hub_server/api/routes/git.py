"""Read-only git over HTTP (smart protocol through ``git upload-pack``, dumb protocol as fallback)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from ... import errors
from ...storage import RepoRef
from ..deps import CurrentToken, FileRepo, Storage, check_download
from ..limits import semaphore

_OBJECT_PATH = re.compile(r"^(info/packs|[0-9a-f]{2}/[0-9a-f]{38}|pack/pack-[0-9a-f]{40,64}\.(pack|idx))$")
MAX_NEGOTIATION_BYTES = 16 * 1024 * 1024  # wants and haves of a fetch; spooled to disk, never held in memory


def _pkt_line(text: str) -> bytes:
    data = text.encode()
    return f"{len(data) + 4:04x}".encode() + data


def _git_env(request: Request) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    protocol = request.headers.get("git-protocol", "")
    if re.fullmatch(r"version=[0-9]+(:[A-Za-z0-9=._-]+)*", protocol):
        env["GIT_PROTOCOL"] = protocol
    return env


router = APIRouter(tags=["git"])


def git_readable(ref: FileRepo, token: CurrentToken, storage: Storage) -> RepoRef:
    """A repo the caller may clone (the download rule: gated repos need an accepted request); anonymous callers of a
    hidden or gated repo are asked for credentials."""
    try:
        return check_download(storage, ref, token)
    except errors.GatedRepo as gated:
        if token is None:
            raise errors.Unauthorized(str(gated), headers={"WWW-Authenticate": 'Basic realm="hub"'}) from None
        raise
    except errors.RepoNotFound:
        if token is None:
            raise errors.Unauthorized(
                "Authentication required", headers={"WWW-Authenticate": 'Basic realm="hub"'}
            ) from None
        raise


GitRepo = Annotated[RepoRef, Depends(git_readable)]


def _gunzip_step(inflater, data: bytes, room: int) -> bytes:
    """Decompress one chunk of a gzip body, refusing more than ``room`` bytes of output (no gzip bombs)."""
    try:
        out = inflater.decompress(data, room + 1)
    except zlib.error as exc:
        raise errors.BadRequest(f"Invalid gzip body: {exc}") from None
    if len(out) > room or inflater.unconsumed_tail:
        raise errors.PayloadTooLarge("git negotiation body too large once decompressed")
    return out


def _advertise_refs(request: Request, git_dir) -> Response:
    env = _git_env(request)
    out = subprocess.run(
        ["git", "upload-pack", "--stateless-rpc", "--advertise-refs", str(git_dir)],
        capture_output=True,
        env=env,
        check=False,
        timeout=60,
    )
    if out.returncode != 0:
        raise errors.BadRequest("git upload-pack failed: " + out.stderr.decode("utf-8", "replace")[:300])
    body = out.stdout
    if "GIT_PROTOCOL" not in env or "version=2" not in env["GIT_PROTOCOL"]:
        body = _pkt_line("# service=git-upload-pack\n") + b"0000" + body
    return Response(
        body, media_type="application/x-git-upload-pack-advertisement", headers={"Cache-Control": "no-cache"}
    )


@router.get("/{repo:repo}/info/refs")
def info_refs(request: Request, ref: GitRepo, storage: Storage, service: str | None = None) -> Response:
    """Ref advertisement (smart HTTP) or the plain refs list (dumb HTTP)."""
    git_dir = storage.repos.git_dir(ref)
    if service == "git-receive-pack":
        raise errors.Forbidden("This server is read-only over git; use the HTTP API to push")
    if service == "git-upload-pack" and shutil.which("git"):
        return _advertise_refs(request, git_dir)
    if service is not None:
        raise errors.BadRequest(f"Unsupported git service {service!r}")
    refs = storage.repos.list_refs(ref)
    lines = [f"{sha}\trefs/heads/{n}\n" for n, sha in sorted(refs["branches"].items())]
    lines += [f"{sha}\trefs/tags/{n}\n" for n, sha in sorted(refs["tags"].items())]
    return Response("".join(lines), media_type="text/plain", headers={"Cache-Control": "no-cache"})


async def _spool_negotiation(request: Request, storage) -> Path:
    """Stream the (possibly gzipped) negotiation body to a temporary file, at most MAX_NEGOTIATION_BYTES."""
    path = storage.new_temp_path(".negotiation")
    gzipped = request.headers.get("content-encoding", "").lower() == "gzip"
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    size = 0
    try:
        with open(path, "wb") as fh:
            async for chunk in request.stream():
                data = _gunzip_step(inflater, chunk, MAX_NEGOTIATION_BYTES - size) if inflater else chunk
                size += len(data)
                if size > MAX_NEGOTIATION_BYTES:
                    raise errors.PayloadTooLarge("git negotiation body too large")
                fh.write(data)
        if inflater is not None and not inflater.eof:
            raise errors.BadRequest("Invalid gzip body: truncated")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


async def _stream_process(proc: subprocess.Popen, slot: anyio.Semaphore) -> AsyncIterator[bytes]:
    """The process's output; the upload-pack slot is given back when the response ends, however it ends."""
    try:
        while chunk := await anyio.to_thread.run_sync(proc.stdout.read, 1 << 16):
            yield chunk
    finally:
        proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
        await anyio.to_thread.run_sync(proc.wait)
        slot.release()


@router.post(
    "/{repo:repo}/git-upload-pack",
    openapi_extra={
        "requestBody": {"content": {"application/x-git-upload-pack-request": {"schema": {"type": "string"}}}}
    },
)
async def upload_pack(request: Request, ref: GitRepo, storage: Storage) -> Response:
    """The pack negotiation of ``git clone`` / ``git fetch`` (smart HTTP)."""
    git_dir = storage.repos.git_dir(ref)
    if not shutil.which("git"):
        raise errors.NotFound("Smart HTTP is unavailable on this server; the dumb protocol still works")
    body = await _spool_negotiation(request, storage)
    slot = semaphore(request, "upload-pack")  # a few git processes at once; the others wait their turn
    try:
        await slot.acquire()
        try:
            with open(body, "rb") as stdin:
                proc = subprocess.Popen(
                    ["git", "upload-pack", "--stateless-rpc", str(git_dir)],
                    stdin=stdin,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=_git_env(request),
                )
        except BaseException:
            slot.release()
            raise
    finally:
        body.unlink(missing_ok=True)
    return StreamingResponse(
        _stream_process(proc, slot),
        media_type="application/x-git-upload-pack-result",
        headers={"Cache-Control": "no-cache"},
    )


@router.post("/{repo:repo}/git-receive-pack")
def receive_pack(ref: GitRepo) -> Response:
    """Pushing over git is refused: the HTTP API is the way to write."""
    raise errors.Forbidden("This server is read-only over git; use the HTTP API to push")


@router.get("/{repo:repo}/HEAD")
def head(ref: GitRepo) -> Response:
    """The symbolic HEAD (dumb HTTP)."""
    return Response("ref: refs/heads/main\n", media_type="text/plain")


@router.get("/{repo:repo}/objects/{path:rpath}")
def objects(ref: GitRepo, path: str, storage: Storage) -> Response:
    """Loose objects and packs (dumb HTTP)."""
    git_dir = storage.repos.git_dir(ref)
    if not _OBJECT_PATH.match(path):
        raise errors.NotFound(f"No such git object path: {path}")
    if path == "info/packs":
        packs = sorted(p for p in os.listdir(git_dir / "objects" / "pack") if p.endswith(".pack"))
        return Response("".join(f"P {p}\n" for p in packs) + "\n", media_type="text/plain")
    try:
        data = (git_dir / "objects" / path).read_bytes()
    except FileNotFoundError:
        raise errors.NotFound(f"No such git object: {path}") from None
    return Response(data, media_type="application/octet-stream")
