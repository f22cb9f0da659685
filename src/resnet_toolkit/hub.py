"""Pushing a model folder to a Hub (huggingface.co or any `HF_ENDPOINT`-compatible server).

Failures are huggingface_hub's own exceptions (`RepositoryNotFoundError`, `HfHubHTTPError` with its status, ...);
the command line turns them into one line each (`resnet_toolkit.cli._errors`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ._files import sha256_file
from .card import CARD_FILE, is_generated, pin_card, pinned_sha
from .errors import UserError
from .progress import library_output, phase_bar
from .remote import default_token

AUTO_CLASS = "AutoModelForImageClassification"
DEFAULT_MESSAGE = "Upload model"
PUBLIC_HUB = "https://huggingface.co"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def check_model_folder(folder: str | os.PathLike) -> Path:
    """The folder, if it holds a saved model (config and safetensors weights)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"model folder not found: {folder}")
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder} has no config.json; expected a saved model folder")
    if not any(folder.glob("*.safetensors")):
        raise UserError(f"{folder} has no *.safetensors weights; save with safe_serialization (the default)")
    return folder


def pin_line(repo: str, sha: str) -> str:
    """The exact Python line that loads `repo` pinned at commit `sha`."""
    return f'{AUTO_CLASS}.from_pretrained("{repo}", revision="{sha}", trust_remote_code=True)'


def _local_files(folder: Path) -> list[str]:
    """Files to upload, relative to `folder`: hidden files and caches left out."""
    names = (path.relative_to(folder) for path in folder.rglob("*") if path.is_file())
    return sorted(
        name.as_posix()
        for name in names
        if not any(part.startswith(".") or part == "__pycache__" for part in name.parts)
    )


def _remote_hashes(api, repo: str, revision: str | None) -> dict[str, tuple[str, str | None]]:
    """`path -> (git blob id, LFS sha256 or None)` for every file of `repo` at `revision` (empty for a new repo)."""
    if revision is None:
        return {}
    hashes = {}
    for entry in api.list_repo_tree(repo, revision=revision, recursive=True):
        if hasattr(entry, "blob_id"):  # a file, not a folder
            hashes[entry.path] = (entry.blob_id, entry.lfs.sha256 if entry.lfs else None)
    return hashes


def _is_unchanged(path: Path, remote: tuple[str, str | None] | None) -> bool:
    """Whether the Hub already holds exactly this file's bytes."""
    if remote is None:
        return False
    from huggingface_hub.utils.sha import git_hash

    blob_id, lfs_sha256 = remote
    if lfs_sha256 is not None:
        return sha256_file(path) == lfs_sha256
    return git_hash(path.read_bytes()) == blob_id


def _head(api, repo: str) -> str | None:
    """The commit `main` points to, or None for a repo without commits."""
    from huggingface_hub.errors import RevisionNotFoundError

    try:
        return api.model_info(repo).sha
    except RevisionNotFoundError:
        return None


def push(
    folder: str | os.PathLike,
    repo: str,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    private: bool = False,
    message: str | None = None,
    verbose: bool = False,
    log: Callable[[str], None] = print,
) -> str:
    """Upload the changed files of `folder` as one commit to `repo` (created if missing); returns the commit to pin.

    A model card written by `convert`/`train` is then filled in with the repo id and that commit, in a second
    commit. Nothing is committed when the Hub already holds every file.
    """
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.utils.sha import git_hash

    folder = check_model_folder(folder)
    files = _local_files(folder)
    if any(name.endswith(PICKLE_SUFFIXES) for name in files):
        log("warning: the folder holds pickle files (*.bin/*.pt/...); consumers should load safetensors only")
    api = HfApi(endpoint=endpoint, token=default_token(token))
    url = api.create_repo(repo, private=private, exist_ok=True)
    if private and not api.model_info(repo).private:
        raise UserError(f"{repo} already exists and is public; refusing to push with --private")
    head = _head(api, repo)
    remote = _remote_hashes(api, repo, head)
    card_text = (folder / CARD_FILE).read_text(encoding="utf-8") if CARD_FILE in files else None
    ours = card_text is not None and is_generated(card_text)
    changed = [
        name
        for name in files
        if not (ours and name == CARD_FILE) and not _is_unchanged(folder / name, remote.get(name))
    ]
    commits = []
    if changed:
        size = sum((folder / name).stat().st_size for name in changed)
        with library_output(verbose), phase_bar("upload", total=size, unit="B", unit_scale=True) as bar:
            operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name)) for name in changed]
            info = api.create_commit(repo, operations=operations, commit_message=message or DEFAULT_MESSAGE)
            bar.update(size)
        sha = info.oid
        commits.append(sha)
    else:
        sha = _sha_of_last_push(api, repo, head, remote)
    if ours:
        card = pin_card(card_text, repo, sha, endpoint=None if api.endpoint == PUBLIC_HUB else api.endpoint)
        if git_hash(card.encode("utf-8")) != remote.get(CARD_FILE, (None,))[0]:
            operation = CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card.encode("utf-8"))
            with library_output(verbose):
                info = api.create_commit(repo, operations=[operation], commit_message=f"Model card: pin {sha[:12]}")
            commits.append(info.oid)
    _report(log, folder, url, sha, commits, changed, api.endpoint, repo)
    return sha


def _sha_of_last_push(api, repo: str, head: str, remote: dict) -> str:
    """The commit to pin when no model file changed: the one the Hub's card already pins, else the head."""
    from huggingface_hub import hf_hub_download

    if CARD_FILE in remote:
        card = Path(hf_hub_download(repo, CARD_FILE, revision=head, token=api.token, endpoint=api.endpoint))
        return pinned_sha(card.read_text(encoding="utf-8")) or head
    return head


def _report(log, folder, url, sha, commits, changed, endpoint, repo) -> None:
    if changed:
        log(f"pushed {len(changed)} file(s) from {folder} to {url}")
    else:
        log(f"{url} already holds every file of {folder}: no model commit made")
    if len(commits) > (1 if changed else 0):
        log(f"model card filled in with the repo id and the commit to pin (commit {commits[-1][:12]})")
    log(f"commit: {sha}")
    log("load exactly this commit with:")
    if endpoint != PUBLIC_HUB:
        log(f"  # with HF_ENDPOINT={endpoint}")
    log(f"  {pin_line(repo, sha)}")
