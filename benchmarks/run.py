"""Run every benchmark, print the table, write BENCHMARKS.md and a JSON of the raw figures.

.venv/bin/python -m benchmarks.run            # full run (224², batch 1 and 8, resnet18 + resnet50d)
.venv/bin/python -m benchmarks.run --quick    # smoke run: small images, few rounds, no compile
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"  # noqa: A001

import torch

from benchmarks.common import machine_info, sample_images, wait_for_quiet
from benchmarks.inference import run_inference
from benchmarks.loading import run_loading
from benchmarks.report import render_markdown, render_terminal
from benchmarks.training import run_training

REPO_ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("inference", "loading", "training", "hub")


def run_hub(quick: bool, workdir: Path, log) -> dict:
    """Figures from `benchmarks/hub_transfer.py` (push/pull through the Hub server vs cp), if it is present."""
    script = REPO_ROOT / "benchmarks" / "hub_transfer.py"
    if not script.exists():
        return {"skipped": "benchmarks/hub_transfer.py is not present"}
    out = workdir / "hub_transfer.json"
    cmd = [sys.executable, str(script), "--output", str(out), "--workdir", str(workdir)]
    cmd += ["--size-mb", "20" if quick else "100", "--runs", "2" if quick else "5"]
    log(f"[hub] benchmarks/hub_transfer.py {' '.join(cmd[-4:])}")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH")]))
    )
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0 or not out.exists():
        return {"error": f"hub_transfer.py exited {proc.returncode}: {proc.stderr.strip()[-800:]}"}
    return json.loads(out.read_text())


def keep_earlier_sections(results: dict, json_path: Path, sections: list[str]) -> None:
    """Carry over the sections this run left out (`--only`) from the previous results file, marked with its date."""
    try:
        earlier = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if earlier.get("settings", {}).get("quick") != results["settings"]["quick"]:
        return
    for section in SECTIONS:
        if section not in sections and section in earlier:
            results[section] = earlier[section]
            dates = earlier.get("earlier_sections", {})
            results.setdefault("earlier_sections", {})[section] = dates.get(section, earlier.get("date"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small images, fewer rounds, no torch.compile")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (CUDA figures where a GPU is present)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--models", default=None, help="comma-separated timm names (default resnet18,resnet50d)")
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per comparison (>= 5 for the table)")
    parser.add_argument("--markdown", type=Path, default=None, help="where to write the report")
    parser.add_argument("--json", type=Path, default=None, help="where to write the raw figures")
    parser.add_argument("--render", type=Path, default=None, help="only re-write the report from this results JSON")
    parser.add_argument(
        "--max-load",
        type=float,
        default=1.0,
        help="wait (up to 15 min) until the load average is at most this per core before timing anything",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the selected sections and write the report; returns the raw results."""
    args = parse_args(argv)
    if args.render:
        results = json.loads(args.render.read_text(encoding="utf-8"))
        markdown_path = args.markdown or REPO_ROOT / (
            "out/BENCHMARKS-quick.md" if results["settings"]["quick"] else "BENCHMARKS.md"
        )
        markdown_path.write_text(
            render_markdown(results, json_path=args.render.resolve(), root=REPO_ROOT), encoding="utf-8"
        )
        print(render_terminal(results))
        return results
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available")
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    quick = args.quick
    if args.threads:
        torch.set_num_threads(args.threads)
    default_out = REPO_ROOT / "out" if quick else REPO_ROOT
    markdown_path = args.markdown or (default_out / ("BENCHMARKS-quick.md" if quick else "BENCHMARKS.md"))
    json_path = args.json or (default_out / "benchmarks-quick.json" if quick else REPO_ROOT / "benchmarks/results.json")
    models = args.models.split(",") if args.models else ["resnet18", "resnet50d"]
    settings = {
        "quick": quick,
        "models": models,
        "image_size": 128 if quick else 224,
        "batches": [1, 8],
        "rounds": args.rounds or 5,
        "agreement_images": 16 if quick else 104,
        "target_s_per_call_set": 0.15 if quick else 0.3,
        "compile": not (args.no_compile or quick),
        "load_rounds": 2 if quick else 5,
        "train_batch": 8,
        "train_rounds": 3 if quick else 5,
    }

    def log(message: str) -> None:
        print(f"{time.perf_counter() - started:6.0f}s {message}", flush=True)

    started = time.perf_counter()
    if not quick:
        wait_for_quiet(args.max_load, log=log)
    results: dict = {
        "command": "python -m benchmarks.run" + (" --quick" if quick else ""),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "settings": settings,
        "machine": machine_info(device),
    }
    images = sample_images(settings["agreement_images"], settings["image_size"])
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "inference" in sections:
            results["inference"] = run_inference(
                models,
                settings["batches"],
                images,
                rounds=settings["rounds"],
                target_s=settings["target_s_per_call_set"],
                device=device,
                use_compile=settings["compile"],
                log=log,
            )
        if "loading" in sections:
            results["loading"] = run_loading(models[-1], workdir, rounds=settings["load_rounds"], log=log)
        if "training" in sections:
            results["training"] = run_training(
                models[-1],
                images,
                batch=settings["train_batch"],
                rounds=settings["train_rounds"],
                device=device,
                log=log,
            )
        if "hub" in sections:
            results["hub"] = run_hub(quick, workdir, log)
    results["machine"]["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    results["runtime_s"] = round(time.perf_counter() - started, 1)
    keep_earlier_sections(results, json_path, sections)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    if "inference" in sections and not quick:  # one file per CPU kind: BENCHMARKS.md shows each kind's table
        per_kind = {k: results[k] for k in ("command", "date", "settings", "machine", "inference")}
        kind_path = json_path.with_name(f"inference-{results['machine']['cpu_kind']}.json")
        kind_path.write_text(json.dumps(per_kind, indent=1, default=str) + "\n", encoding="utf-8")
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(render_markdown(results, json_path=json_path, root=REPO_ROOT), encoding="utf-8")
    print(render_terminal(results))
    print(f"wrote {markdown_path} and {json_path} in {results['runtime_s']:.0f}s")
    return results


if __name__ == "__main__":
    main()
