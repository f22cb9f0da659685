"""The API composed: every router in one place (the order does not matter: paths never overlap)."""

from __future__ import annotations

from fastapi import APIRouter

from .routes import commits, files, git, lfs, refs, repos, trees, users

api_router = APIRouter()
for module in (users, repos, trees, refs, commits, lfs, git, files):
    api_router.include_router(module.router)
