"""``validate-yaml``: a model card's YAML front matter checked with bounded work.

Anyone may call it, and clients send the whole README (the body limit of every JSON route applies). The
body is read without parsing it on the event loop; decoding the JSON, finding the front matter (at most
``MAX_FRONT_MATTER_CHARS``) and parsing it with libyaml's safe loader happen in a worker thread under a
small limiter of their own, so many callers wait their turn instead of filling the shared thread pool.
"""

from __future__ import annotations

import json
import re

import yaml
from fastapi import Request
from fastapi.responses import JSONResponse

from .limits import run_limited

MAX_FRONT_MATTER_CHARS = 128 * 1024
_FRONT_MATTER = re.compile(r"^---[ \t\r]*\n(.*?)\n---\s*(\n|$)", re.S)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _answer(message: str | None = None, status: int = 400) -> tuple[int, dict]:
    if message is None:
        return 200, {"errors": [], "warnings": []}
    return status, {"errors": [{"message": message}], "warnings": []}


def check_body(raw: bytes) -> tuple[int, dict]:
    """The status and JSON answer for a ``{"content": …, "repoType": …}`` body."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return _answer("Invalid request: the body must be JSON")
    content = body.get("content", "") if isinstance(body, dict) else None
    if not isinstance(content, str):
        return _answer("Invalid request: content must be a string")
    match = _FRONT_MATTER.match(content)
    if match is None:
        return _answer()
    if len(match.group(1)) > MAX_FRONT_MATTER_CHARS:
        return _answer(f"YAML metadata too large (more than {MAX_FRONT_MATTER_CHARS} characters)", 413)
    try:
        data = yaml.load(match.group(1), Loader=_LOADER)  # noqa: S506 - a safe loader
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        return _answer(f"Invalid YAML metadata: {str(exc)[:500]}")
    if data is not None and not isinstance(data, dict):
        return _answer("YAML metadata must be a mapping")
    return _answer()


async def check_front_matter(request: Request) -> JSONResponse:
    """The ``validate-yaml`` answer: errors as the Hub lists them, 400 when invalid."""
    raw = await request.body()
    status, answer = await run_limited(request, "yaml", check_body, raw)
    return JSONResponse(answer, status)
