"""File reconstruction: plan the answer to ``GET /v1|v2/reconstructions/{file}`` for a byte range.

Terms come from the file's shard entry; each xorb's :class:`ChunkTable` gives chunk sizes and serialized
byte offsets. For a range the first and last terms are narrowed to the chunks that hold it and
``offset_into_first_range`` says how many bytes of the first chunk to skip; the client truncates the end
itself. Per xorb the needed chunk ranges are merged (overlapping or adjacent) into fetch ranges, each
served by one URL from the injected ``sign`` callable, so a URL is bound to one xorb and one byte range.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence

from . import hashing
from .errors import XetFormatError, XetMissingDataError, XetRangeError
from .shard import FileTerm
from .xorb import ChunkTable, TableSource, get_table

Signer = Callable[[str, int, int], str]
"""``sign(xorb_hash_hex, byte_start, byte_end)`` → absolute URL for serialized bytes ``[byte_start, byte_end)``.

The client will GET that URL with ``Range: bytes={byte_start}-{byte_end - 1}`` and no Authorization header.
"""

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclasses.dataclass(frozen=True)
class ByteRange:
    """A half-open byte range ``[start, end)`` of a file."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """Number of bytes in the range."""
        return self.end - self.start


def parse_range_header(value: str | None, file_size: int) -> ByteRange | None:
    """Parse one ``Range: bytes=a-b`` / ``a-`` / ``-n`` for a file; ``None`` when absent.

    The end is clamped to the file. A start at or past the end is a 416 (:class:`XetRangeError`) except
    a start of 0 on an empty file, which is the empty range; anything else malformed, including
    several ranges, is a 400 (:class:`XetFormatError`).
    """
    if value is None:
        return None
    match = _RANGE.fullmatch(value.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise XetFormatError(f"unsupported Range header {value!r} (one range, bytes=a-b, a- or -n)")
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix == 0:
            raise XetRangeError("an empty suffix range is not satisfiable")
        return ByteRange(max(0, file_size - suffix), file_size)
    start = int(first)
    if last != "" and int(last) < start:
        raise XetFormatError(f"Range {value!r} ends before it starts")
    if start >= file_size:
        if start == 0 and file_size == 0:
            return ByteRange(0, 0)
        raise XetRangeError(f"range start {start} is not before the end of the {file_size}-byte file")
    return ByteRange(start, file_size if last == "" else min(int(last) + 1, file_size))


@dataclasses.dataclass(frozen=True)
class FetchRange:
    """Chunks ``[chunk_start, chunk_end)`` of a xorb, stored at serialized bytes ``[byte_start, byte_end)``."""

    chunk_start: int
    chunk_end: int
    byte_start: int
    byte_end: int


@dataclasses.dataclass(frozen=True)
class ReconstructionPlan:
    """The terms and fetch ranges that reconstruct ``byte_range`` of a file."""

    byte_range: ByteRange
    offset_into_first_range: int
    terms: tuple[FileTerm, ...]
    fetches: Mapping[bytes, tuple[FetchRange, ...]]

    def _terms_json(self) -> list[dict]:
        return [
            {
                "hash": hashing.hash_to_hex(t.xorb_hash),
                "unpacked_length": t.raw_size,
                "range": {"start": t.chunk_start, "end": t.chunk_end},
            }
            for t in self.terms
        ]

    def to_v1(self, sign: Signer) -> dict:
        """The ``/v1/reconstructions`` JSON: ``fetch_info`` maps each xorb to ``{range, url, url_range}`` items."""
        fetch_info = {}
        for xorb, ranges in self.fetches.items():
            name = hashing.hash_to_hex(xorb)
            fetch_info[name] = [
                {
                    "range": {"start": r.chunk_start, "end": r.chunk_end},
                    "url": sign(name, r.byte_start, r.byte_end),
                    "url_range": {"start": r.byte_start, "end": r.byte_end - 1},
                }
                for r in ranges
            ]
        return {
            "offset_into_first_range": self.offset_into_first_range,
            "terms": self._terms_json(),
            "fetch_info": fetch_info,
        }

    def to_v2(self, sign: Signer) -> dict:
        """The ``/v2/reconstructions`` JSON: ``xorbs`` maps each xorb to ``{url, ranges}`` items, one range a URL."""
        xorbs = {}
        for xorb, ranges in self.fetches.items():
            name = hashing.hash_to_hex(xorb)
            xorbs[name] = [
                {
                    "url": sign(name, r.byte_start, r.byte_end),
                    "ranges": [
                        {
                            "chunks": {"start": r.chunk_start, "end": r.chunk_end},
                            "bytes": {"start": r.byte_start, "end": r.byte_end - 1},
                        }
                    ],
                }
                for r in ranges
            ]
        return {"offset_into_first_range": self.offset_into_first_range, "terms": self._terms_json(), "xorbs": xorbs}


def _table(tables: TableSource, term: FileTerm) -> ChunkTable:
    """The chunk table of a term's xorb, checked against the term; a mismatch means the stored data is broken."""
    table = get_table(tables, term.xorb_hash)
    name = hashing.hash_to_hex(term.xorb_hash)
    if table is None:
        raise XetMissingDataError(f"no chunk table for xorb {name}")
    if not 0 <= term.chunk_start < term.chunk_end <= len(table):
        raise XetMissingDataError(f"term chunks [{term.chunk_start}, {term.chunk_end}) not in xorb {name}")
    if table.raw_size(term.chunk_start, term.chunk_end) != term.raw_size:
        raise XetMissingDataError(f"term size disagrees with xorb {name}")
    return table


def _narrow(term: FileTerm, table: ChunkTable, skip: int, keep: int) -> tuple[FileTerm, int]:
    """Drop whole chunks before byte ``skip`` and after ``skip + keep`` of a term; returns it and the bytes dropped."""
    start, end, dropped = term.chunk_start, term.chunk_end, 0
    while skip - dropped >= table.sizes[start]:
        dropped += table.sizes[start]
        start += 1
    tail = term.raw_size - dropped
    while tail - table.sizes[end - 1] >= skip - dropped + keep:
        tail -= table.sizes[end - 1]
        end -= 1
    return FileTerm(term.xorb_hash, start, end, tail), dropped


def _merge(parts: list[tuple[int, int]], table: ChunkTable) -> tuple[FetchRange, ...]:
    """Merge overlapping or adjacent chunk ranges of one xorb into fetch ranges."""
    merged: list[list[int]] = []
    for start, end in sorted(parts):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple(FetchRange(s, e, *table.byte_range(s, e)) for s, e in merged)


def plan_reconstruction(
    terms: Sequence[FileTerm],
    tables: TableSource,
    byte_range: ByteRange | None = None,
) -> ReconstructionPlan:
    """Plan the reconstruction of ``byte_range`` (default: the whole file) from a file's terms."""
    file_size = sum(t.raw_size for t in terms)
    wanted = byte_range or ByteRange(0, file_size)
    if wanted.length < 0 or wanted.end > file_size or (wanted.start >= file_size and file_size):
        raise XetRangeError(f"range [{wanted.start}, {wanted.end}) is not inside the {file_size}-byte file")
    seen: dict[bytes, ChunkTable] = {}
    out_terms: list[FileTerm] = []
    parts: dict[bytes, list[tuple[int, int]]] = {}
    offset_into_first = 0
    position = 0
    for term in terms:
        term_end = position + term.raw_size
        if term_end > wanted.start and position < wanted.end:
            table = seen[term.xorb_hash] = _table(seen if term.xorb_hash in seen else tables, term)
            skip = max(0, wanted.start - position)
            keep = min(term_end, wanted.end) - position - skip
            narrowed, dropped = _narrow(term, table, skip, keep)
            if not out_terms:
                offset_into_first = skip - dropped
            out_terms.append(narrowed)
            parts.setdefault(term.xorb_hash, []).append((narrowed.chunk_start, narrowed.chunk_end))
        position = term_end
    fetches = {xorb: _merge(ranges, seen[xorb]) for xorb, ranges in parts.items()}
    return ReconstructionPlan(wanted, offset_into_first, tuple(out_terms), fetches)
