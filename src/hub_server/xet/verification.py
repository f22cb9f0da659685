"""Checks of an uploaded shard against the xorbs the server holds: terms, verification hashes, file hashes."""

from __future__ import annotations

from . import hashing
from .errors import XetFormatError
from .shard import FileInfo, FileTerm, Shard, XorbEntry
from .xorb import ChunkTable, TableSource, get_table


def _lookup(tables: TableSource, xorb_hash: bytes) -> ChunkTable:
    """The chunk table of a referenced xorb; an unknown xorb is the uploader's error."""
    table = get_table(tables, xorb_hash)
    if table is None:
        raise XetFormatError(f"shard references xorb {hashing.hash_to_hex(xorb_hash)}, which is not uploaded")
    return table


def _check_term(term: FileTerm, table: ChunkTable, where: str) -> None:
    """A term's chunk range must lie in its xorb and its size must be the sum of those chunks."""
    if not 0 <= term.chunk_start < term.chunk_end <= len(table):
        span = f"[{term.chunk_start}, {term.chunk_end})"
        raise XetFormatError(f"{where}: chunks {span} outside a {len(table)}-chunk xorb")
    if table.raw_size(term.chunk_start, term.chunk_end) != term.raw_size:
        raise XetFormatError(f"{where}: term size {term.raw_size} does not match its chunks")


def verify_file_info(
    info: FileInfo,
    tables: TableSource,
    *,
    require_verification: bool = True,
    require_sha256: bool = True,
) -> None:
    """Check every term of a file against its xorb, its verification hashes and its file hash."""
    name = f"file {hashing.hash_to_hex(info.file_hash)}"
    if require_verification and info.verification is None:
        raise XetFormatError(f"{name}: verification entries are required")
    if require_sha256 and info.sha256 is None:
        raise XetFormatError(f"{name}: the sha256 metadata extension is required")
    pairs: list[tuple[bytes, int]] = []
    for i, term in enumerate(info.terms):
        table = _lookup(tables, term.xorb_hash)
        _check_term(term, table, f"{name}, term {i}")
        hashes = table.hashes[term.chunk_start : term.chunk_end]
        if info.verification is not None and hashing.range_hash(hashes) != info.verification[i]:
            raise XetFormatError(f"{name}, term {i}: verification hash does not match the xorb's chunks")
        pairs += zip(hashes, table.sizes[term.chunk_start : term.chunk_end], strict=True)
    if hashing.file_hash(pairs) != info.file_hash:
        raise XetFormatError(f"{name}: the file hash does not match its terms")


def verify_xorb_entry(entry: XorbEntry, table: ChunkTable) -> None:
    """Check a shard's listing of a xorb (CAS info block) against the xorb as uploaded."""
    name = f"xorb {hashing.hash_to_hex(entry.hash)}"
    if len(entry.chunks) != len(table):
        raise XetFormatError(f"{name}: the shard lists {len(entry.chunks)} chunks, the xorb has {len(table)}")
    offset = 0
    for i, (chunk, stored_hash, size) in enumerate(zip(entry.chunks, table.hashes, table.sizes, strict=True)):
        if chunk.hash != stored_hash or chunk.raw_size != size or chunk.raw_offset != offset:
            raise XetFormatError(f"{name}: chunk {i} in the shard does not match the xorb")
        offset += size
    if entry.raw_size != offset:
        raise XetFormatError(f"{name}: the shard gives {entry.raw_size} raw bytes, the xorb holds {offset}")
    if entry.serialized_size not in (0, table.ends[-1]):
        raise XetFormatError(f"{name}: the shard gives a serialized size the xorb does not have")


def verify_shard(
    shard: Shard,
    tables: TableSource,
    *,
    require_verification: bool = True,
    require_sha256: bool = True,
) -> None:
    """Check a whole uploaded shard: every listed and every referenced xorb is known and every file verifies."""
    if shard.footer is not None:
        raise XetFormatError("an uploaded shard must not carry a footer")
    for entry in shard.xorbs:
        verify_xorb_entry(entry, _lookup(tables, entry.hash))
    for info in shard.files:
        verify_file_info(info, tables, require_verification=require_verification, require_sha256=require_sha256)


def referenced_xorbs(shard: Shard) -> set[bytes]:
    """Every xorb a shard references: listed in its xorb info section or used by a file term."""
    return {entry.hash for entry in shard.xorbs} | {t.xorb_hash for f in shard.files for t in f.terms}
