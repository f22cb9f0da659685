"""Run Python code in a fresh interpreter in which the `resnet_model` package cannot be imported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# `@pytest.mark.parametrize("t4", TRANSFORMERS_MAJORS)`: the consumer on transformers 5 in the fast loop, and on
# transformers 4.57 (from .t4/, a fresh interpreter each time) in the full suite only.
TRANSFORMERS_MAJORS = [
    pytest.param(False, id="transformers5"),
    pytest.param(True, id="transformers4.57", marks=pytest.mark.slow),
]
T4_SITE = REPO / ".t4"

_BLOCK = """
import importlib.abc, sys
class _BlockLocalPackage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "resnet_model":
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, _BlockLocalPackage())
import importlib.util
try:
    importlib.util.find_spec("resnet_model")
    raise SystemExit("resnet_model is importable in the isolated process")
except ModuleNotFoundError:
    pass
"""


def require_t4() -> None:
    """Fail (in CI) or skip (locally) when the transformers 4.57 site folder is missing."""
    if not (T4_SITE / ".complete").exists():
        if os.environ.get("CI"):
            pytest.fail("transformers 4.57 compat folder .t4 is missing; run scripts/compat-env.sh")
        pytest.skip("transformers 4.57 compat folder .t4 is missing; run scripts/compat-env.sh")


def isolated_command(code: str, *args: str, cwd: Path, t4: bool = False, env: dict[str, str] | None = None):
    """Command line and environment of a fresh interpreter running `code` with `resnet_model` blocked."""
    script = Path(cwd) / "_isolated_script.py"
    script.write_text(_BLOCK + "\n" + textwrap.dedent(code))
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    full_env["HF_HUB_OFFLINE"] = "1"
    full_env["HF_HOME"] = str(Path(cwd) / "hf_home")
    full_env["PYTHONUNBUFFERED"] = "1"
    full_env.pop("PYTHONPATH", None)
    if t4:
        require_t4()
        full_env["PYTHONPATH"] = str(T4_SITE)
    full_env.update(env or {})
    return [sys.executable, str(script), *args], full_env


def run_isolated(
    code: str,
    *args: str,
    cwd: Path,
    t4: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run `code` in a new interpreter with `resnet_model` blocked; optionally on transformers 4.57."""
    command, full_env = isolated_command(code, *args, cwd=cwd, t4=t4, env=env)
    proc = subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"isolated process failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
