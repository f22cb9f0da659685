"""The API composed: every router in one place (the order does not matter: paths never overlap)."""

from __future__ import annotations

from fastapi import APIRouter

from .routes import commits, discussions, files, git, lfs, refs, repo_admin, repos, trees, users, xet, xet_tokens

api_router = APIRouter()
for module in (users, repos, repo_admin, trees, refs, commits, discussions, lfs, git, files, xet_tokens, xet):
    api_router.include_router(module.router)
