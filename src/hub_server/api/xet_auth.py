"""Xet access tokens: signed, expiring capabilities for one repo (and, for writes, one ref).

The token routes mint them for callers who pass the Hub's own access rules; the CAS routes accept only
them, only under their repo's CAS URL, and check the rules again on every call, so a repo that went
private, was deleted or was re-created stops honouring tokens minted before, and a token minted with a hub
token that was since revoked or expired is refused.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from typing import Annotated

from fastapi import Depends, Request

from .. import errors
from ..signing import Signer
from ..storage import HubStorage, RepoMeta, RepoRef, TokenInfo
from .deps import RepoTypePlural, Storage, api_repo, check_read, may_write_namespace
from .http import base_url

TOKEN_TTL = 3600
"""Seconds a Xet token lives; the client refreshes it itself well before (``exp`` must be > 60 s ahead)."""
_PREFIX = "xet_"
PR_REF = "refs/pr/*"
"""The ref of a write token minted for opening a pull request (its number is not known yet)."""


@dataclasses.dataclass(frozen=True)
class XetGrant:
    """What a Xet token allows: ``scope`` ("read" or "write") on one incarnation of a repo, for one user (and
    as long as the hub token it was minted with, ``token_id``, lives)."""

    ref: RepoRef
    generation: str
    user: str | None
    scope: str
    revision: str
    token_id: int | None = None


def repo_generation(meta: RepoMeta) -> str:
    """Tells incarnations of a repo id apart (its creation time, microseconds)."""
    return str(int(meta.created_at.timestamp() * 1_000_000))


def cas_url(request: Request, meta: RepoMeta) -> str:
    """The CAS URL of one repo: a path of the hub's own origin (the client keeps one dedup cache per URL)."""
    ref = meta.ref
    return f"{base_url(request)}/cas/{ref.type}s/{ref.namespace}/{ref.name}/{repo_generation(meta)}"


def read_token_url(request: Request, ref: RepoRef, revision: str) -> str:
    """Where a client refreshes its read token for a file of ``ref`` at a commit (``Link rel="xet-auth"``)."""
    return f"{base_url(request)}/api/{ref.type}s/{ref.id}/xet-read-token/{revision}"


def mint_token(
    signer: Signer, meta: RepoMeta, holder: TokenInfo | None, scope: str, revision: str, ttl: int = TOKEN_TTL
) -> tuple[str, int]:
    """A new Xet token for the holder of a hub token (None: anonymous) and its expiry (unix seconds)."""
    ref = meta.ref
    user, token_id = (holder.user, holder.token_id) if holder is not None else (None, None)
    payload = {"t": ref.type, "ns": ref.namespace, "n": ref.name, "g": repo_generation(meta),
               "u": user, "k": token_id, "s": scope, "r": revision}  # fmt: skip
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=").decode()
    ticket = signer.sign(f"xet-token/{body}", ttl)
    return f"{_PREFIX}{body}.{ticket}", int(ticket.split(".", 1)[0])


def parse_token(signer: Signer, text: str) -> XetGrant | None:
    """The grant of a valid, unexpired Xet token; None for anything else."""
    if not text.startswith(_PREFIX):
        return None
    body, _, ticket = text[len(_PREFIX) :].partition(".")
    if not signer.check(f"xet-token/{body}", ticket):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        ref = RepoRef(payload["t"], payload["ns"], payload["n"])
        return XetGrant(ref, payload["g"], payload["u"], payload["s"], payload["r"], payload["k"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None


def may_write(storage: HubStorage, ref: RepoRef, user: str | None, revision: str) -> bool:
    """Whether a write token's holder may still write: a writer of the namespace, or (for a pull request) any
    reader."""
    return user is not None and (revision.startswith("refs/pr/") or may_write_namespace(storage, ref.namespace, user))


def _bearer(request: Request) -> str:
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def cas_access(
    request: Request, repo_type: RepoTypePlural, namespace: str, name: str, generation: str, storage: Storage
) -> XetGrant:
    """The grant of the request's Xet token, valid for the repo of the CAS URL (401 / 403 otherwise)."""
    grant = parse_token(storage.signer, _bearer(request))
    if grant is None:
        raise errors.Unauthorized("Invalid or expired Xet access token")
    ref = api_repo(repo_type, namespace, name)
    if grant.ref.key.lower() != ref.key.lower() or grant.generation != generation:
        raise errors.Forbidden(f"This Xet access token is not valid for {ref.type} {ref.id}")
    return _still_valid(storage, grant)


def _still_valid(storage: HubStorage, grant: XetGrant) -> XetGrant:
    """The Hub's rules, checked again: the hub token it was minted with still live, the same repo incarnation,
    still readable (and writable) by the holder."""
    if grant.user is not None and (grant.token_id is None or not storage.meta.token_live(grant.token_id)):
        raise errors.Unauthorized("This Xet access token was minted with a hub token that is revoked or expired")
    holder = TokenInfo(user=grant.user, role=grant.scope, display_name="xet") if grant.user else None
    try:
        meta = storage.meta.get_repo(grant.ref)
        if repo_generation(meta) != grant.generation:
            raise errors.RepoNotFound("re-created")
        ref = check_read(storage, meta.ref, holder)
    except errors.RepoNotFound:
        raise errors.Unauthorized("This Xet access token no longer grants access to its repository") from None
    if grant.scope == "write" and not may_write(storage, ref, grant.user, grant.revision):
        raise errors.Unauthorized("This Xet access token no longer grants write access")
    return dataclasses.replace(grant, ref=ref)


def cas_write_access(grant: Annotated[XetGrant, Depends(cas_access)]) -> XetGrant:
    """A grant with write scope (403 for a read token)."""
    if grant.scope != "write":
        raise errors.Forbidden("This Xet access token is read-only")
    return grant


XetAccess = Annotated[XetGrant, Depends(cas_access)]
XetWriteAccess = Annotated[XetGrant, Depends(cas_write_access)]
