"""Helpers shared by the hub tests: client environments, the ``hf`` CLI, ``git fsck``."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from fastapi.routing import APIRoute

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
T4_SITE = REPO_ROOT / ".t4"


def seeded_bytes(size: int, seed: int = 0) -> bytes:
    """Reproducible pseudo-random bytes (tests never use unseeded randomness)."""
    return random.Random(seed).randbytes(size)


def client_env(hub_url: str, home: Path, token: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for a client subprocess: the hub as endpoint and a private, empty HF_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE", "TRANSFORMERS_"))}
    env.pop("PYTHONPATH", None)
    env.update(
        HF_ENDPOINT=hub_url,
        HF_HOME=str(home),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        HF_HUB_OFFLINE="0",
        DISABLE_SAFETENSORS_CONVERSION="true",
        PYTHONUNBUFFERED="1",
    )
    if token:
        env["HF_TOKEN"] = token
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run the real ``hf`` CLI of this environment."""
    return subprocess.run(
        [str(VENV_BIN / "hf"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def git_fsck(git_dir: Path) -> subprocess.CompletedProcess:
    """``git fsck --full --strict`` on a bare repo."""
    return subprocess.run(
        ["git", "--git-dir", str(git_dir), "fsck", "--full", "--strict", "--no-dangling"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def app_routes(routes, prefix: str = "") -> set[tuple[str, str]]:
    """(method, path) of every API route, through included routers however deep (FastAPI keeps them nested)."""
    found = set()
    for route in routes:
        if isinstance(route, APIRoute):
            found |= {(method, prefix + route.path) for method in route.methods}
        elif hasattr(route, "original_router"):
            found |= app_routes(route.original_router.routes, prefix + route.include_context.prefix)
    return found
