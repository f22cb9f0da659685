"""Calibration: each candidate's parity with fp32 eager on real images, and its speed timed side by side, cached."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..timing import synchronize
from . import capabilities as caps
from .engines import ENGINES, library_versions
from .runners import Runner

AGREEMENT_FLOOR = 0.99  # the automatic choice never takes a path that changes more top-1 predictions than this
# Agreement is measured on at least this many images (seeded photo crops at the model's input size, after any images
# the caller gives), so that one changed prediction moves it by less than 2%: with the floor above, none may change.
AGREEMENT_IMAGES = 64
CACHE_VERSION = 2
TIMING_ROUNDS = 3
TIMING_BUDGET_S = 0.1  # per contender and round
PRUNE = 1.3  # after the first round, only paths at most this much slower than the fastest are timed again


def top1_agreement(reference_logits: torch.Tensor, logits: torch.Tensor) -> float:
    """Fraction of images whose top-1 class is the same in `logits` as in `reference_logits`."""
    if reference_logits.shape != logits.shape:
        raise ValueError(f"Logit shapes differ: {tuple(reference_logits.shape)} vs {tuple(logits.shape)}.")
    return float((reference_logits.argmax(-1) == logits.float().argmax(-1)).float().mean())


def relative_error(reference_logits: torch.Tensor, logits: torch.Tensor) -> float:
    """Largest |logit difference| as a fraction of the largest |reference logit|."""
    scale = float(reference_logits.abs().max()) or 1.0
    return float((logits.float() - reference_logits).abs().max()) / scale


def top1_margins(reference_logits: torch.Tensor) -> torch.Tensor:
    """Each image's gap between its top two reference logits, as a fraction of the largest |reference logit|."""
    if reference_logits.shape[-1] < 2:
        return torch.ones(len(reference_logits))
    top2 = reference_logits.float().topk(2, dim=-1).values
    return (top2[:, 0] - top2[:, 1]) / (float(reference_logits.abs().max()) or 1.0)


def margin_summary(margins: torch.Tensor) -> dict[str, float]:
    """The distribution of top-1 margins: the 10th, 50th and 90th percentiles and the smallest."""
    q = margins.float().quantile(torch.tensor([0.1, 0.5, 0.9]))
    return {"min": float(margins.min()), "p10": float(q[0]), "p50": float(q[1]), "p90": float(q[2])}


@dataclass
class Parity:
    """How one path's outputs compare with fp32 eager on the parity images (and how decisive those images are)."""

    agreement: float
    relative_error: float
    tolerance: float
    images: int = 0  # how many images agreement was measured on
    margins: dict[str, float] = field(default_factory=dict)  # `margin_summary` of the reference's top-1 margins
    flipped_margins: list[float] = field(default_factory=list)  # the reference margin of each changed prediction

    @property
    def ok(self) -> bool:
        """Within the engine's tolerance and at or above the agreement floor."""
        return self.relative_error <= self.tolerance and self.agreement >= AGREEMENT_FLOOR

    def describe(self) -> str:
        """e.g. '100.0% top-1 of 64, max |Δ| 3e-07 of the largest logit (tolerance 1e-04), median margin 0.12'."""
        text = f"{100 * self.agreement:.1f}% top-1"
        text += f" of {self.images}" if self.images else ""
        text += f", max |Δ| {self.relative_error:.1g} of the largest logit (tolerance {self.tolerance:.0e})"
        if self.margins:
            text += f", median top-1 margin {self.margins['p50']:.2g}"
        if self.flipped_margins:
            text += f"; changed where the margin was {', '.join(f'{m:.1g}' for m in self.flipped_margins[:5])}"
        return text


def run_batched(runner: Runner, images: torch.Tensor, batch: int) -> torch.Tensor:
    """`runner`'s outputs for `images`, `batch` at a time, concatenated on the CPU."""
    return torch.cat([runner(chunk).float().cpu() for chunk in images.split(batch)])


def compare(reference: torch.Tensor, outputs: torch.Tensor, tolerance: float) -> Parity:
    """Agreement, relative error and the margins behind them, of `outputs` against `reference` (same images)."""
    margins = top1_margins(reference)
    changed = reference.argmax(-1) != outputs.float().argmax(-1)
    return Parity(
        top1_agreement(reference, outputs),
        relative_error(reference, outputs),
        tolerance,
        images=len(reference),
        margins=margin_summary(margins),
        flipped_margins=sorted(float(m) for m in margins[changed]),
    )


def parity(reference: torch.Tensor, runner: Runner, images: torch.Tensor, batch: int, tolerance: float) -> Parity:
    """Agreement and relative error of `runner` against the reference outputs of the same `images`."""
    return compare(reference, run_batched(runner, images, batch), tolerance)


@dataclass
class Timing:
    """Speed-ups against fp32 eager at one batch size (medians over the rounds each path was timed in)."""

    batch_size: int
    speedup: dict[str, float]
    seconds_per_call: dict[str, float]
    first_call_s: dict[str, float]


def time_side_by_side(runners: dict[str, Runner], batch: torch.Tensor, device: str, eager_s: float) -> Timing:
    """Each runner on `batch`, in turn within each round (order rotated); speed-ups are against `eager_s`.

    After the first round only the runners within `PRUNE` of the fastest go on: calibration takes seconds.
    """

    def timed(runner: Runner, calls: int) -> float:
        synchronize(device)
        start = time.perf_counter()
        for _ in range(calls):
            runner(batch)
        synchronize(device)
        return (time.perf_counter() - start) / calls

    first_call = {key: timed(runner, 1) for key, runner in runners.items()}  # builds per-shape state
    calls = {key: max(1, round(TIMING_BUDGET_S / max(seconds, 1e-6))) for key, seconds in first_call.items()}
    seconds: dict[str, list[float]] = {key: [] for key in runners}
    keys = list(runners)
    for index in range(TIMING_ROUNDS if keys else 0):
        if index == 1:
            fastest = min(values[0] for values in seconds.values())
            keys = [key for key in keys if seconds[key][0] <= PRUNE * fastest]
        shift = index % len(keys)
        for key in keys[shift:] + keys[:shift]:
            seconds[key].append(timed(runners[key], calls[key]))
    medians = {key: statistics.median(values) for key, values in seconds.items()}
    medians["eager-fp32"] = eager_s
    return Timing(
        batch_size=len(batch),
        speedup={key: eager_s / median for key, median in medians.items()},
        seconds_per_call=medians,
        first_call_s=first_call,
    )


@dataclass(frozen=True)
class FastPathChoice:
    """The path chosen for one batch size, why, and what was measured on the way."""

    engine: str  # a key of ENGINES, e.g. "openvino-fp32"
    batch_size: int
    device: str
    reason: str
    parity: dict[str, Any]  # of the chosen path: agreement, relative_error, tolerance
    parity_images: str  # what the parity check ran on
    speedups: dict[str, float] = field(default_factory=dict)  # per timed path, vs fp32 eager (calibration)
    agreements: dict[str, float] = field(default_factory=dict)  # per checked path
    skipped: dict[str, str] = field(default_factory=dict)  # per path left out: why
    setup_s: dict[str, float] = field(default_factory=dict)  # first-call costs: export, quantize, build, calibrate
    cached: bool = False
    torch: dict[str, Any] | None = None  # channels_last / bf16 / compile settings of a torch path
    folded_batchnorms: int = 0
    computes_in: str = ""  # the precision the engine reported it compiled the model for

    @property
    def precision(self) -> str:
        """fp32, bf16 or int8."""
        return ENGINES[self.engine].precision

    def __str__(self) -> str:
        parity = (
            f"{100 * self.parity['agreement']:.1f}% top-1 agreement with fp32 eager on {self.parity_images}, "
            f"max |Δ logit| {self.parity['relative_error']:.1g} of the largest"
        )
        engine = ENGINES[self.engine].describe()
        line = f"fast path for batch {self.batch_size} on {self.device}: {engine} ({self.reason}; {parity})"
        if self.speedups:
            line += "; calibration: " + ", ".join(
                f"{k} {v:.2f}×" + (f" {100 * self.agreements[k]:.0f}%" if k in self.agreements else "")
                for k, v in sorted(self.speedups.items(), key=lambda kv: -kv[1])
            )
        if self.skipped:
            line += "; not used: " + "; ".join(f"{k} ({why})" for k, why in self.skipped.items())
        if self.folded_batchnorms:
            line += f"; {self.folded_batchnorms} BatchNorms folded"
        return line

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form for reports."""
        return asdict(self)


def cache_dir() -> Path:
    """Where calibration results live: $XDG_CACHE_HOME/resnet-model/fastpath (default ~/.cache/…); safe to delete."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "resnet-model" / "fastpath"


def model_signature(model: nn.Module, input_shape: tuple[int, ...]) -> str:
    """A digest of the model's architecture (class, parameter and buffer shapes) and input shape; not its weights."""
    parts = [type(model).__qualname__, list(input_shape)]
    parts += [(name, list(t.shape), str(t.dtype)) for name, t in model.state_dict().items()]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def parity_digest(model: nn.Module, images: torch.Tensor) -> str:
    """A digest of the model's weights and buffers and of the parity images: what agreement depends on, not speed."""
    digest = hashlib.sha256()
    for name, tensor in [*model.state_dict().items(), ("images", images)]:
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:16]


def machine_key() -> dict[str, Any]:
    """What makes one machine's timings differ from another's: CPU, flags, threads, library versions."""
    return {
        "cpu": caps.cpu_model(),
        "cpu_kind": caps.cpu_kind(),
        "cpu_flags": hashlib.sha256(" ".join(sorted(caps.cpu_flags())).encode()).hexdigest()[:16],
        "arch": platform.machine(),
        "threads": torch.get_num_threads(),
        "versions": library_versions(),
    }


def cache_path(signature: str, device: str, batch_size: int, candidates: list[str]) -> tuple[Path, dict[str, Any]]:
    """The cache file for one calibration, and the key it must hold."""
    key = {
        "version": CACHE_VERSION,
        "machine": machine_key(),
        "device": device,
        "model": signature,
        "batch_size": batch_size,
        "candidates": sorted(candidates),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return cache_dir() / f"calibration-{digest}.json", key


def read_cache(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The cached calibration at `path` if it was made under `key`; None if missing, stale or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key or data.get("engine") not in key["candidates"]:
        return None
    return data


def write_cache(
    path: Path, key: dict[str, Any], timing: Timing, engine: str, parities: dict[str, Parity], weights: str
) -> None:
    """Store a calibration and the parity measured for the model's weights (atomically; a failure only costs time)."""
    data = {
        "key": key,
        "engine": engine,
        "speedup": timing.speedup,
        "seconds_per_call": timing.seconds_per_call,
        "weights": weights,
        "parity": {k: asdict(p) for k, p in parities.items()},
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        os.replace(partial, path)
    except OSError:
        pass
