"""Bounded concurrency for expensive work any caller can ask for.

Sync routes share one thread pool (40 threads). Work whose cost an anonymous caller chooses (history walks
for ``expand``, YAML parsing, page rendering, ``git upload-pack``) runs instead under a small limiter of its
own class: past it, requests wait on the event loop without holding a pool thread, so cheap requests
(``whoami``, downloads) keep being served.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import anyio
from fastapi import Request

T = TypeVar("T")
CAPACITY = {"expand": 2, "yaml": 1, "pages": 2, "upload-pack": 4}  # GIL-bound work: few threads


def _per_app(request: Request, registry: str, name: str, make: Callable[[int], T]) -> T:
    """One object per app and class of work, created on first use (inside the app's event loop)."""
    state = request.app.state
    items = getattr(state, registry, None)
    if items is None:
        items = {}
        setattr(state, registry, items)
    if name not in items:
        items[name] = make(CAPACITY[name])
    return items[name]


def limiter(request: Request, name: str) -> anyio.CapacityLimiter:
    """The app's limiter for a class of work run in worker threads."""
    return _per_app(request, "limiters", name, anyio.CapacityLimiter)


async def run_limited(request: Request, kind: str, fn: Callable[..., T], /, *args, **kwargs) -> T:
    """Run ``fn`` in a worker thread under the limiter of its class of work (``kind``)."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=limiter(request, kind))


def semaphore(request: Request, name: str) -> anyio.Semaphore:
    """The app's semaphore for work held across a streamed response (released by whichever task ends it)."""
    return _per_app(request, "semaphores", name, anyio.Semaphore)
