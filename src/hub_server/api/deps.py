"""Dependencies: the hub, the caller's token, and repos the caller may read or write.

A route's signature says who may call it: ``token: CurrentToken`` (anyone; None when anonymous),
``token: RequiredToken`` (any valid token), ``repo: ReadableRepo`` / ``access: WritableRepo`` (the repo
named in the path, checked against the caller; the repo's canonical id is returned).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
from typing import Annotated

from fastapi import Depends, Request

from .. import errors
from ..settings import HubSettings
from ..storage import HubStorage, RepoRef, TokenInfo
from ..storage.orgs import WRITE_ROLES


@dataclasses.dataclass
class HubState:
    """What every request handler shares: the storage, the settings and a few counters."""

    storage: HubStorage
    settings: HubSettings
    stats: dict[str, int] = dataclasses.field(default_factory=lambda: {"lfs_uploads": 0, "commits": 0})


class RepoTypePlural(str, enum.Enum):
    """Repo types as they appear in API paths."""

    models = "models"
    datasets = "datasets"
    spaces = "spaces"


SINGULAR = {"models": "model", "datasets": "dataset", "spaces": "space"}


def get_state(request: Request) -> HubState:
    """The hub serving this request."""
    return request.app.state.hub


State = Annotated[HubState, Depends(get_state)]


def get_storage(state: State) -> HubStorage:
    """The hub's storage."""
    return state.storage


Storage = Annotated[HubStorage, Depends(get_storage)]


def token_from_header(storage: HubStorage, header: str | None) -> TokenInfo | None:
    """The token in an ``Authorization`` header (Bearer, or Basic with the token as password)."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise errors.Unauthorized("Invalid credentials in Authorization header") from None
    elif scheme.lower() != "bearer":
        raise errors.Unauthorized("Invalid credentials in Authorization header")
    info = storage.meta.token_info(value) if value else None
    if info is None:
        raise errors.Unauthorized("Invalid credentials in Authorization header")
    return info


def current_token(request: Request, storage: Storage) -> TokenInfo | None:
    """The caller's token; None when anonymous, 401 when the header is invalid."""
    return token_from_header(storage, request.headers.get("authorization"))


CurrentToken = Annotated[TokenInfo | None, Depends(current_token)]


def required_token(token: CurrentToken) -> TokenInfo:
    """A valid token (401 without one)."""
    if token is None:
        raise errors.Unauthorized("You must be authenticated to do this")
    return token


RequiredToken = Annotated[TokenInfo, Depends(required_token)]


# --------------------------------------------------------------------------- access rules


def may_read_private(storage: HubStorage, ref: RepoRef, token: TokenInfo | None) -> bool:
    """Whether the caller may see private repos of ``ref``'s namespace (its user, or a member of its org)."""
    return token is not None and storage.orgs.role_in(ref.namespace, token.user) is not None


def may_write_namespace(storage: HubStorage, namespace: str, user: str | None) -> bool:
    """Whether ``user`` may write in ``namespace``: their own, or an organisation where they have a write role."""
    return storage.orgs.role_in(namespace, user) in WRITE_ROLES


def is_writer(storage: HubStorage, ref: RepoRef, token: TokenInfo | None) -> bool:
    """Whether the token may write the repo itself (a write token of a user who may write its namespace)."""
    return token is not None and token.role == "write" and may_write_namespace(storage, ref.namespace, token.user)


def check_read(storage: HubStorage, ref: RepoRef, token: TokenInfo | None) -> RepoRef:
    """The repo's canonical reference, or RepoNotFound when it is absent or invisible to the caller.

    A moved repo is found under its old name too (as on the Hub).
    """
    try:
        meta = storage.meta.get_repo(ref)
    except errors.RepoNotFound:
        from ..storage.repo_admin import redirected

        moved = redirected(storage, ref)
        if moved is None:
            raise
        meta = storage.meta.get_repo(moved)
    if meta.private and not may_read_private(storage, meta.ref, token):
        raise errors.RepoNotFound(f"Repository {ref.id} not found")
    return meta.ref


def check_write(storage: HubStorage, ref: RepoRef, token: TokenInfo | None) -> RepoRef:
    """The repo's canonical reference when the caller holds a write token of a user who may write its namespace."""
    if token is None:
        if storage.meta.get_repo(ref).private:
            raise errors.RepoNotFound(f"Repository {ref.id} not found")
        raise errors.Unauthorized("You must be authenticated (write token) to write to this repo")
    ref = check_read(storage, ref, token)
    if not may_write_namespace(storage, ref.namespace, token.user):
        raise errors.Forbidden(f"You don't have the rights to write to {ref.id}")
    if token.role != "write":
        raise errors.Forbidden("This token is read-only")
    return ref


@dataclasses.dataclass(frozen=True)
class WriteAccess:
    """A repo the caller may write, and the caller's token."""

    ref: RepoRef
    token: TokenInfo


def parse_ref(repo_type: str, namespace: str, name: str) -> RepoRef:
    """A repo reference from path parts; RepoNotFound for ids that cannot exist."""
    try:
        return RepoRef.parse(repo_type, f"{namespace}/{name}")
    except errors.InvalidRepoId:
        raise errors.RepoNotFound(f"Repository {namespace}/{name} not found") from None


def api_repo(repo_type: RepoTypePlural, namespace: str, name: str) -> RepoRef:
    """The repo of an ``/api/{type}s/{namespace}/{name}/…`` path."""
    return parse_ref(SINGULAR[repo_type.value], namespace, name)


def file_repo(repo: str) -> RepoRef:
    """The repo of a ``/[datasets/|spaces/]{namespace}/{name}[.git]/…`` path."""
    parts = repo.split("/")
    repo_type = SINGULAR[parts.pop(0)] if len(parts) == 3 else "model"
    name = parts[1][: -len(".git")] if parts[1].endswith(".git") else parts[1]
    return parse_ref(repo_type, parts[0], name)


def _readable(ref: RepoRef, token: TokenInfo | None, storage: HubStorage) -> RepoRef:
    return check_read(storage, ref, token)


def _writable(ref: RepoRef, token: TokenInfo | None, storage: HubStorage) -> WriteAccess:
    ref = check_write(storage, ref, token)
    assert token is not None
    return WriteAccess(ref, token)


def readable_api_repo(ref: Annotated[RepoRef, Depends(api_repo)], token: CurrentToken, storage: Storage) -> RepoRef:
    """An API-path repo the caller may read."""
    return _readable(ref, token, storage)


def writable_api_repo(ref: Annotated[RepoRef, Depends(api_repo)], token: CurrentToken, storage: Storage) -> WriteAccess:
    """An API-path repo the caller may write."""
    return _writable(ref, token, storage)


def check_gate(storage: HubStorage, ref: RepoRef, token: TokenInfo | None) -> None:
    """GatedRepo unless the repo is ungated, the caller is in its namespace, or the caller's request was accepted."""
    if storage.discussions.gated(ref) is None or may_read_private(storage, ref, token):
        return
    request = storage.discussions.access_request(ref, token.user) if token is not None else None
    if request is None or request.status != "accepted":
        message = (
            f"Access to {ref.type} {ref.id} is restricted and you are not in the authorized list. "
            "Ask for access on the repo's page."
        )
        raise errors.GatedRepo(message, status=401 if token is None else 403)


def check_download(storage: HubStorage, ref: RepoRef, token: TokenInfo | None) -> RepoRef:
    """The "may download" rule: the repo's canonical reference when the caller may read its files' content.

    Read access, and on a gated repo an accepted access request (or membership of its namespace). Every route
    that serves file content, diffs or transfer grants asks it; metadata (card, file list, discussions) only
    needs `check_read`, as on the Hub.
    """
    ref = check_read(storage, ref, token)
    check_gate(storage, ref, token)
    return ref


def may_download(storage: HubStorage, ref: RepoRef, token: TokenInfo | None) -> bool:
    """Whether `check_download` lets the caller through (for pages that show metadata and, if allowed, content)."""
    try:
        check_download(storage, ref, token)
    except (errors.GatedRepo, errors.RepoNotFound):
        return False
    return True


def readable_file_repo(ref: Annotated[RepoRef, Depends(file_repo)], token: CurrentToken, storage: Storage) -> RepoRef:
    """A file-path repo the caller may download from (gated repos need an accepted request)."""
    return check_download(storage, ref, token)


def downloadable_api_repo(ref: Annotated[RepoRef, Depends(api_repo)], token: CurrentToken, storage: Storage) -> RepoRef:
    """An API-path repo whose file content the caller may read (gated repos need an accepted request)."""
    return check_download(storage, ref, token)


def writable_file_repo(
    ref: Annotated[RepoRef, Depends(file_repo)], token: CurrentToken, storage: Storage
) -> WriteAccess:
    """A file-path repo the caller may write."""
    return _writable(ref, token, storage)


ApiRepo = Annotated[RepoRef, Depends(api_repo)]
ReadableRepo = Annotated[RepoRef, Depends(readable_api_repo)]
DownloadableRepo = Annotated[RepoRef, Depends(downloadable_api_repo)]
WritableRepo = Annotated[WriteAccess, Depends(writable_api_repo)]
FileRepo = Annotated[RepoRef, Depends(file_repo)]
ReadableFileRepo = Annotated[RepoRef, Depends(readable_file_repo)]
WritableFileRepo = Annotated[WriteAccess, Depends(writable_file_repo)]
