"""Where a model comes from: a local folder, or a Hub repo resolved to a full commit SHA."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_full_sha(revision: str | None) -> bool:
    """True for a 40-hex commit id, the only revision that cannot move."""
    return bool(revision and FULL_SHA.match(revision))


@dataclass
class Source:
    """A resolved model location: `location` is a folder path or a repo id; `revision` a commit SHA (repos)."""

    location: str
    is_local: bool
    revision: str | None = None
    requested: str | None = None

    @property
    def label(self) -> str:
        """`repo@sha` or the folder path."""
        return self.location if self.is_local else f"{self.location}@{self.revision}"

    @property
    def pinned(self) -> bool:
        """Whether the user asked for a full commit SHA."""
        return self.is_local or is_full_sha(self.requested)


def resolve_repo_revision(repo: str, revision: str | None, token: str | None = None) -> str:
    """The commit SHA that `revision` (default `main`) of `repo` points to now."""
    from huggingface_hub import HfApi

    return HfApi(token=token).model_info(repo, revision=revision or "main").sha


def resolve_source(source: str, revision: str | None = None, token: str | None = None) -> Source:
    """A local folder as is, or a repo id with `revision` resolved to its commit SHA."""
    path = Path(source)
    if path.is_dir():
        if revision:
            raise UserError(f"--revision applies to Hub repos; {source} is a local folder (drop --revision)")
        if not (path / "config.json").is_file():
            raise UserError(f"{source} has no config.json; expected a saved model folder")
        return Source(location=str(path), is_local=True)
    if path.exists() or not REPO_ID.match(source) or source.startswith((".", "/", "~")):
        raise UserError(f"no model folder at {source} (and it is not a repo id like 'user/name')")
    sha = resolve_repo_revision(source, revision, token)
    return Source(location=source, is_local=False, revision=sha, requested=revision)


def fetch_text(
    source: Source, filename: str, token: str | None = None, repo: str | None = None, revision: str | None = None
) -> str | None:
    """A file's text from the folder or repo (or from `repo`@`revision`), None when it does not exist."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    if source.is_local and repo is None:
        path = Path(source.location) / filename
        return path.read_text(encoding="utf-8") if path.is_file() else None
    try:
        local = hf_hub_download(repo or source.location, filename, revision=revision or source.revision, token=token)
    except EntryNotFoundError as error:
        if isinstance(error, LocalEntryNotFoundError):  # not a missing file: the Hub could not be reached
            raise
        return None
    return Path(local).read_text(encoding="utf-8")


def default_token(token: str | None) -> str | None:
    """`token`, else `HF_TOKEN` from the environment, else None (huggingface_hub's own lookup)."""
    return token or os.environ.get("HF_TOKEN") or None
