"""Hub errors: one exception class per failure, each with its HTTP status and ``X-Error-Code``."""

from __future__ import annotations


class HubError(Exception):
    """Base class: an HTTP status, an optional ``X-Error-Code`` and a one-line message."""

    status: int = 400
    code: str | None = None

    def __init__(
        self, message: str, *, extra: dict | None = None, headers: dict | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}


class BadRequest(HubError):
    """Malformed input (400)."""

    status = 400
    code = "BadRequest"


class InvalidPath(BadRequest):
    """A file path that may not be stored (traversal, ``.git``, backslashes…)."""

    code = "InvalidPath"


class InvalidRepoId(BadRequest):
    """A repo id or namespace that breaks the naming rules."""

    code = "InvalidRepoId"


class Unauthorized(HubError):
    """No token, or an invalid one (401)."""

    status = 401
    code = "Unauthorized"


class Forbidden(HubError):
    """The token is valid but may not do this (403)."""

    status = 403
    code = "Forbidden"


class RepoNotFound(HubError):
    """The repo does not exist or is invisible to the caller (404)."""

    status = 404
    code = "RepoNotFound"


class RevisionNotFound(HubError):
    """The branch, tag or commit does not exist (404)."""

    status = 404
    code = "RevisionNotFound"


class EntryNotFound(HubError):
    """The file or folder does not exist at that revision (404)."""

    status = 404
    code = "EntryNotFound"


class NotFound(HubError):
    """Any other missing resource (404)."""

    status = 404
    code = "NotFound"


class Conflict(HubError):
    """The resource already exists (409)."""

    status = 409
    code = "Conflict"


class StaleParent(HubError):
    """The branch moved since ``parentCommit`` (412)."""

    status = 412
    code = "PreconditionFailed"


class PayloadTooLarge(HubError):
    """The request body is over the server's limit (413)."""

    status = 413
    code = "PayloadTooLarge"


class UnsafeFile(HubError):
    """An uploaded file failed the security scan (422)."""

    status = 422
    code = "UnsafeFile"


class RangeNotSatisfiable(HubError):
    """A ``Range`` header outside the file (416)."""

    status = 416
    code = "RangeNotSatisfiable"


class GatedRepo(HubError):
    """The repo is gated and the caller has no accepted access request (403; 401 when anonymous)."""

    status = 403
    code = "GatedRepo"
