"""Repo administration spanning the stores: rename (move), LFS file listing and permanent deletion."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os

import sqlalchemy as sa

from .. import errors
from ..fsutil import fsync_dir
from . import schema
from .models import DeleteFile, RepoRef
from .sql import forget_repos, name_key


@dataclasses.dataclass(frozen=True)
class LfsFile:
    """An LFS object a repo owns, with where it appears."""

    oid: str
    size: int
    filename: str
    ref: str | None
    pointer_oid: str


def move_repo(storage, source: RepoRef, target: RepoRef) -> RepoRef:
    """Rename a repo (metadata row and git directory) under both names' locks; Conflict when taken. The old
    name redirects to the new one within a namespace only (the caller has checked who may move it)."""
    source = storage.meta.get_repo(source).ref
    first, second = sorted([f"create:{source.key.lower()}", f"create:{target.key.lower()}"])
    with storage.meta.lock(first), storage.meta.lock(second), storage.repos.repo_lock(source):
        if name_key(target) != name_key(source):
            try:
                storage.meta.get_repo(target)
            except errors.RepoNotFound:
                pass
            else:
                raise errors.Conflict(f"A {target.type} repository called {target.id} already exists")
        old_dir = storage.repos.git_dir(source)
        new_dir = storage.repos._repo_dir(target)
        r = schema.repos
        with storage.meta.engine.begin() as conn:
            conn.execute(
                r.update()
                .where(r.c.name_key == name_key(source))
                .values(namespace=target.namespace, name=target.name, name_key=name_key(target))
            )
            rd = schema.repo_redirects
            repo_id = conn.execute(sa.select(r.c.id).where(r.c.name_key == name_key(target))).scalar_one()
            conn.execute(rd.delete().where(rd.c.name_key.in_([name_key(source), name_key(target)])))
            if same_namespace(source, target):  # see redirected(): an old name never leads elsewhere
                conn.execute(rd.insert().values(name_key=name_key(source), repo_id=repo_id))
            new_dir.parent.mkdir(parents=True, exist_ok=True)
            os.rename(old_dir, new_dir)
        forget_repos()
        fsync_dir(new_dir.parent)
    return target


def same_namespace(a: RepoRef, b: RepoRef) -> bool:
    """Whether two repos are in one namespace (compared regardless of case, as repo ids are)."""
    return a.namespace.lower() == b.namespace.lower()


def redirected(storage, ref: RepoRef) -> RepoRef | None:
    """The repo an old (renamed) name now points to, or None.

    Only within the old name's namespace: a repo moved to another namespace is out of the old namespace's
    control (whoever holds it there may change it, and leave the organisation), so its old name answers 404:
    a consumer of that name fails instead of running code its namespace no longer controls.
    """
    rd, r = schema.repo_redirects, schema.repos
    query = sa.select(r.c.type, r.c.namespace, r.c.name).join(rd, rd.c.repo_id == r.c.id)
    with storage.meta.engine.connect() as conn:
        row = conn.execute(query.where(rd.c.name_key == name_key(ref))).first()
    moved = None if row is None else RepoRef(row.type, row.namespace, row.name)
    return moved if moved is not None and same_namespace(moved, ref) else None


def lfs_files(storage, ref: RepoRef) -> list[LfsFile]:
    """The LFS objects a repo owns, each with a path and ref where a pointer to it appears."""
    ro = schema.repo_objects
    with storage.meta.engine.connect() as conn:
        repo_id = conn.execute(sa.select(schema.repos.c.id).where(schema.repos.c.name_key == name_key(ref))).scalar()
        owned = set(conn.execute(sa.select(ro.c.oid).where(ro.c.repo_id == repo_id, ro.c.kind == "lfs")).scalars())
    in_cas = {f.sha256: f.size for f in storage.xet.index.repo_files(ref)}  # uploaded through Xet
    owned |= set(in_cas)
    where: dict[str, tuple[str, str, str]] = {}
    found = storage.repos.list_refs(ref)
    heads = sorted((n != "main", f"refs/heads/{n}", s) for n, s in found["branches"].items())
    heads = [(name, sha) for _, name, sha in heads]
    heads += [(f"refs/pr/{n}", s) for n, s in found.get("pull_requests", {}).items()]
    for name, sha in heads:
        for entry in storage.repos.tree(ref, sha, recursive=True)[1]:
            if entry.lfs is not None and entry.lfs.oid in owned:
                where.setdefault(entry.lfs.oid, (entry.path, name, entry.oid))
    out = []
    for oid in sorted(owned):
        size = storage.lfs_size(oid) if oid not in in_cas else in_cas[oid]
        if size is None:
            continue
        path, name, pointer = where.get(oid, ("", None, ""))
        out.append(LfsFile(oid, size, path, name, pointer))
    return out


def delete_lfs_files(storage, ref: RepoRef, oids: list[str], *, author: str, remove_pointers: bool = True) -> int:
    """Forget the repo's claim on LFS objects and delete those no other repo owns; returns how many were freed.

    With ``remove_pointers`` every branch whose files point to a deleted object gets a commit removing them
    (older commits keep their pointer files, which then read as the small text files they are).
    """
    if remove_pointers:
        doomed = set(oids)
        for branch in storage.repos.list_refs(ref)["branches"]:
            paths = [
                e.path for e in storage.repos.tree(ref, branch, recursive=True)[1] if e.lfs and e.lfs.oid in doomed
            ]
            if paths:
                operations = [DeleteFile(path=p) for p in paths]
                storage.commit(ref, branch, operations, author=author, summary="Permanently delete LFS files")
    storage.xet.index.forget_files(ref, oids)  # files uploaded through Xet (their xorbs stay, shared)
    ro = schema.repo_objects
    freed = 0
    with storage.repos.repo_lock(ref), storage.meta.engine.begin() as conn:
        repo_id = conn.execute(sa.select(schema.repos.c.id).where(schema.repos.c.name_key == name_key(ref))).scalar()
        for oid in oids:
            conn.execute(ro.delete().where(ro.c.repo_id == repo_id, ro.c.kind == "lfs", ro.c.oid == oid))
            others = conn.execute(sa.select(sa.func.count()).where(ro.c.kind == "lfs", ro.c.oid == oid)).scalar_one()
            if not others:
                storage.objects.delete(f"lfs/{oid}")
                freed += 1
    return freed


def pushed_at(storage, ref: RepoRef) -> dt.datetime:
    """When the repo was created (the date shown for its LFS files)."""
    return storage.meta.get_repo(ref).created_at
