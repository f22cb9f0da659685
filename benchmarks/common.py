"""Shared pieces: machine description, interleaved timing, sample images and reproducible test weights."""

from __future__ import annotations

import os
import platform

import torch
from torch import nn

from resnet_toolkit.fastpath.capabilities import cpu_model
from resnet_toolkit.samples import sample_images, sample_labels
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
    }
    versions = library_versions()
    info["onnxruntime"], info["openvino"] = versions["onnxruntime"], versions["openvino"]
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


@torch.no_grad()
def calibrated_timm_model(name: str, images: torch.Tensor, seed: int = 0, **kwargs) -> nn.Module:
    """A timm model with seeded random weights, BatchNorm statistics measured on `images`, and a fitted head.

    Downloading weights is not allowed here. Calibrated statistics keep activations in range; the classifier is
    a nearest-centroid probe that tells apart the source photographs of `images` (classes 0..11 of 1000), so the
    logits have the margins of a classifier fitted to real data rather than of a random head.
    """
    import timm

    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, zero_init_last=False, **kwargs)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batches
    model.train()
    for batch in images.split(16):
        model(batch)
    model.eval()
    features = torch.cat([model.forward_head(model.forward_features(b), pre_logits=True) for b in images.split(16)])
    fit_nearest_centroid_head(model.get_classifier(), features, sample_labels(len(images)))
    return model


@torch.no_grad()
def fit_nearest_centroid_head(fc: nn.Linear, features: torch.Tensor, labels: torch.Tensor) -> None:
    """Make `fc` a nearest-centroid classifier of `features` (classes 0..max(labels); the rest never win)."""
    classes = int(labels.max()) + 1
    centroids = torch.stack([features[labels == c].mean(0) for c in range(classes)])
    # nearest centroid, centred on the mean feature: argmin |f - c|^2 = argmax f.d - m.d - |d|^2 / 2
    mean = centroids.mean(0)
    weight = centroids - mean
    bias = -(weight @ mean) - 0.5 * (weight * weight).sum(1)
    scale = 3.0 / (features @ weight.T + bias).std()  # logits spread like a trained head's
    fc.weight.zero_()
    fc.bias.fill_(-1e4)
    fc.weight[:classes] = weight * scale
    fc.bias[:classes] = bias * scale


def format_rate(value: float | None) -> str:
    """A throughput or ratio with sensible precision."""
    if value is None:
        return "–"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
