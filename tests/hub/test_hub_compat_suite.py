"""The client's own test suite against a fresh hub (scripts/hub_compat.py): every in-scope test passes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hubtools import REPO_ROOT


@pytest.mark.slow
def test_huggingface_hub_own_tests_pass_against_the_hub():
    script = REPO_ROOT / "scripts" / "hub_compat.py"
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        env={k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))},
    )
    report = "\n".join(line for line in proc.stdout.splitlines() if line.startswith("[hub-compat]"))
    print(report)
    assert proc.returncode == 0, report + proc.stderr[-3000:]
    assert "in scope:" in report
