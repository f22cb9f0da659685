"""Chunk compression schemes of the xorb format: none, LZ4 (frame format) and byte-grouping-4 + LZ4."""

from __future__ import annotations

import enum

import lz4.frame

from .errors import XetFormatError


class Compression(enum.IntEnum):
    """The compression type byte of a chunk header (spec ``xorb.md``)."""

    NONE = 0
    LZ4 = 1
    BG4_LZ4 = 2


def bg4_split(data: bytes | bytearray | memoryview) -> bytes:
    """Byte grouping: the bytes at positions 0, 4, 8…, then 1, 5, 9…, then 2…, then 3…."""
    view = memoryview(data).cast("B") if isinstance(data, memoryview) else data
    return b"".join(bytes(view[i::4]) for i in range(4))


def bg4_regroup(grouped: bytes | bytearray) -> bytes:
    """Invert :func:`bg4_split`: group ``i`` holds ``(n - i + 3) // 4`` bytes and fills positions ``i, i+4…``."""
    size = len(grouped)
    out = bytearray(size)
    pos = 0
    for i in range(4):
        count = (size - i + 3) // 4
        out[i::4] = grouped[pos : pos + count]
        pos += count
    return bytes(out)


def _lz4_decompress(data: bytes | memoryview, expected_size: int) -> bytes:
    """Decompress one complete LZ4 frame that must yield exactly ``expected_size`` bytes; never more in memory."""
    decompressor = lz4.frame.LZ4FrameDecompressor()
    try:
        out = decompressor.decompress(bytes(data), max_length=expected_size + 1)
    except RuntimeError as exc:
        raise XetFormatError(f"chunk data is not a valid LZ4 frame: {exc}") from None
    if len(out) > expected_size:
        raise XetFormatError(f"chunk decompresses to more than {expected_size} bytes, the size its header gives")
    if not decompressor.eof:
        raise XetFormatError("chunk LZ4 frame is truncated")
    if len(out) != expected_size:
        raise XetFormatError(f"chunk decompresses to {len(out)} bytes, its header says {expected_size}")
    if decompressor.unused_data:
        raise XetFormatError("chunk has trailing bytes after its LZ4 frame")
    return out


def decompress_chunk(scheme: int, data: bytes | memoryview, uncompressed_size: int) -> bytes:
    """The raw bytes of one chunk, checked to be exactly ``uncompressed_size`` long."""
    if scheme == Compression.NONE:
        if len(data) != uncompressed_size:
            raise XetFormatError("uncompressed chunk whose stored and raw sizes differ")
        return bytes(data)
    if scheme == Compression.LZ4:
        return _lz4_decompress(data, uncompressed_size)
    if scheme == Compression.BG4_LZ4:
        return bg4_regroup(_lz4_decompress(data, uncompressed_size))
    raise XetFormatError(f"unknown chunk compression type {scheme}")


def _lz4_compress(data: bytes) -> bytes:
    """One LZ4 frame holding ``data``."""
    return lz4.frame.compress(data, store_size=False)


def compress_chunk(data: bytes, scheme: Compression = Compression.LZ4) -> tuple[Compression, bytes]:
    """Compress a chunk; falls back to ``NONE`` when compression does not make it smaller (as the client does)."""
    if scheme == Compression.NONE:
        return Compression.NONE, bytes(data)
    if scheme == Compression.LZ4:
        packed = _lz4_compress(bytes(data))
    elif scheme == Compression.BG4_LZ4:
        packed = _lz4_compress(bg4_split(data))
    else:
        raise XetFormatError(f"unknown chunk compression type {scheme}")
    if len(packed) >= len(data):
        return Compression.NONE, bytes(data)
    return scheme, packed
