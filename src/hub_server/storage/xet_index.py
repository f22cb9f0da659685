"""The Xet CAS's metadata on SQL (SQLite or PostgreSQL, the metadata store's engine): xorbs and their chunk
tables, file reconstructions per repo with their verified sha256, and the global-dedup chunk index.

Which repo may use which xorb is recorded in ``repo_objects`` (kinds ``xorb`` and ``xorb-dedup``), like LFS
ownership; this module only reads it to decide what a dedup answer or a shard may reach.
"""

from __future__ import annotations

import collections
import dataclasses
import struct
import threading
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..xet import ChunkTable, FileTerm
from . import schema
from .models import RepoRef, utcnow
from .sql import lookup_repo_id

XORB = "xorb"
"""Ownership kind of a xorb uploaded to a repo."""
XORB_DEDUP = "xorb-dedup"
"""Ownership kind of a xorb granted to a repo by a global-dedup answer (it was readable by the uploader)."""

_TERM = struct.Struct("<32sIII")
_BATCH = 500


@dataclasses.dataclass(frozen=True)
class XetFile:
    """A file the CAS can reconstruct for a repo: its Xet file hash, verified sha256 and size."""

    file_hash: str
    sha256: str
    size: int


def encode_terms(terms: Iterable[FileTerm]) -> bytes:
    """Terms as stored: 44 bytes each."""
    return b"".join(_TERM.pack(t.xorb_hash, t.chunk_start, t.chunk_end, t.raw_size) for t in terms)


def decode_terms(blob: bytes) -> tuple[FileTerm, ...]:
    """Inverse of :func:`encode_terms`."""
    return tuple(FileTerm(*fields) for fields in _TERM.iter_unpack(blob))


def _insert_ignore(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> int:
    """Insert rows, skipping those whose primary key exists; returns how many were inserted when known."""
    if not rows:
        return 0
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        module = sqlite if name == "sqlite" else postgresql
        # RETURNING counts the inserted rows on both (an executemany's rowcount is unknown on PostgreSQL)
        statement = module.insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)
        return len(conn.execute(statement, rows).all())
    inserted = 0
    for row in rows:  # other databases: one savepoint per row
        try:
            with conn.begin_nested():
                conn.execute(table.insert().values(**row))
            inserted += 1
        except IntegrityError:
            pass
    return inserted


def readable_by(user: str | None) -> sa.ColumnElement[bool]:
    """Repos ``user`` may read now, as the access rule says: public ones, and private ones of their namespace or of
    an organisation they are a member of today (not of one they created a repo in and have left)."""
    r, m = schema.repos, schema.org_members
    if not user:
        return r.c.private == sa.false()
    orgs = sa.select(sa.func.lower(m.c.org)).where(m.c.user == user)
    namespace = sa.func.lower(r.c.namespace)
    return sa.or_(r.c.private == sa.false(), namespace == user.lower(), namespace.in_(orgs))


class XetIndex:
    """Xorbs, file reconstructions and the dedup index in the metadata database."""

    def __init__(self, engine: sa.Engine, *, table_cache: int = 256) -> None:
        self.engine = engine
        self._tables: collections.OrderedDict[str, ChunkTable] = collections.OrderedDict()
        self._cache_size = table_cache
        self._guard = threading.Lock()

    # ----------------------------------------------------------------- xorbs

    def add_xorb(self, xorb: str, table: ChunkTable, stored_size: int) -> bool:
        """Record a stored, verified xorb; False when it was already recorded."""
        row = {
            "hash": xorb,
            "chunk_count": len(table),
            "raw_size": sum(table.sizes),
            "stored_size": stored_size,
            "chunk_table": table.to_bytes(),
            "created_at": utcnow(),
        }
        with self.engine.begin() as conn:
            return _insert_ignore(conn, schema.xet_xorbs, [row]) == 1

    def xorb_table(self, xorb: str) -> ChunkTable | None:
        """The chunk table of a recorded xorb, or None (cached: xorbs never change)."""
        with self._guard:
            table = self._tables.get(xorb)
            if table is not None:
                self._tables.move_to_end(xorb)
                return table
        x = schema.xet_xorbs
        with self.engine.connect() as conn:
            blob = conn.execute(sa.select(x.c.chunk_table).where(x.c.hash == xorb)).scalar()
        if blob is None:
            return None
        table = ChunkTable.from_bytes(bytes(blob))
        with self._guard:
            self._tables[xorb] = table
            while len(self._tables) > self._cache_size:
                self._tables.popitem(last=False)
        return table

    def stored_bytes(self) -> int:
        """Bytes of every recorded xorb as stored (what the CAS holds)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.coalesce(sa.func.sum(schema.xet_xorbs.c.stored_size), 0))).scalar()
            )

    # ----------------------------------------------------------------- who may use a xorb

    def usable_xorb(self, ref: RepoRef, user: str | None, xorb: str) -> str | None:
        """``"own"`` when ``ref`` may use the xorb already, ``"grant"`` when it was uploaded to a repo ``user``
        may read (public, or theirs), else None. Grants are never transitive: only uploads count."""
        ro, r = schema.repo_objects, schema.repos
        with self.engine.connect() as conn:
            repo_id = lookup_repo_id(conn, ref)
            own = conn.execute(
                sa.select(ro.c.kind).where(ro.c.repo_id == repo_id, ro.c.oid == xorb, ro.c.kind.in_((XORB, XORB_DEDUP)))
            ).first()
            if own is not None:
                return "own"
            readable = readable_by(user)
            query = (
                sa.select(ro.c.repo_id)
                .join(r, r.c.id == ro.c.repo_id)
                .where(ro.c.oid == xorb, ro.c.kind == XORB, readable)
                .limit(1)
            )
            return "grant" if conn.execute(query).first() is not None else None

    def dedup_candidates(self, chunk: str, ref: RepoRef, user: str | None, limit: int = 4) -> list[tuple[str, bool]]:
        """Xorbs holding an indexed chunk that ``ref`` may use or be granted: ``(xorb, already usable)``."""
        c, ro, r = schema.xet_chunks, schema.repo_objects, schema.repos
        with self.engine.connect() as conn:
            repo_id = lookup_repo_id(conn, ref)
            readable = readable_by(user)
            mine = sa.and_(ro.c.repo_id == repo_id, ro.c.kind.in_((XORB, XORB_DEDUP)))
            query = (
                sa.select(c.c.xorb_hash, sa.func.max(sa.case((ro.c.repo_id == repo_id, 1), else_=0)))
                .join(ro, ro.c.oid == c.c.xorb_hash)
                .join(r, r.c.id == ro.c.repo_id)
                .where(c.c.chunk_hash == chunk, sa.or_(mine, sa.and_(ro.c.kind == XORB, readable)))
                .group_by(c.c.xorb_hash)
                .order_by(c.c.xorb_hash)
                .limit(limit)
            )
            return [(row[0], bool(row[1])) for row in conn.execute(query)]

    # ----------------------------------------------------------------- files

    def repo_file_terms(self, ref: RepoRef, file_hash: str) -> tuple[XetFile, tuple[FileTerm, ...]] | None:
        """A file ``ref`` registered, with its terms; None when it did not."""
        f = schema.xet_files
        with self.engine.connect() as conn:
            repo_id = lookup_repo_id(conn, ref)
            row = conn.execute(
                sa.select(f.c.file_hash, f.c.sha256, f.c.size, f.c.terms).where(
                    f.c.repo_id == repo_id, f.c.file_hash == file_hash
                )
            ).first()
        if row is None:
            return None
        return XetFile(row.file_hash, row.sha256, row.size), decode_terms(bytes(row.terms))

    def repo_files_by_sha256(self, ref: RepoRef, sha256s: Iterable[str]) -> dict[str, XetFile]:
        """The files ``ref`` registered whose sha256 is among ``sha256s``, by sha256."""
        wanted = sorted(set(sha256s))
        if not wanted:
            return {}
        f = schema.xet_files
        out: dict[str, XetFile] = {}
        with self.engine.connect() as conn:
            repo_id = lookup_repo_id(conn, ref)
            for i in range(0, len(wanted), _BATCH):
                query = sa.select(f.c.file_hash, f.c.sha256, f.c.size).where(
                    f.c.repo_id == repo_id, f.c.sha256.in_(wanted[i : i + _BATCH])
                )
                for row in conn.execute(query.order_by(f.c.created_at, f.c.file_hash)):
                    out.setdefault(row.sha256, XetFile(row.file_hash, row.sha256, row.size))
        return out

    def repo_files(self, ref: RepoRef) -> list[XetFile]:
        """Every file ``ref`` registered, by sha256."""
        f = schema.xet_files
        with self.engine.connect() as conn:
            repo_id = lookup_repo_id(conn, ref)
            rows = conn.execute(
                sa.select(f.c.file_hash, f.c.sha256, f.c.size).where(f.c.repo_id == repo_id).order_by(f.c.sha256)
            )
            return [XetFile(row.file_hash, row.sha256, row.size) for row in rows]

    def forget_files(self, ref: RepoRef, sha256s: Iterable[str]) -> int:
        """Unregister files of ``ref`` by sha256 (their xorbs stay: other files and repos may share them)."""
        f = schema.xet_files
        wanted = sorted(set(sha256s))
        removed = 0
        with self.engine.begin() as conn:
            repo_id = lookup_repo_id(conn, ref)
            for i in range(0, len(wanted), _BATCH):
                query = f.delete().where(f.c.repo_id == repo_id, f.c.sha256.in_(wanted[i : i + _BATCH]))
                removed += conn.execute(query).rowcount
        return removed

    def verified_sha256(self, file_hash: str) -> str | None:
        """The sha256 the server verified for a file hash in any repo (content is fixed by the hash), or None."""
        f = schema.xet_files
        with self.engine.connect() as conn:
            return conn.execute(sa.select(f.c.sha256).where(f.c.file_hash == file_hash).limit(1)).scalar()

    def record_files(self, ref: RepoRef, files: list[tuple[XetFile, bytes]], chunks: Iterable[tuple[str, str]]) -> int:
        """Register verified files for ``ref`` and index dedup chunks, in one transaction; returns new files."""
        now = utcnow()
        with self.engine.begin() as conn:
            repo_id = lookup_repo_id(conn, ref)
            rows = [
                {"repo_id": repo_id, "file_hash": info.file_hash, "sha256": info.sha256, "size": info.size,
                 "terms": terms, "created_at": now}
                for info, terms in files
            ]  # fmt: skip
            added = _insert_ignore(conn, schema.xet_files, rows)
            index = [{"chunk_hash": chunk, "xorb_hash": xorb} for chunk, xorb in sorted(set(chunks))]
            for i in range(0, len(index), _BATCH):
                _insert_ignore(conn, schema.xet_chunks, index[i : i + _BATCH])
        return added
