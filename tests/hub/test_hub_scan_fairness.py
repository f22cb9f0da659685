"""Scan slots are shared fairly (hardening round 2): one user's backlog of crafted files delays another user's small
upload by at most one scan per slot, not by the whole backlog. Observed with events, never with a clock."""

from __future__ import annotations

import threading

import pytest

from hub_server.scanning import runner
from hub_server.scanning.runner import FairSlots


def _waiter(pool: FairSlots, owner: str, release: threading.Event) -> threading.Thread:
    def hold() -> None:
        with pool.held(owner):
            release.wait(30)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    return thread


def _wait_until(condition) -> None:
    done = threading.Event()
    for _ in range(3000):  # polls the pool's state (a condition, not a duration)
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("the pool never reached the expected state")


def test_another_users_scan_is_served_before_a_backlog():
    pool = FairSlots(1)
    release = threading.Event()
    threads = [_waiter(pool, "mallory", release)]
    _wait_until(lambda: pool.granted == ["mallory"])
    threads += [_waiter(pool, "mallory", release) for _ in range(3)]
    _wait_until(lambda: len(pool.waiting.get("mallory", ())) == 3)
    threads.append(_waiter(pool, "alice", release))
    _wait_until(lambda: "alice" in pool.waiting)
    release.set()
    for thread in threads:
        thread.join(30)
    assert pool.granted == ["mallory", "mallory", "alice", "mallory", "mallory"]
    assert pool.free == 1 and not pool.waiting


@pytest.mark.parametrize("slots", [2, 3])
def test_every_slot_is_used_and_freed(slots):
    pool = FairSlots(slots)
    release = threading.Event()
    threads = [_waiter(pool, f"user{i % 2}", release) for i in range(slots + 3)]
    _wait_until(lambda: len(pool.granted) == slots)
    assert pool.free == 0
    release.set()
    for thread in threads:
        thread.join(30)
    assert len(pool.granted) == slots + 3 and pool.free == slots


def test_a_commit_scans_as_its_author(hub, repo, monkeypatch):
    api, repo_id = repo
    seen = []
    real = runner.FairSlots.held

    def held(self, owner):
        seen.append(owner)
        return real(self, owner)

    monkeypatch.setattr(runner.FairSlots, "held", held)
    api.upload_file(path_or_fileobj=b"I42\n.", path_in_repo="n.pkl", repo_id=repo_id)
    assert seen == ["alice"]
