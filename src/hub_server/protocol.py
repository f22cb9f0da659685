"""HTTP/1.1 with a deadline for request headers (uvicorn's h11 protocol has none).

A client that opens a connection and sends its headers slowly, or not at all, holds a connection and a
buffer for as long as it likes under plain uvicorn: the keep-alive timer only runs between requests, and
each byte received cancels it. Here, from the moment a request is expected (connection made, or first byte
of the next request) its headers must be complete within ``header_timeout`` seconds, or the connection is
closed.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class _HeaderDeadline:
    """The request-header deadline both protocols share: armed when a request is expected, cancelled once its
    headers are in; when it fires, the connection is closed if headers are still awaited."""

    header_timeout: float = 20.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _awaiting_headers(self) -> bool:
        return True

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._awaiting_headers() and not self.transport.is_closing():
            self.transport.close()


class HeaderTimeoutH11Protocol(_HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol plus a request-header deadline."""

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._header_timer is None:
            self._arm_header_timer()  # the first bytes of a new request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_header_timer()

    def _awaiting_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional: the pure-Python h11 protocol is used without it
    HttpToolsProtocol = None


if HttpToolsProtocol is not None:

    class HeaderTimeoutHttpToolsProtocol(_HeaderDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol (a C parser: fast bodies) plus the same request-header deadline."""

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:  # the first bytes of a new request on a kept-alive connection
                self._arm_header_timer()

        def on_headers_complete(self) -> None:
            self._cancel_header_timer()
            super().on_headers_complete()


def with_header_timeout(seconds: float) -> type:
    """The protocol class to give uvicorn for a given header deadline (httptools when installed, else h11)."""
    base = HeaderTimeoutHttpToolsProtocol if HttpToolsProtocol is not None else HeaderTimeoutH11Protocol
    return type("HubHttpProtocol", (base,), {"header_timeout": float(seconds)})
