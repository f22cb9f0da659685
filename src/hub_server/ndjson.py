"""Parsing of the commit API's NDJSON body from a file on disk, streaming large base64 contents."""

from __future__ import annotations

import binascii
import concurrent.futures
import hashlib
import json
import mmap
import re
from collections.abc import Iterator
from pathlib import Path

from . import errors
from .storage import AddFile, AddLfsFile, DeleteFile, DeleteFolder, HubStorage, Operation, StagedFile, lfs_key

_CONTENT_KEY = re.compile(rb'"content"\s*:\s*"')
_BIG_LINE = 256 * 1024
_CHUNK = 8 * 1024 * 1024  # multiple of 4


def b64decode_strict(data: bytes | memoryview) -> bytes:
    """Decode base64 text, refusing anything but the base64 alphabet and correct padding."""
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise errors.BadRequest(f"Invalid base64 content: {exc}") from None


def _decode_base64_span(buf: mmap.mmap, start: int, end: int, storage: HubStorage) -> StagedFile:
    """Decode ``buf[start:end]`` (base64 text) into a staged file without holding it all in memory.

    Chunks are hashed and written by a helper thread while the next one is decoded.
    """
    out = storage.new_temp_path(".stage")
    digest = hashlib.sha256()
    size = 0

    def consume(data: bytes) -> None:
        digest.update(data)
        fh.write(data)

    try:
        with (
            open(out, "wb") as fh,
            memoryview(buf) as view,
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="stage") as pool,
        ):
            pending: concurrent.futures.Future | None = None
            pos = start
            while pos < end:
                stop = min(pos + _CHUNK, end)
                data = b64decode_strict(view[pos:stop])
                size += len(data)
                pos = stop
                if pending is not None:
                    pending.result()
                pending = pool.submit(consume, data)
            if pending is not None:
                pending.result()
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return StagedFile(path=out, sha256=digest.hexdigest(), size=size)


def _parse_line(buf: mmap.mmap, start: int, end: int, storage: HubStorage) -> tuple[dict, StagedFile | None]:
    if end - start <= _BIG_LINE:
        raw = buf[start:end]
        try:
            return json.loads(raw), None
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.BadRequest(f"Malformed NDJSON line: {exc}") from None
    match = _CONTENT_KEY.search(buf, start, end)
    if match is None:
        raise errors.BadRequest("Malformed NDJSON line: oversized line without a content field")
    cstart = match.end()
    cend = buf.find(b'"', cstart, end)
    if cend < 0:
        raise errors.BadRequest("Malformed NDJSON line: unterminated content string")
    try:
        obj = json.loads(buf[start:cstart] + buf[cend:end])
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.BadRequest(f"Malformed NDJSON line: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("value"), dict) or obj["value"].get("content") != "":
        raise errors.BadRequest("Malformed NDJSON line: content is not a top-level value field")
    return obj, _decode_base64_span(buf, cstart, cend, storage)


def _inline_content(path: str, value: dict, storage: HubStorage) -> StagedFile:
    """Stage the content of a small ``file`` operation (base64 or text)."""
    text = value.get("content")
    if not isinstance(text, str):
        raise errors.BadRequest(f"Missing content for {path}")
    encoding = value.get("encoding", "base64")
    if encoding == "base64":
        try:
            data = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise errors.BadRequest(f"Invalid base64 content for {path}: {exc}") from None
    elif encoding in ("utf-8", "utf8", "text"):
        data = text.encode("utf-8")
    else:
        raise errors.BadRequest(f"Unsupported encoding {encoding!r} for {path}: expected base64 or utf-8")
    return storage.stage_bytes(data)


def _operation(key: str, value: dict, content: StagedFile | None) -> Operation:
    """One operation line (its content, when it is a file, already staged)."""
    path = value.get("path")
    if not isinstance(path, str):
        raise errors.BadRequest(f"Missing or invalid 'path' in {key!r} operation")
    if key == "file":
        assert content is not None
        return AddFile(path=path, content=content)
    if key == "lfsFile":
        oid, size = value.get("oid"), value.get("size")
        if value.get("algo", "sha256") != "sha256" or not isinstance(oid, str):
            raise errors.BadRequest(f"Invalid lfsFile operation for {path}")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise errors.BadRequest(f"Invalid size in lfsFile operation for {path}")
        lfs_key(oid)  # validates the oid
        return AddLfsFile(path=path, oid=oid, size=size)
    if key == "deletedFile":
        return DeleteFile(path=path)
    if key == "deletedFolder":
        return DeleteFolder(path=path)
    raise errors.BadRequest(
        f"Unknown operation key {key!r}: expected header, file, lfsFile, deletedFile, deletedFolder"
    )


def _lines(buf: mmap.mmap) -> Iterator[tuple[int, int]]:
    """(start, end) of each non-blank line."""
    pos, total = 0, len(buf)
    while pos < total:
        end = buf.find(b"\n", pos)
        end = total if end < 0 else end
        start, pos = pos, end + 1
        if end - start >= 64 or buf[start:end].strip():
            yield start, end


def _check_header(header: dict | None) -> dict:
    if header is None:
        raise errors.BadRequest("Missing commit header line")
    if not isinstance(header.get("summary", ""), str) or not isinstance(header.get("description", ""), str):
        raise errors.BadRequest("Invalid commit header: summary/description must be strings")
    parent = header.get("parentCommit")
    if parent is not None and not isinstance(parent, str):
        raise errors.BadRequest("Invalid parentCommit")
    return header


def parse_commit_body(body_path: Path, storage: HubStorage) -> tuple[dict, list[Operation]]:
    """Parse a commit NDJSON body into its header and operations (file contents staged on disk)."""
    header: dict | None = None
    operations: list[Operation] = []
    staged: list[StagedFile] = []
    try:
        if body_path.stat().st_size == 0:
            raise errors.BadRequest("Empty commit body")
        with open(body_path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            for start, end in _lines(buf):
                obj, content = _parse_line(buf, start, end, storage)
                if content is not None:
                    staged.append(content)
                if not isinstance(obj, dict) or "key" not in obj or not isinstance(obj.get("value"), dict):
                    raise errors.BadRequest("Malformed NDJSON line: expected {'key': ..., 'value': {...}}")
                key, value = obj["key"], obj["value"]
                if key == "header":
                    if header is not None:
                        raise errors.BadRequest("Duplicate commit header")
                    header = value
                    continue
                if key == "file" and content is None:
                    content = _inline_content(str(value.get("path")), value, storage)
                    staged.append(content)
                elif key == "file" and value.get("encoding", "base64") != "base64":
                    raise errors.BadRequest(f"Unsupported encoding for {value.get('path')}: expected base64")
                operations.append(_operation(key, value, content))
        return _check_header(header), operations
    except BaseException:
        for item in staged:
            item.path.unlink(missing_ok=True)
        raise
