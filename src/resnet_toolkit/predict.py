"""Classify images with a saved or Hub model, showing exactly which remote code runs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .audit import collect_code_files
from .errors import UserError
from .remote import Source, default_token, fetch_text, resolve_source

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def open_images(paths: list[str], channels: int) -> list:
    """PIL images in the mode the model expects (`L` for one channel, else `RGB`)."""
    from PIL import Image, UnidentifiedImageError

    images = []
    for path in paths:
        if not Path(path).is_file():
            raise UserError(f"image not found: {path}")
        try:
            with Image.open(path) as image:
                images.append(image.convert("L" if channels == 1 else "RGB"))
        except (UnidentifiedImageError, OSError):
            raise UserError(f"not a readable image: {path}") from None
    return images


def predict(
    source: str,
    image_paths: list[str],
    *,
    revision: str | None = None,
    top_k: int = 5,
    trust_remote_code: bool = False,
    require_pinned: bool = False,
    token: str | None = None,
    out=None,
    fast_path: bool | None = None,
) -> list[list[tuple[str, float]]]:
    """Top-`top_k` (label, probability) per image, after showing the source, its revision and its code.

    `fast_path`: run the model on `resnet_toolkit.fastpath`'s fastest engine (None: from 5 images on).
    """
    from .fastpath import batched_logits

    out = out or sys.stdout
    if top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {top_k}")
    for path in image_paths:
        if not Path(path).is_file():
            raise UserError(f"image not found: {path}")
    token = default_token(token)
    where = resolve_source(source, revision, token)
    _show_source(where, require_pinned, out)
    config_text = fetch_text(where, "config.json", token)
    if config_text is None:
        raise UserError(f"{where.label} has no config.json")
    images = open_images(image_paths, json.loads(config_text).get("input_channels", 3))
    _check_code(where, trust_remote_code, token, out)
    model, processor = _load(where, trust_remote_code, token)
    pixel_values = processor(images, return_tensors="pt")["pixel_values"]
    logits = batched_logits(model, pixel_values, fast_path=fast_path)
    return _print_top_k(image_paths, logits.softmax(-1), model.config.id2label, top_k, out)


def _show_source(where: Source, require_pinned: bool, out) -> None:
    """Print where the model comes from; warn about (or refuse) a revision that can move."""
    if where.is_local:
        print(f"model: local folder {where.location}", file=out)
        return
    print(f"model: {where.location}  revision: {where.revision}", file=out)
    if not where.pinned:
        message = f"revision {where.requested or 'main'!r} is not a full commit SHA; it can move to other code"
        if require_pinned:
            raise UserError(f"--require-pinned: {message}; pass --revision {where.revision}")
        print(f"warning: {message}; pin it with --revision {where.revision}", file=sys.stderr)


def _check_code(where: Source, trust_remote_code: bool, token: str | None, out) -> None:
    """List the code files a load would run; refuse them without `trust_remote_code`."""
    code_files = collect_code_files(where, token)
    if code_files and not trust_remote_code:
        names = ", ".join(f.path for f in code_files)
        review = f"resnet-model audit {where.location}" + ("" if where.is_local else f" --revision {where.revision}")
        raise UserError(
            f"refusing to run the code in {where.label} ({names}) without --trust-remote-code; "
            f"review it first with: {review}"
        )
    if code_files:
        print("remote code that runs (sha256):", file=out)
        for code_file in code_files:
            print(f"  {code_file.sha256}  {code_file.label}", file=out)


def _load(where: Source, trust_remote_code: bool, token: str | None):
    """The model (eval mode) and its image processor (timm's defaults when the folder has none)."""
    from transformers import AutoModelForImageClassification

    from .processing import data_config_for, image_processor_from_data_config, load_image_processor

    kwargs = {"revision": where.revision, "trust_remote_code": trust_remote_code, "token": token}
    model = AutoModelForImageClassification.from_pretrained(where.location, **kwargs).eval()
    try:
        processor = load_image_processor(where.location, **kwargs)
    except (OSError, ValueError):
        print("warning: no preprocessor_config.json; using timm's default data config", file=sys.stderr)
        processor = image_processor_from_data_config(data_config_for(model.config))
    return model, processor


def _print_top_k(image_paths, probabilities, id2label: dict, top_k: int, out) -> list[list[tuple[str, float]]]:
    """One line per image: its top-k labels with probabilities."""
    k = min(top_k, probabilities.shape[-1])
    results = []
    for path, row in zip(image_paths, probabilities, strict=True):
        values, indices = row.topk(k)
        ranked = [(id2label[int(i)], float(v)) for v, i in zip(values, indices, strict=True)]
        results.append(ranked)
        print(f"{os.fspath(path)}: " + ", ".join(f"{label} ({p:.3f})" for label, p in ranked), file=out)
    return results
