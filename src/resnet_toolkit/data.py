"""Datasets for training: scikit-learn's bundled digits, or an image folder with one sub-folder per class."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import UserError
from .predict import IMAGE_SUFFIXES

DIGITS_DATA_CONFIG = {
    "input_size": [1, 32, 32],
    "interpolation": "bilinear",
    "mean": [0.5],
    "std": [0.5],
    "crop_pct": 1.0,
    "crop_mode": "center",
}


@dataclass
class ImageSet:
    """Images (PIL) with integer labels and class names, split into train and test."""

    train_images: list
    train_labels: list[int]
    test_images: list
    test_labels: list[int]
    class_names: list[str]
    channels: int


class TensorDataset(torch.utils.data.Dataset):
    """`{"pixel_values", "labels"}` items for `Trainer`."""

    def __init__(self, pixel_values: torch.Tensor, labels: list[int]):
        self.pixel_values = pixel_values
        self.labels = torch.tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"pixel_values": self.pixel_values[index], "labels": self.labels[index]}


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as uint8 8×8 images (0–255) and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return images, digits.target.astype(np.int64)


def split_indices(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified, seeded train/test split of indices."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    try:
        return train_test_split(indices, test_size=test_size, stratify=labels, random_state=seed)
    except ValueError as error:
        raise UserError(f"cannot split the data into train and test sets: {error}") from None


def load_digits_set(test_size: float = 0.2, seed: int = 0) -> ImageSet:
    """scikit-learn's digits as 8×8 grayscale PIL images, split (stratified, seeded) into train and test."""
    from PIL import Image

    images, labels = digits_arrays()
    train, test = split_indices(labels, test_size, seed)
    pil = [Image.fromarray(image, mode="L") for image in images]
    return ImageSet(
        [pil[i] for i in train],
        labels[train].tolist(),
        [pil[i] for i in test],
        labels[test].tolist(),
        [str(d) for d in range(10)],
        1,
    )


def load_image_folder(root: str, channels: int = 3, test_size: float = 0.2, seed: int = 0) -> ImageSet:
    """Images under `root/<class>/…`, split (stratified, seeded) into train and test."""
    from PIL import Image, UnidentifiedImageError

    root_path = Path(root)
    if not root_path.is_dir():
        raise UserError(
            f"--data folder not found: {root} (expected 'digits' or a folder with one sub-folder per class)"
        )
    classes = sorted(p.name for p in root_path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise UserError(f"--data {root} needs at least 2 class sub-folders, found {len(classes)}")
    images, labels = [], []
    for index, name in enumerate(classes):
        files = sorted(p for p in (root_path / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(files) < 2:
            raise UserError(f"--data class folder {name!r} has {len(files)} image(s); each class needs at least 2")
        for path in files:
            try:
                with Image.open(path) as image:
                    images.append(image.convert("L" if channels == 1 else "RGB"))
            except (UnidentifiedImageError, OSError):
                raise UserError(f"--data: not a readable image: {path}") from None
            labels.append(index)
    labels_array = np.array(labels)
    train, test = split_indices(labels_array, test_size, seed)
    return ImageSet(
        [images[i] for i in train],
        labels_array[train].tolist(),
        [images[i] for i in test],
        labels_array[test].tolist(),
        classes,
        channels,
    )


def to_tensors(images: list, processor) -> torch.Tensor:
    """Apply an image processor's evaluation transforms to each image, stacked into one batch."""
    if not images:
        return torch.empty(0)
    return processor(images, return_tensors="pt")["pixel_values"]
