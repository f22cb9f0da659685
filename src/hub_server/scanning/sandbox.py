"""The scanning subprocess: opens one file the way loaders would and lists the globals its pickles name.

Run as ``python -E -s sandbox.py FILE LIMITS_JSON``; it lowers its own limits first (address space, CPU
time, file size, open files), then prints one JSON object:
``{"format", "pickles", "globals": [[module, name], …], "errors": […], "unscanned": […]}`` or
``{"limit": "…"}`` when the content needs more than the limits allow. Containers (zip, tar, gzip, bz2, xz,
lzma, zlib, lz4, joblib's old zfile) are opened with a budget of decompressed bytes and a nesting depth;
each member is sniffed by content and scanned when it may hold a pickle.

Standard library (and lz4, when installed) only; nothing here imports the hub.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import re
import sys
import tarfile
import tempfile
import zipfile
import zlib

if __package__:
    from .detect import HEAD, NOT_INSPECTED, TAIL, sniff
    from .emulator import Budget, Reader, ScanLimit, scan_pickle_stream
else:  # run as a script inside the subprocess
    from detect import HEAD, NOT_INSPECTED, TAIL, sniff
    from emulator import Budget, Reader, ScanLimit, scan_pickle_stream

MAX_DEPTH = 3
MAX_MEMBERS = 10_000
SPOOL_MEMORY = 32 * 1024 * 1024


class ZlibStream(io.RawIOBase):
    """A readable stream of zlib-compressed data, decompressed in bounded steps."""

    def __init__(self, raw, skip: int = 0) -> None:
        self._raw = raw
        self._raw.read(skip)
        self._inflater = zlib.decompressobj()
        self._pending = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = 1 << 20 if n is None or n < 0 else n
        while True:
            if self._inflater.unconsumed_tail:
                data = self._inflater.decompress(self._inflater.unconsumed_tail, n)
            elif self._inflater.eof:
                return b""
            else:
                chunk = self._raw.read(1 << 16)
                if not chunk:
                    return self._inflater.flush()
                data = self._inflater.decompress(chunk, n)
            if data:
                return data


def _decompressor(kind: str, raw):
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(raw, "rb")
    if kind == "xz":
        return lzma.LZMAFile(raw, "rb", format=lzma.FORMAT_XZ)
    if kind == "lzma":
        return lzma.LZMAFile(raw, "rb", format=lzma.FORMAT_ALONE)
    if kind == "zlib":
        return ZlibStream(raw)
    if kind == "joblib-zfile":
        return ZlibStream(raw, skip=21)
    if kind == "lz4":
        import lz4.frame

        return lz4.frame.LZ4FrameFile(raw, "rb")
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw)
    raise ValueError(kind)


class Scan:
    """One file's scan: what was found, across every member and reading."""

    def __init__(self, budget: Budget, tmp_dir: str | None) -> None:
        self.budget = budget
        self.tmp_dir = tmp_dir
        self.globals: set[tuple[str, str]] = set()
        self.pickles = 0
        self.errors: list[str] = []
        self.unscanned: list[str] = []
        self.members = 0

    def result(self, fmt: str | None) -> dict:
        return {
            "format": fmt,
            "pickles": self.pickles,
            "globals": sorted([m, n] for m, n in self.globals),
            "errors": self.errors[:20],
            "unscanned": self.unscanned[:20],
        }

    # ----------------------------------------------------------------- dispatch

    def content(self, opener, where: str, depth: int) -> None:
        """Scan content that ``opener()`` streams from its start (it may be called more than once)."""
        with opener() as stream:
            head = stream.read(HEAD)
            self.budget.take(len(head))
        fmt = sniff(head, head[-TAIL:] if len(head) < HEAD else None, None if len(head) == HEAD else len(head))
        if fmt is None:
            return
        if fmt != "pickle" and depth >= MAX_DEPTH:
            raise ScanLimit(f"containers nested more than {MAX_DEPTH} deep")
        if fmt == "pickle":
            self.pickle(opener, where)
        elif fmt in NOT_INSPECTED or (fmt == "zstd" and not _has_module("zstandard")):
            self.unscanned.append(f"{where}: {fmt} archive (not opened)")
        elif fmt == "npy":
            self.npy(opener, where)
        elif fmt == "zip":
            self.spooled(opener, where, depth, self.zip)
        elif fmt == "tar":
            self.tar(opener, where, depth)
        else:
            self.compressed(fmt, opener, where, depth)

    def pickle(self, opener, where: str) -> None:
        streams = []

        def open_reader() -> Reader:
            stream = opener()
            streams.append(stream)
            return Reader(stream, budget=self.budget)

        try:
            found = scan_pickle_stream(open_reader)
        finally:
            for stream in streams:
                stream.close()
        self.pickles += found["pickles"]
        self.globals.update((m, n) for m, n in found["globals"])
        if found["error"]:
            self.errors.append(f"{where}: {found['error']}")

    def compressed(self, kind: str, opener, where: str, depth: int) -> None:
        def open_inner():
            outer = opener()
            try:
                return _Closing(_decompressor(kind, outer), outer)
            except BaseException:
                outer.close()
                raise

        try:
            self.content(open_inner, f"{where}({kind})", depth + 1)
        except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError, RuntimeError) as exc:
            self.errors.append(f"{where}: not valid {kind} data ({type(exc).__name__})")

    def npy(self, opener, where: str) -> None:
        """A ``.npy`` holds a pickle after its header when its dtype has Python objects."""
        with opener() as stream:
            magic = stream.read(8)
            width = 2 if magic[6:7] == b"\x01" else 4
            length = int.from_bytes(stream.read(width), "little")
            header = stream.read(min(length, 1 << 20)).decode("latin-1")
        if not re.search(r"['\"][<>|=]?O\d*['\"]", header):
            return
        offset = 8 + width + length

        def open_data():
            stream = opener()
            stream.read(offset)
            return stream

        self.pickle(open_data, f"{where}(object array)")

    # ----------------------------------------------------------------- archives

    def spooled(self, opener, where: str, depth: int, handler) -> None:
        """Run ``handler`` on a seekable copy of the content (zip readers need to seek)."""
        with opener() as stream:
            if stream.seekable():
                return handler(stream, where, depth)
        with tempfile.SpooledTemporaryFile(SPOOL_MEMORY, dir=self.tmp_dir) as copy, opener() as stream:
            while chunk := stream.read(1 << 20):
                self.budget.take(len(chunk))
                copy.write(chunk)
            copy.seek(0)
            return handler(copy, where, depth)

    def zip(self, stream, where: str, depth: int) -> None:
        try:
            archive = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return  # not a zip a loader could open either
        with archive:
            infos = archive.infolist()
            self._count(len(infos))
            for info in infos:
                if info.is_dir():
                    continue
                if info.flag_bits & 0x1:
                    self.unscanned.append(f"{where}:{info.filename} (encrypted)")
                    continue
                try:
                    self.content(_opener(archive.open, info), f"{where}:{info.filename}", depth + 1)
                except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, zlib.error) as exc:
                    self.errors.append(f"{where}:{info.filename}: unreadable ({type(exc).__name__})")

    def tar(self, opener, where: str, depth: int) -> None:
        def scan_tar(stream, where: str, depth: int) -> None:
            try:
                archive = tarfile.open(fileobj=stream, mode="r:")
            except tarfile.TarError:
                return
            with archive:
                for info in archive:
                    self._count(1)
                    if info.isfile():
                        self.content(_opener(archive.extractfile, info), f"{where}:{info.name}", depth + 1)

        self.spooled(opener, where, depth, scan_tar)

    def _count(self, n: int) -> None:
        self.members += n
        if self.members > MAX_MEMBERS:
            raise ScanLimit(f"more than {MAX_MEMBERS} archive members")


class _Closing:
    """A decompressing stream that also closes the stream under it."""

    def __init__(self, stream, under) -> None:
        self._stream, self._under = stream, under

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(n)

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self._stream.close()
        self._under.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _opener(open_fn, *args):
    return lambda: open_fn(*args)


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def scan_path(path: str, *, max_bytes: int, ratio: int, floor: int, tmp_dir: str | None = None) -> dict:
    """Scan one file; the decompressed budget is ``min(max_bytes, max(floor, ratio × file size))``."""
    with open(path, "rb") as fh:
        head = fh.read(HEAD)
        size = fh.seek(0, io.SEEK_END)
        fh.seek(max(0, size - TAIL))
        tail = fh.read(TAIL)
    fmt = sniff(head, tail, size)
    scan = Scan(Budget(min(max_bytes, max(floor, ratio * size)) + size), tmp_dir)
    if fmt is not None:
        scan.content(_opener(open, path, "rb"), "", 0)
    return scan.result(fmt)


def _limit(limits: dict) -> None:
    import resource

    for name, value in (
        ("RLIMIT_AS", limits["memory"]),
        ("RLIMIT_CPU", limits["cpu"]),
        ("RLIMIT_FSIZE", limits["max_bytes"]),
        ("RLIMIT_CORE", 0),
        ("RLIMIT_NOFILE", 64),
    ):
        resource.setrlimit(getattr(resource, name), (value, value))


def main(argv: list[str]) -> int:
    path, limits = argv[0], json.loads(argv[1])
    _limit(limits)
    sys.setrecursionlimit(5000)
    try:
        result = scan_path(
            path, max_bytes=limits["max_bytes"], ratio=limits["ratio"], floor=limits["floor"], tmp_dir=limits["tmp"]
        )
    except ScanLimit as exc:
        result = {"limit": str(exc)}
    except MemoryError:
        result = {"limit": f"more than {limits['memory'] // (1 << 20)} MiB of memory"}
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
