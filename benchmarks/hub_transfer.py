"""Push and pull a ~100 MB checkpoint through the hub, as MB/s and as a ratio to ``cp`` on the same disk.

Usage: python benchmarks/hub_transfer.py [--size-mb 100] [--output hub_transfer.json] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


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


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--output", type=Path, default=Path("hub_transfer.json"))
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="hub-bench-", dir=args.workdir))
    server = None
    try:
        ckpt = work / "model.safetensors"
        size = _write_checkpoint(ckpt, args.size_mb)
        mb = size / 1e6

        cp_target = work / "copy.safetensors"
        cp_s = _timed(lambda: subprocess.run(["cp", str(ckpt), str(cp_target)], check=True))
        cp_target.unlink()

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
            ]
        )
        url = f"http://127.0.0.1:{port}"
        import httpx2 as httpx

        for _ in range(600):
            try:
                httpx.get(f"{url}/api/models", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)

        from huggingface_hub import HfApi, hf_hub_download

        api = HfApi(endpoint=url, token=token)
        api.create_repo("bench")
        push_s = _timed(
            lambda: api.upload_file(path_or_fileobj=str(ckpt), path_in_repo=ckpt.name, repo_id="bench/bench")
        )
        cache = work / "cache"
        pulled: list[str] = []
        pull_s = _timed(
            lambda: pulled.append(hf_hub_download("bench/bench", ckpt.name, endpoint=url, token=token, cache_dir=cache))
        )
        if Path(pulled[0]).stat().st_size != size:
            raise SystemExit("pulled file has the wrong size")

        rows = [
            {"operation": "cp (same disk)", "seconds": cp_s, "mb_per_s": mb / cp_s, "ratio_to_cp": 1.0},
            {
                "operation": "push (upload_file)",
                "seconds": push_s,
                "mb_per_s": mb / push_s,
                "ratio_to_cp": cp_s / push_s,
            },
            {
                "operation": "pull (hf_hub_download)",
                "seconds": pull_s,
                "mb_per_s": mb / pull_s,
                "ratio_to_cp": cp_s / pull_s,
            },
        ]
        report = {
            "file_bytes": size,
            "rows": rows,
            "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
            "note": "ratio_to_cp = cp seconds / operation seconds (1.0 = as fast as cp)",
        }
        print(f"{'operation':<26}{'seconds':>10}{'MB/s':>10}{'x cp':>8}")
        for row in rows:
            print(f"{row['operation']:<26}{row['seconds']:>10.2f}{row['mb_per_s']:>10.1f}{row['ratio_to_cp']:>8.3f}")
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
