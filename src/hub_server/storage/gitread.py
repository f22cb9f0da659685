"""The read side of the repo store: revisions, history, trees and file contents."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterable, Iterator

from dulwich.objects import Commit, Tag
from dulwich.repo import Repo

from .. import errors
from .history import LastCommitCache, last_commits
from .models import (
    HEX40,
    CommitInfo,
    FileChange,
    LfsInfo,
    RepoRef,
    TreeEntry,
    parse_lfs_pointer,
    validate_revision,
)

DIR_MODE = 0o040000


def commit_info(commit: Commit) -> CommitInfo:
    """A dulwich commit as a CommitInfo."""
    text = commit.message.decode("utf-8", "replace")
    title, _, body = text.partition("\n")
    author = commit.author.decode("utf-8", "replace").split(" <", 1)[0]
    return CommitInfo(
        id=commit.id.decode(),
        title=title,
        message=body.strip("\n"),
        authors=[author],
        date=dt.datetime.fromtimestamp(commit.commit_time, dt.timezone.utc),
        parents=[p.decode() for p in commit.parents],
    )


_SHORT_SHA = re.compile(r"^[0-9a-f]{7,39}$")


def _short_sha(repo: Repo, prefix: str) -> str | None:
    """The commit an abbreviated sha names, when it is unique among commits reachable from a ref."""
    found = set()
    todo = [sha for name, sha in repo.get_refs().items() if name.startswith(b"refs/")]
    seen: set[bytes] = set()
    while todo and len(seen) < 100_000:
        sha = todo.pop()
        if sha in seen:
            continue
        seen.add(sha)
        obj = _peel(repo, sha)
        if not isinstance(obj, Commit):
            continue
        if obj.id.decode().startswith(prefix):
            found.add(obj.id.decode())
        todo.extend(obj.parents)
    return found.pop() if len(found) == 1 else None


def branch_ref_name(branch: str) -> bytes:
    """The git ref a commit target names: ``refs/pr/<n>`` as is, anything else a branch under ``refs/heads/``."""
    if branch.startswith("refs/pr/"):
        return branch.encode("utf-8")
    name = branch[len("refs/heads/") :] if branch.startswith("refs/heads/") else branch
    return f"refs/heads/{name}".encode()


def _peel(repo: Repo, sha: bytes):
    obj = repo[sha]
    while isinstance(obj, Tag):
        obj = repo[obj.object[1]]
    return obj


class GitReader:
    """Read-only operations; the subclass provides ``_git(ref)``, a context manager opening the repo."""

    def __init__(self) -> None:
        self._blob_cache: dict[str, tuple[int, tuple[str, int] | None]] = {}
        self._last_commits = LastCommitCache()

    def _git(self, ref: RepoRef) -> contextlib.AbstractContextManager[Repo]:
        raise NotImplementedError

    # ----------------------------------------------------------------- revisions

    def resolve(self, ref: RepoRef, rev: str) -> str:
        """The commit sha of a branch, tag or full commit sha; raises RevisionNotFound."""
        with self._git(ref) as repo:
            return self._resolve(repo, ref, rev)

    def _resolve(self, repo: Repo, ref: RepoRef, rev: str) -> str:
        validate_revision(rev)
        candidates = (
            [rev]
            if rev.startswith(("refs/heads/", "refs/tags/", "refs/pr/"))
            else [f"refs/heads/{rev}", f"refs/tags/{rev}"]
        )
        for name in candidates:
            try:
                sha = repo.refs[name.encode("utf-8")]
            except (KeyError, ValueError):
                continue
            obj = _peel(repo, sha)
            if isinstance(obj, Commit):
                return obj.id.decode()
        if HEX40.match(rev):
            try:
                obj = repo[rev.encode()]
            except KeyError:
                obj = None
            if isinstance(obj, Commit):
                return rev
        elif _SHORT_SHA.match(rev):
            found = _short_sha(repo, rev)
            if found is not None:
                return found
        raise errors.RevisionNotFound(f"Invalid rev id: {rev}")

    def branch_head(self, ref: RepoRef, branch: str) -> str:
        """The head commit of a branch; raises RevisionNotFound when it is not a branch."""
        validate_revision(branch, "branch")
        name = branch_ref_name(branch)
        with self._git(ref) as repo:
            try:
                return repo.refs[name].decode()
            except (KeyError, ValueError):
                raise errors.RevisionNotFound(f"Invalid rev id: {branch} is not a branch") from None

    def list_refs(self, ref: RepoRef) -> dict[str, dict[str, str]]:
        """``{"branches": {name: sha}, "tags": {name: sha}}`` (tags peeled to their commit)."""
        out: dict[str, dict[str, str]] = {"branches": {}, "tags": {}}
        with self._git(ref) as repo:
            for name, sha in repo.refs.as_dict(b"refs/heads").items():
                out["branches"][name.decode()] = sha.decode()
            for name, sha in repo.refs.as_dict(b"refs/tags").items():
                out["tags"][name.decode()] = _peel(repo, sha).id.decode()
            out["pull_requests"] = {n.decode(): s.decode() for n, s in repo.refs.as_dict(b"refs/pr").items()}
        return out

    # ----------------------------------------------------------------- history

    def commit_info(self, ref: RepoRef, rev: str) -> CommitInfo:
        """The commit a revision resolves to."""
        with self._git(ref) as repo:
            return commit_info(repo[self._resolve(repo, ref, rev).encode()])

    def list_commits(self, ref: RepoRef, rev: str, offset: int = 0, limit: int = 50) -> tuple[list[CommitInfo], int]:
        """A page of the first-parent history from ``rev`` (newest first) and the total count."""
        out: list[CommitInfo] = []
        total = 0
        with self._git(ref) as repo:
            sha: bytes | None = self._resolve(repo, ref, rev).encode()
            while sha is not None:
                commit = repo[sha]
                if offset <= total < offset + limit:
                    out.append(commit_info(commit))
                total += 1
                sha = commit.parents[0] if commit.parents else None
        return out, total

    def last_commit(self, ref: RepoRef, rev: str, path: str, max_walk: int = 1000) -> CommitInfo | None:
        """The latest commit (first-parent, from ``rev``) that changed ``path``."""
        return self.last_commits(ref, rev, [path]).get(path.strip("/"))

    def last_commits(self, ref: RepoRef, rev: str, paths: Iterable[str]) -> dict[str, CommitInfo | None]:
        """The latest commit that changed each path (files and folders), found in one history walk, cached."""
        wanted = sorted({p.strip("/") for p in paths if p.strip("/")})
        with self._git(ref) as repo:
            sha = self._resolve(repo, ref, rev)
            found = self._last_commits.get_many(ref.key.lower(), sha, wanted)
            missing = [p for p in wanted if p not in found]
            if missing:
                walked = last_commits(repo, sha.encode(), missing)
                self._last_commits.put_many(ref.key.lower(), sha, walked)
                found.update(walked)
            infos = {c: commit_info(repo[c.encode()]) for c in set(found.values()) if c is not None}
        return {p: infos.get(found[p]) if found[p] else None for p in wanted}

    def history_lfs_oids(self, ref: RepoRef) -> set[str]:
        """Every LFS oid referenced by a pointer file in any commit reachable from a branch or tag."""
        with self._git(ref) as repo:
            return _history_lfs_oids(repo)

    # ----------------------------------------------------------------- trees and files

    def _blob_meta(self, repo: Repo, blob_id: bytes) -> tuple[int, LfsInfo | None]:
        key = blob_id.decode()
        cached = self._blob_cache.get(key)
        if cached is None:
            _, data = repo.object_store.get_raw(blob_id)
            cached = (len(data), parse_lfs_pointer(data))
            if len(self._blob_cache) > 100_000:
                self._blob_cache.clear()
            self._blob_cache[key] = cached
        length, pointer = cached
        if pointer is not None:
            return pointer[1], LfsInfo(oid=pointer[0], size=pointer[1], pointer_size=length)
        return length, None

    def _entry(self, repo: Repo, path: str, mode: int, sha: bytes) -> TreeEntry:
        if mode == DIR_MODE:
            return TreeEntry(type="directory", path=path, oid=sha.decode(), size=0)
        size, lfs = self._blob_meta(repo, sha)
        return TreeEntry(type="file", path=path, oid=sha.decode(), size=size, lfs=lfs)

    @staticmethod
    def _lookup(repo: Repo, commit_sha: str, path: str) -> tuple[int, bytes] | None:
        tree = repo[commit_sha.encode()].tree
        if not path:
            return DIR_MODE, tree
        try:
            mode, sha = repo.object_store[tree].lookup_path(repo.object_store.__getitem__, path.encode("utf-8"))
        except (KeyError, NotADirectoryError):
            return None
        return mode, sha

    def tree(self, ref: RepoRef, rev: str, path: str = "", *, recursive: bool = False) -> tuple[str, list[TreeEntry]]:
        """The commit sha and the entries under ``path`` (all descendants when recursive).

        Entries of LFS pointers carry the pointer's ``lfs`` info as written; whether the repo may follow
        it is the caller's decision.
        """
        path = path.strip("/")
        with self._git(ref) as repo:
            sha = self._resolve(repo, ref, rev)
            found = self._lookup(repo, sha, path)
            if found is None:
                raise errors.EntryNotFound(f"{path} does not exist at revision {rev}", headers={"X-Repo-Commit": sha})
            mode, obj_id = found
            if mode != DIR_MODE:
                return sha, [self._entry(repo, path, mode, obj_id)]
            prefix = f"{path}/" if path else ""
            if recursive:
                items: Iterable = (
                    i for i in repo.object_store.iter_tree_contents(obj_id, include_trees=True) if i.path != b""
                )
            else:
                items = repo[obj_id].iteritems()
            return sha, [self._entry(repo, prefix + i.path.decode("utf-8"), i.mode, i.sha) for i in items]

    def paths_info(self, ref: RepoRef, rev: str, paths: Iterable[str]) -> tuple[str, list[TreeEntry]]:
        """The commit sha and the entries for the given paths (missing paths are left out)."""
        with self._git(ref) as repo:
            sha = self._resolve(repo, ref, rev)
            out = []
            for path in paths:
                path = path.strip("/")
                found = self._lookup(repo, sha, path) if path else None
                if found is not None:
                    out.append(self._entry(repo, path, *found))
            return sha, out

    def stat(self, ref: RepoRef, rev: str, path: str) -> tuple[str, TreeEntry]:
        """The commit sha and the file entry at ``path``; EntryNotFound when missing or a folder."""
        with self._git(ref) as repo:
            sha = self._resolve(repo, ref, rev)
            found = self._lookup(repo, sha, path.strip("/")) if path.strip("/") else None
            if found is None or found[0] == DIR_MODE:
                raise errors.EntryNotFound(f"{path} does not exist at revision {rev}", headers={"X-Repo-Commit": sha})
            return sha, self._entry(repo, path.strip("/"), *found)

    def read_blob(self, ref: RepoRef, oid: str) -> bytes:
        """The raw content of a git blob."""
        with self._git(ref) as repo:
            try:
                return repo.object_store.get_raw(oid.encode())[1]
            except KeyError:
                raise errors.EntryNotFound(f"Git object {oid} not found") from None

    def diff(self, ref: RepoRef, base: str, head: str) -> list[FileChange]:
        """Files added, modified or deleted between two revisions."""
        old = {e.path: e for e in self.tree(ref, base, recursive=True)[1] if e.type == "file"}
        new = {e.path: e for e in self.tree(ref, head, recursive=True)[1] if e.type == "file"}
        changes = []
        for path in sorted(old.keys() | new.keys()):
            a, b = old.get(path), new.get(path)
            if a is None:
                changes.append(FileChange(path, "added", None, b))
            elif b is None:
                changes.append(FileChange(path, "deleted", a, None))
            elif a.oid != b.oid:
                changes.append(FileChange(path, "modified", a, b))
        return changes


def _reachable_commits(repo: Repo) -> Iterator[bytes]:
    for name, sha in repo.get_refs().items():
        if name.startswith((b"refs/heads/", b"refs/tags/", b"refs/pr/")):
            obj = _peel(repo, sha)
            if isinstance(obj, Commit):
                yield obj.id


def _history_lfs_oids(repo: Repo) -> set[str]:
    commits = list(_reachable_commits(repo))
    seen_commits: set[bytes] = set()
    seen_trees: set[bytes] = set()
    seen_blobs: set[bytes] = set()
    oids: set[str] = set()
    while commits:
        sha = commits.pop()
        if sha in seen_commits:
            continue
        seen_commits.add(sha)
        commit = repo[sha]
        commits.extend(commit.parents)
        trees = [commit.tree]
        while trees:
            tree_id = trees.pop()
            if tree_id in seen_trees:
                continue
            seen_trees.add(tree_id)
            for item in repo[tree_id].iteritems():
                if item.mode == DIR_MODE:
                    trees.append(item.sha)
                elif item.sha not in seen_blobs:
                    seen_blobs.add(item.sha)
                    pointer = parse_lfs_pointer(repo.object_store.get_raw(item.sha)[1])
                    if pointer is not None:
                        oids.add(pointer[0])
    return oids
