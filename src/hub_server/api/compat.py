"""Answers shaped as the Hub gives them, where no router does: request ids, unknown API paths, one-segment ids.

- Every response carries ``X-Request-Id`` (the client's own when it sent a sane one, else a new one); the
  client quotes it in its error messages.
- ``/api/{type}s/{name}`` (a one-segment id such as ``gpt2``, which cannot exist here) is a RepoNotFound.
- Any other unknown ``/api/…`` path is a 404 in the Hub's error shape (not FastAPI's bare ``detail``).
"""

from __future__ import annotations

import re
import uuid

from fastapi import APIRouter

from .. import errors
from . import paths  # noqa: F401 - registers the path convertors

_SANE_ID = re.compile(rb"^[A-Za-z0-9._:=/+-]{1,128}$")
REPO_RESOURCES = {
    "revision",
    "tree",
    "paths-info",
    "refs",
    "commits",
    "commit",
    "preupload",
    "branch",
    "tag",
    "discussions",
    "settings",
    "auth-check",
    "lfs-files",
    "super-squash",
    "user-access-request",
    "xet-read-token",
    "xet-write-token",
}
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

router = APIRouter(include_in_schema=False)


class RequestIdMiddleware:
    """Add ``X-Request-Id`` to every HTTP response."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        sent = dict(scope.get("headers") or []).get(b"x-request-id", b"")
        request_id = sent if _SANE_ID.match(sent) else uuid.uuid4().hex.encode()

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = dict(message, headers=[*headers, (b"x-request-id", request_id)])
            await send(message)

        return await self.app(scope, receive, send_with_id)


@router.api_route("/api/{repo_type:rtype}/{name:seg}", methods=ALL_METHODS)
@router.api_route("/api/{repo_type:rtype}/{name:seg}/{rest:rpath}", methods=ALL_METHODS)
def one_segment_repo(repo_type: str, name: str, rest: str = "") -> None:
    """A repo id without a namespace (``/api/models/gpt2/revision/main``): no such repo on this hub."""
    if rest and rest.split("/", 1)[0] not in REPO_RESOURCES:
        raise errors.NotFound(f"Sorry, we can't find the page you are looking for: /api/{repo_type}/{name}/{rest}")
    raise errors.RepoNotFound("Repository not found")


@router.api_route("/{name:seg}/resolve/{rest:rpath}", methods=["GET", "HEAD"])
@router.api_route("/{repo_type:rtype}/{name:seg}/resolve/{rest:rpath}", methods=["GET", "HEAD"])
def one_segment_file(name: str, rest: str, repo_type: str = "models") -> None:
    """A file URL of a repo id without a namespace (``/gpt2/resolve/main/config.json``)."""
    raise errors.RepoNotFound("Repository not found")


@router.api_route("/api/{rest:rpath}", methods=ALL_METHODS)
def unknown_api_path(rest: str) -> None:
    """An API path no router serves."""
    raise errors.NotFound(f"Sorry, we can't find the page you are looking for: /api/{rest}")
