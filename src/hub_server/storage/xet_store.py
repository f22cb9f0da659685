"""The Xet CAS as a service: xorbs and shards in the object store, their metadata in :class:`XetIndex`.

Every operation is per repo: a repo may use the xorbs it uploaded or was granted by a dedup answer, read
the files it registered, and nothing else; a hash alone never reaches bytes. Bytes are written (atomically,
by the object store) before the metadata rows that make them reachable, so a crash loses nothing that was
acknowledged and a retry completes the work.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import itertools
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

from .. import errors, xet
from ..scanning import detect
from ..signing import Signer
from ..xet import dedup
from .interfaces import MetadataStore, ObjectStore
from .models import RepoRef
from .xet_index import XORB, XORB_DEDUP, XetFile, XetIndex, decode_terms, encode_terms

FETCH_TTL = 600
"""Seconds a fetch URL stays valid (the client asks for fresh ones when it gets a 403)."""

STREAM_PIECE = 1 << 20
"""Bytes per piece when a file is streamed from its xorbs."""

DEDUP_ANSWER_XORBS = 64
"""Most xorbs listed in one global-dedup answer (a file's first chunk answers with every xorb of the file)."""

Progress = Callable[[int, int], None]
ScanHook = Callable[[str, Path], object]
"""``scan(sha256, path)``: the hub's scan of content held in a local file (``HubStorage.scan_file``)."""
Temp = Callable[[str], Path]


def xorb_key(xorb: str) -> str:
    """The object-store key of a xorb."""
    return f"xorbs/{xorb}"


def fetch_message(xorb: str, start: int, end: int) -> str:
    """What a fetch URL's ticket signs: one xorb and one byte range."""
    return f"xet-fetch/{xorb}/{start}/{end}"


class _Reach:
    """The chunk tables a shard of ``ref`` may reference: its own xorbs, or grantable ones (recorded)."""

    def __init__(self, index: XetIndex, ref: RepoRef, user: str | None) -> None:
        self.index, self.ref, self.user = index, ref, user
        self.seen: dict[bytes, xet.ChunkTable | None] = {}
        self.granted: set[str] = set()

    def table(self, xorb_hash: bytes) -> xet.ChunkTable | None:
        if xorb_hash not in self.seen:
            name = xet.hash_to_hex(xorb_hash)
            table = self.index.xorb_table(name)
            if table is not None:
                usable = self.index.usable_xorb(self.ref, self.user, name)
                if usable == "grant":
                    self.granted.add(name)
                elif usable is None:
                    table = None  # a foreign xorb reads exactly like a missing one
            self.seen[xorb_hash] = table
        return self.seen[xorb_hash]


@dataclasses.dataclass
class _ShardContent:
    """What a verified shard registers: files with their encoded terms, and what to index for dedup."""

    files: list[tuple[XetFile, bytes]] = dataclasses.field(default_factory=list)
    starts: dict[bytes, set[int]] = dataclasses.field(default_factory=dict)
    whole_files: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    flagged: dict[bytes, list[int]] = dataclasses.field(default_factory=dict)


class XetStore:
    """Xorb uploads, shard registration, dedup answers, reconstructions and file streaming."""

    def __init__(
        self, objects: ObjectStore, meta: MetadataStore, index: XetIndex, signer: Signer, *, scan: ScanHook, temp: Temp
    ) -> None:
        self.objects, self.meta, self.index, self.signer = objects, meta, index, signer
        self._scan, self._temp = scan, temp
        self.stats: collections.Counter[str] = collections.Counter()
        self._stats_guard = threading.Lock()
        # sha256 computed for file hashes whose claim did not match: a refused shard sent again costs no hashing
        self._computed: collections.OrderedDict[str, str] = collections.OrderedDict()

    def _count(self, **amounts: int) -> None:
        with self._stats_guard:
            self.stats.update(amounts)

    # ----------------------------------------------------------------- uploads

    def store_xorb(self, ref: RepoRef, xorb: str, body: Path) -> bool:
        """Verify an uploaded xorb (every chunk and the xorb hash) and store it for ``ref``; True when new."""
        info = xet.parse_xorb(body, expected_hash=xet.hex_to_hash(xorb))
        new = self.index.xorb_table(xorb) is None
        key = xorb_key(xorb)
        if not self.objects.exists(key):
            self.objects.put_file(key, body)
        self.index.add_xorb(xorb, info.chunks, info.serialized_size)
        self.meta.claim_object(ref, XORB, xorb)
        self._count(xorbs_received=1, xorb_bytes_received=info.serialized_size, xorbs_new=int(new),
                    xorb_bytes_new=info.serialized_size if new else 0)  # fmt: skip
        return new

    def accept_shard(self, ref: RepoRef, user: str | None, body: Path, progress: Progress | None = None) -> int:
        """Verify an uploaded shard against the xorbs ``ref`` may use and register its files; returns new files.

        Every term, verification hash and file hash is checked, then each new file's sha256 is computed from
        its bytes. Nothing is recorded unless all of it verifies.
        """
        reach = _Reach(self.index, ref, user)
        content = self._verify_shard(body, reach)
        for done, (info, terms) in enumerate(content.files, 1):
            self._check_content(info, terms)
            if progress is not None:
                progress(done, len(content.files))
        chunks = self._dedup_rows(reach, content)
        self.objects.put_file(f"shards/{_file_sha256(body)}", body)
        if reach.granted:
            self.meta.claim_objects(ref, XORB_DEDUP, reach.granted)
        added = self.index.record_files(ref, content.files, chunks)
        self._count(shards=1, files_registered=added)
        return added

    def _verify_shard(self, body: Path, reach: _Reach) -> _ShardContent:
        content = _ShardContent()
        with open(body, "rb") as fh:
            for item in xet.iter_shard(fh, length=body.stat().st_size):
                if isinstance(item, xet.FileInfo):
                    if not item.terms:  # an empty file: nothing to reconstruct, and its "sha256" is zeros
                        continue
                    _check_term_count(item)
                    xet.verify_file_info(item, reach.table)
                    info = XetFile(xet.hash_to_hex(item.file_hash), str(item.sha256), item.size)
                    content.files.append((info, encode_terms(coalesce_terms(item.terms))))
                    first = item.terms[0]
                    content.starts.setdefault(first.xorb_hash, set()).add(first.chunk_start)
                    # the client always asks about a file's first chunk: answer it with all the file's xorbs
                    head = xet.hash_to_hex(reach.table(first.xorb_hash).hashes[first.chunk_start])
                    content.whole_files.update((head, xet.hash_to_hex(t.xorb_hash)) for t in item.terms)
                elif isinstance(item, xet.XorbEntry):
                    table = reach.table(item.hash)
                    if table is None:
                        name = xet.hash_to_hex(item.hash)
                        raise xet.XetFormatError(f"shard references xorb {name}, which is not uploaded")
                    xet.verify_xorb_entry(item, table)
                    content.flagged[item.hash] = dedup.flagged_chunks(item)
                elif item is not None:
                    raise xet.XetFormatError("an uploaded shard must not carry a footer")
        return content

    def _check_content(self, info: XetFile, terms: bytes) -> None:
        """The sha256 a shard claims must be the content's: computed once per file hash, then remembered.

        While hashing new content, its head and tail are kept: when the scanner's ``sniff`` finds nothing it
        would open in them, the scan hook gets a stand-in file holding just those bytes at their offsets, so
        the commit finds a verdict and never copies the whole file out of the CAS. Other content is scanned
        at commit from a full copy (``HubStorage.scan_object``).
        """
        mismatch = xet.XetFormatError(f"file {info.file_hash}: the sha256 {info.sha256} does not match its content")
        known = self.index.verified_sha256(info.file_hash)
        with self._stats_guard:
            known = known or self._computed.get(info.file_hash)
        if known is not None:
            if known != info.sha256:
                raise mismatch
            return
        digest, head, tail, position = hashlib.sha256(), bytearray(), bytearray(), 0
        tail_start = max(0, info.size - detect.TAIL)
        for piece in self._iter_terms(decode_terms(terms)):
            digest.update(piece)
            if len(head) < detect.HEAD:
                head += piece[: detect.HEAD - len(head)]
            if position + len(piece) > tail_start:
                tail += piece[max(0, tail_start - position) :]
            position += len(piece)
        self._count(sha256_bytes_hashed=info.size)
        if digest.hexdigest() != info.sha256:
            with self._stats_guard:  # the content's sha256 is a fact about the file hash: remember it
                self._computed[info.file_hash] = digest.hexdigest()
                while len(self._computed) > COMPUTED_ENTRIES:
                    self._computed.popitem(last=False)
            raise mismatch
        if detect.sniff(bytes(head), bytes(tail), info.size) is None:
            self._scan_stand_in(info, bytes(head), bytes(tail))

    def _scan_stand_in(self, info: XetFile, head: bytes, tail: bytes) -> None:
        path = self._temp(".scan")
        try:
            with open(path, "wb") as fh:
                fh.write(head)
                fh.seek(info.size - len(tail))
                fh.write(tail)
                fh.truncate(info.size)
            self._scan(info.sha256, path)
        finally:
            path.unlink(missing_ok=True)

    def _dedup_rows(self, reach: _Reach, content: _ShardContent) -> list[tuple[str, str]]:
        """(chunk, xorb) pairs to index: pattern chunks of new xorbs, file starts and flagged chunks."""
        rows = list(content.whole_files)
        for xorb_hash in set(content.flagged) | set(content.starts):
            table = reach.table(xorb_hash)
            if table is None:
                continue
            name = xet.hash_to_hex(xorb_hash)
            starts = content.starts.get(xorb_hash, ())
            if xorb_hash in content.flagged:  # listed: new in this upload, so its pattern chunks too
                indices = dedup.dedup_index_chunks(table, starts, content.flagged[xorb_hash])
            else:
                indices = sorted(starts)
            rows += [(xet.hash_to_hex(table.hashes[i]), name) for i in indices]
        return rows

    # ----------------------------------------------------------------- dedup, reconstruction, reads

    def dedup_answer(self, ref: RepoRef, user: str | None, chunk: str, *, grant: bool) -> bytes | None:
        """The global-dedup shard for a chunk, listing only xorbs ``ref`` may use or be granted; None if none."""
        found = self.index.dedup_candidates(chunk, ref, user, DEDUP_ANSWER_XORBS)
        self._count(dedup_queries=1, dedup_hits=int(bool(found)))
        if not found:
            return None
        if grant:
            self.meta.claim_objects(ref, XORB_DEDUP, [name for name, usable in found if not usable])
        xorbs = [(xet.hex_to_hash(name), self.index.xorb_table(name)) for name, _ in found]
        return xet.dedup_answer([(h, t) for h, t in xorbs if t is not None], hmac_key=secrets.token_bytes(32))

    def reconstruction(self, ref: RepoRef, file_hash: str, range_header: str | None) -> xet.ReconstructionPlan:
        """The plan that rebuilds a byte range of a file ``ref`` registered; NotFound for any other file."""
        found = self.index.repo_file_terms(ref, file_hash)
        if found is None:
            raise errors.NotFound(f"File {file_hash} not found in this repository's storage")
        info, terms = found
        self._count(reconstructions=1)
        return xet.plan_reconstruction(terms, self._table, xet.parse_range_header(range_header, info.size))

    def fetch_url(self, base: str, xorb: str, start: int, end: int) -> str:
        """A short-lived URL for serialized bytes ``[start, end)`` of a xorb: the store's own, or a signed hub URL."""
        url = self.objects.url_for(xorb_key(xorb), expires_in=FETCH_TTL, start=start, stop=end)
        if url is not None:
            return url
        ticket = self.signer.sign(fetch_message(xorb, start, end), FETCH_TTL)
        return f"{base}/cas/fetch/{xorb}?{urlencode({'range': f'{start}-{end}', 'ticket': ticket})}"

    def iter_xorb(self, xorb: str, start: int, end: int) -> Iterator[bytes]:
        """Serialized bytes ``[start, end)`` of a stored xorb, read ``STREAM_PIECE`` bytes at a time (the client
        fetches many ranges at once: each holds one piece)."""
        self._count(fetches=1, fetch_bytes=end - start)
        key = xorb_key(xorb)
        first = self.objects.iter_range(key, start, min(end, start + STREAM_PIECE))  # NotFound before any byte
        rest = (
            self.objects.iter_range(key, pos, min(end, pos + STREAM_PIECE))
            for pos in range(start + STREAM_PIECE, end, STREAM_PIECE)
        )
        return itertools.chain(first, itertools.chain.from_iterable(rest))

    def _table(self, xorb_hash: bytes) -> xet.ChunkTable | None:
        return self.index.xorb_table(xet.hash_to_hex(xorb_hash))

    def _iter_terms(self, terms: tuple[xet.FileTerm, ...], byte_range: xet.ByteRange | None = None) -> Iterator[bytes]:
        # chunks were verified when their xorb was uploaded
        return xet.iter_file_bytes(
            terms,
            self._table,
            lambda name, start, end: self.objects.iter_range(xorb_key(name), start, end),
            byte_range,
            verify_chunks=False,
        )

    def file_for_sha256(self, ref: RepoRef, sha256: str) -> XetFile | None:
        """The file ``ref`` registered with this sha256, or None."""
        return self.index.repo_files_by_sha256(ref, [sha256]).get(sha256)

    def iter_sha256(self, ref: RepoRef, sha256: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Bytes ``start``..``stop`` of the file ``ref`` registered with this sha256, streamed from its xorbs."""
        info = self.file_for_sha256(ref, sha256)
        found = self.index.repo_file_terms(ref, info.file_hash) if info is not None else None
        if found is None:
            raise errors.NotFound(f"Object {sha256} not found")
        info, terms = found
        stop = info.size if stop is None else min(stop, info.size)
        if start >= stop:
            return iter(())
        return _coalesce(self._iter_terms(terms, xet.ByteRange(start, stop)), STREAM_PIECE)


COMPUTED_ENTRIES = 4096

# Every chunk but a file's last is at least 8 KiB (Xet's content-defined chunking); a term holds whole chunks. A file
# whose terms average less than this is no client's: refused before any of it is verified (a file of 100,000 one-byte
# terms cost every download 2.3 s of CPU and an 11 MiB reconstruction answer).
MIN_AVERAGE_TERM_BYTES = 4096


def _check_term_count(info: xet.FileInfo) -> None:
    allowed = 1 + info.size // MIN_AVERAGE_TERM_BYTES
    if len(info.terms) > allowed:
        raise xet.XetFormatError(
            f"file {xet.hash_to_hex(info.file_hash)}: {len(info.terms)} terms for {info.size} bytes; at most "
            f"{allowed} (terms must average at least {MIN_AVERAGE_TERM_BYTES} bytes)"
        )


def coalesce_terms(terms: tuple[xet.FileTerm, ...]) -> list[xet.FileTerm]:
    """Adjacent terms of one xorb whose chunk ranges follow each other, merged: the same bytes, fewer terms."""
    merged: list[xet.FileTerm] = []
    for term in terms:
        last = merged[-1] if merged else None
        if last is not None and last.xorb_hash == term.xorb_hash and last.chunk_end == term.chunk_start:
            merged[-1] = xet.FileTerm(last.xorb_hash, last.chunk_start, term.chunk_end, last.raw_size + term.raw_size)
        else:
            merged.append(term)
    return merged


def _coalesce(pieces: Iterator[bytes], size: int) -> Iterator[bytes]:
    """Pieces joined up to about ``size`` bytes (a streamed response moves one piece per thread hop)."""
    batch: list[bytes] = []
    held = 0
    for piece in pieces:
        batch.append(piece)
        held += len(piece)
        if held >= size:
            yield b"".join(batch)
            batch, held = [], 0
    if batch:
        yield b"".join(batch)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
