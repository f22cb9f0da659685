"""Value objects shared by the stores and the routes, and the naming rules they enforce."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import re
from pathlib import Path

from .. import errors

REPO_TYPES = ("model", "dataset", "space")
RESERVED_NAMES = {"api", "models", "datasets", "spaces", "settings", "new", "login", "logout", "join", "docs"}
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
HEX40 = re.compile(r"^[0-9a-f]{40}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
_REF_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$")
LFS_SPEC = "https://git-lfs.github.com/spec/v1"
MAX_PATH_LEN = 1000


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
    def key(self) -> str:
        """A key unique across repo types: ``type/namespace/name``."""
        return f"{self.type}/{self.namespace}/{self.name}"

    @property
    def url_prefix(self) -> str:
        """The URL path prefix for this repo type ("" for models, "datasets/" for datasets…)."""
        return "" if self.type == "model" else f"{self.type}s/"

    @classmethod
    def parse(cls, repo_type: str, repo_id: str) -> RepoRef:
        """Validate and build a reference from a type and a ``namespace/name`` id."""
        if repo_type not in REPO_TYPES:
            raise errors.BadRequest(f"Invalid repo type {repo_type!r}: expected one of {', '.join(REPO_TYPES)}")
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
    xet_hash: str | None = None  # the Xet file hash when the repo's CAS holds the content

    @property
    def etag(self) -> str:
        """The download ETag: sha256 for LFS files, the git blob id otherwise."""
        return self.lfs.oid if self.lfs else self.oid

    def as_plain(self) -> TreeEntry:
        """The same entry read as an ordinary file (its pointer text), for pointers the repo may not follow."""
        if self.lfs is None:
            return self
        return dataclasses.replace(self, size=self.lfs.pointer_size, lfs=None)


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
    """A repo's settings, kept in the metadata store."""

    ref: RepoRef
    private: bool
    created_at: dt.datetime
    owner: str


@dataclasses.dataclass(frozen=True)
class TokenInfo:
    """What a token grants: its user, role and display name, and its id (what sessions and grants die with)."""

    user: str
    role: str
    display_name: str
    token_id: int | None = None


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


# --------------------------------------------------------------------------- validation


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
        raise errors.InvalidPath(f"Invalid file path {path!r}: backslashes are not allowed", status=422)
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise errors.InvalidPath(f"Invalid file path {path!r}: control characters are not allowed")
    if path.startswith("/"):
        raise errors.InvalidPath(f"Invalid file path {path!r}: absolute paths are not allowed")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise errors.InvalidPath(f"Invalid file path {path!r}: empty, '.' or '..' segment")
        if is_dotgit_alias(part):
            raise errors.InvalidPath(f"Invalid file path {path!r}: {part!r} would be read as '.git' or '.gitmodules'")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise errors.InvalidPath(f"Invalid file path {path!r}: not valid UTF-8") from exc
    return path


_HFS_IGNORABLE = frozenset(
    "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u206a\u206b\u206c\u206d\u206e\u206f\ufeff"
)
_NTFS_SHORT = re.compile(r"(git~1|gitmod~[1-4]|gi7eba~[1-9])([. ]*(:.*)?)?", re.IGNORECASE)
_NTFS_LONG = re.compile(r"\.git(modules)?[. ]*(:.*)?", re.IGNORECASE)


def is_dotgit_alias(part: str) -> bool:
    """Whether a path segment is ``.git`` or ``.gitmodules`` as git's own checks see it.

    git (fsck, clone, checkout) refuses these: any letter case, HFS+ ignorable code points anywhere
    (``.g\u200dit``), NTFS trailing dots and spaces (``.git.``, ``.git ``), alternate data streams
    (``.git::$INDEX_ALLOCATION``) and 8.3 short names (``git~1``, ``gitmod~1``).
    """
    folded = "".join(c for c in part if c not in _HFS_IGNORABLE)
    if folded[:1] == "." and folded[1:].isascii() and folded[1:].lower() in ("git", "gitmodules"):
        return True
    return bool(_NTFS_LONG.fullmatch(part) or _NTFS_SHORT.fullmatch(part))


_REVISION_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def validate_revision(rev: str, what: str = "revision") -> str:
    """Check a revision from a URL or a body (branch, tag, ``refs/…`` name or commit id) by git's ref rules.

    Refused (400): empty or over 255 characters, control characters, space, ``~ ^ : ? * [ \\``, ``..``,
    ``@{``, ``//``, a leading ``/`` or ``-``, a trailing ``/`` or ``.``, a segment starting with ``.`` or
    ending with ``.lock``. Nothing refused here can name a ref, so no valid request is turned away.
    """
    if (
        not isinstance(rev, str)
        or not rev
        or len(rev) > 255
        or _REVISION_FORBIDDEN.search(rev)
        or ".." in rev
        or "@{" in rev
        or rev == "@"
        or "//" in rev
        or rev.startswith(("/", "-"))
        or rev.endswith(("/", "."))
        or any(seg.startswith(".") or seg.endswith(".lock") for seg in rev.split("/"))
    ):
        raise errors.BadRequest(
            f"Invalid {what} {str(rev)[:100]!r}: expected a branch, tag or commit id (no '..', '@{{', control "
            "characters, spaces or any of ~^:?*[\\; no segment starting with '.' or ending with '.lock')"
        )
    return rev


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
        or HEX40.match(name)
    ):
        raise errors.BadRequest(f"Invalid {what} name {name!r}")
    return name


def format_date(value: dt.datetime) -> str:
    """Format a UTC datetime the way the Hub does (``2024-01-02T03:04:05.000Z``)."""
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.timezone.utc)


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
    if oid and HEX64.match(oid) and size is not None and size >= 0:
        return oid, size
    return None
