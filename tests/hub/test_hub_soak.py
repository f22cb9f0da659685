"""Soak (issue #13): 60 s of anonymous expensive requests and 8 authenticated pushers against one server.

Bounded in time and count, loopback only. Every push lands or gets 412, every probe is answered (no 5xx), and
the server process stays under 1 GB RSS. Latencies are figures, not assertions: they are printed as a
``soak figures:`` line (run with ``-s``) and recorded quietly by ``python -m benchmarks.hub_soak``.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

import httpx2 as httpx
import psutil
import pytest
from hubtools import seeded_bytes
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

DURATION = float(os.environ.get("HUB_SOAK_SECONDS", "60"))
PUSHERS = 8
ANONYMOUS = 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "root"
    add = subprocess.run(
        [sys.executable, "-m", "hub_server", "add-user", "soak", "--root", str(root)],
        capture_output=True,
        text=True,
        check=True,
    )
    token = add.stdout.strip().splitlines()[-1]
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hub_server",
            "serve",
            "--root",
            str(root),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):  # wait until it answers
        try:
            httpx.get(f"{url}/api/models", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    try:
        yield url, token, proc
    finally:
        proc.terminate()
        proc.wait(30)


def _seed_repo(api: HfApi) -> str:
    repo_id = "soak/big"
    api.create_repo(repo_id)
    files = [CommitOperationAdd(f"d{i % 8}/f{i}.txt", f"v0 {i}".encode()) for i in range(300)]
    files.append(CommitOperationAdd("README.md", ("---\nlicense: mit\n---\n" + "text " * 80_000).encode()))
    api.create_commit(repo_id, files, commit_message="seed")
    for c in range(20):
        api.create_commit(repo_id, [CommitOperationAdd(f"d0/f{c}.txt", f"v{c}".encode())], commit_message=f"c{c}")
    return repo_id


def _anonymous_load(url: str, repo_id: str, deadline: float, errors: list, worker: int) -> None:
    card = "---\n" + "".join(f"key{i}: [{', '.join(map(str, range(20)))}]\n" for i in range(1200)) + "---\n"
    requests = [
        ("GET", f"/api/models/{repo_id}/tree/main?recursive=1&expand=1&limit=10000", {}),
        ("POST", "/api/validate-yaml", {"json": {"content": card}}),
        ("GET", f"/{repo_id}", {}),
        (
            "POST",
            f"/api/models/{repo_id}/paths-info/main",
            {"data": {"paths": ["d0", "d1", "README.md"], "expand": "1"}},
        ),
        ("GET", f"/{repo_id}/resolve/main/README.md", {"headers": {"range": "bytes=" + "9" * 5000 + "-"}}),
        ("GET", f"/{repo_id}/tree/main/d3", {}),
    ]
    i = worker
    with httpx.Client(base_url=url, timeout=120) as client:
        while time.monotonic() < deadline:
            method, path, kwargs = requests[i % len(requests)]
            i += 1
            r = client.request(method, path, **kwargs)
            if r.status_code >= 500:
                errors.append(f"{method} {path[:60]}: {r.status_code}")


def _cloner(url: str, repo_id: str, deadline: float, errors: list, tmp) -> None:
    n = 0
    while time.monotonic() < deadline:
        target = tmp / f"clone{n}"
        r = subprocess.run(["git", "clone", "-q", f"{url}/{repo_id}", str(target)], capture_output=True, timeout=300)
        if r.returncode != 0:
            errors.append(f"clone: {r.stderr[-200:]!r}")
        subprocess.run(["rm", "-rf", str(target)], check=False)
        n += 1


def _pusher(api: HfApi, repo_id: str, deadline: float, outcome: dict, errors: list, n: int) -> None:
    k = 0
    while time.monotonic() < deadline:
        head = api.model_info(repo_id).sha
        op = CommitOperationAdd(f"pushers/p{n}.bin", seeded_bytes(4096, seed=n * 100_000 + k))
        try:
            api.create_commit(repo_id, [op], commit_message=f"p{n} {k}", parent_commit=head)
            outcome["landed"] += 1
        except HfHubHTTPError as exc:
            if exc.response.status_code == 412:
                outcome["412"] += 1
            else:
                errors.append(f"push: {exc.response.status_code} {exc.response.text[:200]}")
        k += 1


@pytest.mark.slow
def test_soak_mixed_anonymous_load_and_racing_pushers(server, tmp_path):
    url, token, proc = server
    api = HfApi(endpoint=url, token=token)
    repo_id = _seed_repo(api)
    api.create_repo("soak/pushed")
    deadline = time.monotonic() + DURATION
    errors: list[str] = []
    outcome = {"landed": 0, "412": 0}
    threads = [
        threading.Thread(target=_anonymous_load, args=(url, repo_id, deadline, errors, w)) for w in range(ANONYMOUS)
    ]
    threads.append(threading.Thread(target=_cloner, args=(url, repo_id, deadline, errors, tmp_path)))
    threads += [
        threading.Thread(
            target=_pusher, args=(HfApi(endpoint=url, token=token), "soak/pushed", deadline, outcome, errors, n)
        )
        for n in range(PUSHERS)
    ]
    for thread in threads:
        thread.start()
    server_process = psutil.Process(proc.pid)
    latencies, rss = [], []
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=30) as client:
        while time.monotonic() < deadline:
            start = time.monotonic()
            r = client.get("/api/whoami-v2")
            latencies.append(time.monotonic() - start)
            if r.status_code != 200:
                errors.append(f"whoami: {r.status_code}")
            rss.append(server_process.memory_info().rss)
            time.sleep(0.2)  # pacing of the probe, not synchronisation
    for thread in threads:
        thread.join(300)
    latencies.sort()
    figures = {
        "whoami_p50_s": round(statistics.median(latencies), 3),
        "whoami_p99_s": round(latencies[int(len(latencies) * 0.99) - 1], 3),
        "whoami_max_s": round(latencies[-1], 3),
        "probes": len(latencies),
        "server_rss_max_mb": max(rss) >> 20,
        "pushes": outcome,
        "load_1min": os.getloadavg()[0],
    }
    print("soak figures:", json.dumps(figures))
    assert not errors, errors[:10]
    assert outcome["landed"] >= 1
    assert figures["server_rss_max_mb"] < 1024, figures
