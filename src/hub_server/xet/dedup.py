"""Global deduplication: which chunk hashes are indexed for the dedup query, and the shard that answers it.

A client queries ``GET /v1/chunks/{prefix}/{chunk hash}`` for the first chunk of every file and for every
chunk whose hash is 0 modulo 1024 (last 8 bytes read little-endian; spec ``deduplication.md``). A server
indexes the same chunks: those two kinds, and any chunk a shard flags with the global-dedup bit. The
answer is a shard with an empty file section whose xorb section lists whole xorbs holding the queried
chunk, every chunk hash keyed (blake3) with a per-answer key carried in the footer, so the client learns
only the hashes of chunks it already has.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from .hashing import hash_mod
from .shard import (
    CHUNK_FLAG_GLOBAL_DEDUP,
    DEFAULT_DEDUP_SHARD_TTL,
    Shard,
    XorbChunkEntry,
    XorbEntry,
    serialize_shard,
)
from .xorb import ChunkTable

GLOBAL_DEDUP_MODULUS = 1024
"""A chunk whose hash is 0 modulo this is eligible for the global dedup query."""

QUERY_PREFIXES = ("default", "default-merkledb")
"""Prefixes of ``/v1/chunks/{prefix}/{hash}``: hf_xet 1.8.0 sends ``default``, the spec names ``default-merkledb``."""


def is_dedup_eligible_hash(chunk_hash: bytes) -> bool:
    """Whether a chunk hash matches the global-dedup pattern (hash % 1024 == 0)."""
    return hash_mod(chunk_hash, GLOBAL_DEDUP_MODULUS) == 0


def file_start_chunks(shard: Shard) -> dict[bytes, set[int]]:
    """For each xorb, the chunk indices at which some file of the shard starts."""
    starts: dict[bytes, set[int]] = {}
    for info in shard.files:
        if info.terms:
            first = info.terms[0]
            starts.setdefault(first.xorb_hash, set()).add(first.chunk_start)
    return starts


def dedup_index_chunks(table: ChunkTable, file_starts: Iterable[int] = (), flagged: Iterable[int] = ()) -> list[int]:
    """Indices of a xorb's chunks to index for the dedup query: pattern matches, file starts and flagged chunks."""
    chosen = {i for i, value in enumerate(table.hashes) if is_dedup_eligible_hash(value)}
    chosen.update(i for i in file_starts if 0 <= i < len(table))
    chosen.update(i for i in flagged if 0 <= i < len(table))
    return sorted(chosen)


def flagged_chunks(entry: XorbEntry) -> list[int]:
    """Indices of the chunks a shard's xorb listing flags for global dedup."""
    return [i for i, chunk in enumerate(entry.chunks) if chunk.flags & CHUNK_FLAG_GLOBAL_DEDUP]


def xorb_entry_from_table(xorb_hash: bytes, table: ChunkTable) -> XorbEntry:
    """A shard xorb listing built from a stored chunk table."""
    chunks, offset = [], 0
    for value, size in zip(table.hashes, table.sizes, strict=True):
        chunks.append(XorbChunkEntry(value, offset, size))
        offset += size
    return XorbEntry(xorb_hash, tuple(chunks), offset, table.ends[-1] if len(table) else 0)


def dedup_answer(
    xorbs: Iterable[tuple[bytes, ChunkTable]],
    *,
    hmac_key: bytes,
    ttl_seconds: int = DEFAULT_DEDUP_SHARD_TTL,
    now: int | None = None,
) -> bytes:
    """The body of a positive dedup answer: a footed shard listing ``xorbs`` with keyed chunk hashes."""
    created = int(time.time()) if now is None else now
    entries = [xorb_entry_from_table(xorb_hash, table) for xorb_hash, table in xorbs]
    return serialize_shard(
        (), entries, with_footer=True, hmac_key=hmac_key, created=created, key_expiry=created + ttl_seconds
    )
