"""What repo pages read from a revision's files, bounded and cached by content.

Any visitor may ask for any page, so a page reads at most ``MAX_CARD_BYTES`` of README.md and
``MAX_CONFIG_BYTES`` of each config file, and keeps what it made of them (rendered HTML, the few config keys
the remote-code banner needs) in an LRU cache keyed by the file's blob id: a repeated view costs a few
tree lookups. A config too large to read is reported, never silently skipped: the banner then warns that
the repo may run custom code.
"""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Callable
from typing import TypeVar

from resnet_toolkit.remote_code import CONFIG_FILES

from .. import errors
from ..storage import HubStorage, RepoRef
from .render import front_matter_split, markdown

MAX_CARD_BYTES = 512 * 1024
MAX_CONFIG_BYTES = 1024 * 1024
T = TypeVar("T")


class _Lru:
    """A small thread-safe LRU of immutable values keyed by blob id."""

    def __init__(self, size: int) -> None:
        self._data: collections.OrderedDict[str, object] = collections.OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get_or_make(self, key: str, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]  # type: ignore[return-value]
        value = make()
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return value


_cards = _Lru(256)
_configs = _Lru(1024)


def _entry(storage: HubStorage, ref: RepoRef, sha: str, path: str):
    try:
        return storage.stat(ref, sha, path)[1]
    except errors.EntryNotFound:
        return None


def model_card(storage: HubStorage, ref: RepoRef, sha: str) -> str:
    """The README's Markdown body as HTML ("" without a README; a note when it is too large to show)."""
    entry = _entry(storage, ref, sha, "README.md")
    if entry is None:
        return ""
    if entry.size > MAX_CARD_BYTES:
        return f"<p><em>README.md is {entry.size:,} bytes, too large to show here; download it instead.</em></p>"

    def render() -> str:
        text = b"".join(storage.iter_entry(ref, entry)).decode("utf-8", "replace")
        return markdown.render(front_matter_split(text)[1])

    return _cards.get_or_make(entry.etag, render)


def config_files(storage: HubStorage, ref: RepoRef, sha: str) -> tuple[dict[str, dict], list[str]]:
    """The config files that name remote code, reduced to the keys that do so; and those too large to read."""
    found: dict[str, dict] = {}
    too_large: list[str] = []
    for name in CONFIG_FILES:
        entry = _entry(storage, ref, sha, name)
        if entry is None:
            continue
        if entry.size > MAX_CONFIG_BYTES:
            too_large.append(name)
            continue

        def parse(entry=entry) -> dict:
            try:
                data = json.loads(b"".join(storage.iter_entry(ref, entry)))
            except (ValueError, UnicodeDecodeError, RecursionError):
                return {}
            return {k: data[k] for k in ("auto_map", "custom_pipelines") if k in data} if isinstance(data, dict) else {}

        found[name] = _configs.get_or_make(entry.etag, parse)
    return found, too_large
