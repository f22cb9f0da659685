"""Shared pieces: machine description, interleaved timing, sample images and reproducible test weights."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def cpu_model() -> str:
    """The CPU's model name as the OS reports it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str = "cpu") -> dict:
    """CPU, core count, load and library versions, recorded with every result."""
    import timm
    import transformers

    from resnet_toolkit.fastpath import detect_capabilities

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
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def synchronize(device: str) -> None:
    """Wait for queued device work so that wall-clock times are complete."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@dataclass
class Interleaved:
    """Per-round seconds per call for several contenders timed in turn within each round."""

    seconds: dict[str, list[float]] = field(default_factory=dict)

    def median(self, name: str) -> float:
        """Median seconds per call of `name`."""
        return statistics.median(self.seconds[name])

    def ratio(self, name: str, reference: str) -> float:
        """Median over rounds of the paired speed ratio `name` / `reference` (> 1: `name` is faster)."""
        return statistics.median(r / n for n, r in zip(self.seconds[name], self.seconds[reference], strict=True))

    def best_ratio(self, name: str, reference: str) -> float:
        """Speed ratio of the fastest rounds of each: the least disturbed by other load on the machine."""
        return min(self.seconds[reference]) / min(self.seconds[name])

    def ratio_spread(self, name: str, reference: str) -> tuple[float, float]:
        """Smallest and largest paired ratio over the rounds."""
        ratios = [r / n for n, r in zip(self.seconds[name], self.seconds[reference], strict=True)]
        return min(ratios), max(ratios)


def interleave(
    contenders: dict[str, Callable[[], object]], *, rounds: int, calls: int, device: str = "cpu"
) -> Interleaved:
    """Time each contender for `calls` calls per round, rotating the order every round (ABC, BCA, CAB, …).

    Each contender makes one untimed call before its timed ones, so it is measured warm (its weights in cache) as
    in steady use, whichever contender ran before it.
    """
    result = Interleaved({name: [] for name in contenders})
    names = list(contenders)
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            fn = contenders[name]
            fn()
            synchronize(device)
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            synchronize(device)
            result.seconds[name].append((time.perf_counter() - start) / calls)
    return result


def _source_images() -> list[np.ndarray]:
    """Colour photographs bundled with scikit-image and scikit-learn (no download)."""
    import skimage.data as data
    from sklearn.datasets import load_sample_images

    images = []
    for name in ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina"):
        images.append(getattr(data, name)())
    images.append(data.colorwheel())
    images.append(data.logo()[..., :3])
    images.append(np.repeat(data.camera()[..., None], 3, axis=2))
    images.extend(load_sample_images().images)
    return [np.ascontiguousarray(image, dtype=np.uint8) for image in images]


def sample_labels(count: int) -> torch.Tensor:
    """Which photograph each of `sample_images(count)`'s crops comes from."""
    return torch.arange(count) % len(_source_images())


def sample_images(count: int, size: int = 224, seed: int = 0) -> torch.Tensor:
    """`count` normalised (count, 3, size, size) crops of real photographs: seeded random-resized crops and flips."""
    sources = [torch.from_numpy(image.copy()).permute(2, 0, 1).float().div(255) for image in _source_images()]
    generator = torch.Generator().manual_seed(seed)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    out = torch.empty(count, 3, size, size)
    for index in range(count):
        image = sources[index % len(sources)]
        _, height, width = image.shape
        scale = float(torch.empty(1).uniform_(0.25, 1.0, generator=generator))
        side = max(16, int(min(height, width) * scale**0.5))
        top = int(torch.randint(0, height - side + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - side + 1, (1,), generator=generator))
        crop = image[:, top : top + side, left : left + side].unsqueeze(0)
        crop = nn.functional.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        if torch.rand(1, generator=generator) < 0.5:
            crop = crop.flip(-1)
        out[index] = ((crop[0] - mean) / std).clamp(-3, 3)
    return out


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
