"""The hub's data as one service: the three stores composed, and the operations that span them.

Routes call the stores (``meta``, ``repos``, ``objects``) for single-store work and this service for work
that spans them: creating a repo (metadata + git), committing (scan, store large files, claim them, move
the branch), and reading files whose bytes may live in git or in the object store. A repo may reference
or serve only the objects it owns (uploaded to it, or referenced by its history when data was migrated).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from .. import errors, scanning
from ..scanning import runner as scan_runner
from ..settings import HubSettings
from ..signing import Signer
from . import textdiff
from .database import default_database_url, open_metadata
from .discussions import SqlDiscussionStore
from .git import GitRepoStore
from .gitmerge import RefOps
from .interfaces import MetadataStore, ObjectStore
from .legacy import import_legacy_data
from .models import (
    AddFile,
    AddLfsFile,
    CommitInfo,
    DeleteFolder,
    Operation,
    RepoMeta,
    RepoRef,
    StagedFile,
    TokenInfo,
    TreeEntry,
    validate_path,
)
from .objects import LocalObjectStore
from .orgs import SqlOrgStore
from .xet_index import XetIndex
from .xet_store import XetStore

LFS = "lfs"
DIRECT_URL_TTL = 600  # seconds a presigned object-store URL lives (it cannot be revoked, so it is kept short)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def lfs_key(oid: str) -> str:
    """The object-store key of an LFS object; BadRequest for anything but a sha256."""
    if not isinstance(oid, str) or not _HEX64.match(oid):
        raise errors.BadRequest(f"Invalid LFS oid {oid!r}")
    return f"{LFS}/{oid}"


def open_object_store(spec: str | None, root: Path) -> ObjectStore:
    """The object store a setting names: ``s3://bucket/prefix``, a directory, or (None) ``<root>/objects``."""
    if spec is None:
        return LocalObjectStore(root / "objects")
    if spec.startswith("s3://"):
        from .objects_s3 import S3ObjectStore

        return S3ObjectStore(spec)
    if "://" in spec and not spec.startswith("file://"):
        raise errors.BadRequest(f"Invalid object store {spec!r}: expected s3://bucket/prefix or a directory")
    return LocalObjectStore(Path(spec.removeprefix("file://")).expanduser())


def _process_tmp(root: Path) -> Path:
    """A temp folder owned by this process; folders of dead processes on this host are removed."""
    base = root / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    for child in base.iterdir():
        parts = child.name.rsplit("-", 2)
        if len(parts) == 3 and parts[0] == host and parts[1].isdigit() and not _alive(int(parts[1])):
            shutil.rmtree(child, ignore_errors=True)
    mine = base / f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    mine.mkdir()
    return mine


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class HubStorage:
    """Metadata, git repos and objects of one hub, and the cross-store operations."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        settings: HubSettings | None = None,
        scan_uploads: bool | None = None,
        meta: MetadataStore | None = None,
        objects: ObjectStore | None = None,
    ) -> None:
        if settings is None:
            settings = HubSettings(root=root) if root is not None else HubSettings()
        elif root is not None:
            settings = settings.model_copy(update={"root": Path(root).resolve()})
        if scan_uploads is not None:
            settings = settings.model_copy(update={"scan_uploads": scan_uploads})
        self.settings = settings
        self.root = settings.root
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        self.tmp = _process_tmp(self.root)
        self.meta: MetadataStore = meta or open_metadata(
            settings.database_url or default_database_url(self.root), lock_dir=self.root / "locks"
        )
        self.objects: ObjectStore = objects or open_object_store(settings.object_store, self.root)
        self.repos = GitRepoStore(self.root / "repos", tmp_dir=lambda: self.tmp, lock=self.meta.lock)
        self.signer = Signer(settings.signing_secret())
        xet_index = XetIndex(self.meta.engine)
        self.xet = XetStore(
            self.objects, self.meta, xet_index, self.signer, scan=self.scan_file, temp=self.new_temp_path
        )
        self.discussions = SqlDiscussionStore(self.meta.engine)
        self.orgs = SqlOrgStore(self.meta.engine)
        self.refs = RefOps(self.repos)
        import_legacy_data(self)

    def close(self) -> None:
        """Release database connections and this process's temp folder."""
        engine = getattr(self.meta, "engine", None)
        if engine is not None:
            engine.dispose()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ----------------------------------------------------------------- conveniences

    def add_user(self, name: str, *, exist_ok: bool = False) -> None:
        """Create a user."""
        self.meta.add_user(name, exist_ok=exist_ok)

    def create_token(self, user: str, *, role: str = "write", display_name: str | None = None) -> str:
        """Create a token for ``user`` and return it."""
        return self.meta.create_token(user, role=role, display_name=display_name)

    def token_info(self, token: str) -> TokenInfo | None:
        """What a token grants, or None."""
        return self.meta.token_info(token)

    def git_dir(self, ref: RepoRef) -> Path:
        """The bare git directory of a repo."""
        return self.repos.git_dir(self.meta.get_repo(ref).ref)

    def list_commits(self, ref: RepoRef, rev: str, offset: int = 0, limit: int = 50) -> tuple[list[CommitInfo], int]:
        """A page of first-parent history."""
        return self.repos.list_commits(ref, rev, offset, limit)

    def sign(self, message: str, ttl: int = 3600) -> str:
        """A signed, expiring ticket for ``message``."""
        return self.signer.sign(message, ttl)

    # ----------------------------------------------------------------- repos

    def create_repo(self, ref: RepoRef, *, owner: str, private: bool = False) -> RepoMeta:
        """Create a repo (git first, then its metadata row, which decides conflicts)."""
        with self.meta.lock(f"create:{ref.key.lower()}"):
            try:
                self.meta.get_repo(ref)
            except errors.RepoNotFound:
                pass
            else:
                raise errors.Conflict(f"You already created this {ref.type} repo: {ref.id}")
            self.repos.create(ref, author=owner)
            try:
                return self.meta.create_repo(ref, owner=owner, private=private)
            except BaseException:
                self.repos.delete(ref)
                raise

    def delete_repo(self, ref: RepoRef) -> None:
        """Delete a repo: its metadata first (it disappears at once), then its git data."""
        meta = self.meta.get_repo(ref)
        self.meta.delete_repo(meta.ref)
        self.repos.delete(meta.ref)

    # ----------------------------------------------------------------- staging and LFS objects

    def new_temp_path(self, suffix: str = "") -> Path:
        """A fresh path in this process's temp folder."""
        return self.tmp / f"{uuid.uuid4().hex}{suffix}"

    def stage_bytes(self, data: bytes) -> StagedFile:
        """Write ``data`` to a temporary file for a later commit."""
        path = self.new_temp_path(".stage")
        path.write_bytes(data)
        return StagedFile(path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    def lfs_size(self, oid: str) -> int | None:
        """The stored size of an LFS object, or None."""
        try:
            return self.objects.size(lfs_key(oid))
        except errors.BadRequest:
            return None

    def repo_lfs_size(self, ref: RepoRef, oid: str) -> int | None:
        """The size of an LFS object when ``ref`` owns it and it is stored (LFS store or Xet CAS), else None."""
        if not isinstance(oid, str) or not _HEX64.match(oid):
            return None
        size = self.lfs_size(oid) if self.meta.owned_objects(ref, LFS, [oid]) else None
        if size is None and (found := self.xet.file_for_sha256(ref, oid)) is not None:
            size = found.size
        return size

    def iter_lfs_object(self, ref: RepoRef, oid: str, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """An LFS object's bytes for ``ref``: from the LFS store when the repo owns it there, else from the CAS."""
        if self.meta.owned_objects(ref, LFS, [oid]) and self.lfs_size(oid) is not None:
            return self.objects.iter_range(lfs_key(oid), start, stop)
        return self.xet.iter_sha256(ref, oid, start, stop)

    def lfs_download_url(self, ref: RepoRef, oid: str, expires_in: int = DIRECT_URL_TTL) -> str | None:
        """A direct URL from the object store for an LFS object ``ref`` owns there, or None to stream it."""
        if not self.meta.owned_objects(ref, LFS, [oid]):
            return None
        return self.objects.url_for(lfs_key(oid), expires_in=expires_in)

    def lfs_import(self, staged: StagedFile, oid: str, size: int, ref: RepoRef) -> None:
        """Store an uploaded LFS object after checking its sha256 and size; ``ref`` owns it afterwards."""
        if staged.size != size:
            raise errors.BadRequest(f"LFS object {oid}: got {staged.size} bytes, expected {size}")
        if staged.sha256 != oid:
            raise errors.BadRequest(f"LFS object sha256 mismatch: expected {oid}, got {staged.sha256}")
        self._store_lfs(ref, staged)

    def _store_lfs(self, ref: RepoRef, staged: StagedFile) -> None:
        self.objects.put_file(lfs_key(staged.sha256), staged.path)
        self.meta.claim_object(ref, LFS, staged.sha256, staged.size)

    # ----------------------------------------------------------------- reading

    def _follow(self, ref: RepoRef, entries: list[TreeEntry]) -> list[TreeEntry]:
        """Entries as the repo may serve them: pointers to objects it does not own read as plain files."""
        oids = {e.lfs.oid for e in entries if e.lfs is not None}
        owned = self.meta.owned_sizes(ref, LFS, oids) if oids else {}
        in_cas = self.xet.index.repo_files_by_sha256(ref, oids) if oids else {}
        out = []
        for entry in entries:
            cas = in_cas.get(entry.lfs.oid) if entry.lfs is not None else None
            if cas is not None and cas.size == entry.size:
                entry = dataclasses.replace(entry, xet_hash=cas.file_hash)
            elif entry.lfs is not None and not self._serves_lfs(owned, entry):
                entry = entry.as_plain()
            out.append(entry)
        return out

    def _serves_lfs(self, owned: dict[str, int | None], entry: TreeEntry) -> bool:
        """Whether the repo owns the entry's LFS object and it has the pointer's size (recorded, else measured)."""
        if entry.lfs is None or entry.lfs.oid not in owned:
            return False
        size = owned[entry.lfs.oid]
        return (self.lfs_size(entry.lfs.oid) if size is None else size) == entry.size

    def tree(self, ref: RepoRef, rev: str, path: str = "", *, recursive: bool = False) -> tuple[str, list[TreeEntry]]:
        """The commit sha and the entries under ``path``."""
        sha, entries = self.repos.tree(ref, rev, path, recursive=recursive)
        return sha, self._follow(ref, entries)

    def list_files(self, ref: RepoRef, rev: str) -> tuple[str, list[TreeEntry]]:
        """The commit sha and every file (no directories) at a revision."""
        sha, entries = self.tree(ref, rev, recursive=True)
        return sha, [e for e in entries if e.type == "file"]

    def paths_info(self, ref: RepoRef, rev: str, paths: Iterable[str]) -> tuple[str, list[TreeEntry]]:
        """The commit sha and the entries for the given paths."""
        sha, entries = self.repos.paths_info(ref, rev, paths)
        return sha, self._follow(ref, entries)

    def stat(self, ref: RepoRef, rev: str, path: str) -> tuple[str, TreeEntry]:
        """The commit sha and the file entry at ``path``."""
        sha, entry = self.repos.stat(ref, rev, path)
        return sha, self._follow(ref, [entry])[0]

    def iter_entry(self, ref: RepoRef, entry: TreeEntry, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """A file entry's bytes ``start``..``stop``, from the object store or from git."""
        if entry.lfs is not None:
            return self.iter_lfs_object(ref, entry.lfs.oid, start, stop)
        data = self.repos.read_blob(ref, entry.oid)
        return iter([data[start:stop]])

    def read_file(self, ref: RepoRef, rev: str, path: str) -> bytes:
        """A file's content at a revision."""
        _, entry = self.stat(ref, rev, path)
        return b"".join(self.iter_entry(ref, entry))

    def unified_diff(self, ref: RepoRef, base: str, head: str, path: str) -> str | None:
        """A unified text diff of one file between two revisions; None for binary, LFS or large files."""
        blobs: list[bytes | None] = []
        oids: list[str] = []
        for rev in (base, head):
            try:
                _, entry = self.stat(ref, rev, path)
            except errors.EntryNotFound:
                blobs.append(None)
                oids.append("-")
                continue
            if entry.lfs is not None or entry.size > textdiff.MAX_BYTES:
                return None
            blobs.append(self.repos.read_blob(ref, entry.oid))
            oids.append(entry.oid)
        return textdiff.unified_diff(blobs[0], blobs[1], path, (oids[0], oids[1]))

    # ----------------------------------------------------------------- commits

    def commit(
        self,
        ref: RepoRef,
        branch: str,
        operations: list[Operation],
        *,
        author: str,
        summary: str,
        description: str = "",
        parent_commit: str | None = None,
    ) -> str:
        """Scan, store and commit ``operations`` on ``branch``; returns the new commit sha."""
        if parent_commit is not None and not re.fullmatch(r"[0-9a-f]{5,40}", parent_commit):
            raise errors.BadRequest(f"Invalid parentCommit {parent_commit!r}")
        limit = self.settings.max_commit_operations
        if len(operations) > limit:
            raise errors.BadRequest(f"Too many operations in one commit ({len(operations)} > {limit}); split it")
        for op in operations:
            path = validate_path(op.path.rstrip("/") if isinstance(op, DeleteFolder) else op.path)
            if path.count("/") >= self.settings.max_path_depth:
                raise errors.InvalidPath(
                    f"Path {path[:200]!r} is nested too deeply (at most {self.settings.max_path_depth} folders)"
                )
        ref = self.meta.get_repo(ref).ref
        for op in operations:
            if isinstance(op, AddLfsFile):
                size = self.repo_lfs_size(ref, op.oid)
                if size is None:
                    raise errors.BadRequest(f"LFS object {op.oid} for {op.path} was not uploaded to this repo")
                if op.size is not None and op.size != size:
                    raise errors.BadRequest(f"LFS object size mismatch for {op.path}: {op.size} != {size}")
                op.size = size
        with scan_runner.scans_for(author):  # the author's files queue behind their own, not other users'
            self._scan_operations(ref, operations)
        return self.repos.commit(
            ref,
            branch,
            operations,
            author=author,
            summary=summary,
            description=description,
            parent_commit=parent_commit,
            store_lfs=lambda staged: self._store_lfs(ref, staged),
            lfs_threshold=self.settings.lfs_threshold,
        )

    # ----------------------------------------------------------------- scanning

    def _scan_operations(self, ref: RepoRef, operations: list[Operation]) -> None:
        results = []
        for op in operations:
            if isinstance(op, AddFile):
                record = self.scan_file(op.content.sha256, op.content.path)
                if op.content.size < self.settings.lfs_threshold:  # also findable under its git blob id
                    scanning.record_blob(self.meta, scanning.git_blob_id(op.content.path), record)
            elif isinstance(op, AddLfsFile):
                record = self.scan_object(ref, op.oid)
            else:
                continue
            results.append((op.path, record))
        scanning.refuse_if_unsafe(results, enforce=self.settings.scan_uploads)

    def scan_file(self, sha256: str, path: Path) -> dict:
        """The scan verdict on content (its sha256) held in a local file: the hook every upload path calls."""
        limits = scanning.limits_from(self.settings)
        return scanning.scan_content(self.meta, sha256, path, limits=limits, tmp_dir=self.tmp)

    def scan_object(self, ref: RepoRef, oid: str) -> dict:
        """The scan verdict on a stored object ``ref`` may reference."""
        cached = scanning.cached_verdict(self.meta, oid)
        if cached is not None:
            return cached
        local = self.objects.local_path(lfs_key(oid)) if self.meta.owned_objects(ref, LFS, [oid]) else None
        if local is not None:
            return self.scan_file(oid, local)
        return self._scan_copy(oid, self.iter_lfs_object(ref, oid))  # from the CAS for files uploaded through Xet

    def rescan_lfs(self, oid: str) -> dict | None:
        """Scan a stored LFS object again, wherever the object store keeps it (None when it is not stored)."""
        key = lfs_key(oid)
        local = self.objects.local_path(key)
        if local is not None:
            return self.scan_file(oid, local)
        return self._scan_copy(oid, self.objects.iter_range(key)) if self.objects.exists(key) else None

    def _scan_copy(self, oid: str, chunks: Iterable[bytes]) -> dict:
        """Scan content that is not in a local file: copied to a temp file first."""
        tmp = self.new_temp_path(".scan")
        try:
            with open(tmp, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
            return self.scan_file(oid, tmp)
        finally:
            tmp.unlink(missing_ok=True)

    def scan_status(self, entry: TreeEntry) -> dict:
        """The scan record of a file: ``{"status", "imports"}`` (status "safe", "unsafe", "suspicious",
        "error", "unscanned" or "not-applicable"); only "safe" and "not-applicable" read as safe."""
        return scanning.entry_status(self.meta, entry)
