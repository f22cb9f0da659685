"""Unified diffs of text files, computed by git's own diff engine (xdiff) with bounds, and cached by blob ids.

Python's difflib is quadratic on inputs such as a reordered table (a 273 KB file cost 28 s of CPU); git's Myers
diff with its heuristics stays fast on them. Each side is at most ``MAX_BYTES`` and the answer at most
``MAX_LINES`` lines, else the file is "too large to show" (None), as the Hub does. Answers are cached by the two
blob ids, so a page viewed again costs nothing.
"""

from __future__ import annotations

import collections
import os
import subprocess
import tempfile
import threading

MAX_BYTES = 512 * 1024  # per side: beyond it the diff is "too large to show"
MAX_LINES = 20_000  # of diff output: a page with more is not reviewable anyway
TIMEOUT_S = 20  # a backstop for git; the bounds above keep it far below
CACHE_ENTRIES = 256

_cache: collections.OrderedDict[tuple[str, str, str], str | None] = collections.OrderedDict()
_lock = threading.Lock()
runs = 0  # diffs computed (not answered from the cache): what tests count


def _git_diff(old: bytes, new: bytes) -> str | None:
    """The hunks of `git diff --no-index` between two texts, or None past the bounds."""
    global runs
    with tempfile.TemporaryDirectory(prefix="hub-diff-") as tmp:
        paths = [os.path.join(tmp, name) for name in ("a", "b")]
        for path, data in zip(paths, (old, new), strict=True):
            with open(path, "wb") as fh:
                fh.write(data)
        command = ["git", "diff", "--no-index", "--no-color", "--no-ext-diff", "--text", "-U3", *paths]
        with _lock:
            runs += 1
        result = subprocess.run(command, capture_output=True, timeout=TIMEOUT_S, check=False)
    if result.returncode not in (0, 1):  # 1: the files differ
        raise RuntimeError(f"git diff failed: {result.stderr.decode('utf-8', 'replace').strip()[:200]}")
    text = result.stdout.decode("utf-8", "replace")
    start = text.find("\n@@")
    hunks = text[start + 1 :] if start >= 0 else ""
    if hunks.count("\n") > MAX_LINES:
        return None
    return hunks


def unified_diff(old: bytes | None, new: bytes | None, path: str, key: tuple[str, str]) -> str | None:
    """The unified diff of `path` from `old` to `new` (None: absent), or None when either side is not small text.

    `key` names the two contents (blob ids) for the cache.
    """
    sides = [b"" if data is None else data for data in (old, new)]
    if any(len(data) > MAX_BYTES or b"\0" in data for data in sides):
        return None
    cache_key = (key[0], key[1], path)
    with _lock:
        if cache_key in _cache:
            _cache.move_to_end(cache_key)
            return _cache[cache_key]
    hunks = _git_diff(*sides) if sides[0] != sides[1] else ""
    answer = None if hunks is None else (f"--- a/{path}\n+++ b/{path}\n{hunks}" if hunks else "")
    with _lock:
        _cache[cache_key] = answer
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    return answer
