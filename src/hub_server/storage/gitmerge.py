"""Ref operations beyond a commit: pull-request refs, merges and history squashing.

Every ref moves by compare-and-set under the repo lock, like a commit: a merge whose target branch moved
since it was read fails instead of losing the other change.
"""

from __future__ import annotations

from dulwich.repo import Repo

from .. import errors
from .git import GitRepoStore, _check_tree_shape, _write_tree, make_commit
from .gitread import DIR_MODE, branch_ref_name
from .models import RepoRef

MAX_WALK = 100_000


def _files(repo: Repo, commit_sha: bytes) -> dict[str, bytes]:
    return {
        e.path.decode("utf-8"): e.sha
        for e in repo.object_store.iter_tree_contents(repo[commit_sha].tree)
        if e.mode != DIR_MODE
    }


def _ancestors(repo: Repo, sha: bytes) -> set[bytes]:
    seen: set[bytes] = set()
    todo = [sha]
    while todo and len(seen) < MAX_WALK:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(repo[current].parents)
    return seen


def _merge_base(repo: Repo, a: bytes, b: bytes) -> bytes | None:
    """The nearest common ancestor of ``b`` and ``a`` (breadth first from ``b``)."""
    ancestors = _ancestors(repo, a)
    queue, seen = [b], set()
    while queue:
        current = queue.pop(0)
        if current in ancestors:
            return current
        if current in seen:
            continue
        seen.add(current)
        queue.extend(repo[current].parents)
    return None


def three_way(base: dict[str, bytes], ours: dict[str, bytes], theirs: dict[str, bytes]) -> tuple[dict, list[str]]:
    """Files merged path by path; the paths both sides changed differently are conflicts."""
    merged: dict[str, bytes] = {}
    conflicts = []
    for path in sorted(base.keys() | ours.keys() | theirs.keys()):
        b, o, t = base.get(path), ours.get(path), theirs.get(path)
        if o == t or t == b:
            value = o
        elif o == b:
            value = t
        else:
            conflicts.append(path)
            continue
        if value is not None:
            merged[path] = value
    return merged, conflicts


class RefOps:
    """Pull-request refs, merges and squashes on a ``GitRepoStore``."""

    def __init__(self, store: GitRepoStore) -> None:
        self.store = store

    def create_pr_ref(self, ref: RepoRef, num: int, start: str) -> str:
        """Point ``refs/pr/<num>`` at the commit ``start`` resolves to."""
        with self.store.repo_lock(ref), self.store._git(ref) as repo:
            sha = self.store._resolve(repo, ref, start)
            if not repo.refs.add_if_new(f"refs/pr/{num}".encode(), sha.encode()):
                raise errors.Conflict(f"Reference refs/pr/{num} already exists")
        return sha

    def delete_pr_ref(self, ref: RepoRef, num: int) -> None:
        """Remove ``refs/pr/<num>``."""
        with self.store.repo_lock(ref), self.store._git(ref) as repo:
            repo.refs.remove_if_equals(f"refs/pr/{num}".encode(), None)

    def conflicts(self, ref: RepoRef, source: str, target: str) -> list[str]:
        """Files a merge of ``source`` into ``target`` would conflict on."""
        with self.store._git(ref) as repo:
            ours, theirs = repo.refs[branch_ref_name(target)], repo.refs[source.encode()]
            base = _merge_base(repo, ours, theirs)
            if base is None or base in (ours, theirs):
                return []
            return three_way(_files(repo, base), _files(repo, ours), _files(repo, theirs))[1]

    def merge(
        self,
        ref: RepoRef,
        source: str,
        target: str,
        *,
        author: str,
        title: str,
        message: str = "",
        expected_source: str | None = None,
    ) -> str:
        """Merge the ref ``source`` into the branch ``target``: fast-forward when possible, else a merge commit.

        Conflict (409, with ``filesWithConflicts``) when both sides changed a file differently, or (with
        ``expectedHead`` and ``head``) when ``source`` is not at ``expected_source``, read under the lock;
        the target moves by compare-and-set, so a concurrent commit is never lost.
        """
        target_ref = branch_ref_name(target)
        with self.store.repo_lock(ref), self.store._git(ref) as repo:
            try:
                ours, theirs = repo.refs[target_ref], repo.refs[source.encode()]
            except KeyError:
                raise errors.RevisionNotFound(f"Invalid rev id: {target}") from None
            if expected_source is not None and theirs.decode() != expected_source:
                raise errors.Conflict(
                    f"{source} moved since it was reviewed: it is at {theirs.decode()}, not at {expected_source}. "
                    "Review the new commits, then merge again.",
                    extra={"expectedHead": expected_source, "head": theirs.decode()},
                )
            base = _merge_base(repo, ours, theirs)
            if base == theirs:
                raise errors.BadRequest("Nothing to merge: the target branch already contains these changes")
            if base == ours:
                new = theirs
            else:
                files, conflicting = three_way(
                    _files(repo, base) if base else {}, _files(repo, ours), _files(repo, theirs)
                )
                if conflicting:
                    raise errors.Conflict(
                        f"Merge conflict in {', '.join(conflicting[:20])}", extra={"filesWithConflicts": conflicting}
                    )
                _check_tree_shape(files)
                new_objects: list = []
                tree_id = _write_tree(files, new_objects)
                commit = make_commit(tree_id, [ours, theirs], author, title, message)
                for obj in [*new_objects, commit]:
                    repo.object_store.add_object(obj)
                new = commit.id
            if not repo.refs.set_if_equals(target_ref, ours, new):
                raise errors.StaleParent("The branch was updated concurrently. Please retry.")
            return new.decode()

    def squash(self, ref: RepoRef, branch: str, *, author: str, title: str) -> str:
        """Replace a branch's history by one commit holding its current tree."""
        branch_ref = branch_ref_name(branch)
        if not branch_ref.startswith((b"refs/heads/", b"refs/pr/")):
            raise errors.BadRequest(f"Invalid branch {branch!r}: only branches can be squashed")
        with self.store.repo_lock(ref), self.store._git(ref) as repo:
            try:
                head = repo.refs[branch_ref]
            except KeyError:
                raise errors.RevisionNotFound(f"Invalid rev id: {branch} is not a branch") from None
            commit = make_commit(repo[head].tree, [], author, title, "")
            repo.object_store.add_object(commit)
            if not repo.refs.set_if_equals(branch_ref, head, commit.id):
                raise errors.StaleParent("The branch was updated concurrently. Please retry.")
            return commit.id.decode()
