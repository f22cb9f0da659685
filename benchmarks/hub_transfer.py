"""Push and pull a ~100 MB checkpoint through the hub, as MB/s and as a ratio to ``cp`` on the same disk.

Each run times, in this order: ``cp``, ``cp`` followed by ``os.fsync`` of the copy, the client's own commit-body
encoding (read + base64 + JSON, as huggingface_hub does for a "regular" file), a push (``upload_file``) and a
pull (``hf_hub_download`` into an empty cache). Medians over ``--runs`` runs are reported.

Usage: python benchmarks/hub_transfer.py [--size-mb 100] [--runs 3] [--output hub_transfer.json] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_checkpoint(path: Path, size_mb: int) -> int:
    import torch
    from safetensors.torch import save_file

    numel = size_mb * 1024 * 1024 // 4
    save_file({"weight": torch.randn(numel, generator=torch.Generator().manual_seed(0))}, str(path))
    return path.stat().st_size


def _timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def _cp_fsync(src: Path, dst: Path) -> None:
    subprocess.run(["cp", str(src), str(dst)], check=True)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _client_encode(path: Path) -> int:
    """What huggingface_hub does locally for one "regular" file: sha256, then read, base64 and JSON-encode it."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    with open(path, "rb") as fh:
        content = base64.b64encode(fh.read()).decode()
    items = [
        {"key": "header", "value": {"summary": "Upload", "description": ""}},
        {"key": "file", "value": {"content": content, "path": path.name, "encoding": "base64"}},
    ]
    return len(b"".join(json.dumps(item).encode() + b"\n" for item in items))


def _wait_ready(url: str) -> None:
    import httpx2 as httpx

    for _ in range(600):
        try:
            httpx.get(f"{url}/api/models", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the hub server did not start")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path("hub_transfer.json"))
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="hub-bench-", dir=args.workdir))
    server = None
    try:
        ckpt = work / "model.safetensors"
        size = _write_checkpoint(ckpt, args.size_mb)
        mb = size / 1e6

        root, port = work / "hub-root", _free_port()
        token = (
            subprocess.run(
                [sys.executable, "-m", "hub_server", "add-user", "bench", "--root", str(root)],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "hub_server", "serve", "--root", str(root), "--port", str(port)]
            + ["--log-level", "warning"]
        )
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url)

        from huggingface_hub import HfApi, hf_hub_download

        api = HfApi(endpoint=url, token=token)
        times: dict[str, list[float]] = {"cp": [], "cp+fsync": [], "client encode": [], "push": [], "pull": []}
        for run in range(args.runs):
            target = work / "copy.safetensors"
            times["cp"].append(_timed(subprocess.run, ["cp", str(ckpt), str(target)], check=True)[0])
            target.unlink()
            times["cp+fsync"].append(_timed(_cp_fsync, ckpt, target)[0])
            target.unlink()
            times["client encode"].append(_timed(_client_encode, ckpt)[0])
            repo_id = f"bench/bench-{run}"
            api.create_repo(repo_id)
            seconds, _ = _timed(api.upload_file, path_or_fileobj=str(ckpt), path_in_repo=ckpt.name, repo_id=repo_id)
            times["push"].append(seconds)
            cache = work / f"cache-{run}"
            seconds, pulled = _timed(hf_hub_download, repo_id, ckpt.name, endpoint=url, token=token, cache_dir=cache)
            times["pull"].append(seconds)
            if Path(pulled).stat().st_size != size:
                raise SystemExit("pulled file has the wrong size")
            shutil.rmtree(cache)

        medians = {name: statistics.median(values) for name, values in times.items()}
        rows = [
            {
                "operation": name,
                "seconds": seconds,
                "runs": times[name],
                "mb_per_s": mb / seconds,
                "ratio_to_cp": medians["cp"] / seconds,
                "ratio_to_cp_fsync": medians["cp+fsync"] / seconds,
            }
            for name, seconds in medians.items()
        ]
        report = {
            "file_bytes": size,
            "runs": args.runs,
            "rows": rows,
            "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
            "note": "median seconds; ratio_to_cp = cp seconds / operation seconds (1.0 = as fast as cp); "
            "ratio_to_cp_fsync uses cp followed by os.fsync (the baseline for a durable write)",
        }
        print(f"{'operation':<16}{'seconds':>9}{'MB/s':>9}{'x cp':>8}{'x cp+fsync':>12}   runs (s)")
        for row in rows:
            runs = " ".join(f"{t:.2f}" for t in row["runs"])
            print(
                f"{row['operation']:<16}{row['seconds']:>9.2f}{row['mb_per_s']:>9.1f}"
                f"{row['ratio_to_cp']:>8.3f}{row['ratio_to_cp_fsync']:>12.3f}   {runs}"
            )
        args.output.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.output}")
        return 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
