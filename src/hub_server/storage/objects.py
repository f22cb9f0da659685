"""Object stores: a local directory (the default) and an in-memory one (tests, throwaway hubs).

Keys are ``<kind>/<name>`` with a content-derived name (``lfs/<sha256>``, ``xorbs/<hash>``…). The local
store keeps the historical layout ``<root>/<kind>/<name[:2]>/<name[2:4]>/<name>``; every write goes to a
temporary file that is fsynced, then renamed into place, so a reader never sees a partial object.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from .. import errors
from ..fsutil import atomic_write, fsync_dir

READ_CHUNK = 4 * 1024 * 1024
_KEY = re.compile(r"^[a-z][a-z0-9-]{0,31}/[A-Za-z0-9_-][A-Za-z0-9_.-]{3,199}$")


def check_key(key: str) -> tuple[str, str]:
    """Split a key into (kind, name); BadRequest for anything that is not a plain two-part key."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise errors.BadRequest(f"Invalid object key {key!r}")
    kind, _, name = key.partition("/")
    return kind, name


class LocalObjectStore:
    """Objects as files under one directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        kind, name = check_key(key)
        return self.root / kind / name[:2] / name[2:4] / name

    def put_file(self, key: str, source: Path) -> None:
        """Move ``source`` into place (fsynced); a no-op when ``key`` is already stored."""
        target = self._path(key)
        if target.exists():
            Path(source).unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as fh:
            os.fsync(fh.fileno())
        try:
            os.replace(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            shutil.copyfile(source, tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
            Path(source).unlink(missing_ok=True)
        fsync_dir(target.parent)

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` atomically (a no-op when already stored)."""
        target = self._path(key)
        if not target.exists():
            atomic_write(target, data)

    def exists(self, key: str) -> bool:
        """Whether the object's file exists."""
        return self._path(key).exists()

    def size(self, key: str) -> int | None:
        """The file's size, or None."""
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def iter_range(self, key: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Read the file from ``start`` to ``stop`` in 4 MiB chunks."""
        path = self._path(key)
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            raise errors.NotFound(f"Object {key} not found") from None
        return _iter_file(fh, start, stop)

    def read(self, key: str, start: int = 0, stop: int | None = None) -> bytes:
        """Bytes ``start``..``stop`` of the object."""
        return b"".join(self.iter_range(key, start, stop))

    def delete(self, key: str) -> None:
        """Unlink the object's file."""
        self._path(key).unlink(missing_ok=True)

    def url_for(self, key: str, *, expires_in: int, start: int | None = None, stop: int | None = None) -> None:
        """Local files are served by the hub itself."""
        return None

    def local_path(self, key: str) -> Path | None:
        """The object's file, when it exists."""
        path = self._path(key)
        return path if path.exists() else None


def _iter_file(fh, start: int, stop: int | None) -> Iterator[bytes]:
    with fh:
        fh.seek(start)
        remaining = None if stop is None else max(stop - start, 0)
        while remaining is None or remaining > 0:
            data = fh.read(READ_CHUNK if remaining is None else min(READ_CHUNK, remaining))
            if not data:
                break
            if remaining is not None:
                remaining -= len(data)
            yield data


class MemoryObjectStore:
    """Objects in a dict: for tests and throwaway hubs."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._guard = threading.Lock()

    def put_file(self, key: str, source: Path) -> None:
        """Read ``source`` into memory and remove it."""
        check_key(key)
        data = Path(source).read_bytes()
        with self._guard:
            self._data.setdefault(key, data)
        Path(source).unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        """Keep a copy of ``data``."""
        check_key(key)
        with self._guard:
            self._data.setdefault(key, bytes(data))

    def exists(self, key: str) -> bool:
        """Whether ``key`` is held."""
        check_key(key)
        return key in self._data

    def size(self, key: str) -> int | None:
        """The held object's size, or None."""
        check_key(key)
        data = self._data.get(key)
        return None if data is None else len(data)

    def iter_range(self, key: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Yield the requested slice in chunks."""
        data = self._get(key)
        stop = len(data) if stop is None else min(stop, len(data))
        return (data[pos : min(pos + READ_CHUNK, stop)] for pos in range(start, stop, READ_CHUNK))

    def read(self, key: str, start: int = 0, stop: int | None = None) -> bytes:
        """The requested slice."""
        return self._get(key)[start:stop]

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        check_key(key)
        with self._guard:
            self._data.pop(key, None)

    def url_for(self, key: str, *, expires_in: int, start: int | None = None, stop: int | None = None) -> None:
        """Served by the hub itself."""
        return None

    def local_path(self, key: str) -> None:
        """Nothing is on disk."""
        return None

    def _get(self, key: str) -> bytes:
        check_key(key)
        try:
            return self._data[key]
        except KeyError:
            raise errors.NotFound(f"Object {key} not found") from None
