"""Stream a Xet-stored file (or a byte range of it) from its xorbs, one chunk in memory at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from . import hashing
from .errors import XetMissingDataError
from .reconstruction import ByteRange, plan_reconstruction
from .shard import FileTerm
from .xorb import TableSource, get_table, iter_chunks

XorbRangeOpener = Callable[[str, int, int], Iterable[bytes]]
"""``open_xorb_range(xorb_hash_hex, byte_start, byte_end)`` → serialized bytes ``[byte_start, byte_end)`` in pieces.

Pieces should be of bounded size (say 64 KiB to 1 MiB): the reader holds one piece and one chunk at a time.
"""


def iter_file_bytes(
    terms: Sequence[FileTerm],
    tables: TableSource,
    open_xorb_range: XorbRangeOpener,
    byte_range: ByteRange | None = None,
    *,
    verify_chunks: bool = True,
) -> Iterator[bytes]:
    """Yield the bytes of ``byte_range`` of a file (default: all of it), decompressing chunk by chunk.

    With ``verify_chunks`` every chunk is re-hashed against the chunk table (cheap next to decompression).
    """
    plan = plan_reconstruction(terms, tables, byte_range)
    skip = plan.offset_into_first_range
    left = plan.byte_range.length
    for term in plan.terms:
        table = get_table(tables, term.xorb_hash)
        name = hashing.hash_to_hex(term.xorb_hash)
        start, end = table.byte_range(term.chunk_start, term.chunk_end)
        index = term.chunk_start
        for data in iter_chunks(open_xorb_range(name, start, end), first_index=term.chunk_start):
            if (
                index >= term.chunk_end
                or len(data) != table.sizes[index]
                or (verify_chunks and hashing.chunk_hash(data) != table.hashes[index])
            ):
                raise XetMissingDataError(f"xorb {name} chunk {index} does not match its chunk table")
            index += 1
            if skip >= len(data):
                skip -= len(data)
                continue
            piece = data[skip : skip + left] if skip or left < len(data) else data
            skip = 0
            left -= len(piece)
            if piece:
                yield piece
            if left == 0:
                return
        if index != term.chunk_end:
            raise XetMissingDataError(f"xorb {name} ended before chunk {term.chunk_end}")
