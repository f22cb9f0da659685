"""Storage for the hub: users and tokens, git repositories, an LFS object store and scan results.

Every repo is a bare git repository (``<root>/repos/<type>s/<namespace>/<name>.git``). Large files are
stored in git as LFS pointer files; their content lives in ``<root>/lfs`` addressed by sha256. Writes go
to a temporary file, are fsynced and renamed into place; a branch moves only after every object of the
new commit is on disk, under a per-repo lock.

The LFS store is shared, but a repo may only reference or serve the LFS objects it owns: those whose bytes
were uploaded to it, and those its history referenced when ownership was first recorded. Ownership is kept
as one empty marker file per object under ``<repo>.git/hub-lfs/``; a repo without the ``.history-indexed``
marker (data from an older version) gets it derived from its history on first need.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import difflib
import fcntl
import fnmatch
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from dulwich.objects import Blob, Commit, Tag, Tree
from dulwich.repo import Repo

from . import errors, scanning

REPO_TYPES = ("model", "dataset", "space")
RESERVED_NAMES = {"api", "models", "datasets", "spaces", "settings", "new", "login", "logout", "join", "docs"}
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_REF_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$")
LFS_SPEC = "https://git-lfs.github.com/spec/v1"
FILE_MODE = 0o100644
DEFAULT_LFS_THRESHOLD = 10 * 1024 * 1024
MAX_PATH_LEN = 1000
LFS_OWNED_DIR = "hub-lfs"
LFS_INDEXED_MARK = ".history-indexed"

DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z *.arrow *.bin *.bz2 *.ckpt *.ftz *.gz *.h5 *.joblib *.lfs.* *.mlmodel *.model *.msgpack *.npy "
        "*.npz *.onnx *.ot *.parquet *.pb *.pickle *.pkl *.pt *.pth *.rar *.safetensors saved_model/**/* "
        "*.tar.* *.tar *.tflite *.tgz *.wasm *.xz *.zip *.zst *tfevents*"
    ).split()
)


# --------------------------------------------------------------------------- value objects


@dataclasses.dataclass(frozen=True)
class RepoRef:
    """A repo's identity: type ("model", "dataset", "space"), namespace and name."""

    type: str
    namespace: str
    name: str

    @property
    def id(self) -> str:
        """The ``namespace/name`` id."""
        return f"{self.namespace}/{self.name}"

    @property
    def url_prefix(self) -> str:
        """The URL path prefix for this repo type ("" for models, "datasets/" for datasets…)."""
        return "" if self.type == "model" else f"{self.type}s/"

    @classmethod
    def parse(cls, repo_type: str, repo_id: str) -> RepoRef:
        """Validate and build a reference from a type and a ``namespace/name`` id."""
        if repo_type not in REPO_TYPES:
            raise errors.BadRequest(f"Invalid repo type {repo_type!r}")
        parts = repo_id.split("/")
        if len(parts) != 2:
            raise errors.InvalidRepoId(f"Repo id must be 'namespace/name', got {repo_id!r}")
        validate_name(parts[0], "namespace")
        validate_name(parts[1], "repo name")
        return cls(repo_type, parts[0], parts[1])


@dataclasses.dataclass(frozen=True)
class LfsInfo:
    """LFS metadata of a file: content sha256, content size and the pointer's size."""

    oid: str
    size: int
    pointer_size: int


@dataclasses.dataclass(frozen=True)
class TreeEntry:
    """A file or directory at some revision."""

    type: str  # "file" or "directory"
    path: str
    oid: str  # git object id (for LFS files: the pointer blob)
    size: int  # content size (LFS: the real size)
    lfs: LfsInfo | None = None

    @property
    def etag(self) -> str:
        """The download ETag: sha256 for LFS files, the git blob id otherwise."""
        return self.lfs.oid if self.lfs else self.oid


@dataclasses.dataclass(frozen=True)
class CommitInfo:
    """A commit: id, title, message body, authors, date and parents."""

    id: str
    title: str
    message: str
    authors: list[str]
    date: dt.datetime
    parents: list[str]


@dataclasses.dataclass(frozen=True)
class RepoMeta:
    """A repo's settings kept next to its git data."""

    ref: RepoRef
    private: bool
    created_at: dt.datetime
    owner: str


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    """What a token grants: its user, role and display name."""

    user: str
    role: str
    display_name: str


@dataclasses.dataclass
class StagedFile:
    """Content written to a temporary file, with its sha256 and size, waiting to be committed."""

    path: Path
    sha256: str
    size: int


@dataclasses.dataclass
class AddFile:
    """Commit operation: add or replace ``path`` with staged content."""

    path: str
    content: StagedFile


@dataclasses.dataclass
class AddLfsFile:
    """Commit operation: add or replace ``path`` with an object already in the LFS store."""

    path: str
    oid: str
    size: int | None = None


@dataclasses.dataclass
class DeleteFile:
    """Commit operation: delete the file ``path``."""

    path: str


@dataclasses.dataclass
class DeleteFolder:
    """Commit operation: delete every file under ``path``."""

    path: str


Operation = AddFile | AddLfsFile | DeleteFile | DeleteFolder


@dataclasses.dataclass(frozen=True)
class FileChange:
    """One file's change between two revisions."""

    path: str
    status: str  # "added", "modified", "deleted"
    old: TreeEntry | None
    new: TreeEntry | None


# --------------------------------------------------------------------------- validation helpers


def validate_name(name: str, what: str = "name") -> str:
    """Check a user, namespace or repo name against the naming rules."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or "--" in name or ".." in name:
        raise errors.InvalidRepoId(
            f"Invalid {what} {name!r}: use letters, digits, '-', '_', '.'; no '--' or '..'; "
            "do not start or end with '-' or '.'; at most 96 characters"
        )
    if name.lower() in RESERVED_NAMES or name.lower().endswith(".git"):
        raise errors.InvalidRepoId(f"Invalid {what} {name!r}: reserved name")
    return name


def validate_path(path: str) -> str:
    """Check a file path inside a repo: relative, no traversal, no ``.git``, no backslashes."""
    if not isinstance(path, str) or not path:
        raise errors.InvalidPath("Empty file path")
    if len(path) > MAX_PATH_LEN:
        raise errors.InvalidPath(f"File path too long ({len(path)} > {MAX_PATH_LEN})")
    if "\\" in path:
        raise errors.InvalidPath(f"Invalid file path {path!r}: backslashes are not allowed")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise errors.InvalidPath(f"Invalid file path {path!r}: control characters are not allowed")
    if path.startswith("/"):
        raise errors.InvalidPath(f"Invalid file path {path!r}: absolute paths are not allowed")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise errors.InvalidPath(f"Invalid file path {path!r}: empty, '.' or '..' segment")
        if part.lower() == ".git":
            raise errors.InvalidPath(f"Invalid file path {path!r}: '.git' is reserved")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise errors.InvalidPath(f"Invalid file path {path!r}: not valid UTF-8") from exc
    return path


def validate_ref_name(name: str, what: str = "branch") -> str:
    """Check a branch or tag name (a subset of git's check-ref-format rules)."""
    if (
        not isinstance(name, str)
        or not _REF_RE.match(name)
        or ".." in name
        or "//" in name
        or name.endswith(("/", ".", ".lock"))
        or "/." in name
        or name.startswith("refs/")
        or _HEX40.match(name)
    ):
        raise errors.BadRequest(f"Invalid {what} name {name!r}")
    return name


def _utf8(text: str, what: str) -> bytes:
    """UTF-8 bytes of `text`; BadRequest for text that is not valid Unicode (e.g. lone surrogates)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.BadRequest(f"The {what} is not valid UTF-8 text") from None


def format_date(value: dt.datetime) -> str:
    """Format a UTC datetime the way the Hub does (``2024-01-02T03:04:05.000Z``)."""
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def lfs_pointer(oid: str, size: int) -> bytes:
    """The git-lfs pointer file for an object."""
    return f"version {LFS_SPEC}\noid sha256:{oid}\nsize {size}\n".encode()


def parse_lfs_pointer(data: bytes) -> tuple[str, int] | None:
    """Return (oid, size) when ``data`` is a git-lfs pointer file, else None."""
    if len(data) > 512 or not data.startswith(b"version https://git-lfs"):
        return None
    oid = size = None
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith("oid sha256:"):
            oid = line[len("oid sha256:") :].strip()
        elif line.startswith("size "):
            with contextlib.suppress(ValueError):
                size = int(line[5:].strip())
    if oid and _HEX64.match(oid) and size is not None and size >= 0:
        return oid, size
    return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a fsynced temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _gitattributes_lfs_patterns(text: str) -> list[str]:
    patterns = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith("#") and "filter=lfs" in parts[1:]:
            patterns.append(parts[0])
    return patterns


def _matches_gitattributes(path: str, patterns: list[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    for pattern in patterns:
        if "/" in pattern.strip("/"):
            if fnmatch.fnmatchcase(path, pattern.strip("/").replace("**/", "*").replace("/**", "/*")):
                return True
        elif fnmatch.fnmatchcase(name, pattern.strip("/")):
            return True
    return False


# --------------------------------------------------------------------------- storage


class HubStorage:
    """The hub's data directory: users, tokens, repos, LFS objects and scan results."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        scan_uploads: bool = True,
        lfs_threshold: int = DEFAULT_LFS_THRESHOLD,
    ) -> None:
        self.root = Path(root).resolve()
        self.scan_uploads = scan_uploads
        self.lfs_threshold = lfs_threshold
        for sub in ("repos", "lfs", "tmp", "scans", "trash"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._clean_tmp()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._users_lock = threading.Lock()
        self._blob_cache: dict[str, tuple[int, tuple[str, int] | None]] = {}
        secret_path = self.root / "secret.key"
        if not secret_path.exists():
            atomic_write(secret_path, secrets.token_bytes(32))
            os.chmod(secret_path, 0o600)
        self._secret = secret_path.read_bytes()

    def _clean_tmp(self) -> None:
        for child in (self.root / "tmp").iterdir():
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        for child in (self.root / "trash").iterdir():
            shutil.rmtree(child, ignore_errors=True)

    # ----------------------------------------------------------------- locks

    @contextlib.contextmanager
    def _lock(self, key: str, lock_file: Path) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            lock_file.parent.mkdir(parents=True, exist_ok=True)
            with open(lock_file, "a+b") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def repo_lock(self, ref: RepoRef) -> contextlib.AbstractContextManager[None]:
        """Exclusive lock on one repo (threads and processes)."""
        return self._lock(f"repo:{ref.type}:{ref.id}", self._repo_dir(ref) / "hub.lock")

    def _global_lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        return self._lock(f"global:{name}", self.root / f".{name}.lock")

    # ----------------------------------------------------------------- users and tokens

    def _users_file(self) -> Path:
        return self.root / "users.json"

    def _load_users(self) -> dict:
        path = self._users_file()
        if not path.exists():
            return {"users": {}, "tokens": {}}
        return json.loads(path.read_text("utf-8"))

    @staticmethod
    def _token_hash(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8")).hexdigest()

    def add_user(self, name: str, *, exist_ok: bool = False) -> None:
        """Create a user."""
        validate_name(name, "user name")
        with self._global_lock("users"):
            data = self._load_users()
            if name in data["users"]:
                if exist_ok:
                    return
                raise errors.Conflict(f"User {name!r} already exists")
            data["users"][name] = {"createdAt": format_date(dt.datetime.now(dt.timezone.utc))}
            atomic_write(self._users_file(), json.dumps(data, indent=1).encode())

    def user_exists(self, name: str) -> bool:
        """Whether a user exists."""
        return name in self._load_users()["users"]

    def list_users(self) -> list[str]:
        """All user names."""
        return sorted(self._load_users()["users"])

    def create_token(self, user: str, *, role: str = "write", display_name: str | None = None) -> str:
        """Create a token for ``user`` and return it; only its hash is stored."""
        if role not in ("read", "write"):
            raise errors.BadRequest(f"Invalid token role {role!r}")
        token = "hf_" + "".join(
            secrets.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(34)
        )
        with self._global_lock("users"):
            data = self._load_users()
            if user not in data["users"]:
                raise errors.NotFound(f"User {user!r} does not exist")
            data["tokens"][self._token_hash(token)] = {
                "user": user,
                "role": role,
                "displayName": display_name or f"{user}-{role}-{len(data['tokens']) + 1}",
                "createdAt": format_date(dt.datetime.now(dt.timezone.utc)),
            }
            atomic_write(self._users_file(), json.dumps(data, indent=1).encode())
        return token

    def token_info(self, token: str) -> TokenInfo | None:
        """The user, role and name behind a token, or None for an unknown token."""
        entry = self._load_users()["tokens"].get(self._token_hash(token))
        if entry is None:
            return None
        return TokenInfo(user=entry["user"], role=entry["role"], display_name=entry["displayName"])

    # ----------------------------------------------------------------- signed upload tickets

    def sign(self, message: str, ttl: int = 3600) -> str:
        """An opaque, expiring signature for ``message``."""
        expiry = int(time.time()) + ttl
        mac = hmac.new(self._secret, f"{expiry}|{message}".encode(), hashlib.sha256).hexdigest()
        return f"{expiry}.{mac}"

    def check_signature(self, message: str, ticket: str) -> bool:
        """Whether ``ticket`` is a valid, unexpired signature of ``message``."""
        try:
            expiry_s, mac = ticket.split(".", 1)
            expiry = int(expiry_s)
        except (ValueError, AttributeError):
            return False
        if expiry < time.time():
            return False
        good = hmac.new(self._secret, f"{expiry}|{message}".encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(good, mac)

    # ----------------------------------------------------------------- repos

    def _repo_dir(self, ref: RepoRef) -> Path:
        return self.root / "repos" / f"{ref.type}s" / ref.namespace / f"{ref.name}.git"

    @contextlib.contextmanager
    def _git(self, ref: RepoRef) -> Iterator[Repo]:
        path = self._repo_dir(ref)
        if not (path / "hub.json").exists():
            raise errors.RepoNotFound(f"Repository {ref.id} not found")
        repo = Repo(str(path))
        repo.object_store.fsync_object_files = True  # durable objects before a ref moves
        try:
            yield repo
        finally:
            repo.close()

    def git_dir(self, ref: RepoRef) -> Path:
        """The bare git directory of a repo."""
        self.repo_meta(ref)
        return self._repo_dir(ref)

    def repo_exists(self, ref: RepoRef) -> bool:
        """Whether the repo exists."""
        return (self._repo_dir(ref) / "hub.json").exists()

    def repo_meta(self, ref: RepoRef) -> RepoMeta:
        """A repo's settings; raises RepoNotFound."""
        try:
            raw = json.loads((self._repo_dir(ref) / "hub.json").read_text("utf-8"))
        except FileNotFoundError:
            raise errors.RepoNotFound(f"Repository {ref.id} not found") from None
        return RepoMeta(
            ref=ref,
            private=bool(raw["private"]),
            created_at=dt.datetime.fromisoformat(raw["createdAt"]),
            owner=raw["owner"],
        )

    def list_repos(self, repo_type: str = "model", namespace: str | None = None) -> list[RepoMeta]:
        """Every repo of a type, optionally within one namespace."""
        base = self.root / "repos" / f"{repo_type}s"
        out = []
        namespaces = [base / namespace] if namespace else sorted(p for p in base.glob("*") if p.is_dir())
        for ns_dir in namespaces:
            for repo_dir in sorted(ns_dir.glob("*.git")):
                ref = RepoRef(repo_type, ns_dir.name, repo_dir.name[: -len(".git")])
                with contextlib.suppress(errors.RepoNotFound):
                    out.append(self.repo_meta(ref))
        return out

    def create_repo(self, ref: RepoRef, *, owner: str, private: bool = False) -> RepoMeta:
        """Create a repo with an initial commit holding ``.gitattributes``; Conflict if it exists."""
        final = self._repo_dir(ref)
        with self._global_lock("repos"):
            if final.exists():
                raise errors.Conflict(f"You already created this {ref.type} repo: {ref.id}")
            tmp = self.root / "tmp" / f"repo-{uuid.uuid4().hex}.git"
            tmp.mkdir()
            repo = Repo.init_bare(str(tmp), default_branch=b"main")
            try:
                config = repo.get_config()
                config.set((b"core",), b"fsync", b"objects")  # git's setting; dulwich is told in _git
                config.write_to_path()
                repo.close()
                repo = Repo(str(tmp))
                repo.object_store.fsync_object_files = True
                blob = Blob.from_string(DEFAULT_GITATTRIBUTES.encode())
                tree = Tree()
                tree.add(b".gitattributes", FILE_MODE, blob.id)
                repo.object_store.add_object(blob)
                repo.object_store.add_object(tree)
                commit = self._make_commit(tree.id, [], owner, "initial commit", "")
                repo.object_store.add_object(commit)
                repo.refs[b"refs/heads/main"] = commit.id
                repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
            finally:
                repo.close()
            atomic_write(tmp / LFS_OWNED_DIR / LFS_INDEXED_MARK, b"")
            now = dt.datetime.now(dt.timezone.utc)
            meta = {"private": bool(private), "createdAt": now.isoformat(), "owner": owner}
            atomic_write(tmp / "hub.json", json.dumps(meta).encode())
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(tmp, final)
            _fsync_dir(final.parent)
        return self.repo_meta(ref)

    def delete_repo(self, ref: RepoRef) -> None:
        """Delete a repo and its history (LFS objects stay in the shared store)."""
        path = self._repo_dir(ref)
        with self._global_lock("repos"):
            if not (path / "hub.json").exists():
                raise errors.RepoNotFound(f"Repository {ref.id} not found")
            trash = self.root / "trash" / uuid.uuid4().hex
            os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def update_repo(self, ref: RepoRef, *, private: bool | None = None) -> RepoMeta:
        """Change a repo's settings."""
        with self.repo_lock(ref):
            meta = json.loads((self._repo_dir(ref) / "hub.json").read_text("utf-8"))
            if private is not None:
                meta["private"] = bool(private)
            atomic_write(self._repo_dir(ref) / "hub.json", json.dumps(meta).encode())
        return self.repo_meta(ref)

    # ----------------------------------------------------------------- refs and revisions

    def resolve(self, ref: RepoRef, rev: str) -> str:
        """The commit sha of a branch, tag or full commit sha; raises RevisionNotFound."""
        with self._git(ref) as repo:
            return self._resolve(repo, ref, rev)

    def _resolve(self, repo: Repo, ref: RepoRef, rev: str) -> str:
        candidates = []
        if rev.startswith(("refs/heads/", "refs/tags/")):
            candidates.append(rev)
        else:
            candidates += [f"refs/heads/{rev}", f"refs/tags/{rev}"]
        for name in candidates:
            try:
                sha = repo.refs[name.encode("utf-8")]
            except (KeyError, ValueError):
                continue
            obj = repo[sha]
            while isinstance(obj, Tag):
                obj = repo[obj.object[1]]
            if isinstance(obj, Commit):
                return obj.id.decode()
        if _HEX40.match(rev):
            try:
                obj = repo[rev.encode()]
            except KeyError:
                obj = None
            if isinstance(obj, Commit):
                return rev
        raise errors.RevisionNotFound(f"Invalid rev id: {rev}")

    def branch_head(self, ref: RepoRef, branch: str) -> str:
        """The head commit of a branch; raises RevisionNotFound when it is not a branch."""
        name = branch[len("refs/heads/") :] if branch.startswith("refs/heads/") else branch
        with self._git(ref) as repo:
            try:
                return repo.refs[f"refs/heads/{name}".encode()].decode()
            except (KeyError, ValueError):
                raise errors.RevisionNotFound(f"Invalid rev id: {branch} is not a branch") from None

    def list_refs(self, ref: RepoRef) -> dict[str, dict[str, str]]:
        """``{"branches": {name: sha}, "tags": {name: sha}}`` (tags peeled to their commit)."""
        out: dict[str, dict[str, str]] = {"branches": {}, "tags": {}}
        with self._git(ref) as repo:
            for name, sha in repo.refs.as_dict(b"refs/heads").items():
                out["branches"][name.decode()] = sha.decode()
            for name, sha in repo.refs.as_dict(b"refs/tags").items():
                obj = repo[sha]
                while isinstance(obj, Tag):
                    obj = repo[obj.object[1]]
                out["tags"][name.decode()] = obj.id.decode()
        return out

    def create_branch(self, ref: RepoRef, branch: str, start: str | None = None) -> str:
        """Create a branch at ``start`` (default: main's head); Conflict if it exists."""
        validate_ref_name(branch, "branch")
        with self.repo_lock(ref), self._git(ref) as repo:
            sha = self._resolve(repo, ref, start or "main")
            if not repo.refs.add_if_new(f"refs/heads/{branch}".encode(), sha.encode()):
                raise errors.Conflict(f"Branch {branch!r} already exists")
        return sha

    def delete_branch(self, ref: RepoRef, branch: str) -> None:
        """Delete a branch (not ``main``)."""
        if branch == "main":
            raise errors.Forbidden("The main branch cannot be deleted")
        with self.repo_lock(ref), self._git(ref) as repo:
            name = f"refs/heads/{branch}".encode()
            if name not in repo.refs:
                raise errors.RevisionNotFound(f"Branch {branch!r} not found")
            repo.refs.remove_if_equals(name, None)

    def create_tag(self, ref: RepoRef, tag: str, rev: str, message: str | None, author: str) -> str:
        """Tag the commit ``rev`` resolves to (annotated when ``message`` is given); Conflict if it exists."""
        validate_ref_name(tag, "tag")
        with self.repo_lock(ref), self._git(ref) as repo:
            sha = self._resolve(repo, ref, rev)
            target = sha.encode()
            if message:
                obj = Tag()
                obj.name = tag.encode()
                obj.object = (Commit, sha.encode())
                obj.message = _utf8(message, "tag message") + (b"" if message.endswith("\n") else b"\n")
                obj.tagger = self._identity(author)
                obj.tag_time = int(time.time())
                obj.tag_timezone = 0
                repo.object_store.add_object(obj)
                target = obj.id
            if not repo.refs.add_if_new(f"refs/tags/{tag}".encode(), target):
                raise errors.Conflict(f"Tag {tag!r} already exists")
        return sha

    def delete_tag(self, ref: RepoRef, tag: str) -> None:
        """Delete a tag."""
        with self.repo_lock(ref), self._git(ref) as repo:
            name = f"refs/tags/{tag}".encode()
            if name not in repo.refs:
                raise errors.RevisionNotFound(f"Tag {tag!r} not found")
            repo.refs.remove_if_equals(name, None)

    # ----------------------------------------------------------------- commits

    @staticmethod
    def _identity(user: str) -> bytes:
        return f"{user} <{user}@users.noreply.hub>".encode()

    def _make_commit(self, tree: bytes, parents: list[bytes], author: str, title: str, description: str) -> Commit:
        commit = Commit()
        commit.tree = tree
        commit.parents = parents
        commit.author = commit.committer = self._identity(author)
        commit.author_time = commit.commit_time = int(time.time())
        commit.author_timezone = commit.commit_timezone = 0
        title = " ".join(title.splitlines()).strip() or "Update files"
        message = title + "\n"
        if description.strip():
            message += "\n" + description.strip() + "\n"
        commit.message = _utf8(message, "commit message")
        return commit

    @staticmethod
    def _commit_info(commit: Commit) -> CommitInfo:
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

    def commit_info(self, ref: RepoRef, rev: str) -> CommitInfo:
        """The commit a revision resolves to."""
        with self._git(ref) as repo:
            return self._commit_info(repo[self._resolve(repo, ref, rev).encode()])

    def list_commits(self, ref: RepoRef, rev: str, offset: int = 0, limit: int = 50) -> tuple[list[CommitInfo], int]:
        """A page of the first-parent history from ``rev`` (newest first) and the total count."""
        out: list[CommitInfo] = []
        total = 0
        with self._git(ref) as repo:
            sha: bytes | None = self._resolve(repo, ref, rev).encode()
            while sha is not None:
                commit = repo[sha]
                if offset <= total < offset + limit:
                    out.append(self._commit_info(commit))
                total += 1
                sha = commit.parents[0] if commit.parents else None
        return out, total

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
        """Apply operations on top of a branch and move it; returns the new commit sha.

        Raises StaleParent (412) when ``parent_commit`` is given and the branch has moved.
        """
        if parent_commit is not None and not re.fullmatch(r"[0-9a-f]{5,40}", parent_commit):
            raise errors.BadRequest(f"Invalid parentCommit {parent_commit!r}")
        for op in operations:
            validate_path(op.path.rstrip("/") if isinstance(op, DeleteFolder) else op.path)
        self.repo_meta(ref)
        self._ensure_lfs_index(ref)
        self._scan_operations(ref, operations)
        branch = branch[len("refs/heads/") :] if branch.startswith("refs/heads/") else branch
        branch_ref = f"refs/heads/{branch}".encode()
        with self.repo_lock(ref), self._git(ref) as repo:
            try:
                head = repo.refs[branch_ref]
            except KeyError:
                raise errors.RevisionNotFound(f"Invalid rev id: {branch} is not a branch") from None
            if parent_commit is not None and not head.decode().startswith(parent_commit):
                raise errors.StaleParent(
                    "The branch was updated since you opened this page. Please refresh and try again."
                )
            parent = repo[head]
            files = {
                entry.path.decode("utf-8"): entry.sha
                for entry in repo.object_store.iter_tree_contents(parent.tree)
                if entry.mode != 0o040000
            }
            attributes = self._lfs_patterns(repo, files, operations)
            new_objects: list = []
            for op in operations:
                if isinstance(op, DeleteFile):
                    if op.path not in files:
                        raise errors.EntryNotFound(f"A file with this name doesn't exist: {op.path}")
                    del files[op.path]
                elif isinstance(op, DeleteFolder):
                    prefix = op.path.rstrip("/") + "/"
                    doomed = [p for p in files if p.startswith(prefix)]
                    if not doomed:
                        raise errors.EntryNotFound(f"A folder with this name doesn't exist: {op.path}")
                    for p in doomed:
                        del files[p]
                elif isinstance(op, AddLfsFile):
                    size = self.repo_lfs_size(ref, op.oid)
                    if size is None:
                        raise errors.BadRequest(f"LFS object {op.oid} for {op.path} was not uploaded to this repo")
                    if op.size is not None and op.size != size:
                        raise errors.BadRequest(f"LFS object size mismatch for {op.path}: {op.size} != {size}")
                    blob = Blob.from_string(lfs_pointer(op.oid, size))
                    new_objects.append(blob)
                    files[op.path] = blob.id
                else:
                    blob = self._store_content(ref, op, attributes)
                    new_objects.append(blob)
                    files[op.path] = blob.id
            self._check_tree_shape(files)
            tree_id = self._write_tree(repo, files, new_objects)
            commit = self._make_commit(tree_id, [head], author, summary, description)
            for obj in new_objects:
                repo.object_store.add_object(obj)
            repo.object_store.add_object(commit)
            if not repo.refs.set_if_equals(branch_ref, head, commit.id):
                raise errors.StaleParent("The branch was updated concurrently. Please retry.")
            return commit.id.decode()

    def _lfs_patterns(self, repo: Repo, files: dict[str, bytes], operations: list[Operation]) -> list[str]:
        text = ""
        for op in operations:
            if isinstance(op, AddFile) and op.path == ".gitattributes" and op.content.size < 1_000_000:
                text = op.content.path.read_text("utf-8", "replace")
                break
        else:
            if ".gitattributes" in files:
                text = repo[files[".gitattributes"]].as_raw_string().decode("utf-8", "replace")
        return _gitattributes_lfs_patterns(text)

    def _store_content(self, ref: RepoRef, op: AddFile, patterns: list[str]) -> Blob:
        staged = op.content
        as_lfs = staged.size >= self.lfs_threshold or (
            staged.size > 0 and _matches_gitattributes(op.path, patterns) and op.path != ".gitattributes"
        )
        if as_lfs:
            self.lfs_adopt(staged)
            self.lfs_claim(ref, staged.sha256)
            return Blob.from_string(lfs_pointer(staged.sha256, staged.size))
        return Blob.from_string(staged.path.read_bytes())

    @staticmethod
    def _check_tree_shape(files: dict[str, bytes]) -> None:
        dirs = set()
        for path in files:
            parts = path.split("/")
            for i in range(1, len(parts)):
                dirs.add("/".join(parts[:i]))
        clash = sorted(dirs & files.keys())
        if clash:
            raise errors.BadRequest(f"Path {clash[0]!r} would be both a file and a folder")

    @staticmethod
    def _write_tree(repo: Repo, files: dict[str, bytes], new_objects: list) -> bytes:
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

    # ----------------------------------------------------------------- files and trees

    def _blob_meta(self, ref: RepoRef, repo: Repo, blob_id: bytes) -> tuple[int, LfsInfo | None]:
        key = blob_id.decode()
        cached = self._blob_cache.get(key)
        if cached is None:
            _, data = repo.object_store.get_raw(blob_id)
            cached = (len(data), parse_lfs_pointer(data))
            if len(self._blob_cache) > 100_000:
                self._blob_cache.clear()
            self._blob_cache[key] = cached
        length, pointer = cached
        if pointer is not None and self.repo_lfs_size(ref, pointer[0]) == pointer[1]:
            return pointer[1], LfsInfo(oid=pointer[0], size=pointer[1], pointer_size=length)
        return length, None

    def _entry(self, ref: RepoRef, repo: Repo, path: str, mode: int, sha: bytes) -> TreeEntry:
        if mode == 0o040000:
            return TreeEntry(type="directory", path=path, oid=sha.decode(), size=0)
        size, lfs = self._blob_meta(ref, repo, sha)
        return TreeEntry(type="file", path=path, oid=sha.decode(), size=size, lfs=lfs)

    def _lookup(self, repo: Repo, commit_sha: str, path: str) -> tuple[int, bytes] | None:
        tree = repo[commit_sha.encode()].tree
        if not path:
            return 0o040000, tree
        try:
            mode, sha = repo.object_store[tree].lookup_path(repo.object_store.__getitem__, path.encode("utf-8"))
        except (KeyError, NotADirectoryError):
            return None
        return mode, sha

    def tree(self, ref: RepoRef, rev: str, path: str = "", *, recursive: bool = False) -> tuple[str, list[TreeEntry]]:
        """The commit sha and the entries under ``path`` (all descendants when recursive)."""
        path = path.strip("/")
        with self._git(ref) as repo:
            sha = self._resolve(repo, ref, rev)
            found = self._lookup(repo, sha, path)
            if found is None:
                raise errors.EntryNotFound(f"{path} does not exist at revision {rev}", headers={"X-Repo-Commit": sha})
            mode, obj_id = found
            if mode != 0o040000:
                return sha, [self._entry(ref, repo, path, mode, obj_id)]
            prefix = f"{path}/" if path else ""
            entries = []
            if recursive:
                for item in repo.object_store.iter_tree_contents(obj_id, include_trees=True):
                    if item.path == b"":
                        continue
                    entries.append(self._entry(ref, repo, prefix + item.path.decode("utf-8"), item.mode, item.sha))
            else:
                for item in repo[obj_id].iteritems():
                    entries.append(self._entry(ref, repo, prefix + item.path.decode("utf-8"), item.mode, item.sha))
            return sha, entries

    def list_files(self, ref: RepoRef, rev: str) -> tuple[str, list[TreeEntry]]:
        """The commit sha and every file (no directories) at a revision."""
        sha, entries = self.tree(ref, rev, recursive=True)
        return sha, [e for e in entries if e.type == "file"]

    def paths_info(self, ref: RepoRef, rev: str, paths: Iterable[str]) -> tuple[str, list[TreeEntry]]:
        """The commit sha and the entries for the given paths (missing paths are left out)."""
        with self._git(ref) as repo:
            sha = self._resolve(repo, ref, rev)
            out = []
            for path in paths:
                path = path.strip("/")
                if not path:
                    continue
                found = self._lookup(repo, sha, path)
                if found is not None:
                    out.append(self._entry(ref, repo, path, *found))
            return sha, out

    def stat(self, ref: RepoRef, rev: str, path: str) -> tuple[str, TreeEntry]:
        """The commit sha and the file entry at ``path``; EntryNotFound when missing or a folder."""
        with self._git(ref) as repo:
            sha = self._resolve(repo, ref, rev)
            found = self._lookup(repo, sha, path.strip("/")) if path.strip("/") else None
            if found is None or found[0] == 0o040000:
                raise errors.EntryNotFound(f"{path} does not exist at revision {rev}", headers={"X-Repo-Commit": sha})
            return sha, self._entry(ref, repo, path.strip("/"), *found)

    def open_entry(self, ref: RepoRef, entry: TreeEntry) -> contextlib.AbstractContextManager:
        """Open a file entry's content as a binary file object."""
        if entry.lfs is not None:
            return open(self.lfs_path(entry.lfs.oid), "rb")
        import io

        with self._git(ref) as repo:
            data = repo.object_store.get_raw(entry.oid.encode())[1]
        return contextlib.closing(io.BytesIO(data))

    def read_file(self, ref: RepoRef, rev: str, path: str) -> bytes:
        """A file's content at a revision."""
        _, entry = self.stat(ref, rev, path)
        with self.open_entry(ref, entry) as fh:
            return fh.read()

    def last_commit(self, ref: RepoRef, rev: str, path: str, max_walk: int = 1000) -> CommitInfo | None:
        """The latest commit (first-parent, from ``rev``) that changed ``path``."""
        with self._git(ref) as repo:
            sha = self._resolve(repo, ref, rev).encode()
            current = self._lookup(repo, sha.decode(), path)
            for _ in range(max_walk):
                commit = repo[sha]
                if not commit.parents:
                    return self._commit_info(commit)
                before = self._lookup(repo, commit.parents[0].decode(), path)
                if before != current:
                    return self._commit_info(commit)
                sha = commit.parents[0]
        return None

    def diff(self, ref: RepoRef, base: str, head: str) -> list[FileChange]:
        """Files added, modified or deleted between two revisions."""
        _, old_files = self.list_files(ref, base)
        _, new_files = self.list_files(ref, head)
        old = {e.path: e for e in old_files}
        new = {e.path: e for e in new_files}
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

    def unified_diff(self, ref: RepoRef, base: str, head: str, path: str, max_bytes: int = 1_000_000) -> str | None:
        """A unified text diff of one file between two revisions; None for binary or large files."""
        texts = []
        for rev in (base, head):
            try:
                _, entry = self.stat(ref, rev, path)
            except errors.EntryNotFound:
                texts.append("")
                continue
            if entry.lfs is not None or entry.size > max_bytes:
                return None
            data = self.read_file(ref, rev, path)
            if b"\0" in data:
                return None
            texts.append(data.decode("utf-8", "replace"))
        return "".join(
            difflib.unified_diff(
                texts[0].splitlines(keepends=True), texts[1].splitlines(keepends=True), f"a/{path}", f"b/{path}"
            )
        )

    # ----------------------------------------------------------------- staging and LFS

    def new_temp_path(self, suffix: str = "") -> Path:
        """A fresh path inside the data directory's temporary folder."""
        return self.root / "tmp" / f"{uuid.uuid4().hex}{suffix}"

    def stage_bytes(self, data: bytes) -> StagedFile:
        """Write ``data`` to a temporary file for a later commit."""
        path = self.new_temp_path(".stage")
        with open(path, "wb") as fh:
            fh.write(data)
        return StagedFile(path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data))

    def lfs_path(self, oid: str) -> Path:
        """Where an LFS object lives in the content-addressed store."""
        if not _HEX64.match(oid):
            raise errors.BadRequest(f"Invalid LFS oid {oid!r}")
        return self.root / "lfs" / oid[:2] / oid[2:4] / oid

    def lfs_size(self, oid: str) -> int | None:
        """The stored size of an LFS object, or None when it is absent."""
        try:
            return self.lfs_path(oid).stat().st_size
        except (FileNotFoundError, errors.BadRequest):
            return None

    def lfs_adopt(self, staged: StagedFile) -> None:
        """Move a staged file into the LFS store (fsynced, renamed; a no-op when already stored)."""
        target = self.lfs_path(staged.sha256)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(staged.path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(staged.path, target)
        _fsync_dir(target.parent)

    def lfs_import(self, staged: StagedFile, oid: str, size: int, ref: RepoRef | None = None) -> None:
        """Store an uploaded LFS object after checking its sha256 and size (owned by ``ref`` when given)."""
        if staged.size != size:
            raise errors.BadRequest(f"LFS object {oid}: got {staged.size} bytes, expected {size}")
        if staged.sha256 != oid:
            raise errors.BadRequest(f"LFS object sha256 mismatch: expected {oid}, got {staged.sha256}")
        self.lfs_adopt(staged)
        if ref is not None:
            self.lfs_claim(ref, oid)

    # ----------------------------------------------------------------- LFS ownership

    def _lfs_owned_dir(self, ref: RepoRef) -> Path:
        return self._repo_dir(ref) / LFS_OWNED_DIR

    def lfs_claim(self, ref: RepoRef, oid: str) -> None:
        """Record that ``ref`` owns the LFS object ``oid`` (durable once this returns)."""
        self.lfs_path(oid)
        folder = self._lfs_owned_dir(ref)
        marker = folder / oid
        if marker.exists():
            return
        if not (self._repo_dir(ref) / "hub.json").exists():
            raise errors.RepoNotFound(f"Repository {ref.id} not found")
        folder.mkdir(exist_ok=True)
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT, 0o644))
        _fsync_dir(folder)

    def lfs_owns(self, ref: RepoRef, oid: str) -> bool:
        """Whether ``ref`` owns the LFS object ``oid`` (its history's objects included)."""
        if not _HEX64.match(oid):
            return False
        self._ensure_lfs_index(ref)
        return (self._lfs_owned_dir(ref) / oid).exists()

    def repo_lfs_size(self, ref: RepoRef, oid: str) -> int | None:
        """The size of an LFS object when ``ref`` owns it and it is stored, else None."""
        return self.lfs_size(oid) if self.lfs_owns(ref, oid) else None

    def _ensure_lfs_index(self, ref: RepoRef) -> None:
        """Derive ownership from the repo's history once, for repos created before ownership was recorded."""
        folder = self._lfs_owned_dir(ref)
        if (folder / LFS_INDEXED_MARK).exists():
            return
        if not self.repo_exists(ref):
            raise errors.RepoNotFound(f"Repository {ref.id} not found")
        with self.repo_lock(ref):
            if (folder / LFS_INDEXED_MARK).exists():
                return
            with self._git(ref) as repo:
                oids = self._history_lfs_oids(repo)
            folder.mkdir(exist_ok=True)
            for oid in oids:
                os.close(os.open(folder / oid, os.O_WRONLY | os.O_CREAT, 0o644))
            _fsync_dir(folder)
            atomic_write(folder / LFS_INDEXED_MARK, b"")

    @staticmethod
    def _history_lfs_oids(repo: Repo) -> set[str]:
        """Every LFS oid referenced by a pointer file in any commit reachable from a branch or tag."""
        commits: list[bytes] = []
        for name, sha in repo.get_refs().items():
            if not name.startswith((b"refs/heads/", b"refs/tags/")):
                continue
            obj = repo[sha]
            while isinstance(obj, Tag):
                obj = repo[obj.object[1]]
            if isinstance(obj, Commit):
                commits.append(obj.id)
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
                    if item.mode == 0o040000:
                        trees.append(item.sha)
                    elif item.sha not in seen_blobs:
                        seen_blobs.add(item.sha)
                        _, data = repo.object_store.get_raw(item.sha)
                        pointer = parse_lfs_pointer(data)
                        if pointer is not None:
                            oids.add(pointer[0])
        return oids

    # ----------------------------------------------------------------- scanning

    def _scan_key(self, entry: TreeEntry) -> str:
        return entry.lfs.oid if entry.lfs else entry.oid

    def _scan_operations(self, ref: RepoRef, operations: list[Operation]) -> None:
        unsafe = []
        for op in operations:
            if isinstance(op, AddFile):
                target, key = op.content.path, op.content.sha256
            elif isinstance(op, AddLfsFile):
                if self.repo_lfs_size(ref, op.oid) is None:
                    continue
                target, key = self.lfs_path(op.oid), op.oid
            else:
                continue
            if not scanning.should_scan(op.path):
                continue
            cached = self.root / "scans" / f"{key}.json"
            if cached.exists():
                result = json.loads(cached.read_text("utf-8"))
            else:
                result = scanning.scan_file(target, op.path)
                atomic_write(cached, json.dumps(result).encode())
            if isinstance(op, AddFile):
                self._pending_scan_alias(op, result)
            if result["status"] == "unsafe":
                dangerous = [f"{g['module']}.{g['name']}" for g in result["imports"] if g["safety"] == "dangerous"]
                unsafe.append(f"{op.path} (dangerous imports: {', '.join(dangerous)})")
        if unsafe and self.scan_uploads:
            raise errors.UnsafeFile("Upload refused by the pickle scanner: " + "; ".join(unsafe))

    def _pending_scan_alias(self, op: AddFile, result: dict) -> None:
        if op.content.size >= self.lfs_threshold:
            return
        data = op.content.path.read_bytes()
        blob_id = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        path = self.root / "scans" / f"{blob_id}.json"
        if not path.exists():
            atomic_write(path, json.dumps(result).encode())

    def scan_status(self, entry: TreeEntry) -> dict:
        """The scan record of a file: ``{"status", "imports"}`` (status "safe", "unsafe", "suspicious",
        "error", "unscanned" or "not-applicable")."""
        if entry.type != "file" or not scanning.should_scan(entry.path):
            return {"status": "not-applicable", "imports": []}
        path = self.root / "scans" / f"{self._scan_key(entry)}.json"
        if path.exists():
            return json.loads(path.read_text("utf-8"))
        return {"status": "unscanned", "imports": []}
