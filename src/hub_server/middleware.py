"""ASGI middleware: request body limits."""

from __future__ import annotations

import re

from fastapi.responses import JSONResponse

from . import errors
from .storage.sql import request_memo

JSON_LIMIT = 16 * 1024 * 1024
_SEGMENT = r"[^/]+"
_COMMIT_ROUTE = re.compile(rf"/api/(models|datasets|spaces)/{_SEGMENT}/{_SEGMENT}/commit/.+")
_UPLOAD_PACK_ROUTE = re.compile(rf"(/datasets|/spaces)?/{_SEGMENT}/{_SEGMENT}/git-upload-pack")
_LFS_PUT_ROUTE = re.compile(rf"(/datasets|/spaces)?/{_SEGMENT}/{_SEGMENT}/info/lfs/objects/[0-9a-f]{{64}}")
_XET_UPLOAD_ROUTE = re.compile(
    rf"/cas/(models|datasets|spaces)/{_SEGMENT}/{_SEGMENT}/{_SEGMENT}/(v1/xorbs/{_SEGMENT}/{_SEGMENT}|v[12]/shards)"
)


class BodyLimitMiddleware:
    """Refuse request bodies over a limit, except on routes that stream their body to disk."""

    def __init__(self, app, limit: int = JSON_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self._streams(scope):
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    response = JSONResponse(
                        {"error": f"Request body too large (limit {self.limit} bytes)"},
                        status_code=413,
                        headers={"X-Error-Code": "PayloadTooLarge"},
                    )
                    return await response(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise errors.PayloadTooLarge(f"Request body too large (limit {self.limit} bytes)")
            return message

        return await self.app(scope, limited_receive, send)

    @staticmethod
    def _streams(scope) -> bool:
        """Routes that stream their bodies to disk under their own limits (matched exactly, not by substring)."""
        path, method = scope.get("path", ""), scope.get("method")
        return bool(
            (method == "POST" and _COMMIT_ROUTE.fullmatch(path))
            or (method == "POST" and _UPLOAD_PACK_ROUTE.fullmatch(path))
            or (method == "PUT" and _LFS_PUT_ROUTE.fullmatch(path))
            or (method == "POST" and _XET_UPLOAD_ROUTE.fullmatch(path))
        )


class RequestMemoMiddleware:
    """Each request reads a repo's metadata row once, however many access checks and stores ask for it."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        with request_memo():
            return await self.app(scope, receive, send)
