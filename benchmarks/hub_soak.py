"""Latency under load, recorded rather than asserted: the hub's soak tests run quietly, their figures kept.

The soak tests (`tests/hub/test_hub_soak*.py`) assert what must hold on any machine (every operation lands or is
refused cleanly, no 5xx, bounded memory); the latencies they print depend on the machine and on what else runs, so
they are recorded here, on a quiet machine, with the load average and CPU flags, in BENCHMARKS.md's
"hub-soak" section.

    .venv/bin/python -m benchmarks.hub_soak [--seconds 60]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.common import cpu_model, wait_for_quiet
from benchmarks.sections import markers, write_section
from resnet_toolkit.fastpath.capabilities import cpu_kind

ROOT = Path(__file__).resolve().parent.parent
SOAKS = ("tests/hub/test_hub_soak.py", "tests/hub/test_hub_soak_adversarial.py")
PREFIX = "soak figures:"


def run_soak(test: str, seconds: float) -> dict:
    """Run one soak test file with its figures printed; the figures, and whether its assertions held."""
    env = {**os.environ, "HUB_SOAK_SECONDS": str(seconds)}
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", test]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    figures = [json.loads(line[len(PREFIX) :]) for line in result.stdout.splitlines() if line.startswith(PREFIX)]
    return {"test": test, "passed": result.returncode == 0, "figures": figures}


def section(results: list[dict], load: list[float], seconds: float) -> str:
    """The BENCHMARKS.md section: one row per soak test."""
    start, end = markers("hub-soak")
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    lines = [
        start,
        "## Hub under load (soak tests, figures recorded, not asserted)",
        "",
        f"Command: `.venv/bin/python -m benchmarks.hub_soak --seconds {seconds:g}`. Date: {date}. Machine: "
        f"{cpu_model()} ({cpu_kind()}), {os.cpu_count()} logical cores, load average at start "
        f"{', '.join(f'{v:.1f}' for v in load) or 'n/a'}. Every soak's assertions (no 5xx, pushes land or get "
        "412, RSS < 1 GB) run in CI; the latencies below are what this machine measured while the load ran.",
        "",
        "| soak | assertions | figures |",
        "|---|---|---|",
    ]
    for result in results:
        figures = "; ".join(json.dumps(f, sort_keys=True) for f in result["figures"]) or "–"
        lines.append(f"| `{result['test']}` | {'held' if result['passed'] else '**failed**'} | `{figures}` |")
    return "\n".join([*lines, end]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each soak runs")
    parser.add_argument("--max-load", type=float, default=1.0, help="wait until the load is at most this per core")
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    load = wait_for_quiet(args.max_load)
    results = [run_soak(test, args.seconds) for test in SOAKS if (ROOT / test).exists()]
    write_section(args.markdown, "hub-soak", section(results, load, args.seconds))
    print(json.dumps(results, indent=1))
    return 0 if all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
