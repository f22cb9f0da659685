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
