"""Read-only git over HTTP (smart protocol through ``git upload-pack``, dumb protocol as fallback)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from . import errors

if TYPE_CHECKING:
    from .app import Hub

_OBJECT_PATH = re.compile(r"^(info/packs|[0-9a-f]{2}/[0-9a-f]{38}|pack/pack-[0-9a-f]{40,64}\.(pack|idx))$")
MAX_NEGOTIATION_BYTES = 64 * 1024 * 1024


def _pkt_line(text: str) -> bytes:
    data = text.encode()
    return f"{len(data) + 4:04x}".encode() + data


def _git_env(request: Request) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    protocol = request.headers.get("git-protocol", "")
    if re.fullmatch(r"version=[0-9]+(:[A-Za-z0-9=._-]+)*", protocol):
        env["GIT_PROTOCOL"] = protocol
    return env


def _authorize(hub: Hub, request: Request):
    ref, rest = hub.file_repo(request)
    token = hub.token(request)
    try:
        hub.can_read(ref, token)
    except errors.RepoNotFound:
        if token is None:
            raise errors.Unauthorized(
                "Authentication required", headers={"WWW-Authenticate": 'Basic realm="hub"'}
            ) from None
        raise
    return ref, rest


def _gunzip_limited(data: bytes, limit: int) -> bytes:
    """Decompress a gzip body, refusing more than `limit` bytes of output (no gzip bombs)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise errors.BadRequest(f"Invalid gzip body: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise errors.PayloadTooLarge("git negotiation body too large once decompressed")
    if not inflater.eof:
        raise errors.BadRequest("Invalid gzip body: truncated")
    return out


def add_routes(app: FastAPI, hub: Hub, prefix: str, tags: list[str]) -> None:
    """Register the git HTTP routes for one URL prefix ("", "/datasets", "/spaces")."""
    storage = hub.storage

    def info_refs(request: Request, namespace: str, name: str, service: str | None = None) -> Response:
        ref, _ = _authorize(hub, request)
        git_dir = storage.git_dir(ref)
        if service == "git-receive-pack":
            raise errors.Forbidden("This server is read-only over git; use the HTTP API to push")
        if service == "git-upload-pack" and shutil.which("git"):
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
                body,
                media_type="application/x-git-upload-pack-advertisement",
                headers={"Cache-Control": "no-cache"},
            )
        if service is not None:
            raise errors.BadRequest(f"Unsupported git service {service!r}")
        refs = storage.list_refs(ref)
        lines = [f"{sha}\trefs/heads/{n}\n" for n, sha in sorted(refs["branches"].items())]
        lines += [f"{sha}\trefs/tags/{n}\n" for n, sha in sorted(refs["tags"].items())]
        return Response("".join(lines), media_type="text/plain", headers={"Cache-Control": "no-cache"})

    async def upload_pack(request: Request, namespace: str, name: str) -> Response:
        ref, _ = _authorize(hub, request)
        git_dir = storage.git_dir(ref)
        if not shutil.which("git"):
            raise errors.NotFound("Smart HTTP is unavailable on this server; the dumb protocol still works")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_NEGOTIATION_BYTES:
                raise errors.PayloadTooLarge("git negotiation body too large")
        data = bytes(body)
        if request.headers.get("content-encoding", "").lower() == "gzip":
            data = _gunzip_limited(data, MAX_NEGOTIATION_BYTES)
        proc = subprocess.Popen(
            ["git", "upload-pack", "--stateless-rpc", str(git_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_git_env(request),
        )

        def feed() -> None:
            try:
                proc.stdin.write(data)
            except BrokenPipeError:
                pass
            finally:
                proc.stdin.close()

        threading.Thread(target=feed, daemon=True).start()

        def stream() -> Iterator[bytes]:
            try:
                while True:
                    chunk = proc.stdout.read(1 << 16)
                    if not chunk:
                        break
                    yield chunk
            finally:
                proc.stdout.close()
                proc.kill() if proc.poll() is None else None
                proc.wait()

        return StreamingResponse(
            stream(), media_type="application/x-git-upload-pack-result", headers={"Cache-Control": "no-cache"}
        )

    def receive_pack(request: Request, namespace: str, name: str) -> Response:
        _authorize(hub, request)
        raise errors.Forbidden("This server is read-only over git; use the HTTP API to push")

    def head(request: Request, namespace: str, name: str) -> Response:
        _authorize(hub, request)
        return Response("ref: refs/heads/main\n", media_type="text/plain")

    def objects(request: Request, namespace: str, name: str, path: str) -> Response:
        ref, rest = _authorize(hub, request)
        git_dir = storage.git_dir(ref)
        rel = "/".join(rest[1:])
        if not _OBJECT_PATH.match(rel):
            raise errors.NotFound(f"No such git object path: {rel}")
        if rel == "info/packs":
            packs = sorted(p for p in os.listdir(git_dir / "objects" / "pack") if p.endswith(".pack"))
            return Response("".join(f"P {p}\n" for p in packs) + "\n", media_type="text/plain")
        target = git_dir / "objects" / rel
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise errors.NotFound(f"No such git object: {rel}") from None
        return Response(data, media_type="application/octet-stream")

    base = prefix + "/{namespace}/{name}"
    app.add_api_route(base + "/info/refs", info_refs, methods=["GET"], tags=tags, summary="git info/refs")
    app.add_api_route(
        base + "/git-upload-pack",
        upload_pack,
        methods=["POST"],
        tags=tags,
        summary="git upload-pack (smart HTTP)",
        openapi_extra={
            "requestBody": {"content": {"application/x-git-upload-pack-request": {"schema": {"type": "string"}}}}
        },
    )
    app.add_api_route(base + "/git-receive-pack", receive_pack, methods=["POST"], tags=tags, summary="refused")
    app.add_api_route(base + "/HEAD", head, methods=["GET"], tags=tags, summary="git HEAD (dumb HTTP)")
    app.add_api_route(base + "/objects/{path:path}", objects, methods=["GET"], tags=tags, summary="git objects")
