"""Pickle scanning of uploaded content, before a commit may reference it.

Every added file is sniffed by content (``detect``); a file that is or holds a pickle (by protocol bytes,
in a zip, tar, gzip, bz2, xz, lzma, zlib or lz4 container, in joblib's formats, in a ``.npy`` object
array) is opened in a sandboxed subprocess (``runner`` → ``sandbox``) that lists the globals its pickles
name without importing anything (``emulator``). The verdict (``policy``) is an allow-list: anything but
the globals weights need is refused unless the hub runs with ``--allow-unsafe-pickles``.

Verdicts are cached per scanner version, detected format and sha256 of the content: the same bytes get
the same verdict whatever they are called and whoever uploaded them first. Records for display are kept
under the content's sha256 (LFS files) and git blob id (inline files); a file without a record reads
"unscanned", never "safe".
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from .. import errors
from . import policy
from .detect import sniff_file
from .runner import Limits, run_sandbox

SCANNER_VERSION = "2"
_PREFIX = f"scan/v{SCANNER_VERSION}"
NOT_APPLICABLE = {"status": "not-applicable", "imports": [], "format": None}
UNSCANNED = {"status": "unscanned", "imports": []}


def limits_from(settings) -> Limits:
    """The scan limits a hub's settings ask for."""
    return Limits(
        timeout=settings.scan_timeout,
        memory=settings.scan_memory_mb << 20,
        max_bytes=settings.scan_max_bytes,
        workers=settings.scan_workers,
    )


def git_blob_id(path: Path) -> str:
    """The git blob id of a file's content (read in chunks)."""
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def scan_content(meta, sha256: str, path: Path, *, limits: Limits, tmp_dir: Path | None = None) -> dict:
    """The verdict on content with this sha256 stored at ``path`` (cached; recorded for display by sha256)."""
    fmt = sniff_file(path)
    if fmt is None:
        record = NOT_APPLICABLE
    else:
        key = f"{_PREFIX}/{fmt}/{sha256}"
        record = meta.get_scan(key)
        if record is None:
            record = policy.verdict(run_sandbox(path, limits, tmp_dir))
            if record["status"] != "error":  # a limit hit under load may pass later: not cached
                meta.put_scan(key, record)
    meta.put_scan(f"{_PREFIX}/sha256/{sha256}", record)
    return record


def record_blob(meta, blob_id: str, record: dict) -> None:
    """Make a verdict findable under a git blob id (files committed inline)."""
    meta.put_scan(f"{_PREFIX}/blob/{blob_id}", record)


def cached_verdict(meta, sha256: str) -> dict | None:
    """A verdict this scanner version made on content with this sha256 (not an error), or None."""
    record = meta.get_scan(f"{_PREFIX}/sha256/{sha256}")
    return record if record is not None and record["status"] != "error" else None


@functools.cache
def _initial_gitattributes_blob() -> str:
    from ..storage.git import DEFAULT_GITATTRIBUTES

    data = DEFAULT_GITATTRIBUTES.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def entry_status(meta, entry) -> dict:
    """The scan record of a file entry; ``unscanned`` when none was made by this scanner version."""
    if entry.type != "file" or (entry.lfs is None and entry.oid == _initial_gitattributes_blob()):
        return NOT_APPLICABLE  # the .gitattributes every repo starts with is written by the hub itself
    key = f"{_PREFIX}/sha256/{entry.lfs.oid}" if entry.lfs is not None else f"{_PREFIX}/blob/{entry.oid}"
    return meta.get_scan(key) or UNSCANNED


def refuse_if_unsafe(results: list[tuple[str, dict]], *, enforce: bool) -> None:
    """UnsafeFile (422) naming every refused file and why, when enforcing; a no-op otherwise."""
    problems = [why for path, record in results if (why := policy.refusal(path, record))]
    if problems and enforce:
        raise errors.UnsafeFile("Upload refused by the pickle scanner: " + "; ".join(problems))


__all__ = [
    "SCANNER_VERSION",
    "Limits",
    "cached_verdict",
    "entry_status",
    "git_blob_id",
    "limits_from",
    "record_blob",
    "refuse_if_unsafe",
    "scan_content",
]
