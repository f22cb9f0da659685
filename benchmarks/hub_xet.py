"""Xet transfers through the hub: push and pull of large files with the default client, against ``cp`` + ``sync``.

For each size (default 1 GiB and 2 GiB) one run times, in this order: ``cp`` of the file followed by ``sync``;
a push (``HfApi.upload_file``, which goes through Xet with hf_xet installed); a pull (``hf_hub_download`` into
an empty cache, through Xet); a plain ``GET /resolve`` streamed from the xorbs (what curl, git-lfs and the 0.x
client do); and a re-push of the unchanged file. The hub runs as a separate process whose peak resident
memory (``VmHWM``) is read after the push and after the pulls. A second part pushes the file, changes 1 MiB in
its middle, pushes again, and pushes the same file to a second repo, reading from the hub's own counters how
many bytes each push sent and stored.

Usage: python -m benchmarks.hub_xet [--sizes-mb 1024 2048] [--workdir DIR] [--output benchmarks/hub_xet.json]
                                    [--markdown BENCHMARKS.md | --no-markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from benchmarks.hub_transfer import _free_port, _wait_ready
from benchmarks.sections import markers, write_section

ROOT = Path(__file__).resolve().parents[1]

MiB = 1 << 20
START, END = markers("hub_xet")


def _write_file(path: Path, size: int, seed: int = 0) -> None:
    """Seeded, incompressible bytes (like trained weights, which Xet's LZ4 barely shrinks)."""
    rng = np.random.default_rng(seed)
    with open(path, "wb") as fh:
        for offset in range(0, size, 64 * MiB):
            fh.write(rng.bytes(min(64 * MiB, size - offset)))
    os.sync()


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def _cp_sync(src: Path, dst: Path) -> None:
    subprocess.run(["cp", str(src), str(dst)], check=True)
    os.sync()


def _peak_rss(pid: int) -> int:
    """The process's peak resident set size in bytes (``VmHWM``)."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) * 1024


def _reset_peak(pid: int) -> None:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


class _RssSampler:
    """The largest RSS psutil sees for a process, sampled every 20 ms (a cross-check of ``VmHWM``)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return

    def take(self) -> int:
        """The peak since the last call."""
        peak, self.peak = self.peak, 0
        return peak

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class _Server:
    """``python -m hub_server serve`` in its own process, with one user."""

    def __init__(self, root: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "hub_server"]
        out = subprocess.run(
            [*cmd, "add-user", "bench", "--root", str(root)], check=True, capture_output=True, text=True
        )
        self.token = out.stdout.strip().splitlines()[-1]
        serve = [*cmd, "serve", "--root", str(root), "--port", str(self.port), "--log-level", "warning"]
        self.proc = subprocess.Popen(serve)
        _wait_ready(self.url)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _plain_get(url: str, token: str, path: str, size: int) -> None:
    import httpx2 as httpx

    got = 0
    with httpx.stream("GET", f"{url}/{path}", headers={"authorization": f"Bearer {token}"}, timeout=600) as response:
        response.raise_for_status()
        for piece in response.iter_bytes(4 * MiB):
            got += len(piece)
    if got != size:
        raise SystemExit(f"plain GET returned {got} bytes, expected {size}")


def transfer_run(work: Path, size: int) -> dict:
    """cp+sync, push, pull, plain GET and re-push of one file; the hub's peak RSS during each."""
    from huggingface_hub import HfApi, hf_hub_download

    source = work / "weights.bin"
    _write_file(source, size)
    copy = work / "copy.bin"
    cp_seconds, _ = _timed(_cp_sync, source, copy)
    copy.unlink()
    os.sync()
    server = _Server(work / f"hub-{size}")
    sampler = _RssSampler(server.proc.pid)
    seconds: dict[str, float] = {"cp+sync": cp_seconds}
    rss: dict[str, int] = {}

    def phase(name: str, fn, *args, **kwargs):
        _reset_peak(server.proc.pid)
        sampler.take()
        seconds[name], result = _timed(fn, *args, **kwargs)
        rss[name] = max(_peak_rss(server.proc.pid), sampler.take())
        return result

    try:
        api = HfApi(endpoint=server.url, token=server.token)
        repo, cache = "bench/xet", work / "cache"
        api.create_repo(repo)
        phase("push", api.upload_file, path_or_fileobj=str(source), path_in_repo="weights.bin", repo_id=repo)
        pulled = phase("pull", hf_hub_download, repo, "weights.bin", endpoint=server.url, token=server.token,
                       cache_dir=cache)  # fmt: skip
        if Path(pulled).stat().st_size != size:
            raise SystemExit("pulled file has the wrong size")
        shutil.rmtree(cache)
        phase("plain GET", _plain_get, server.url, server.token, f"{repo}/resolve/main/weights.bin", size)
        phase("re-push", api.upload_file, path_or_fileobj=str(source), path_in_repo="weights.bin", repo_id=repo)
    finally:
        sampler.close()
        server.close()
        shutil.rmtree(work / f"hub-{size}", ignore_errors=True)
        source.unlink(missing_ok=True)
    ratios = {name: cp_seconds / seconds[name] for name in ("push", "pull", "plain GET")}
    return {"bytes": size, "seconds": seconds, "ratio_to_cp_sync": ratios, "server_peak_rss": rss}


def dedup_run(work: Path, size: int) -> dict:
    """Bytes sent and stored by a push, a push after a 1 MiB change, and a push of the same file to a second repo."""
    from huggingface_hub import HfApi

    from hub_server import running_hub

    source = work / "dedup.bin"
    _write_file(source, size, seed=1)
    os.environ["HF_XET_CACHE"] = str(work / "xet-cache")
    out = {"bytes": size}
    with running_hub(work / "hub-dedup") as hub:
        token = hub.add_user("bench")
        api = HfApi(endpoint=hub.url, token=token)
        stats = hub.storage.xet.stats

        def push(label: str, repo: str) -> None:
            before_sent, before_stored = stats["xorb_bytes_received"], hub.storage.xet.index.stored_bytes()
            api.create_repo(repo, exist_ok=True)
            api.upload_file(path_or_fileobj=str(source), path_in_repo="weights.bin", repo_id=repo)
            out[label] = {
                "sent": stats["xorb_bytes_received"] - before_sent,
                "stored": hub.storage.xet.index.stored_bytes() - before_stored,
            }

        push("first push", "bench/a")
        with open(source, "r+b") as fh:
            fh.seek(size // 2)
            fh.write(np.random.default_rng(2).bytes(MiB))
        push("1 MiB changed", "bench/a")
        push("same file, second repo", "bench/b")
    source.unlink()
    return out


def _gb(value: int) -> str:
    return f"{value / 1e9:.2f} GB" if value >= 1e8 else f"{value / 1e6:.1f} MB"


def render(report: dict) -> str:
    """The BENCHMARKS.md section."""
    lines = [
        START,
        "## Hub Xet push / pull",
        "",
        "`python -m benchmarks.hub_xet`: incompressible files pushed with `HfApi.upload_file` and pulled with",
        "`hf_hub_download` (huggingface_hub 2.x + hf_xet, default settings: both go through Xet) against a hub",
        "started as its own process; ratios are `cp` + `sync` seconds / operation seconds, measured in the same run",
        "(1.0 = as fast as a durable copy). Peak RSS is the hub process's `VmHWM` during each phase.",
        "",
        "| file | cp+sync s | push s | push × | pull s | pull × | plain GET × | re-push s | hub peak RSS push / pull |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in report["transfers"]:
        s, r, m = run["seconds"], run["ratio_to_cp_sync"], run["server_peak_rss"]
        lines.append(
            f"| {_gb(run['bytes'])} | {s['cp+sync']:.2f} | {s['push']:.2f} | {r['push']:.2f}× | {s['pull']:.2f} | "
            f"{r['pull']:.2f}× | {r['plain GET']:.2f}× | {s['re-push']:.2f} | "
            f"{m['push'] / 1e6:.0f} MB / {max(m['pull'], m['plain GET']) / 1e6:.0f} MB |"
        )
    dedup = report.get("dedup")
    if dedup:
        lines += [
            "",
            f"Deduplication, {_gb(dedup['bytes'])} file (bytes of xorbs sent by the client / newly stored):",
            "",
        ]
        lines += ["| push | sent | stored |", "|---|---:|---:|"]
        for label in ("first push", "1 MiB changed", "same file, second repo"):
            lines.append(f"| {label} | {_gb(dedup[label]['sent'])} | {_gb(dedup[label]['stored'])} |")
    machine = report["machine"]
    load = machine.get("load_average")
    busy = f" 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end." if load else ""
    lines += ["", f"Machine: {machine['cpus']} CPUs, Python {machine['python']}, {machine['platform']}.{busy}", END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the figures, write JSON and the BENCHMARKS.md section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--dedup-mb", type=int, default=256, help="file size of the dedup part (0 skips it)")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "hub_xet.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--no-markdown", action="store_true")
    parser.add_argument("--render", type=Path, help="only write the section for the figures in this JSON file")
    args = parser.parse_args(argv)
    if args.render:
        write_section(args.markdown, "hub_xet", render(json.loads(args.render.read_text())))
        return 0

    work = Path(tempfile.mkdtemp(prefix="hub-xet-bench-", dir=args.workdir))
    start_load = os.getloadavg()[0]
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ["HF_HOME"] = str(work / "hf-home")
    try:
        report: dict = {"transfers": [], "machine": {"python": platform.python_version(),
                        "platform": platform.platform(), "cpus": os.cpu_count()}}  # fmt: skip
        for size_mb in args.sizes_mb:
            run = transfer_run(work, size_mb * MiB)
            report["transfers"].append(run)
            print(json.dumps(run))
        if args.dedup_mb:
            report["dedup"] = dedup_run(work, args.dedup_mb * MiB)
            print(json.dumps(report["dedup"]))
        report["machine"]["load_average"] = [start_load, os.getloadavg()[0]]
        section = render(report)
        print(section)
        args.output.write_text(json.dumps(report, indent=2))
        if not args.no_markdown:
            write_section(args.markdown, "hub_xet", section)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
