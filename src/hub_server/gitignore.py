"""``.gitignore`` matching, as the Hub applies a repo's ``.gitignore`` to uploads (``shouldIgnore``).

Supports git's rules that matter for files: comments, ``!`` negation (last match wins), ``/`` anchoring,
trailing ``/`` (a folder: everything below it), ``*``, ``?``, ``[…]`` and ``**``.
"""

from __future__ import annotations

import re

MAX_PATTERNS = 2000


def _translate(pattern: str) -> re.Pattern[str]:
    anchored = "/" in pattern.rstrip("/")
    folder = pattern.endswith("/")
    body = pattern.strip("/")
    out, i = "", 0
    while i < len(body):
        c = body[i]
        if body.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if body.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = body.find("]", i + 1)
            if end == -1:
                out += re.escape(c)
            else:
                out += "[" + body[i + 1 : end].replace("!", "^", 1).replace("\\", "\\\\") + "]"
                i = end
        else:
            out += re.escape(c)
        i += 1
    prefix = "" if anchored else "(?:.*/)?"
    # a pattern matches the path itself or (as a folder) anything below it
    suffix = "/.*" if folder else "(?:/.*)?"
    return re.compile(f"^{prefix}{out}{suffix}$")


class GitIgnore:
    """Compiled ``.gitignore`` rules."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for line in text.splitlines()[:MAX_PATTERNS]:
            line = line.rstrip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:]
            if line.startswith("\\"):
                line = line[1:]
            if line.strip("/"):
                self.rules.append((negate, _translate(line)))

    def ignored(self, path: str) -> bool:
        """Whether ``path`` (a file path in the repo) is ignored."""
        result = False
        for negate, regex in self.rules:
            if regex.match(path):
                result = not negate
        return result
