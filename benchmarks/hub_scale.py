"""The hub beyond one process: pull throughput with 1 and 2 replicas behind nginx, and the API's CPU per GB
pulled when the object store serves the bytes.

Everything runs on this machine, started by the script: PostgreSQL (the distribution's server, in a temp
dir), moto's S3-API server, nginx, and ``hub serve`` replicas sharing one database and one git volume.

1. Pulls per second of a 10 MiB file by 16 concurrent clients (``curl``, plain GET of ``resolve``), objects on
   the shared volume so the bytes pass through the replicas: one replica behind nginx, then two.
2. API CPU seconds per GB pulled: the replica's own CPU time (user + system) while clients pull the file,
   with the S3 object store (the hub answers with a redirect to a presigned URL) and, for contrast, with
   objects on the local volume.

Usage: python -m benchmarks.hub_scale [--seconds 20] [--clients 16] [--output benchmarks/hub_scale.json]
Writes its section of BENCHMARKS.md between the ``hub-scale`` markers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from backends import Backends, free_port, nginx, start_hub  # noqa: E402

from benchmarks.sections import markers, write_section  # noqa: E402

FILE_SIZE = 10 * 1024 * 1024
LARGE_FILE_SIZE = 256 * 1024 * 1024
MARK_START, MARK_END = markers("hub-scale")


def _seed_repo(url: str, token: str, data: bytes) -> str:
    """A public repo holding ``file.bin`` as an LFS object (the LFS path of the client)."""
    import huggingface_hub.constants
    from huggingface_hub import HfApi

    huggingface_hub.constants.HF_HUB_DISABLE_XET = True
    api = HfApi(endpoint=url, token=token)
    repo_id = f"bench/scale-{secrets.token_hex(4)}"
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=data, path_in_repo="file.bin", repo_id=repo_id)
    return repo_id


def _pull_loop(url: str, seconds: float, clients: int, follow: bool) -> tuple[int, float]:
    """``clients`` workers pulling ``url`` with curl for ``seconds``; returns (completed pulls, elapsed)."""
    done = [0] * clients
    stop_at = time.monotonic() + seconds
    command = ["curl", "-sf", "-o", "/dev/null", *(["-L"] if follow else []), url]

    def worker(i: int) -> None:
        while time.monotonic() < stop_at:
            if subprocess.run(command, check=False).returncode == 0:
                done[i] += 1

    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done), time.monotonic() - start


def _cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


class _Replicas:
    def __init__(self, root: Path, env: dict[str, str], count: int) -> None:
        self.ports = [free_port() for _ in range(count)]
        self.procs = [start_hub(root, port, "--lfs-mode", "always", env=env) for port in self.ports]

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


def _throughput(backends: Backends, work: Path, data: bytes, seconds: float, clients: int) -> dict:
    """Pulls per second with 1 and 2 replicas behind nginx (objects on the shared volume)."""
    env = {
        **backends.hub_env(),
        "HUB_SECRET_KEY": secrets.token_hex(32),
        "HUB_OBJECT_STORE": str(work / "objects"),
    }
    root = work / "volume"
    token = _add_user(root, env)
    out = {}
    repo_id = None
    for count in (1, 2):
        replicas = _Replicas(root, env, count)
        try:
            with nginx(replicas.ports) as balancer:
                repo_id = repo_id or _seed_repo(balancer.url, token, data)
                url = f"{balancer.url}/{repo_id}/resolve/main/file.bin"
                _pull_loop(url, 2, clients, follow=False)  # warm-up
                pulls, elapsed = _pull_loop(url, seconds, clients, follow=False)
                out[f"{count}_replica"] = {"pulls": pulls, "seconds": elapsed, "pulls_per_s": pulls / elapsed}
                print(f"  {count} replica(s) behind nginx: {pulls / elapsed:.1f} pulls/s ({pulls} in {elapsed:.1f} s)")
        finally:
            replicas.stop()
    out["speedup"] = out["2_replica"]["pulls_per_s"] / out["1_replica"]["pulls_per_s"]
    return out


def _cpu_per_gb(backends: Backends, work: Path, data: bytes, seconds: float, clients: int, s3: bool) -> dict:
    """The replica's CPU seconds per GB pulled, with the object store serving the bytes (S3) or the hub."""
    env = {**backends.hub_env(), "HUB_SECRET_KEY": secrets.token_hex(32)}
    name = ("s3" if s3 else "local") + f"-{len(data) >> 20}"
    if not s3:
        env["HUB_OBJECT_STORE"] = str(work / f"objects-{name}")
    root = work / f"volume-{name}"
    token = _add_user(root, env)
    replicas = _Replicas(root, env, 1)
    try:
        url = f"http://127.0.0.1:{replicas.ports[0]}"
        repo_id = _seed_repo(url, token, data)
        file_url = f"{url}/{repo_id}/resolve/main/file.bin"
        before = _cpu_seconds([p.pid for p in replicas.procs])
        pulls, elapsed = _pull_loop(file_url, seconds, clients, follow=True)
        cpu = _cpu_seconds([p.pid for p in replicas.procs]) - before
    finally:
        replicas.stop()
    gigabytes = pulls * len(data) / 1e9
    result = {"pulls": pulls, "seconds": elapsed, "gb": gigabytes, "api_cpu_s": cpu, "cpu_s_per_gb": cpu / gigabytes}
    result.update(file_bytes=len(data), cpu_ms_per_pull=cpu / max(pulls, 1) * 1000)
    print(
        f"  {name}, {len(data) >> 20} MiB file: {cpu:.2f} s API CPU for {gigabytes:.2f} GB = {cpu / gigabytes:.3f} s/GB"
        f" ({pulls} pulls, {result['cpu_ms_per_pull']:.1f} ms per pull)"
    )
    return result


def _add_user(root: Path, env: dict[str, str]) -> str:
    command = [sys.executable, "-m", "hub_server", "add-user", "bench", "--root", str(root)]
    result = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1]


def _cells(row: dict) -> str:
    return f"{row['cpu_s_per_gb']:.3f} | {row['cpu_ms_per_pull']:.1f}"


def _markdown(results: dict) -> str:
    t, cpu = results["throughput"], results["cpu"]
    s3, local, large = cpu["s3"], cpu["local"], cpu["s3_large"]
    return f"""{MARK_START}
## Hub beyond one machine

Command: `.venv/bin/python -m benchmarks.hub_scale` ({results["seconds"]:.0f} s per measurement,
{results["clients"]} concurrent `curl` clients, a 10 MiB file). Machine: {results["machine"]}. PostgreSQL, moto's
S3-API server, nginx and the replicas all run on this machine, so the clients, the balancer and the replicas
share its cores.

| pulls of a 10 MiB file, {results["clients"]} clients, objects on the shared volume | pulls/s |
|---|---:|
| 1 replica behind nginx | {t["1_replica"]["pulls_per_s"]:.1f} |
| 2 replicas behind nginx | {t["2_replica"]["pulls_per_s"]:.1f} ({t["speedup"]:.2f}×) |

| API CPU per GB pulled (one replica) | CPU s / GB | CPU ms / pull |
|---|---:|---:|
| S3 object store, 10 MiB file (the hub answers a redirect to a presigned URL) | {_cells(s3)} |
| S3 object store, 256 MiB file (4 clients) | {_cells(large)} |
| objects on the hub's volume, 10 MiB file (bytes pass through the hub) | {_cells(local)} |

With the object store serving the bytes, the hub's cost is per request (authorisation, git and metadata
lookups, signing: the milliseconds above), not per byte: it shrinks toward zero per GB as files grow.
{MARK_END}
"""


def main(argv: list[str] | None = None) -> int:
    """Run both measurements, print them, write the JSON and the BENCHMARKS.md section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "hub_scale.json")
    args = parser.parse_args(argv)
    if not shutil.which("curl"):
        print("error: curl is needed for the clients", file=sys.stderr)
        return 2
    data = random.Random(0).randbytes(FILE_SIZE)
    work = Path(tempfile.mkdtemp(prefix="hub-scale-"))
    backends = Backends()
    os.environ.update(backends.s3.env())
    try:
        print("pull throughput, objects on the shared volume:")
        throughput = _throughput(backends, work, data, args.seconds, args.clients)
        print("API CPU per GB pulled:")
        rng = random.Random(1)
        large = b"".join(rng.randbytes(1 << 20) for _ in range(LARGE_FILE_SIZE >> 20))
        cpu = {
            "s3": _cpu_per_gb(backends, work, data, args.seconds, args.clients, s3=True),
            "local": _cpu_per_gb(backends, work, data, args.seconds, args.clients, s3=False),
            "s3_large": _cpu_per_gb(backends, work, large, args.seconds, 4, s3=True),
        }
    finally:
        backends.stop()
        shutil.rmtree(work, ignore_errors=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores"
    results = {"seconds": args.seconds, "clients": args.clients, "machine": machine}
    results.update(throughput=throughput, cpu=cpu)
    args.output.write_text(json.dumps(results, indent=1))
    write_section(ROOT / "BENCHMARKS.md", "hub-scale", _markdown(results))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
