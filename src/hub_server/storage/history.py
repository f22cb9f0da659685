"""Last commits of many paths in one walk of the first-parent history, cached by commit sha.

``tree?expand=1`` and ``paths-info`` with ``expand`` ask for the commit that last changed every listed
file and folder. Walking the history once per entry costs entries × commits tree lookups; here one walk
compares, commit by commit, only the subtrees that hold a still-unresolved path and that changed, so a
listing of 1,000 entries over 1,000 commits is a few thousand tree reads. Results are immutable (a commit
sha fixes its history) and kept in a bounded LRU cache.
"""

from __future__ import annotations

import collections
import threading

from dulwich.objects import Tree
from dulwich.repo import Repo

DIR_MODE = 0o040000
MAX_WALK = 5000
_WANTED = object()  # marks a trie node whose own path was asked for


class LastCommitCache:
    """``(repo key, head sha, path) → commit sha or None`` for the most recent lookups."""

    def __init__(self, size: int = 200_000) -> None:
        self._data: collections.OrderedDict[tuple[str, str, str], str | None] = collections.OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get_many(self, repo_key: str, head: str, paths: list[str]) -> dict[str, str | None]:
        out = {}
        with self._lock:
            for path in paths:
                key = (repo_key, head, path)
                if key in self._data:
                    self._data.move_to_end(key)
                    out[path] = self._data[key]
        return out

    def put_many(self, repo_key: str, head: str, found: dict[str, str | None]) -> None:
        with self._lock:
            for path, sha in found.items():
                self._data[(repo_key, head, path)] = sha
            while len(self._data) > self._size:
                self._data.popitem(last=False)


def _trie(paths: list[str]) -> dict:
    root: dict = {}
    for path in paths:
        node = root
        for part in path.split("/"):
            node = node.setdefault(part, {})
        node[_WANTED] = True
    return root


def _changed(repo: Repo, old: bytes | None, new: bytes | None, node: dict, prefix: str, out: set[str]) -> None:
    """Add to ``out`` the wanted paths under ``node`` whose object differs between trees ``old`` and ``new``."""
    if old == new:
        return
    old_tree = repo[old] if old is not None else None
    new_tree = repo[new] if new is not None else None
    for name, child in node.items():
        if name is _WANTED:
            continue
        a = _item(old_tree, name)
        b = _item(new_tree, name)
        if a == b:
            continue
        path = prefix + name
        if _WANTED in child:
            out.add(path)
        if len(child) > (1 if _WANTED in child else 0):
            _changed(repo, _subtree(a), _subtree(b), child, path + "/", out)


def _item(tree, name: str) -> tuple[int, bytes] | None:
    if not isinstance(tree, Tree):
        return None
    try:
        return tree[name.encode("utf-8")]
    except KeyError:
        return None


def _subtree(item: tuple[int, bytes] | None) -> bytes | None:
    return item[1] if item is not None and item[0] == DIR_MODE else None


def last_commits(repo: Repo, head: bytes, paths: list[str], max_walk: int = MAX_WALK) -> dict[str, str | None]:
    """For each path (file or folder), the newest first-parent commit from ``head`` that changed it.

    None for a path not found within ``max_walk`` commits. Paths absent at ``head`` come out as the commit
    that deleted them, which callers never ask for (they list what exists).
    """
    pending = {p.strip("/") for p in paths if p.strip("/")}
    found: dict[str, str | None] = {}
    commit = repo[head]
    trie = _trie(sorted(pending))
    for _ in range(max_walk):
        if not pending:
            break
        parent = repo[commit.parents[0]] if commit.parents else None
        changed: set[str] = set()
        _changed(repo, parent.tree if parent is not None else None, commit.tree, trie, "", changed)
        if changed:
            for path in changed:
                found[path] = commit.id.decode()
            pending -= changed
            trie = _trie(sorted(pending))
        if parent is None:
            break
        commit = parent
    found.update(dict.fromkeys(pending))
    return found
