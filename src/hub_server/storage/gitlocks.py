"""Lock files a killed writer leaves in a git directory, and their recovery.

dulwich writes a ref or a loose object through ``<name>.lock`` (created exclusively, renamed into place).
A process killed in between leaves the ``.lock`` behind, and every later write of that ref or object fails
with ``FileLocked``. Every write of a repo happens under its repo lock (a lock of the metadata store, which
all processes sharing the data honour), so a lock file found while holding that lock is stale by
construction: ``GitRepoStore.repo_lock`` removes them before each write, and nothing else may.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..fsutil import fsync_dir

log = logging.getLogger("hub_server")
_TOP_LEVEL = ("HEAD.lock", "config.lock", "packed-refs.lock", "index.lock", "shallow.lock")


def stale_lock_files(git_dir: Path) -> list[Path]:
    """The ``*.lock`` files dulwich could have left: top-level files, refs, loose objects."""
    found = [git_dir / name for name in _TOP_LEVEL if (git_dir / name).exists()]
    for base in (git_dir / "refs", git_dir / "objects"):
        for folder, _, names in os.walk(base):
            found.extend(Path(folder) / n for n in names if n.endswith(".lock"))
    return found


def clear_stale_locks(git_dir: Path) -> int:
    """Remove the lock files of dead writers; call only while holding the repo's lock. Returns how many."""
    removed = 0
    for path in stale_lock_files(git_dir):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        fsync_dir(path.parent)
        removed += 1
    if removed:
        log.warning("removed %d stale git lock file(s) in %s", removed, git_dir)
    return removed
