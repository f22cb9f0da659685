"""The access log: one line per request at INFO on ``hub_server.access``, with secrets left out.

Query parameters that authorize a request by themselves (LFS tickets, signed-URL signatures and
credentials, tokens) are written as ``REDACTED``; headers are never logged. uvicorn's own access log is off:
it would print the full query string, and it is silenced when uvicorn configures logging before the hub.
"""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import parse_qsl, urlencode

log = logging.getLogger("hub_server.access")
SECRET_PARAM = re.compile(r"ticket|token|sig|signature|credential|policy|key|secret|password|auth", re.IGNORECASE)


def redact_query(query: str) -> str:
    """A query string with the values of secret-bearing parameters replaced."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "REDACTED" if SECRET_PARAM.search(k) else v) for k, v in pairs], safe="/:")


class AccessLogMiddleware:
    """Log method, path, redacted query, status, size, duration and client of every HTTP request."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            return await self.app(scope, receive, send)
        start = time.monotonic()
        status = 500
        sent = 0

        async def send_logged(message):
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            query = redact_query(scope.get("query_string", b"").decode("latin-1"))
            client = scope.get("client") or ("-", 0)
            log.info(
                '%s "%s %s%s" %d %d %.1fms',
                client[0],
                scope.get("method", "-"),
                scope.get("path", ""),
                f"?{query}" if query else "",
                status,
                sent,
                (time.monotonic() - start) * 1000,
            )
