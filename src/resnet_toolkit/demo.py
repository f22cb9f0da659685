"""The one-command demo: train on digits, push to an embedded Hub, reload pinned in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._files import atomic_dir
from .errors import CheckFailed, UserError
from .hub import pin_line
from .progress import phase_bar

DEFAULT_EPOCHS = 6
DEFAULT_OUT = "demo-output"
DEMO_REPO = "demo/digits-resnet"
DEMO_USER = "demo"
MARKER = "demo.json"
_PHASE_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}]"


def child_env(endpoint: str, token: str, home: Path) -> dict[str, str]:
    """Environment for the fresh process: our Hub, a private cache, no inherited HF settings or PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "HUGGINGFACE_"))}
    env.pop("PYTHONPATH", None)
    env.update(
        HF_ENDPOINT=endpoint,
        HF_TOKEN=token,
        HF_HOME=str(home),
        HF_HUB_CACHE=str(home / "hub"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_XET="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def reload_in_fresh_process(repo: str, sha: str, images: np.ndarray, labels: np.ndarray, env: dict, work: Path) -> dict:
    """Run `_reload_child.py` (resnet_model blocked) on the held-out images; returns its JSON report."""
    data = work / "heldout.npz"
    np.savez(data, images=images, labels=labels)
    report = work / "reload.json"
    script = Path(__file__).with_name("_reload_child.py")
    with phase_bar("reload", total=1, unit="process", bar_format=_PHASE_FORMAT) as bar:
        proc = subprocess.run(
            [sys.executable, "-P", str(script), repo, sha, str(data), str(report)],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=600,
        )
        bar.update(1)
    if proc.returncode != 0:
        raise CheckFailed(f"the fresh-process reload failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(report.read_text(encoding="utf-8"))


def demo(
    *,
    epochs: float = DEFAULT_EPOCHS,
    out: str | os.PathLike = DEFAULT_OUT,
    verbose: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Train, save, push, reload pinned in a fresh process and report; returns the summary written to demo.json."""
    from .data import digits_arrays, split_indices
    from .train import train

    started = time.perf_counter()
    out = Path(out)
    replace = out.is_dir() and (out / MARKER).is_file()
    if out.exists() and not replace and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out} exists and was not written by the demo; choose another folder")
    with atomic_dir(out, overwrite=replace) as tmp, tempfile.TemporaryDirectory(prefix="resnet-demo-") as scratch:
        log(f"[1/4] training a small ResNet on scikit-learn's digits for {epochs:g} epoch(s)")
        # train writes into the temporary folder that becomes `out`: name `out` in what it prints
        result = train(
            "digits",
            "tiny",
            epochs=epochs,
            out=tmp,
            verbose=verbose,
            log=lambda line: log(line.replace(str(tmp), str(out))),
        )
        images, labels = digits_arrays()
        _, test = split_indices(labels, 0.2, 0)
        sha, report = _push_and_reload(result.model_dir, out, images[test], labels[test], Path(scratch), verbose, log)
        summary = _check_and_summarise(report, sha, result.metrics, epochs, started)
        (tmp / MARKER).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    _print_summary(summary, report, labels[test], out, log)
    if not summary["reloaded_predictions_match"]:
        raise CheckFailed("the reloaded model's predictions differ from the trained model's")
    return summary


def _push_and_reload(
    model_dir: Path, out: Path, images: np.ndarray, labels: np.ndarray, work: Path, verbose: bool, log
) -> tuple[str, dict]:
    """Push `model_dir` to an embedded Hub and reload it pinned in a fresh process; (commit SHA, reload report)."""
    from hub_server import running_hub

    from .hub import push

    log("[2/4] starting an embedded Hub on a free loopback port (stopped when the demo ends)")
    with running_hub(work / "hub") as hub:
        token = hub.add_user(DEMO_USER)
        log(f"[3/4] pushing {out}/model to {DEMO_REPO} as user {DEMO_USER!r}")
        sha = push(
            model_dir,
            DEMO_REPO,
            endpoint=hub.url,
            token=token,
            message="Digits ResNet from resnet-model demo",
            verbose=verbose,
            log=lambda line: None,
        )
        log(f"      commit: {sha}")
        log(f"      {pin_line(DEMO_REPO, sha)}")
        log("[4/4] reloading in a fresh process (resnet_model not importable) pinned at that commit")
        report = reload_in_fresh_process(DEMO_REPO, sha, images, labels, child_env(hub.url, token, work / "hf"), work)
    return sha, report


def _check_and_summarise(report: dict, sha: str, metrics: dict, epochs: float, started: float) -> dict:
    """Refuse a reload that proves nothing; the summary written to demo.json."""
    if report["resnet_model_importable"] or report["resnet_model_loaded"]:
        raise CheckFailed("resnet_model was importable in the reload process; the demo proves nothing")
    if report["code_commit"] != sha or report["cached_snapshots"] != [sha]:
        raise CheckFailed(
            f"the reload used code from {report['code_commit']} and files from {report['cached_snapshots']},"
            f" not the pushed commit {sha}"
        )
    return {
        "repo": DEMO_REPO,
        "commit": sha,
        "load_line": pin_line(DEMO_REPO, sha),
        "epochs": epochs,
        "train_accuracy_in_process": metrics["test_accuracy"],
        "reloaded_accuracy": report["accuracy"],
        "reloaded_predictions_match": report["predictions"] == metrics["test_predictions"],
        "reload": {k: v for k, v in report.items() if k not in ("predictions", "labels")},
        "test_size": len(report["predictions"]),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def _print_summary(summary: dict, report: dict, labels: np.ndarray, out: Path, log) -> None:
    """What the reload showed, in the words of the README's sample output."""
    log(f"      code: {report['model_code']} (in a temporary cache)")
    log(f"      resnet_model importable there: {report['resnet_model_importable']}")
    log(
        f"held-out accuracy (reloaded): {summary['reloaded_accuracy']:.4f} on {summary['test_size']} images"
        f" (in-process {summary['train_accuracy_in_process']:.4f}; predictions identical:"
        f" {summary['reloaded_predictions_match']})"
    )
    shown = ", ".join(f"{p}/{t}" for p, t in zip(report["labels"][:10], labels[:10], strict=True))
    log(f"first predictions (predicted/true): {shown}")
    log(f"wrote {out}/: model/, metrics.json, loss_accuracy.png, confusion_matrix.png, {MARKER}")
    log(f"demo wall time: {summary['wall_seconds']:.1f} s")
