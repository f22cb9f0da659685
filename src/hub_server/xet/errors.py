"""Exceptions of the Xet core: each carries the HTTP status a route should answer with."""

from __future__ import annotations


class XetError(Exception):
    """Base class of every failure raised by ``hub_server.xet``."""

    status_code: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class XetFormatError(XetError):
    """A xorb, shard, hash or header that is malformed, truncated, oversized or does not verify (400)."""

    status_code = 400


class XetRangeError(XetError):
    """A byte range that starts at or past the end of the file (416)."""

    status_code = 416


class XetMissingDataError(XetError):
    """A term refers to a xorb or chunk the caller could not provide; the stored data is inconsistent (500)."""

    status_code = 500
