"""Load time and peak memory, each load in a fresh process: our `from_pretrained` vs timm + safetensors."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _peak_rss() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _status() -> dict[str, int]:
    """Resident memory (`VmRSS`) and its anonymous part (`RssAnon`) in bytes, from /proc/self/status."""
    out = {}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "RssAnon"):
                    out[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


class _PeakSampler(threading.Thread):
    """Samples resident memory every few milliseconds and keeps the maxima."""

    def __init__(self, interval: float = 0.002):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = _status()
        self._done = threading.Event()

    def _sample(self) -> None:
        for key, value in _status().items():
            self.peak[key] = max(self.peak.get(key, 0), value)

    def run(self) -> None:
        while not self._done.is_set():
            self._sample()
            time.sleep(self.interval)

    def stop(self) -> dict[str, int]:
        self._done.set()
        self.join()
        self._sample()
        return self.peak


def child(kind: str, path: str, name: str) -> dict:
    """Load once in this process and describe it: baseline RSS after imports, load seconds, peak RSS."""
    start_imports = time.perf_counter()
    if kind == "ours":
        from resnet_model import ResnetModelForImageClassification
    else:
        import timm
        from safetensors.torch import load_file
    imports_s = time.perf_counter() - start_imports
    baseline = _rss()
    status_baseline = _status()
    sampler = _PeakSampler()
    sampler.start()
    start = time.perf_counter()
    if kind == "ours":
        model = ResnetModelForImageClassification.from_pretrained(path)
    else:
        model = timm.create_model(name, pretrained=False)
        model.load_state_dict(load_file(path))
        model.eval()
    seconds = time.perf_counter() - start
    for tensor in model.state_dict().values():  # read every weight: memory-mapped tensors are paged in here
        tensor.sum()
    ready_s = time.perf_counter() - start
    peak = sampler.stop()
    if model.training:
        raise RuntimeError("the loaded model should be in eval mode")
    return {
        "imports_s": imports_s,
        "load_s": seconds,
        "ready_s": ready_s,
        "baseline_rss": baseline,
        "process_peak_rss": _peak_rss(),
        "rss_after": _rss(),
        "load_peak_above_baseline": peak.get("VmRSS", 0) - status_baseline.get("VmRSS", 0),
        "anon_peak_above_baseline": peak.get("RssAnon", 0) - status_baseline.get("RssAnon", 0),
    }


def _spawn(kind: str, path: Path, name: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.loading", kind, str(path), name],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"loading child {kind} failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - start
    return result


def run_loading(name: str, workdir: Path, *, rounds: int, log: Callable[[str], None] = print) -> dict:
    """Save `name` both ways, then load each `rounds` times in alternating fresh processes."""
    import statistics

    import timm
    import torch
    from safetensors.torch import save_file

    from resnet_model import ResnetModelForImageClassification

    torch.manual_seed(0)
    timm_model = timm.create_model(name, pretrained=False)
    ours_dir = workdir / f"{name}-ours"
    ResnetModelForImageClassification.from_timm(timm_model).save_pretrained(ours_dir)
    timm_file = workdir / f"{name}-timm.safetensors"
    save_file({k: v.contiguous() for k, v in timm_model.state_dict().items()}, str(timm_file))
    weights = (ours_dir / "model.safetensors").stat().st_size
    runs: dict[str, list[dict]] = {"ours": [], "timm": []}
    log(f"[loading] {name}: {rounds} rounds x 2 fresh processes")
    for index in range(rounds):
        order = ("ours", "timm") if index % 2 == 0 else ("timm", "ours")
        for kind in order:
            runs[kind].append(_spawn(kind, ours_dir if kind == "ours" else timm_file, name))

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    pairs = list(zip(runs["ours"], runs["timm"], strict=True))
    return {
        "model": name,
        "weights_bytes": weights,
        "runs": runs,
        "load_s": {k: med(k, "load_s") for k in runs},
        "process_s": {k: med(k, "process_s") for k in runs},
        "imports_s": {k: med(k, "imports_s") for k in runs},
        "peak_above_baseline": {k: med(k, "load_peak_above_baseline") for k in runs},
        "anon_peak_above_baseline": {
            k: statistics.median(r["anon_peak_above_baseline"] for r in runs[k]) for k in runs
        },
        "rss_after_above_baseline": {
            k: statistics.median(r["rss_after"] - r["baseline_rss"] for r in runs[k]) for k in runs
        },
        "ready_s": {k: med(k, "ready_s") for k in runs},
        "load_time_ratio": statistics.median(o["load_s"] / t["load_s"] for o, t in pairs),
        "ready_time_ratio": statistics.median(o["ready_s"] / t["ready_s"] for o, t in pairs),
        "peak_over_weights": {k: med(k, "load_peak_above_baseline") / weights for k in runs},
    }


def main() -> None:
    """Child entry point: `python -m benchmarks.loading {ours|timm} PATH NAME` prints one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["ours", "timm"])
    parser.add_argument("path")
    parser.add_argument("name")
    args = parser.parse_args()
    print(json.dumps(child(args.kind, args.path, args.name)))


if __name__ == "__main__":
    main()
