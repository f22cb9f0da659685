"""Running the sandbox: one subprocess per file, with memory, CPU, size, output and wall-clock limits.

A process-wide semaphore bounds how many scans run at once; the request that waits for a scan holds a
worker thread, never the event loop, and the scan's CPU and memory are the subprocess's, not the server's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
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


_semaphores: dict[int, threading.BoundedSemaphore] = {}
_guard = threading.Lock()


def _semaphore(workers: int) -> threading.BoundedSemaphore:
    with _guard:
        return _semaphores.setdefault(workers, threading.BoundedSemaphore(workers))


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
    with _semaphore(limits.workers):
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
