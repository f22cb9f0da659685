"""Xorbs: parse and verify a serialized xorb with bounded memory, and write one.

A serialized xorb is a run of chunks, each an 8-byte header (version 0, compressed size as 3 bytes
little-endian, compression type, uncompressed size as 3 bytes little-endian) and its compressed bytes
(spec ``xorb.md``). The client uploads xorbs without a footer; a reader may still meet the reference
implementation's optional ``XETBLOB`` footer (chunk hashes and boundaries, then its length as u32), which
is parsed and checked against the chunks when present.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import BinaryIO

from . import hashing
from .compression import Compression, compress_chunk, decompress_chunk
from .errors import XetFormatError

CHUNK_HEADER_LEN = 8
"""Bytes of a chunk header."""

MAX_CHUNK_SIZE = 128 * 1024
"""Largest uncompressed chunk (spec ``chunking.md``)."""

MAX_COMPRESSED_CHUNK_SIZE = 2 * MAX_CHUNK_SIZE
"""Largest compressed chunk a reader accepts (the reference reader's bound)."""

MAX_XORB_CHUNKS = 8 * 1024
"""Most chunks in one xorb (the client's limit)."""

MAX_XORB_RAW_BYTES = 64 * 1024 * 1024
"""Most uncompressed bytes in one xorb (the client's limit; spec ``xorb.md``: 64 MiB)."""

FOOTER_IDENT = b"XETBLOB"
_HASHES_IDENT = b"XBLBHSH"
_BOUNDARIES_IDENT = b"XBLBBND"
_FOOTER_FIXED = 96
_FOOTER_PER_CHUNK = 40

MAX_XORB_SIZE = (
    MAX_XORB_RAW_BYTES + CHUNK_HEADER_LEN * MAX_XORB_CHUNKS + _FOOTER_FIXED + _FOOTER_PER_CHUNK * MAX_XORB_CHUNKS
)
"""Largest serialized xorb accepted: 64 MiB of data, a header per chunk and the optional footer."""

_TABLE_MAGIC = b"XCT1"
_SCHEMES = frozenset(int(c) for c in Compression)


@dataclasses.dataclass(frozen=True)
class ChunkHeader:
    """One parsed chunk header."""

    compressed_size: int
    compression: int
    uncompressed_size: int


def parse_chunk_header(raw: bytes) -> ChunkHeader:
    """Parse and bound-check an 8-byte chunk header."""
    if len(raw) != CHUNK_HEADER_LEN:
        raise XetFormatError("truncated chunk header")
    if raw[0] != 0:
        raise XetFormatError(f"unsupported chunk header version {raw[0]}")
    compressed = int.from_bytes(raw[1:4], "little")
    uncompressed = int.from_bytes(raw[5:8], "little")
    if raw[4] not in _SCHEMES:
        raise XetFormatError(f"unknown chunk compression type {raw[4]}")
    if not 0 < uncompressed <= MAX_CHUNK_SIZE:
        raise XetFormatError(f"chunk uncompressed size {uncompressed} outside 1..{MAX_CHUNK_SIZE}")
    if not 0 < compressed <= MAX_COMPRESSED_CHUNK_SIZE:
        raise XetFormatError(f"chunk compressed size {compressed} outside 1..{MAX_COMPRESSED_CHUNK_SIZE}")
    return ChunkHeader(compressed, raw[4], uncompressed)


def chunk_header_bytes(compression: int, compressed_size: int, uncompressed_size: int) -> bytes:
    """Serialize a chunk header."""
    return (
        bytes([0])
        + compressed_size.to_bytes(3, "little")
        + bytes([compression])
        + uncompressed_size.to_bytes(3, "little")
    )


@dataclasses.dataclass(frozen=True)
class ChunkTable:
    """The chunks of one xorb: hash, end offset in the serialized xorb (header included) and raw size of each."""

    hashes: tuple[bytes, ...]
    ends: tuple[int, ...]
    sizes: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.hashes)

    def start(self, index: int) -> int:
        """Offset of chunk ``index``'s header in the serialized xorb."""
        return self.ends[index - 1] if index > 0 else 0

    def byte_range(self, start: int, end: int) -> tuple[int, int]:
        """Serialized byte range ``[first, last)`` of chunks ``[start, end)``."""
        self.check_range(start, end)
        return self.start(start), self.ends[end - 1]

    def raw_size(self, start: int, end: int) -> int:
        """Uncompressed bytes of chunks ``[start, end)``."""
        self.check_range(start, end)
        return sum(self.sizes[start:end])

    def check_range(self, start: int, end: int) -> None:
        """Raise unless ``[start, end)`` is a non-empty chunk range of this xorb."""
        if not 0 <= start < end <= len(self.hashes):
            raise XetFormatError(f"chunk range [{start}, {end}) is not inside a xorb of {len(self.hashes)} chunks")

    def hash_pairs(self) -> list[tuple[bytes, int]]:
        """``(chunk hash, raw size)`` of every chunk, the input of the xorb hash."""
        return list(zip(self.hashes, self.sizes, strict=True))

    def to_bytes(self) -> bytes:
        """A compact encoding (40 bytes a chunk) for storing the table next to the xorb."""
        parts = [_TABLE_MAGIC, struct.pack("<I", len(self.hashes))]
        parts += [h + struct.pack("<II", e, s) for h, e, s in zip(self.hashes, self.ends, self.sizes, strict=True)]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> ChunkTable:
        """Decode :meth:`to_bytes` output."""
        if len(data) < 8 or data[:4] != _TABLE_MAGIC:
            raise XetFormatError("not a chunk table")
        (count,) = struct.unpack_from("<I", data, 4)
        if count > MAX_XORB_CHUNKS or len(data) != 8 + 40 * count:
            raise XetFormatError("chunk table has the wrong length")
        hashes, ends, sizes = [], [], []
        for pos in range(8, len(data), 40):
            hashes.append(data[pos : pos + 32])
            end, size = struct.unpack_from("<II", data, pos + 32)
            ends.append(end)
            sizes.append(size)
        return cls(tuple(hashes), tuple(ends), tuple(sizes))


TableSource = Mapping[bytes, ChunkTable] | Callable[[bytes], "ChunkTable | None"]
"""Where chunk tables come from: a mapping by xorb hash, or a callable answering None for an unknown xorb."""


def get_table(tables: TableSource, xorb_hash: bytes) -> ChunkTable | None:
    """The chunk table of a xorb from a :data:`TableSource`, or None."""
    return tables.get(xorb_hash) if isinstance(tables, Mapping) else tables(xorb_hash)


@dataclasses.dataclass(frozen=True)
class XorbInfo:
    """A verified xorb: its hash, its chunk table and its sizes."""

    hash: bytes
    chunks: ChunkTable
    serialized_size: int
    content_size: int
    has_footer: bool

    @property
    def raw_size(self) -> int:
        """Uncompressed bytes of all chunks."""
        return sum(self.chunks.sizes)


class _Reader:
    """Exact reads from ``read(n)`` with a running offset."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self.offset = 0

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only at the end of the input."""
        data = self._read(size)
        if len(data) == size or not data:  # the usual case: one read, no copy
            self.offset += len(data)
            return data
        parts, missing = [data], size - len(data)
        while missing > 0:
            piece = self._read(missing)
            if not piece:
                break
            parts.append(piece)
            missing -= len(piece)
        data = b"".join(parts)
        self.offset += len(data)
        return data

    def read_exact(self, size: int, what: str) -> bytes:
        """Exactly ``size`` bytes, or a format error naming ``what`` was truncated."""
        data = self.read(size)
        if len(data) != size:
            raise XetFormatError(f"xorb truncated in {what} at byte {self.offset}")
        return data


def _read_chunk_body(reader: _Reader, header: ChunkHeader, index: int) -> bytes:
    """Read and decompress the body of chunk ``index``."""
    body = reader.read_exact(header.compressed_size, f"chunk {index}")
    try:
        return decompress_chunk(header.compression, body, header.uncompressed_size)
    except XetFormatError as exc:
        raise XetFormatError(f"chunk {index}: {exc.message}") from None


def parse_xorb(
    source: BinaryIO | str | os.PathLike[str],
    *,
    expected_hash: bytes | None = None,
    max_size: int = MAX_XORB_SIZE,
) -> XorbInfo:
    """Parse a serialized xorb, decompress and hash every chunk, and check the xorb hash; bounded memory."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            return parse_xorb(handle, expected_hash=expected_hash, max_size=max_size)
    reader = _Reader(source.read)
    hashes: list[bytes] = []
    ends: list[int] = []
    sizes: list[int] = []
    footer: bytes | None = None
    raw_total = 0
    while True:
        first = reader.read(CHUNK_HEADER_LEN)
        if not first:
            break
        if first.startswith(FOOTER_IDENT[: len(first)]):
            footer = first + _read_rest(reader, max_size)
            break
        if len(first) != CHUNK_HEADER_LEN:
            raise XetFormatError(f"xorb truncated in chunk header {len(hashes)}")
        header = parse_chunk_header(first)
        raw_total += header.uncompressed_size
        _check_counts(len(hashes) + 1, raw_total, reader.offset + header.compressed_size, max_size)
        data = _read_chunk_body(reader, header, len(hashes))
        hashes.append(hashing.chunk_hash(data))
        ends.append(reader.offset)
        sizes.append(header.uncompressed_size)
    table = ChunkTable(tuple(hashes), tuple(ends), tuple(sizes))
    if not hashes:
        raise XetFormatError("xorb holds no chunks")
    computed = hashing.xorb_hash(table.hash_pairs())
    if footer is not None:
        _check_footer(footer, table, computed)
    if expected_hash is not None and computed != expected_hash:
        raise XetFormatError(
            f"xorb hash mismatch: body hashes to {hashing.hash_to_hex(computed)}, "
            f"expected {hashing.hash_to_hex(expected_hash)}"
        )
    content_size = ends[-1]
    return XorbInfo(computed, table, reader.offset, content_size, footer is not None)


def _check_counts(chunks: int, raw_bytes: int, offset: int, max_size: int) -> None:
    """Refuse a xorb past the chunk-count, raw-size or serialized-size limit."""
    if chunks > MAX_XORB_CHUNKS:
        raise XetFormatError(f"xorb has more than {MAX_XORB_CHUNKS} chunks")
    if raw_bytes > MAX_XORB_RAW_BYTES:
        raise XetFormatError(f"xorb holds more than {MAX_XORB_RAW_BYTES} uncompressed bytes")
    if offset > max_size:
        raise XetFormatError(f"xorb is larger than {max_size} bytes")


def _read_rest(reader: _Reader, max_size: int) -> bytes:
    """The footer bytes after its first 8: bounded by the largest footer and by ``max_size``."""
    limit = _FOOTER_FIXED + _FOOTER_PER_CHUNK * MAX_XORB_CHUNKS
    rest = reader.read(limit + 1)
    if len(rest) + CHUNK_HEADER_LEN > limit or reader.offset > max_size:
        raise XetFormatError("xorb footer is too large")
    return rest


def _check_footer(footer: bytes, table: ChunkTable, computed: bytes) -> None:
    """Check an ``XETBLOB`` v1 footer against the chunks that precede it."""
    count = len(table)
    if len(footer) < 8 or footer[7] != 1:
        raise XetFormatError("unsupported xorb footer version (only version 1 is read)")
    if len(footer) != _FOOTER_FIXED + _FOOTER_PER_CHUNK * count:
        raise XetFormatError("xorb footer length does not match its chunk count")
    info_length = len(footer) - 4
    if struct.unpack_from("<I", footer, info_length)[0] != info_length:
        raise XetFormatError("xorb footer length field is wrong")
    pos = 8
    stated_hash = footer[pos : pos + 32]
    pos += 32
    hashes_at = pos
    if footer[pos : pos + 8] != _HASHES_IDENT + b"\x00" or struct.unpack_from("<I", footer, pos + 8)[0] != count:
        raise XetFormatError("xorb footer hash section is malformed")
    pos += 12
    listed = [footer[pos + 32 * i : pos + 32 * i + 32] for i in range(count)]
    pos += 32 * count
    bounds_at = pos
    if footer[pos : pos + 8] != _BOUNDARIES_IDENT + b"\x01" or struct.unpack_from("<I", footer, pos + 8)[0] != count:
        raise XetFormatError("xorb footer boundary section is malformed")
    pos += 12
    ends = struct.unpack_from(f"<{count}I", footer, pos)
    raw_ends = struct.unpack_from(f"<{count}I", footer, pos + 4 * count)
    pos += 8 * count
    tail_count, hashes_from_end, bounds_from_end = struct.unpack_from("<III", footer, pos)
    end = pos + 12 + 16
    running, expected_raw_ends = 0, []
    for size in table.sizes:
        running += size
        expected_raw_ends.append(running)
    if (
        stated_hash != computed
        or tuple(listed) != table.hashes
        or ends != table.ends
        or list(raw_ends) != expected_raw_ends
        or tail_count != count
        or hashes_from_end != end - hashes_at
        or bounds_from_end != end - bounds_at
    ):
        raise XetFormatError("xorb footer does not match the chunks")


def iter_chunks(pieces: Iterable[bytes], *, first_index: int = 0) -> Iterator[bytes]:
    """Decompress a run of serialized chunks arriving as byte pieces; yields each chunk's raw bytes in turn.

    Chunks lying inside a piece are read in place; only a chunk split across pieces is copied, so memory
    holds the current piece plus at most one chunk and pieces should be of bounded size.
    """
    carry = bytearray()  # a chunk begun in an earlier piece: its header, then part of its body
    index = first_index
    for piece in pieces:
        view = memoryview(piece)
        pos = 0
        if carry:
            pos, done = _complete(carry, view)
            if not done:
                continue
            yield _chunk_data(parse_chunk_header(bytes(carry[:CHUNK_HEADER_LEN])), carry[CHUNK_HEADER_LEN:], index)
            index += 1
            carry = bytearray()
        total = len(view)
        while total - pos >= CHUNK_HEADER_LEN:
            header = parse_chunk_header(bytes(view[pos : pos + CHUNK_HEADER_LEN]))
            end = pos + CHUNK_HEADER_LEN + header.compressed_size
            if end > total:
                break
            yield _chunk_data(header, view[pos + CHUNK_HEADER_LEN : end], index)
            index += 1
            pos = end
        if pos < total:
            carry = bytearray(view[pos:])
    if carry:
        raise XetFormatError(f"xorb range truncated in chunk {index}")


def _complete(carry: bytearray, view: memoryview) -> tuple[int, bool]:
    """Move bytes of ``view`` into ``carry`` until it holds a whole chunk; (bytes taken, whether complete)."""
    taken = 0
    if len(carry) < CHUNK_HEADER_LEN:
        taken = min(CHUNK_HEADER_LEN - len(carry), len(view))
        carry += view[:taken]
        if len(carry) < CHUNK_HEADER_LEN:
            return taken, False
    header = parse_chunk_header(bytes(carry[:CHUNK_HEADER_LEN]))
    missing = CHUNK_HEADER_LEN + header.compressed_size - len(carry)
    more = min(missing, len(view) - taken)
    carry += view[taken : taken + more]
    return taken + more, more == missing


def _chunk_data(header: ChunkHeader, body: bytes | bytearray | memoryview, index: int) -> bytes:
    try:
        return decompress_chunk(header.compression, body, header.uncompressed_size)
    except XetFormatError as exc:
        raise XetFormatError(f"chunk {index}: {exc.message}") from None


def write_xorb(out: BinaryIO, chunks: Iterable[bytes], compression: Compression = Compression.LZ4) -> XorbInfo:
    """Serialize ``chunks`` (raw chunk bytes, in order) as a xorb without footer; returns its info."""
    hashes: list[bytes] = []
    ends: list[int] = []
    sizes: list[int] = []
    offset = raw_total = 0
    for data in chunks:
        if not 0 < len(data) <= MAX_CHUNK_SIZE:
            raise XetFormatError(f"a chunk holds 1..{MAX_CHUNK_SIZE} bytes, got {len(data)}")
        scheme, packed = compress_chunk(data, compression)
        out.write(chunk_header_bytes(scheme, len(packed), len(data)))
        out.write(packed)
        offset += CHUNK_HEADER_LEN + len(packed)
        hashes.append(hashing.chunk_hash(data))
        ends.append(offset)
        sizes.append(len(data))
        raw_total += len(data)
        _check_counts(len(hashes), raw_total, offset, MAX_XORB_SIZE)
    if not hashes:
        raise XetFormatError("a xorb holds at least one chunk")
    table = ChunkTable(tuple(hashes), tuple(ends), tuple(sizes))
    return XorbInfo(hashing.xorb_hash(table.hash_pairs()), table, offset, offset, False)
