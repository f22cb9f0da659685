"""Upgrade of data directories written before the SQL metadata store.

Such a directory keeps users and token hashes in ``users.json``, each repo's settings in
``<repo>.git/hub.json``, LFS ownership as marker files in ``<repo>.git/hub-lfs/``, scan verdicts in
``scans/<key>.json`` and LFS objects in ``lfs/``. On first start they are copied into the database (a
backup of every file read is kept in ``backup-pre-sql/``), LFS objects move into the object store, and
ownership of repos never indexed is derived from their history. Every step can be repeated safely, so an
interrupted upgrade completes on the next start.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .. import errors
from . import schema
from .interfaces import ObjectStore
from .models import RepoRef

if TYPE_CHECKING:
    from .service import HubStorage

log = logging.getLogger("hub_server")
BACKUP = "backup-pre-sql"


def _legacy_repos(root: Path) -> list[tuple[RepoRef, Path]]:
    found = []
    for type_dir in sorted((root / "repos").glob("*s")):
        repo_type = type_dir.name[:-1]
        for repo_dir in sorted(type_dir.glob("*/*.git")):
            if (repo_dir / "hub.json").exists():
                found.append((RepoRef(repo_type, repo_dir.parent.name, repo_dir.name[: -len(".git")]), repo_dir))
    return found


def import_legacy_data(storage: HubStorage) -> None:
    """Move a pre-SQL data directory's metadata into the metadata store (no-op when there is none)."""
    root = storage.root
    repos = _legacy_repos(root)
    if (
        not (root / "users.json").exists()
        and not repos
        and not (root / "scans").is_dir()
        and not (root / "lfs").is_dir()
    ):
        return
    with storage.meta.lock("legacy-import"):
        log.warning("Upgrading the data directory %s to the SQL metadata store (backup in %s/)", root, BACKUP)
        backup = root / BACKUP
        backup.mkdir(exist_ok=True)
        _import_users(storage, root, backup)
        _move_objects(root, storage.objects)
        for ref, repo_dir in _legacy_repos(root):
            _import_repo(storage, ref, repo_dir, backup)
        _import_scans(storage, root, backup)
        _drop_leftovers(root)


def _import_users(storage: HubStorage, root: Path, backup: Path) -> None:
    path = root / "users.json"
    if not path.exists():
        return
    data = json.loads(path.read_text("utf-8"))
    shutil.copy2(path, backup / "users.json")
    engine = storage.meta.engine
    for name, info in data.get("users", {}).items():
        created = _date(info.get("createdAt"))
        _insert(engine, schema.users.insert().values(name=name, created_at=created))
    for token_hash, info in data.get("tokens", {}).items():
        values = dict(
            token_hash=token_hash,
            user=info["user"],
            role=info["role"],
            display_name=info.get("displayName") or f"{info['user']}-{info['role']}",
            created_at=_date(info.get("createdAt")),
        )
        _insert(engine, schema.tokens.insert().values(**values))
    os.replace(path, backup / "users.json")


def _move_objects(root: Path, objects: ObjectStore) -> None:
    """Objects of ``<root>/lfs/ab/cd/<oid>`` go into the object store (a rename for a local store)."""
    old = root / "lfs"
    if not old.is_dir():
        return
    for path in sorted(old.rglob("*")):
        if path.is_file() and len(path.name) == 64:
            objects.put_file(f"lfs/{path.name}", path)
    shutil.rmtree(old, ignore_errors=True)


def _import_repo(storage: HubStorage, ref: RepoRef, repo_dir: Path, backup: Path) -> None:
    meta_path = repo_dir / "hub.json"
    raw = json.loads(meta_path.read_text("utf-8"))
    target = backup / "repos" / f"{ref.type}s" / ref.namespace / f"{ref.name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(meta_path, target)
    try:
        storage.meta.create_repo(
            ref,
            owner=raw["owner"],
            private=bool(raw["private"]),
            created_at=dt.datetime.fromisoformat(raw["createdAt"]),
        )
    except errors.Conflict:
        pass  # imported by an interrupted earlier run
    owned_dir = repo_dir / "hub-lfs"
    oids = {p.name for p in owned_dir.iterdir() if len(p.name) == 64} if owned_dir.is_dir() else set()
    if not (owned_dir / ".history-indexed").exists():
        oids |= storage.repos.history_lfs_oids(ref)
    storage.meta.claim_objects(ref, "lfs", oids)
    shutil.rmtree(owned_dir, ignore_errors=True)
    (repo_dir / "hub.lock").unlink(missing_ok=True)
    meta_path.unlink()


def _import_scans(storage: HubStorage, root: Path, backup: Path) -> None:
    scans = root / "scans"
    if not scans.is_dir():
        return
    for path in sorted(scans.glob("*.json")):  # the old scanner's verdicts are not trusted: scanned again
        if re.fullmatch(r"[0-9a-f]{64}", path.stem):
            storage.rescan_lfs(path.stem)
    shutil.move(str(scans), str(backup / "scans"))


def _drop_leftovers(root: Path) -> None:
    """The old version's shared trash, lock files and loose temp files."""
    shutil.rmtree(root / "trash", ignore_errors=True)
    for name in (".users.lock", ".repos.lock"):
        (root / name).unlink(missing_ok=True)
    for path in (root / "tmp").glob("*"):
        if path.is_file():
            path.unlink(missing_ok=True)


def _date(text: str | None) -> dt.datetime:
    if not text:
        return dt.datetime.now(dt.timezone.utc)
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _insert(engine: sa.Engine, statement) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(statement)
    except IntegrityError:
        pass  # already imported


__all__ = ["import_legacy_data"]
