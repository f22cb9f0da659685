"""Shared pieces: machine description, interleaved timing, sample images and reproducible test weights."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import torch
from torch import nn

from resnet_toolkit.fastpath.capabilities import cpu_kind, cpu_model
from resnet_toolkit.samples import calibrate_on_photos, fit_nearest_centroid_head, sample_images, sample_labels
from resnet_toolkit.timing import Interleaved, interleave, synchronize

__all__ = [
    "Interleaved",
    "calibrated_timm_model",
    "cpu_model",
    "fit_nearest_centroid_head",
    "format_rate",
    "interleave",
    "machine_info",
    "sample_images",
    "sample_labels",
    "synchronize",
    "wait_for_quiet",
]


def machine_info(device: str = "cpu") -> dict:
    """CPU, core count, load and library versions, recorded with every result."""
    import timm
    import transformers

    from resnet_toolkit.fastpath import cpu_flags, detect_capabilities, library_versions

    info = {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_parallel_info": torch.__config__.parallel_info().splitlines()[:4],
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "transformers": transformers.__version__,
        "device": device,
        "capabilities": detect_capabilities(device).as_dict(),
        "cpu_flags": sorted(cpu_flags()),
        "cpu_kind": cpu_kind(),
    }
    versions = library_versions()
    info["onnxruntime"], info["openvino"] = versions["onnxruntime"], versions["openvino"]
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def calibrated_timm_model(name: str, images: torch.Tensor, seed: int = 0, **kwargs) -> nn.Module:
    """A timm model with seeded random weights, calibrated on `images` (see `calibrate_on_photos`)."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, zero_init_last=False, **kwargs)
    return calibrate_on_photos(model, images)


def wait_for_quiet(
    max_load_per_core: float = 1.0, timeout_s: float = 900.0, log: Callable[[str], None] = print
) -> list[float]:
    """Wait until the 1-minute load average is at most `max_load_per_core` per core; SystemExit after `timeout_s`.

    Timings taken while other work runs are not worth recording. Returns the load averages it started at.
    """
    if not hasattr(os, "getloadavg"):
        return []
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + timeout_s
    while (load := os.getloadavg())[0] > max_load_per_core * cores:
        if time.monotonic() > deadline:
            raise SystemExit(
                f"load average {load[0]:.1f} stayed above {max_load_per_core:g} per core ({cores} cores) for "
                f"{timeout_s:.0f} s: benchmark on a quiet machine (or pass --max-load to accept a busier one)"
            )
        log(f"waiting for a quiet machine: load average {load[0]:.1f} > {max_load_per_core:g} x {cores} cores")
        time.sleep(15)  # polling the load average, not synchronising with anything
    return list(load)


def format_rate(value: float | None) -> str:
    """A throughput or ratio with sensible precision."""
    if value is None:
        return "–"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
