"""Shards: parse (with bounded counts) and serialize the MDB shard format (spec ``shard.md``).

Layout: a 48-byte header (tag, version 2, footer size), the file info section (per file a header, its
terms, optional verification entries and an optional sha256 extension), a bookend, the xorb ("CAS") info
section (per xorb a header and one entry per chunk), a bookend, then, unless the footer size is 0, the
lookup tables and a 200-byte footer. Every record is 48 bytes and every integer little-endian. Uploaded
shards carry no footer; global-dedup answers carry one (the client reads its lookup tables and HMAC key).
"""

from __future__ import annotations

import dataclasses
import os
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from . import hashing
from .errors import XetFormatError
from .xorb import MAX_CHUNK_SIZE, MAX_XORB_CHUNKS

HEADER_TAG = b"HFRepoMetaData\x00" + bytes.fromhex("556967456a7b815783a5bdd95ccdd14aa9")
"""The 32-byte magic that opens every shard."""

HEADER_VERSION = 2
FOOTER_VERSION = 1
HEADER_SIZE = 48
RECORD_SIZE = 48
FOOTER_SIZE = 200
BOOKEND = b"\xff" * 32 + bytes(16)

FLAG_WITH_VERIFICATION = 1 << 31
"""File flag: one verification entry follows each term."""

FLAG_WITH_METADATA_EXT = 1 << 30
"""File flag: a metadata extension (the file's sha256) ends the file block."""

CHUNK_FLAG_GLOBAL_DEDUP = 1 << 31
"""Chunk entry flag: index this chunk for the global dedup query."""

MAX_SHARD_SIZE = 64 * 1024 * 1024
"""Largest shard accepted (spec ``upload_protocol.md``: larger uploads must be split)."""

DEFAULT_DEDUP_SHARD_TTL = 14 * 24 * 3600
"""Default validity of a global-dedup answer, in seconds (the spec suggests days to weeks)."""


@dataclasses.dataclass(frozen=True)
class FileTerm:
    """One term of a file reconstruction: chunks ``[chunk_start, chunk_end)`` of a xorb, ``raw_size`` bytes."""

    xorb_hash: bytes
    chunk_start: int
    chunk_end: int
    raw_size: int


@dataclasses.dataclass(frozen=True)
class FileInfo:
    """A file reconstruction from a shard's file info section."""

    file_hash: bytes
    terms: tuple[FileTerm, ...]
    verification: tuple[bytes, ...] | None = None
    sha256: str | None = None

    @property
    def size(self) -> int:
        """Size of the file in bytes."""
        return sum(term.raw_size for term in self.terms)


@dataclasses.dataclass(frozen=True)
class XorbChunkEntry:
    """One chunk of a xorb as a shard lists it: its hash, raw offset within the xorb, raw size and flags."""

    hash: bytes
    raw_offset: int
    raw_size: int
    flags: int = 0


@dataclasses.dataclass(frozen=True)
class XorbEntry:
    """A xorb as a shard's CAS info section lists it."""

    hash: bytes
    chunks: tuple[XorbChunkEntry, ...]
    raw_size: int
    serialized_size: int = 0
    flags: int = 0


@dataclasses.dataclass(frozen=True)
class ShardFooter:
    """The fields of a shard footer that carry meaning."""

    hmac_key: bytes
    created: int
    key_expiry: int


@dataclasses.dataclass(frozen=True)
class Shard:
    """A parsed shard."""

    files: tuple[FileInfo, ...]
    xorbs: tuple[XorbEntry, ...]
    footer: ShardFooter | None = None


class _Records:
    """Sequential 48-byte records of a shard body with a known total length."""

    def __init__(self, read: Callable[[int], bytes], length: int) -> None:
        self._read = read
        self.offset = 0
        self.length = length

    def left(self) -> int:
        """Records still available before the end of the body."""
        return (self.length - self.offset) // RECORD_SIZE

    def take(self, count: int, what: str) -> bytes:
        """Read ``count`` records, refusing a count the remaining bytes cannot hold before reading anything."""
        if count > self.left():
            raise XetFormatError(f"shard truncated: {what} needs {count} records, {self.left()} remain")
        size = count * RECORD_SIZE
        parts, missing = [], size
        while missing:
            piece = self._read(missing)
            if not piece:
                raise XetFormatError(f"shard truncated in {what}")
            parts.append(piece)
            missing -= len(piece)
        self.offset += size
        return b"".join(parts)


def _record_hash_and_ints(record: bytes) -> tuple[bytes, int, int, int, int]:
    """A record read as a hash and four u32."""
    return (record[:32], *struct.unpack_from("<IIII", record, 32))


def _read_file_block(records: _Records, head: bytes) -> FileInfo:
    """Read one file block whose header record is ``head``."""
    file_hash, flags, count, _, _ = _record_hash_and_ints(head)
    extra = (count if flags & FLAG_WITH_VERIFICATION else 0) + (1 if flags & FLAG_WITH_METADATA_EXT else 0)
    body = records.take(count + extra, f"file {hashing.hash_to_hex(file_hash)}")
    terms = []
    for i in range(count):
        xorb, _, raw_size, start, end = _record_hash_and_ints(body[i * RECORD_SIZE : (i + 1) * RECORD_SIZE])
        if not (start < end and end - start <= MAX_XORB_CHUNKS and 0 < raw_size <= (end - start) * MAX_CHUNK_SIZE):
            raise XetFormatError(f"file {hashing.hash_to_hex(file_hash)}: term {i} has an impossible chunk range")
        terms.append(FileTerm(xorb, start, end, raw_size))
    verification = None
    pos = count * RECORD_SIZE
    if flags & FLAG_WITH_VERIFICATION:
        verification = tuple(body[pos + i * RECORD_SIZE : pos + i * RECORD_SIZE + 32] for i in range(count))
        pos += count * RECORD_SIZE
    sha256 = None
    if flags & FLAG_WITH_METADATA_EXT:
        sha256 = hashing.sha256_from_shard(body[pos : pos + 32])
    return FileInfo(file_hash, tuple(terms), verification, sha256)


def _read_xorb_block(records: _Records, head: bytes) -> XorbEntry:
    """Read one xorb block whose header record is ``head``."""
    xorb, flags, count, raw_size, on_disk = _record_hash_and_ints(head)
    if count == 0 or count > MAX_XORB_CHUNKS:
        raise XetFormatError(f"xorb {hashing.hash_to_hex(xorb)} lists {count} chunks")
    body = records.take(count, f"xorb {hashing.hash_to_hex(xorb)}")
    chunks = []
    for i in range(count):
        chunk, offset, size, chunk_flags, _ = _record_hash_and_ints(body[i * RECORD_SIZE : (i + 1) * RECORD_SIZE])
        chunks.append(XorbChunkEntry(chunk, offset, size, chunk_flags))
    return XorbEntry(xorb, tuple(chunks), raw_size, on_disk, flags)


def iter_shard(
    source: BinaryIO | bytes, *, length: int | None = None, max_size: int = MAX_SHARD_SIZE
) -> Iterator[FileInfo | XorbEntry | ShardFooter | None]:
    """Yield a shard's :class:`FileInfo` items, then its :class:`XorbEntry` items, then its footer (or None)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        length, source = len(data), _BytesReader(data)
    if length is None:
        raise XetFormatError("the shard length must be known")
    if length > max_size:
        raise XetFormatError(f"shard is larger than {max_size} bytes")
    header = source.read(HEADER_SIZE)
    if len(header) != HEADER_SIZE or header[:32] != HEADER_TAG:
        raise XetFormatError("not a shard (wrong magic number)")
    version, footer_size = struct.unpack_from("<QQ", header, 32)
    if version != HEADER_VERSION:
        raise XetFormatError(f"unsupported shard header version {version}")
    if footer_size not in (0, FOOTER_SIZE) or footer_size > length - HEADER_SIZE:
        raise XetFormatError(f"unsupported shard footer size {footer_size}")
    records = _Records(source.read, length - HEADER_SIZE)
    while (head := records.take(1, "file info section")) != BOOKEND:
        if head[:32] == BOOKEND[:32]:
            raise XetFormatError("malformed file info bookend")
        yield _read_file_block(records, head)
    while (head := records.take(1, "xorb info section")) != BOOKEND:
        if head[:32] == BOOKEND[:32]:
            raise XetFormatError("malformed xorb info bookend")
        yield _read_xorb_block(records, head)
    yield _read_tail(source, records, footer_size)


def _read_tail(source: BinaryIO, records: _Records, footer_size: int) -> ShardFooter | None:
    """Skip the lookup tables and read the footer; nothing may follow the CAS bookend of a footerless shard."""
    remaining = records.length - records.offset
    if footer_size == 0:
        if remaining:
            raise XetFormatError(f"{remaining} unexpected bytes after the shard's xorb info section")
        return None
    if remaining < FOOTER_SIZE:
        raise XetFormatError("shard footer is truncated")
    skip = remaining - FOOTER_SIZE
    while skip:
        piece = source.read(min(skip, 1 << 20))
        if not piece:
            raise XetFormatError("shard truncated in its lookup tables")
        skip -= len(piece)
    raw = source.read(FOOTER_SIZE)
    if len(raw) != FOOTER_SIZE:
        raise XetFormatError("shard footer is truncated")
    (version,) = struct.unpack_from("<Q", raw, 0)
    if version != FOOTER_VERSION:
        raise XetFormatError(f"unsupported shard footer version {version}")
    created, expiry = struct.unpack_from("<QQ", raw, 104)
    return ShardFooter(raw[72:104], created, expiry)


class _BytesReader:
    """``read(n)`` over an in-memory buffer."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def read(self, size: int) -> bytes:
        """The next ``size`` bytes (fewer at the end)."""
        piece = bytes(self._view[self._pos : self._pos + size])
        self._pos += len(piece)
        return piece


def parse_shard(source: BinaryIO | bytes | str | os.PathLike[str], *, max_size: int = MAX_SHARD_SIZE) -> Shard:
    """Parse a whole shard from bytes, a path or a seekable binary file."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            return parse_shard(handle, max_size=max_size)
    length = None
    if not isinstance(source, (bytes, bytearray, memoryview)):
        here = source.tell()
        length = source.seek(0, os.SEEK_END) - here
        source.seek(here)
    items = list(iter_shard(source, length=length, max_size=max_size))
    files = tuple(item for item in items if isinstance(item, FileInfo))
    xorbs = tuple(item for item in items if isinstance(item, XorbEntry))
    return Shard(files, xorbs, items[-1])


def _file_records(info: FileInfo) -> list[bytes]:
    """The records of one file block."""
    flags = (FLAG_WITH_VERIFICATION if info.verification is not None else 0) | (
        FLAG_WITH_METADATA_EXT if info.sha256 is not None else 0
    )
    out = [info.file_hash + struct.pack("<IIQ", flags, len(info.terms), 0)]
    out += [t.xorb_hash + struct.pack("<IIII", 0, t.raw_size, t.chunk_start, t.chunk_end) for t in info.terms]
    if info.verification is not None:
        if len(info.verification) != len(info.terms):
            raise XetFormatError("a file needs one verification hash per term")
        out += [value + bytes(16) for value in info.verification]
    if info.sha256 is not None:
        out.append(hashing.sha256_to_shard(bytes.fromhex(info.sha256)) + bytes(16))
    return out


def _xorb_records(entry: XorbEntry, hmac_key: bytes | None) -> list[bytes]:
    """The records of one xorb block, chunk hashes keyed with ``hmac_key`` when given."""
    head = struct.pack("<IIII", entry.flags, len(entry.chunks), entry.raw_size, entry.serialized_size)
    out = [entry.hash + head]
    for chunk in entry.chunks:
        value = hashing.keyed_hash(chunk.hash, hmac_key) if hmac_key else chunk.hash
        out.append(value + struct.pack("<IIII", chunk.raw_offset, chunk.raw_size, chunk.flags, 0))
    return out


def _truncated(value: bytes) -> int:
    """The lookup-table key of a hash: its first 8 bytes as a little-endian integer."""
    return int.from_bytes(value[:8], "little")


def _lookup_tables(file_lookup: list, xorb_lookup: list, chunk_lookup: list) -> list[bytes]:
    """The three lookup tables, each sorted by its truncated-hash key (the client searches them)."""
    return [
        b"".join(struct.pack("<QI", k, v) for k, v in sorted(file_lookup)),
        b"".join(struct.pack("<QI", k, v) for k, v in sorted(xorb_lookup)),
        b"".join(struct.pack("<QII", k, x, c) for k, x, c in sorted(chunk_lookup)),
    ]


def _footer(offsets: list[int], counts: list[int], section_offsets: tuple[int, int], extra: dict) -> bytes:
    """The 200-byte footer."""
    fields = [FOOTER_VERSION, *section_offsets]
    for offset, count in zip(offsets[:3], counts, strict=True):
        fields += [offset, count]
    raw = struct.pack("<9Q", *fields) + (extra["hmac_key"] or bytes(32))
    raw += struct.pack("<QQ6Q", extra["created"], extra["key_expiry"], *[0] * 6)
    raw += struct.pack("<QQQQ", extra["on_disk"], extra["materialized"], extra["stored"], offsets[-1])
    return raw


def serialize_shard(
    files: Iterable[FileInfo] = (),
    xorbs: Iterable[XorbEntry] = (),
    *,
    with_footer: bool = True,
    hmac_key: bytes | None = None,
    created: int | None = None,
    key_expiry: int | None = None,
) -> bytes:
    """Serialize a shard; with a footer (and lookup tables) it is what the client accepts as a dedup answer."""
    if hmac_key is not None and (len(hmac_key) != 32 or hmac_key == bytes(32)):
        raise XetFormatError("an HMAC key is 32 bytes, not all zero")
    files = sorted(files, key=lambda f: hashing.hash_to_hex(f.file_hash))
    xorbs = sorted(xorbs, key=lambda x: hashing.hash_to_hex(x.hash))
    file_recs, file_lookup = [], []
    for info in files:
        file_lookup.append((_truncated(info.file_hash), len(file_recs)))
        file_recs += _file_records(info)
    xorb_recs, xorb_lookup, chunk_lookup = [], [], []
    for entry in xorbs:
        index = len(xorb_recs)
        xorb_lookup.append((_truncated(entry.hash), index))
        records = _xorb_records(entry, hmac_key)
        chunk_lookup += [(_truncated(rec), index, i) for i, rec in enumerate(records[1:])]
        xorb_recs += records
    file_section = b"".join(file_recs) + BOOKEND
    xorb_section = b"".join(xorb_recs) + BOOKEND
    body = HEADER_TAG + struct.pack("<QQ", HEADER_VERSION, FOOTER_SIZE if with_footer else 0)
    body += file_section + xorb_section
    if not with_footer:
        return body
    tables = _lookup_tables(file_lookup, xorb_lookup, chunk_lookup)
    offsets = [len(body)]
    for table in tables:
        offsets.append(offsets[-1] + len(table))
    now = int(time.time()) if created is None else created
    extra = {
        "hmac_key": hmac_key,
        "created": now,
        "key_expiry": now + DEFAULT_DEDUP_SHARD_TTL if key_expiry is None else key_expiry,
        "on_disk": sum(x.serialized_size for x in xorbs),
        "materialized": sum(f.size for f in files),
        "stored": sum(x.raw_size for x in xorbs),
    }
    counts = [len(file_lookup), len(xorb_lookup), len(chunk_lookup)]
    section_offsets = (HEADER_SIZE, HEADER_SIZE + len(file_section))
    return body + b"".join(tables) + _footer(offsets, counts, section_offsets, extra)
