"""List the code a `trust_remote_code` load would execute, hash it and diff it, without running any of it."""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError
from .remote import Source, fetch_text, resolve_repo_revision, resolve_source
from .remote_code import CONFIG_FILES, code_references

# Files whose `auto_map` (and, for config.json, `custom_pipelines`) name code a remote-code load imports.
AUTO_MAP_FILES = CONFIG_FILES
# The two patterns `transformers.dynamic_module_utils.get_relative_imports` follows.
_RELATIVE_PATTERNS = (
    re.compile(r"^\s*import\s+\.(\S+)\s*$", re.MULTILINE),
    re.compile(r"^\s*from\s+\.(\S+)\s+import", re.MULTILINE),
)


@dataclass
class CodeFile:
    """One Python file a remote-code load would fetch and import."""

    repo: str
    revision: str | None
    path: str
    text: str
    reasons: list[str] = field(default_factory=list)
    pinned: bool = True
    local: bool = False

    @property
    def sha256(self) -> str:
        """Hex sha256 of the file's bytes."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def label(self) -> str:
        """`repo@sha12/path`, or the local path."""
        if self.local:
            return str(Path(self.repo) / self.path)
        return f"{self.repo}@{(self.revision or '?')[:12]}/{self.path}"


def relative_imports(text: str) -> tuple[list[str], list[str]]:
    """Module files a source imports relatively: (required, optional).

    Required: what Transformers' regexes and `ast` find as `from .x import …`; optional: `from . import x`,
    where `x` may be a module file or a name defined by the package.
    """
    found = {m for pattern in _RELATIVE_PATTERNS for m in pattern.findall(text)}
    maybe = set()
    try:
        tree = ast.parse(text)
    except SyntaxError:
        tree = None
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            if node.module:
                found.add(node.module)
            else:
                maybe.update(alias.name for alias in node.names)
    return sorted(f"{n}.py" for n in found), sorted(f"{n}.py" for n in maybe - found)


def imported_packages(text: str) -> set[str]:
    """Top-level absolute imports of a source (what the consumer must have installed)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _references(source: Source, token: str | None) -> list[tuple[str, str]]:
    """(`auto_map` key, class reference) pairs from every config file the Auto classes read."""
    refs = []
    for filename in AUTO_MAP_FILES:
        text = fetch_text(source, filename, token)
        if text is None:
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise UserError(f"{source.label}/{filename} is not valid JSON") from None
        refs.extend((f"{filename}: {r.key}", r.reference) for r in code_references({filename: data}))
    return refs


def collect_code_files(source: Source, token: str | None = None) -> list[CodeFile]:
    """Every code file a `trust_remote_code` load of `source` would import, found by reading text only."""
    files: dict[tuple[str, str], CodeFile] = {}
    other_revisions: dict[str, str] = {}
    queue: list[tuple[str, str | None, str, str, bool]] = []  # repo, revision, path, reason, pinned
    for reason, ref in _references(source, token):
        repo, revision, pinned = source.location, source.revision, True
        if "--" in ref:
            repo, ref = ref.split("--", 1)
            if repo != source.location:
                if source.is_local or repo not in other_revisions:
                    other_revisions[repo] = resolve_repo_revision(repo, None, token)
                revision, pinned = other_revisions[repo], False
                reason += f" (from {repo}'s main branch, NOT pinned by the revision)"
        queue.append((repo, revision, ref.rsplit(".", 1)[0] + ".py", reason, pinned))
    while queue:
        repo, revision, path, reason, pinned = queue.pop(0)
        key = (repo, path)
        if key in files:
            files[key].reasons.append(reason)
            continue
        local = source.is_local and repo == source.location
        if local:
            text = fetch_text(source, path, token)
        else:
            text = fetch_text(source, path, token, repo=repo, revision=revision)
        if text is None:
            if reason.endswith("(from . import)"):
                continue
            raise UserError(f"{repo}@{revision or 'local'} lacks {path}, needed by {reason}; the load would fail")
        files[key] = CodeFile(repo, revision, path, text, [reason], pinned, local)
        required, optional = relative_imports(text)
        for module in required:
            queue.append((repo, revision, module, f"imported by {path}", pinned))
        for module in optional:
            queue.append((repo, revision, module, f"imported by {path} (from . import)", pinned))
    return list(files.values())


def _trusted_text(against: str, code_file: CodeFile, trusted: dict[tuple[str, str], CodeFile] | None) -> str | None:
    if trusted is not None:
        match = trusted.get((code_file.repo, code_file.path))
        return match.text if match else None
    path = Path(against) / code_file.path
    return path.read_text(encoding="utf-8") if path.is_file() else None


def audit(
    source: str,
    *,
    revision: str | None = None,
    against: str | None = None,
    token: str | None = None,
    out=None,
) -> bool:
    """Print the audit of a repo at `revision` (or a local folder); True when nothing differs from `against`."""
    out = out or sys.stdout
    where = resolve_source(source, revision, token)
    _print_header(where, out)
    files = collect_code_files(where, token)
    if not files:
        print("no remote code: config files have no auto_map; trust_remote_code is not needed", file=out)
        return True
    _print_files(files, out)
    if against is None:
        return True
    trusted, against_label = _trusted_version(where, against, token)
    print(f"diff against trusted {against_label}:", file=out)
    differing = sum(_print_diff(code_file, _trusted_text(against, code_file, trusted), out) for code_file in files)
    if differing:
        print(f"result: {differing} of {len(files)} code file(s) differ from the trusted version", file=out)
    else:
        print(f"result: all {len(files)} code file(s) match the trusted version", file=out)
    return differing == 0


def _print_header(where: Source, out) -> None:
    if where.is_local:
        print(f"audit of the local folder {where.location} (nothing below is imported or run)", file=out)
        return
    if not where.pinned:
        print(
            f"warning: revision {where.requested or 'main'!r} is not a full commit SHA; auditing what it points to now",
            file=out,
        )
    print(f"audit of {where.location} at commit {where.revision} (nothing below is imported or run)", file=out)


def _print_files(files: list[CodeFile], out) -> None:
    print(f"{len(files)} code file(s) a trust_remote_code load would execute:", file=out)
    for code_file in files:
        print(f"  {code_file.sha256}  {code_file.label}", file=out)
        for reason in code_file.reasons:
            print(f"      <- {reason}", file=out)
    packages = sorted(set().union(*(imported_packages(f.text) for f in files)))
    print(f"packages it imports: {', '.join(packages) or '(none)'}", file=out)
    unpinned = sorted({f.repo for f in files if not f.pinned})
    if unpinned:
        print(f"warning: code from {', '.join(unpinned)} follows a moving branch, not the pinned revision", file=out)


def _trusted_version(
    where: Source, against: str, token: str | None
) -> tuple[dict[tuple[str, str], CodeFile] | None, str]:
    """The trusted code files (None: read them from the folder `against`) and how to name that version."""
    if Path(against).is_dir():
        return None, str(against)
    if where.is_local:
        raise UserError(f"--against must be a folder when auditing a local folder, got {against!r}")
    if not re.fullmatch(r"[0-9a-f]{7,40}", against):
        raise UserError(f"--against must be a folder or a commit SHA, got {against!r}")
    trusted_source = resolve_source(where.location, against, token)
    trusted = {(f.repo, f.path): f for f in collect_code_files(trusted_source, token)}
    return trusted, f"{where.location}@{trusted_source.revision}"


def _print_diff(code_file: CodeFile, old: str | None, out) -> bool:
    """Print whether `code_file` matches its trusted text, with a unified diff when not; True when it differs."""
    if old == code_file.text:
        print(f"  identical: {code_file.path}", file=out)
        return False
    print(f"  {'NEW (not in the trusted version)' if old is None else 'CHANGED'}: {code_file.path}", file=out)
    out.writelines(
        difflib.unified_diff(
            (old or "").splitlines(keepends=True),
            code_file.text.splitlines(keepends=True),
            fromfile=f"trusted/{code_file.path}",
            tofile=code_file.label,
        )
    )
    return True
