"""Real photographs without a download: seeded crops of the sample images bundled with scikit-image and scikit-learn."""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")


def photos_available() -> str | None:
    """None if the sample photographs can be loaded, else why not."""
    try:
        import skimage.data  # noqa: F401
        import sklearn.datasets  # noqa: F401
    except ImportError as error:
        return f"{error.name} is not installed (pip install scikit-image scikit-learn)"
    return None


@functools.lru_cache(maxsize=1)
def source_photos() -> tuple[np.ndarray, ...]:
    """Colour photographs bundled with scikit-image and scikit-learn (no download), as uint8 HxWx3 arrays."""
    import skimage.data as data
    from sklearn.datasets import load_sample_images

    images = [getattr(data, name)() for name in SKIMAGE_PHOTOS]
    images.append(data.colorwheel())
    images.append(data.logo()[..., :3])
    images.append(np.repeat(data.camera()[..., None], 3, axis=2))
    images.extend(load_sample_images().images)
    return tuple(np.ascontiguousarray(image, dtype=np.uint8) for image in images)


def sample_labels(count: int) -> torch.Tensor:
    """Which photograph each of `sample_images(count)`'s crops comes from."""
    return torch.arange(count) % len(source_photos())


def sample_images(count: int, size: int = 224, seed: int = 0, channels: int = 3) -> torch.Tensor:
    """`count` normalised (count, channels, size, size) seeded random-resized crops (and flips) of real photographs."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    sources = [torch.from_numpy(image.copy()).permute(2, 0, 1).float().div(255) for image in source_photos()]
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
    return out if channels == 3 else out.mean(1, keepdim=True)


@torch.no_grad()
def calibrate_on_photos(model: nn.Module, images: torch.Tensor) -> nn.Module:
    """`model` (a timm ResNet or ours) made to behave like a trained classifier on photo crops, without a download.

    Its BatchNorm statistics are measured on `images` (which keeps activations in range), and its classifier becomes
    a nearest-centroid probe telling apart the source photographs of `images` (classes 0..11; any further classes
    sit just below them), so that the logits have the margins of a classifier fitted to real data, not of a random
    head. The weights stay as they are (seeded). Returns the model, in eval mode.
    """
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batches
    timm_model = getattr(model, "model", model)  # our wrapper holds the timm network as `.model`
    model.train()
    for batch in images.split(16):
        timm_model(batch)
    model.eval()
    features = torch.cat(
        [timm_model.forward_head(timm_model.forward_features(b), pre_logits=True) for b in images.split(16)]
    )
    fit_nearest_centroid_head(timm_model.get_classifier(), features, sample_labels(len(images)))
    return model


@torch.no_grad()
def fit_nearest_centroid_head(fc: nn.Linear, features: torch.Tensor, labels: torch.Tensor) -> None:
    """Make `fc` a nearest-centroid classifier of `features` (classes 0..max(labels); the rest never win on them)."""
    classes = int(labels.max()) + 1
    centroids = torch.stack([features[labels == c].mean(0) for c in range(classes)])
    # nearest centroid, centred on the mean feature: argmin |f - c|^2 = argmax f.d - m.d - |d|^2 / 2
    mean = centroids.mean(0)
    weight = centroids - mean
    bias = -(weight @ mean) - 0.5 * (weight * weight).sum(1)
    logits = features @ weight.T + bias
    bias, logits = bias - logits.mean(), logits - logits.mean()  # centred on 0, like a trained head's logits
    scale = 3.0 / logits.std()  # and spread like them
    fc.weight.zero_()
    fc.weight[:classes] = weight * scale
    fc.bias[:classes] = bias * scale
    # the other classes: constant logits a spread below the fitted ones (in their range, so errors stay comparable)
    fc.bias[classes:] = float(logits.min()) * float(scale) - 3.0
