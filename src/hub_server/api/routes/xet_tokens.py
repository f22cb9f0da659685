"""Xet token routes: ``xet-read-token`` and ``xet-write-token`` hand out a CAS URL and an access token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ...storage import HubStorage, RepoRef, TokenInfo
from ..deps import ApiRepo, CurrentToken, DownloadableRepo, Storage, check_write
from ..http import truthy
from ..paths import API_REPO
from ..pulls import participant
from ..xet_auth import PR_REF, cas_url, mint_token

router = APIRouter(tags=["xet"])


def _token_response(
    request: Request, storage: HubStorage, ref: RepoRef, holder: TokenInfo | None, scope: str, rev: str
):
    meta = storage.meta.get_repo(ref)
    token, exp = mint_token(storage.signer, meta, holder, scope, rev)
    url = cas_url(request, meta)
    headers = {
        "X-Xet-Cas-Url": url,
        "X-Xet-Access-Token": token,
        "X-Xet-Token-Expiration": str(exp),
        "Cache-Control": "no-store",
    }
    return JSONResponse({"accessToken": token, "exp": exp, "casUrl": url}, headers=headers)


@router.get(API_REPO + "/xet-read-token/{revision:rpath}")
def xet_read_token(
    request: Request, repo: DownloadableRepo, revision: str, token: CurrentToken, storage: Storage
) -> Response:
    """A read token for the repo's CAS (anyone who may download the repo's files; the revision must exist)."""
    sha = storage.repos.resolve(repo, revision)
    return _token_response(request, storage, repo, token, "read", sha)


@router.get(API_REPO + "/xet-write-token/{revision:rpath}")
def xet_write_token(
    request: Request,
    ref: ApiRepo,
    revision: str,
    token: CurrentToken,
    storage: Storage,
    create_pr: str | None = None,
) -> Response:
    """A write token for the repo's CAS, scoped to a branch, or to pull requests (``create_pr=1``,
    ``refs/pr/N``, or the literal ``None`` the client sends when the PR's number is not known yet)."""
    if truthy(create_pr) or revision in ("None", "") or revision.startswith("refs/pr/"):
        ref, token = participant(storage, ref, token)  # a write-role token of anyone who may read the repo
        target = revision if revision.startswith("refs/pr/") else PR_REF
    else:
        ref = check_write(storage, ref, token)
        storage.repos.branch_head(ref, revision)  # RevisionNotFound for anything but an existing branch
        target = revision
    assert token is not None
    return _token_response(request, storage, ref, token, "write", target)
