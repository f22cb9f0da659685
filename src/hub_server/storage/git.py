"""The repo store: one bare git repository per repo, written with dulwich.

Objects are fsynced before a ref moves; a ref moves by compare-and-set under the repo's lock (a lock of
the metadata store, so several processes sharing the volume agree). Large files are committed as git-lfs
pointer files: their bytes live in the object store, not here.
"""

from __future__ import annotations

import collections
import contextlib
import fnmatch
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from dulwich.objects import Blob, Commit, Tag, Tree
from dulwich.repo import Repo

from .. import errors
from ..fsutil import fsync_dir
from .gitlocks import clear_stale_locks
from .gitread import GitReader, branch_ref_name
from .models import (
    AddFile,
    AddLfsFile,
    CommitInfo,
    DeleteFile,
    DeleteFolder,
    Operation,
    RepoRef,
    StagedFile,
    lfs_pointer,
    validate_ref_name,
    validate_revision,
)

FILE_MODE = 0o100644
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z *.arrow *.bin *.bz2 *.ckpt *.ftz *.gz *.h5 *.joblib *.lfs.* *.mlmodel *.model *.msgpack *.npy "
        "*.npz *.onnx *.ot *.parquet *.pb *.pickle *.pkl *.pt *.pth *.rar *.safetensors saved_model/**/* "
        "*.tar.* *.tar *.tflite *.tgz *.wasm *.xz *.zip *.zst *tfevents*"
    ).split()
)

OPEN_REPOS_PER_THREAD = 8
LockFactory = Callable[[str], contextlib.AbstractContextManager[None]]
MAX_FOLDERS = 100_000  # folders in one revision's tree (each is a git tree object rewritten by a commit)
LOOSE_OBJECTS_MAX = 256  # a commit writing more new objects than this writes them as one pack


def gitattributes_lfs_patterns(text: str) -> list[str]:
    """The path patterns a ``.gitattributes`` file sends to LFS (``filter=lfs``)."""
    patterns = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith("#") and "filter=lfs" in parts[1:]:
            patterns.append(parts[0])
    return patterns


def matches_gitattributes(path: str, patterns: list[str]) -> bool:
    """Whether ``path`` matches one of the LFS patterns."""
    name = path.rsplit("/", 1)[-1]
    for pattern in patterns:
        if "/" in pattern.strip("/"):
            if fnmatch.fnmatchcase(path, pattern.strip("/").replace("**/", "*").replace("/**", "/*")):
                return True
        elif fnmatch.fnmatchcase(name, pattern.strip("/")):
            return True
    return False


def _utf8(text: str, what: str) -> bytes:
    """UTF-8 bytes of `text`; BadRequest for text that is not valid Unicode (e.g. lone surrogates)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.BadRequest(f"The {what} is not valid UTF-8 text") from None


def _identity(user: str) -> bytes:
    return f"{user} <{user}@users.noreply.hub>".encode()


def make_commit(tree: bytes, parents: list[bytes], author: str, title: str, description: str) -> Commit:
    """A commit object (not yet stored) with the hub's identity and message conventions."""
    commit = Commit()
    commit.tree = tree
    commit.parents = parents
    commit.author = commit.committer = _identity(author)
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    title = " ".join(title.splitlines()).strip() or "Update files"
    message = title + "\n"
    if description.strip():
        message += "\n" + description.strip() + "\n"
    commit.message = _utf8(message, "commit message")
    return commit


class GitRepoStore(GitReader):
    """Bare git repositories under ``<root>/<type>s/<namespace>/<name>.git``."""

    def __init__(self, root: Path, *, tmp_dir: Callable[[], Path], lock: LockFactory) -> None:
        super().__init__()
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp_dir = tmp_dir
        self._lock = lock
        self._handles = threading.local()

    def _repo_dir(self, ref: RepoRef) -> Path:
        return self.root / f"{ref.type}s" / ref.namespace / f"{ref.name}.git"

    @contextlib.contextmanager
    def _git(self, ref: RepoRef) -> Iterator[Repo]:
        """The repo, opened once per thread and kept (an open costs more than most reads it serves).

        A cached handle is used only while the directory is the same one (same inode), so a repo deleted and
        created again is reopened; dulwich rescans the pack directory itself when an object is not found in
        the packs it knows, so objects written by other threads or processes are always seen.
        """
        path = self._repo_dir(ref)
        try:
            inode = os.stat(path / "HEAD").st_ino
        except FileNotFoundError:
            raise errors.RepoNotFound(f"Repository {ref.id} not found") from None
        cache: collections.OrderedDict = getattr(self._handles, "repos", None) or collections.OrderedDict()
        self._handles.repos = cache
        key = str(path)
        cached = cache.pop(key, None)
        if cached is not None and cached[0] != inode:
            cached[1].close()
            cached = None
        if cached is None:
            repo = Repo(key)
            repo.object_store.fsync_object_files = True  # durable objects before a ref moves
            cached = (inode, repo)
        cache[key] = cached
        while len(cache) > OPEN_REPOS_PER_THREAD:
            cache.popitem(last=False)[1][1].close()
        yield cached[1]

    @contextlib.contextmanager
    def repo_lock(self, ref: RepoRef) -> Iterator[None]:
        """The lock every write of ``ref`` is made under; lock files left by killed writers are cleared first."""
        with self._lock(f"repo:{ref.key.lower()}"):
            if self._repo_dir(ref).is_dir():
                clear_stale_locks(self._repo_dir(ref))
            yield

    # ----------------------------------------------------------------- lifecycle

    def exists(self, ref: RepoRef) -> bool:
        """Whether the repo's git directory exists."""
        return (self._repo_dir(ref) / "HEAD").exists()

    def git_dir(self, ref: RepoRef) -> Path:
        """The bare git directory of a repo."""
        if not self.exists(ref):
            raise errors.RepoNotFound(f"Repository {ref.id} not found")
        return self._repo_dir(ref)

    def create(self, ref: RepoRef, *, author: str) -> str:
        """Create the repo with an initial commit holding ``.gitattributes``; returns that commit's sha.

        A leftover directory at the same place (from a create or delete that was interrupted) is discarded.
        """
        final = self._repo_dir(ref)
        tmp = self._tmp_dir() / f"repo-{uuid.uuid4().hex}.git"
        tmp.mkdir(parents=True)
        repo = Repo.init_bare(str(tmp), default_branch=b"main")
        try:
            config = repo.get_config()
            config.set((b"core",), b"fsync", b"objects")  # git's own setting; dulwich is told in _git
            config.write_to_path()
            repo.close()
            repo = Repo(str(tmp))
            repo.object_store.fsync_object_files = True
            blob = Blob.from_string(DEFAULT_GITATTRIBUTES.encode())
            tree = Tree()
            tree.add(b".gitattributes", FILE_MODE, blob.id)
            repo.object_store.add_object(blob)
            repo.object_store.add_object(tree)
            commit = make_commit(tree.id, [], author, "initial commit", "")
            repo.object_store.add_object(commit)
            repo.refs[b"refs/heads/main"] = commit.id
            repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
        finally:
            repo.close()
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            self._discard(final)
        os.rename(tmp, final)
        fsync_dir(final.parent)
        return commit.id.decode()

    def delete(self, ref: RepoRef) -> None:
        """Remove the repo's git directory (renamed away first, so the removal is atomic for readers)."""
        path = self._repo_dir(ref)
        if path.exists():
            self._discard(path)

    def _discard(self, path: Path) -> None:
        trash = self._tmp_dir() / f"trash-{uuid.uuid4().hex}"
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    # ----------------------------------------------------------------- branches and tags

    def create_branch(self, ref: RepoRef, branch: str, start: str | None = None) -> str:
        """Create a branch at ``start`` (default: main's head); Conflict if it exists."""
        validate_ref_name(branch, "branch")
        with self.repo_lock(ref), self._git(ref) as repo:
            sha = self._resolve(repo, ref, start or "main")
            if not repo.refs.add_if_new(f"refs/heads/{branch}".encode(), sha.encode()):
                raise errors.Conflict(f"Reference refs/heads/{branch} already exists")
        return sha

    def delete_branch(self, ref: RepoRef, branch: str) -> None:
        """Delete a branch (not ``main``)."""
        validate_revision(branch, "branch")
        if branch == "main":
            raise errors.Forbidden("Cannot delete refs/heads/main: it is the default branch")
        with self.repo_lock(ref), self._git(ref) as repo:
            name = f"refs/heads/{branch}".encode()
            if name not in repo.refs:
                raise errors.RevisionNotFound(f"Invalid rev id: {branch}")
            repo.refs.remove_if_equals(name, None)

    def create_tag(self, ref: RepoRef, tag: str, rev: str, message: str | None, author: str) -> str:
        """Tag the commit ``rev`` resolves to (annotated when ``message`` is given); Conflict if it exists."""
        with self.repo_lock(ref), self._git(ref) as repo:
            sha = self._resolve(repo, ref, rev)  # a missing revision is a 404 before a bad name is a 400
            validate_ref_name(tag, "tag")
            target = sha.encode()
            if message:
                obj = Tag()
                obj.name = tag.encode()
                obj.object = (Commit, sha.encode())
                obj.message = _utf8(message, "tag message") + (b"" if message.endswith("\n") else b"\n")
                obj.tagger = _identity(author)
                obj.tag_time = int(time.time())
                obj.tag_timezone = 0
                repo.object_store.add_object(obj)
                target = obj.id
            if not repo.refs.add_if_new(f"refs/tags/{tag}".encode(), target):
                raise errors.Conflict(f"Reference refs/tags/{tag} already exists")
        return sha

    def delete_tag(self, ref: RepoRef, tag: str) -> None:
        """Delete a tag."""
        validate_revision(tag, "tag")
        with self.repo_lock(ref), self._git(ref) as repo:
            name = f"refs/tags/{tag}".encode()
            if name not in repo.refs:
                raise errors.RevisionNotFound(f"Tag {tag!r} not found")
            repo.refs.remove_if_equals(name, None)

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
        store_lfs: Callable[[StagedFile], None],
        lfs_threshold: int,
    ) -> str:
        """Apply operations on top of a branch and move it; returns the new commit sha.

        ``AddLfsFile`` operations must carry a checked ``size``. Added files at or over ``lfs_threshold``
        bytes, or matching the tree's ``.gitattributes`` LFS patterns, are handed to ``store_lfs`` and
        committed as pointers. Raises StaleParent (412) when ``parent_commit`` is given and the branch moved.
        """
        branch_ref = branch_ref_name(branch)
        branch = branch_ref.decode()[len("refs/heads/") :] if branch_ref.startswith(b"refs/heads/") else branch
        with self.repo_lock(ref), self._git(ref) as repo:
            try:
                head = repo.refs[branch_ref]
            except KeyError:
                raise errors.RevisionNotFound(f"Invalid rev id: {branch} is not a branch") from None
            if parent_commit is not None and not head.decode().startswith(parent_commit):
                raise errors.StaleParent(
                    "The branch was updated since you opened this page. Please refresh and try again."
                )
            files = {
                entry.path.decode("utf-8"): entry.sha
                for entry in repo.object_store.iter_tree_contents(repo[head].tree)
                if entry.mode != 0o040000
            }
            patterns = self._lfs_patterns(repo, files, operations)
            new_objects: list = []
            for op in operations:
                blob = self._apply(op, files, patterns, store_lfs, lfs_threshold)
                if blob is not None:
                    new_objects.append(blob)
                    files[op.path] = blob.id
            _check_tree_shape(files)
            tree_id = _write_tree(files, new_objects)
            commit = make_commit(tree_id, [head], author, summary, description)
            _store_objects(repo, [*new_objects, commit])
            if not repo.refs.set_if_equals(branch_ref, head, commit.id):
                raise errors.StaleParent("The branch was updated concurrently. Please retry.")
            return commit.id.decode()

    @staticmethod
    def _apply(
        op: Operation,
        files: dict[str, bytes],
        patterns: list[str],
        store_lfs: Callable[[StagedFile], None],
        lfs_threshold: int,
    ) -> Blob | None:
        """Apply one operation to the file map; returns the new blob for additions."""
        if isinstance(op, DeleteFile) and op.path in files:
            del files[op.path]
            return None
        if isinstance(op, DeleteFile | DeleteFolder):  # a file path naming a folder deletes the folder, as on the Hub
            prefix = op.path.rstrip("/") + "/"
            doomed = [p for p in files if p.startswith(prefix)]
            if not doomed:
                raise errors.EntryNotFound(f"A folder with this name doesn't exist: {op.path}")
            for p in doomed:
                del files[p]
            return None
        if isinstance(op, AddLfsFile):
            assert op.size is not None, "LFS additions are checked before they reach the repo store"
            return Blob.from_string(lfs_pointer(op.oid, op.size))
        staged = op.content
        as_lfs = staged.size >= lfs_threshold or (
            staged.size > 0 and op.path != ".gitattributes" and matches_gitattributes(op.path, patterns)
        )
        if as_lfs:
            store_lfs(staged)
            return Blob.from_string(lfs_pointer(staged.sha256, staged.size))
        return Blob.from_string(staged.path.read_bytes())

    @staticmethod
    def _lfs_patterns(repo: Repo, files: dict[str, bytes], operations: list[Operation]) -> list[str]:
        text = ""
        for op in operations:
            if isinstance(op, AddFile) and op.path == ".gitattributes" and op.content.size < 1_000_000:
                text = op.content.path.read_text("utf-8", "replace")
                break
        else:
            if ".gitattributes" in files:
                text = repo[files[".gitattributes"]].as_raw_string().decode("utf-8", "replace")
        return gitattributes_lfs_patterns(text)


def _check_tree_shape(files: dict[str, bytes]) -> None:
    dirs = set()
    for path in files:
        parts = path.split("/")
        for i in range(1, len(parts)):
            dirs.add("/".join(parts[:i]))
    clash = sorted(dirs & files.keys())
    if clash:
        raise errors.BadRequest(f"Path {clash[0]!r} would be both a file and a folder")
    if len(dirs) > MAX_FOLDERS:
        raise errors.BadRequest(f"Too many folders in the repo ({len(dirs)} > {MAX_FOLDERS})")


def _store_objects(repo: Repo, objects: list) -> None:
    """Write new objects: loose when few, else as one pack (one fsync instead of one per object)."""
    if len(objects) <= LOOSE_OBJECTS_MAX:
        for obj in objects:
            repo.object_store.add_object(obj)
        return
    store = repo.object_store
    fresh = [obj for obj in objects if obj.id not in store]
    if fresh:
        store.add_objects([(obj, None) for obj in fresh])


def _write_tree(files: dict[str, bytes], new_objects: list) -> bytes:
    nested: dict = {}
    for path, sha in files.items():
        node = nested
        parts = path.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = sha

    def build(node: dict) -> bytes:
        tree = Tree()
        for name, value in node.items():
            if isinstance(value, dict):
                tree.add(name.encode("utf-8"), 0o040000, build(value))
            else:
                tree.add(name.encode("utf-8"), FILE_MODE, value)
        new_objects.append(tree)
        return tree.id

    return build(nested)


__all__ = ["DEFAULT_GITATTRIBUTES", "CommitInfo", "GitRepoStore", "gitattributes_lfs_patterns", "matches_gitattributes"]
