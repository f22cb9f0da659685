"""URL paths as clients send them: revisions may hold an encoded ``/`` (``refs%2Fpr%2F1``).

ASGI servers hand routers a fully decoded path, which would split such a revision into several
segments. ``RawPathMiddleware`` rebuilds the path from the raw one with ``%`` and ``/`` inside a
segment kept encoded, and every route declares its parameters with the convertors below, which decode
them: ``{x:seg}`` one segment, ``{x:rpath}`` a file path, ``{repo_type:rtype}`` ``models|datasets|spaces``,
``{repo:repo}`` a repo as file URLs name it (``ns/name``, ``datasets/ns/name``, ``spaces/ns/name``).
"""

from __future__ import annotations

from urllib.parse import unquote, unquote_to_bytes

from starlette.convertors import Convertor, register_url_convertor


def _encode_segment(text: str) -> str:
    return text.replace("%", "%25").replace("/", "%2F")


class Segment(Convertor):
    """One path segment, decoded."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return unquote(value)

    def to_string(self, value: str) -> str:
        return _encode_segment(str(value))


class FilePath(Convertor):
    """A file path inside a repo (several segments), decoded segment by segment."""

    regex = ".*"

    def convert(self, value: str) -> str:
        return "/".join(unquote(part) for part in value.split("/"))

    def to_string(self, value: str) -> str:
        return "/".join(_encode_segment(part) for part in str(value).split("/"))


class RepoPath(FilePath):
    """A repo as it appears in file URLs: ``ns/name``, or with a ``datasets/`` / ``spaces/`` prefix."""

    regex = "(?:(?:datasets|spaces)/)?[^/]+/[^/]+"


class RepoType(Segment):
    """The plural repo type of API paths."""

    regex = "models|datasets|spaces"


API_REPO = "/api/{repo_type:rtype}/{namespace:seg}/{name:seg}"

register_url_convertor("seg", Segment())
register_url_convertor("rtype", RepoType())
register_url_convertor("rpath", FilePath())
register_url_convertor("repo", RepoPath())


class RawPathMiddleware:
    """Route on the raw path, keeping ``%`` and ``/`` inside segments encoded for the convertors."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        raw = scope.get("raw_path") if scope["type"] in ("http", "websocket") else None
        if raw:
            parts = raw.split(b"?", 1)[0].split(b"/")
            path = "/".join(_encode_segment(unquote_to_bytes(p).decode("utf-8", "replace")) for p in parts)
            scope = dict(scope, path=path)
        return await self.app(scope, receive, send)
