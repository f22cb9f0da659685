"""Xet hashes: chunk hashes, the merkle aggregation of xorb and file hashes, range hashes and their text form.

Every hash is 32 raw bytes (``bytes``). The text form used in URLs, JSON and the merkle aggregation reads
the hash as four little-endian 64-bit words and writes each as 16 hex digits (spec ``api.md``, "Converting
Hashes to Strings"), so it is *not* ``bytes.hex()``: each 8-byte group appears byte-reversed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

import blake3

from .errors import XetFormatError

HASH_LEN = 32
"""Length of every Xet hash in bytes."""

DATA_KEY = bytes(
    [102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28]
    + [157, 228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41]
)
"""blake3 key of chunk hashes (spec ``hashing.md``, DATA_KEY)."""

INTERNAL_NODE_KEY = bytes(
    [1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230]
    + [93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63]
)
"""blake3 key of merkle-tree internal nodes (spec ``hashing.md``, INTERNAL_NODE_KEY)."""

VERIFICATION_KEY = bytes(
    [127, 24, 87, 214, 206, 86, 237, 102, 18, 127, 249, 19, 231, 165, 195, 243]
    + [164, 205, 38, 213, 181, 219, 73, 230, 65, 36, 152, 127, 40, 251, 148, 195]
)
"""blake3 key of term verification (range) hashes (spec ``hashing.md``, VERIFICATION_KEY)."""

FILE_HASH_KEY = bytes(HASH_LEN)
"""blake3 key applied to the merkle root to give a file hash: 32 zero bytes (the file salt)."""

ZERO_HASH = bytes(HASH_LEN)
"""The hash of an empty xorb or file (no chunks)."""

MERKLE_BRANCHING = 4
"""Mean branching factor of the aggregation tree; a node closes after a child whose hash is 0 modulo this."""

_MAX_GROUP = 2 * MERKLE_BRANCHING + 1
_HEX64 = re.compile(r"[0-9a-f]{64}")


def hash_to_hex(value: bytes) -> str:
    """The text form of a hash: four little-endian u64 words, each as 16 lowercase hex digits."""
    if len(value) != HASH_LEN:
        raise XetFormatError(f"a hash is {HASH_LEN} bytes, got {len(value)}")
    return "".join(value[i : i + 8][::-1].hex() for i in range(0, HASH_LEN, 8))


def hex_to_hash(text: str) -> bytes:
    """Parse the text form of a hash (64 lowercase hex digits) back to its 32 raw bytes."""
    if not isinstance(text, str) or not _HEX64.fullmatch(text):
        raise XetFormatError("a hash must be 64 lowercase hexadecimal characters")
    raw = bytes.fromhex(text)
    return b"".join(raw[i : i + 8][::-1] for i in range(0, HASH_LEN, 8))


def is_hex_hash(text: str) -> bool:
    """Whether ``text`` is the text form of a hash (64 lowercase hex digits)."""
    return isinstance(text, str) and _HEX64.fullmatch(text) is not None


def hash_mod(value: bytes, modulus: int) -> int:
    """The last 8 bytes of a hash read as a little-endian integer, modulo ``modulus`` (the spec's ``hash % n``)."""
    return int.from_bytes(value[24:32], "little") % modulus


def chunk_hash(data: bytes | bytearray | memoryview) -> bytes:
    """The hash of one chunk: blake3 keyed with DATA_KEY."""
    return blake3.blake3(data, key=DATA_KEY).digest()


def keyed_hash(value: bytes, key: bytes) -> bytes:
    """blake3 of ``value`` keyed with the 32-byte ``key`` (the spec's HMAC of a hash)."""
    return blake3.blake3(value, key=key).digest()


def _merge(nodes: Sequence[tuple[bytes, int]]) -> tuple[bytes, int]:
    """One internal node: ``"{hash} : {size}\\n"`` per child, hashed with INTERNAL_NODE_KEY."""
    text = "".join(f"{hash_to_hex(h)} : {size}\n" for h, size in nodes)
    return keyed_hash(text.encode("ascii"), INTERNAL_NODE_KEY), sum(size for _, size in nodes)


def _next_cut(nodes: Sequence[tuple[bytes, int]], start: int) -> int:
    """End (exclusive) of the group starting at ``start``: 2 to 9 children, closed after a hash that is 0 mod 4."""
    remaining = len(nodes) - start
    if remaining <= 2:
        return len(nodes)
    end = start + min(_MAX_GROUP, remaining)
    for i in range(start + 2, end):
        if hash_mod(nodes[i][0], MERKLE_BRANCHING) == 0:
            return i + 1
    return end


def merkle_root(chunks: Iterable[tuple[bytes, int]]) -> bytes:
    """Root of the aggregation tree over ``(chunk hash, chunk size)`` leaves; zero hash when there are none."""
    level = list(chunks)
    if not level:
        return ZERO_HASH
    while len(level) > 1:
        merged: list[tuple[bytes, int]] = []
        start = 0
        while start < len(level):
            end = _next_cut(level, start)
            merged.append(_merge(level[start:end]))
            start = end
        level = merged
    return level[0][0]


def xorb_hash(chunks: Iterable[tuple[bytes, int]]) -> bytes:
    """The hash of a xorb from its ``(chunk hash, uncompressed size)`` list, in order."""
    return merkle_root(chunks)


def file_hash(chunks: Iterable[tuple[bytes, int]]) -> bytes:
    """The hash of a file from all its ``(chunk hash, size)`` pairs; the zero hash for an empty file."""
    root = merkle_root(chunks)
    if root == ZERO_HASH:
        return ZERO_HASH
    return keyed_hash(root, FILE_HASH_KEY)


def range_hash(chunk_hashes: Iterable[bytes]) -> bytes:
    """The verification hash of a term: the concatenated raw chunk hashes, keyed with VERIFICATION_KEY."""
    hasher = blake3.blake3(key=VERIFICATION_KEY)
    for value in chunk_hashes:
        hasher.update(value)
    return hasher.digest()


def sha256_to_shard(digest: bytes) -> bytes:
    """The 32 bytes a shard stores for a sha256 digest: each 8-byte group reversed, so its text form is the hex."""
    if len(digest) != HASH_LEN:
        raise XetFormatError("a sha256 digest is 32 bytes")
    return b"".join(digest[i : i + 8][::-1] for i in range(0, HASH_LEN, 8))


def sha256_from_shard(stored: bytes) -> str:
    """The lowercase hex sha256 of a file from the 32 bytes a shard's metadata extension stores."""
    return hash_to_hex(stored)


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    """The lowercase hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
