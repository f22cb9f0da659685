"""Running the sandbox: one subprocess per file, with memory, CPU, size, output and wall-clock limits.

A process-wide pool of slots bounds how many scans run at once, shared fairly: waiting scans are served round-robin
by owner (the committing user), so one user's backlog delays another user's upload by at most one scan per slot,
not by the whole backlog. The request that waits for a scan holds a worker thread, never the event loop, and the
scan's CPU and memory are the subprocess's, not the server's.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import dataclasses
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

SANDBOX = Path(__file__).with_name("sandbox.py")
MAX_OUTPUT = 1 << 20


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one scan may use."""

    timeout: float = 120.0  # wall clock, seconds (CPU time gets the same number)
    memory: int = 1 << 30  # address space of the subprocess
    max_bytes: int = 4 << 30  # bytes read out of decompressors and archives, at most…
    ratio: int = 1100  # …and at most this many times the file's size…
    floor: int = 128 << 20  # …unless that is below this floor
    workers: int = 2  # scans at once per server process


_owner: contextvars.ContextVar[str] = contextvars.ContextVar("scan_owner", default="")


@contextlib.contextmanager
def scans_for(owner: str) -> Iterator[None]:
    """Scans started inside this block wait in ``owner``'s queue (a user's, for the files of their commit)."""
    token = _owner.set(owner)
    try:
        yield
    finally:
        _owner.reset(token)


class FairSlots:
    """``slots`` concurrent holders, granted round-robin across owners (first come, first served within one)."""

    def __init__(self, slots: int) -> None:
        self.free = slots
        self.waiting: collections.OrderedDict[str, collections.deque[object]] = collections.OrderedDict()
        self.granted: list[str] = []  # owners in the order they got a slot (the last 1000): what tests observe
        self._cond = threading.Condition()

    def _first(self) -> object | None:
        for queue in self.waiting.values():
            return queue[0]
        return None

    @contextlib.contextmanager
    def held(self, owner: str) -> Iterator[None]:
        """Hold a slot for the block, after the owners ahead in the rotation have had theirs."""
        ticket = object()
        with self._cond:
            self.waiting.setdefault(owner, collections.deque()).append(ticket)
            self._cond.notify_all()
            while not (self.free > 0 and self._first() is ticket):
                self._cond.wait()
            self.free -= 1
            queue = self.waiting.pop(owner)
            queue.popleft()
            if queue:  # the owner's next scan waits behind everyone now waiting
                self.waiting[owner] = queue
            self.granted = [*self.granted[-999:], owner]
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self.free += 1
                self._cond.notify_all()


_pools: dict[int, FairSlots] = {}
_guard = threading.Lock()


def slots(workers: int) -> FairSlots:
    """The process's scan slots for a number of workers."""
    with _guard:
        return _pools.setdefault(workers, FairSlots(workers))


def run_sandbox(path: Path, limits: Limits, tmp_dir: Path | None = None) -> dict:
    """The sandbox's findings for ``path`` (``{"limit": why}`` when a limit was hit or the scan died)."""
    args = {
        "memory": limits.memory,
        "cpu": max(1, int(limits.timeout)),
        "max_bytes": limits.max_bytes,
        "ratio": limits.ratio,
        "floor": limits.floor,
        "tmp": str(tmp_dir) if tmp_dir else None,
    }
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"}
    with slots(limits.workers).held(_owner.get()):
        proc = subprocess.Popen(
            [sys.executable, "-E", "-s", str(SANDBOX), str(path), json.dumps(args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(tmp_dir) if tmp_dir else None,
        )
        try:
            out, err = proc.communicate(timeout=limits.timeout + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return {"limit": f"took longer than {limits.timeout:.0f} s"}
    if proc.returncode != 0 or len(out) > MAX_OUTPUT:
        return {"limit": _death(proc.returncode, err)}
    try:
        found = json.loads(out)
    except ValueError:
        return {"limit": "the scanner's answer was unreadable"}
    return found if isinstance(found, dict) else {"limit": "the scanner's answer was unreadable"}


def _death(returncode: int, err: bytes) -> str:
    text = err.decode("utf-8", "replace")
    if "MemoryError" in text:
        return "ran out of its memory limit"
    if returncode in (-9, -24, 137, 152):  # SIGKILL / SIGXCPU
        return "ran out of its CPU time limit"
    last = text.strip().splitlines()[-1:] or [f"exit status {returncode}"]
    return f"the scanner failed ({last[0][:200]})"
