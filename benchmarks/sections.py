"""Benchmarks that own a section of BENCHMARKS.md write it between ``<!-- name:start -->`` and
``<!-- name:end -->`` markers; ``report.py`` carries such sections over when it regenerates the file."""

from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of section ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_section(markdown: Path, name: str, section: str) -> None:
    """Replace section ``name`` of ``markdown`` (``section`` includes its markers), or add it before
    ``## Findings`` (or at the end)."""
    start, end = markers(name)
    text = markdown.read_text(encoding="utf-8") if markdown.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + section.strip("\n") + rest.split(end, 1)[1]
    elif "\n## Findings" in text:
        head, tail = text.split("\n## Findings", 1)
        text = head.rstrip("\n") + "\n\n" + section.strip("\n") + "\n\n## Findings" + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section.strip("\n") + "\n"
    markdown.write_text(text, encoding="utf-8")
