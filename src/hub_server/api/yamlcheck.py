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
# Blank lines may come before the front matter, as the client's own parser allows.
_FRONT_MATTER = re.compile(r"^\s*---[ \t\r]*\n(.*?)\n---\s*(\n|$)", re.S)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


EMPTY_METADATA = "empty or missing yaml metadata in repo card"
_SCALAR = (str, int, float, bool)  # YAML 1.1 reads `no` (Norwegian) as false, `2024` as a number: both fine
_SCALARS = (*_SCALAR, list)
# Well-known card fields (huggingface.co's model-card spec) and the YAML types they must have.
FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "license": (_SCALAR, "a string"),
    "license_name": (_SCALAR, "a string"),
    "library_name": (_SCALAR, "a string"),
    "pipeline_tag": (_SCALAR, "a string"),
    "base_model": (_SCALARS, "a string or a list of strings"),
    "language": (_SCALARS, "a string or a list of strings"),
    "datasets": (_SCALARS, "a string or a list of strings"),
    "metrics": (_SCALARS, "a string or a list of strings"),
    "tags": (_SCALARS, "a string or a list of strings"),
    "model-index": ((list,), "a list of models, each with a name and its results"),
}


def _answer(message: str | None = None, status: int = 400, warnings: tuple[str, ...] = ()) -> tuple[int, dict]:
    listed = [{"message": text} for text in warnings]
    if message is None:
        return 200, {"errors": [], "warnings": listed}
    return status, {"errors": [{"message": message}], "warnings": listed}


def field_errors(data: dict) -> list[str]:
    """What is wrong with the well-known fields of a card's metadata (nothing for fields it does not know)."""
    wrong = []
    for field, (types, expected) in FIELD_TYPES.items():
        value = data.get(field)
        if value is None:
            continue
        items = value if isinstance(value, list) and field != "model-index" else []
        if not isinstance(value, types) or any(not isinstance(item, _SCALAR) for item in items):
            wrong.append(f'"{field}" must be {expected}, got {type(value).__name__} {str(value)[:80]!r}')
        elif field == "model-index" and not all(isinstance(m, dict) and "name" in m for m in value):
            wrong.append(f'"{field}" must be {expected}: every entry needs a "name"')
    return wrong


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
        return _answer(warnings=(EMPTY_METADATA,))
    if len(match.group(1)) > MAX_FRONT_MATTER_CHARS:
        return _answer(f"YAML metadata too large (more than {MAX_FRONT_MATTER_CHARS} characters)", 413)
    try:
        data = yaml.load(match.group(1), Loader=_LOADER)  # noqa: S506 - a safe loader
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        return _answer(f"Invalid YAML metadata: {str(exc)[:500]}")
    if data is not None and not isinstance(data, dict):
        return _answer("YAML metadata must be a mapping")
    if not data:
        return _answer(warnings=(EMPTY_METADATA,))
    wrong = field_errors(data)
    if wrong:
        return 400, {"errors": [{"message": text} for text in wrong], "warnings": []}
    return _answer()


async def check_front_matter(request: Request) -> JSONResponse:
    """The ``validate-yaml`` answer: errors as the Hub lists them, 400 when invalid."""
    raw = await request.body()
    status, answer = await run_limited(request, "yaml", check_body, raw)
    return JSONResponse(answer, status)
