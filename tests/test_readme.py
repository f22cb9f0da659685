"""The README's code blocks run as written: each ```python and ```bash block, in an empty folder, in a fresh process.

Sections whose blocks are run elsewhere are named in `RUN_ELSEWHERE`, with where.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = Path(sys.executable).parent
RUN_ELSEWHERE = {
    "Quick start (fresh machine with Python 3.11 and pip)": "CI runs `bash scripts/test.sh` (.ci/run); "
    "tests/test_demo.py runs the demo",
    "The self-hosted Hub": "starts a server on a fixed port; tests/hub drive the same commands",
    "Benchmarks and the fast path": "minutes long; benchmarks/ and tests/test_fastpath.py",
}
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def readme_sections() -> dict[str, str]:
    """`## ` heading -> the section's text."""
    sections = re.split(r"^## ", README.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]
    return {section.splitlines()[0].strip(): section for section in sections}


def readme_blocks() -> list[tuple[str, str, str]]:
    """(section heading, language, code) of every fenced python/bash block, in order."""
    return [
        (heading, language, code)
        for heading, section in readme_sections().items()
        for language, code in _FENCE.findall(section)
        if language in ("python", "bash")
    ]


RUN_HERE = [
    pytest.param(heading, language, code, id=f"{heading.split()[0].lower()}-{language}-{index}")
    for index, (heading, language, code) in enumerate(readme_blocks())
    if heading not in RUN_ELSEWHERE
]


def test_every_block_is_run_here_or_elsewhere() -> None:
    assert set(RUN_ELSEWHERE) <= set(readme_sections()), "a section named in RUN_ELSEWHERE is gone"
    assert len(RUN_HERE) >= 2, "this test runs no README block"


@pytest.mark.slow
@pytest.mark.parametrize(("heading", "language", "code"), RUN_HERE)
def test_readme_block_runs_as_written(tmp_path: Path, heading: str, language: str, code: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "RESNET_MODEL_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HF_HOME=str(tmp_path / "hf_home"),
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        PYTHONUNBUFFERED="1",
    )
    script = tmp_path / ("block.py" if language == "python" else "block.sh")
    script.write_text(code, encoding="utf-8")
    command = [sys.executable, script.name] if language == "python" else ["bash", "-euo", "pipefail", script.name]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"README block in '{heading}' failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
