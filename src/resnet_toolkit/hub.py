"""Pushing a model folder to a Hub (huggingface.co or any `HF_ENDPOINT`-compatible server)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .errors import UserError
from .remote import default_token, hub_error_message

AUTO_CLASS = "AutoModelForImageClassification"


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


def push(
    folder: str | os.PathLike,
    repo: str,
    endpoint: str | None = None,
    token: str | None = None,
    private: bool = False,
    message: str = "Upload model",
    log: Callable[[str], None] = print,
) -> str:
    """Upload `folder` as one commit to `repo` (created if missing); returns the commit SHA."""
    from huggingface_hub import HfApi

    folder = check_model_folder(folder)
    if any(folder.glob("*.bin")) or any(folder.glob("*.pt")) or any(folder.glob("*.pth")):
        log("warning: the folder holds pickle files (*.bin/*.pt/*.pth); consumers should load safetensors only")
    api = HfApi(endpoint=endpoint, token=default_token(token))
    try:
        url = api.create_repo(repo, private=private, exist_ok=True)
        if private and not api.model_info(repo).private:
            raise UserError(f"{repo} already exists and is public; refusing to push with --private")
        info = api.upload_folder(
            folder_path=str(folder), repo_id=repo, commit_message=message, ignore_patterns=[".*", "__pycache__/*"]
        )
    except UserError:
        raise
    except Exception as error:  # every hub failure becomes one clear line
        raise UserError(hub_error_message(error, repo, api.endpoint)) from None
    sha = info.oid or api.model_info(repo).sha
    log(f"pushed {folder} to {url}")
    log(f"commit: {sha}")
    log("load exactly this commit with:")
    if endpoint:
        log(f"  # with HF_ENDPOINT={endpoint}")
    log(f"  {pin_line(repo, sha)}")
    return sha
