"""Saved models carry timm's eval preprocessing; `AutoImageProcessor` rebuilds it on transformers 5 and 4.57."""

from __future__ import annotations

import json

import numpy as np
import pytest
import timm
import torch
from isolation import run_isolated
from PIL import Image
from skimage import data as skdata
from sklearn.datasets import load_sample_images
from timm.data import create_transform, resolve_data_config
from transformers import AutoImageProcessor

from resnet_model import ResnetConfig, ResnetModelForImageClassification
from resnet_toolkit.processing import data_config_for, save_image_processor

# bicubic / crop 0.95, bilinear / crop 0.875 (torchvision weights), bicubic at 176 px
PRESETS = ("resnet50", "resnet50.tv_in1k", "resnet10t")


def sample_images() -> list[Image.Image]:
    """Photos shipped with scikit-image and scikit-learn, of various sizes and aspect ratios."""
    arrays = [getattr(skdata, name)() for name in ("astronaut", "coffee", "chelsea", "rocket")]
    arrays += list(load_sample_images().images)
    return [Image.fromarray(np.ascontiguousarray(a[..., :3])) for a in arrays]


def timm_reference(name: str, images: list[Image.Image]) -> torch.Tensor:
    """timm's own eval transform for `name`, as `resolve_data_config` resolves it for the timm model."""
    transform = create_transform(**resolve_data_config(model=timm.create_model(name, pretrained=False)))
    return torch.stack([transform(image) for image in images])


def _save_tiny(name: str, out) -> None:
    config = ResnetConfig.from_timm(name, layers=[1, 1, 1, 1], num_classes=3)
    ResnetModelForImageClassification(config).save_pretrained(out)


@pytest.mark.parametrize("name", PRESETS)
def test_processor_reproduces_timm_eval_transform(tmp_path, name):
    images = sample_images()
    _save_tiny(name, tmp_path)
    processor = AutoImageProcessor.from_pretrained(tmp_path)
    pixels = processor(images, return_tensors="pt")["pixel_values"]
    reference = timm_reference(name, images)
    assert pixels.shape == reference.shape
    assert (pixels - reference).abs().max().item() <= 1e-5


def test_presets_preprocess_differently():
    images = sample_images()[:2]
    bicubic, bilinear = (timm_reference(name, images) for name in PRESETS[:2])
    assert (bicubic - bilinear).abs().max().item() > 0.1  # the comparison above can tell presets apart


def test_saved_files_agree_and_name_a_builtin_class(tmp_path):
    _save_tiny("resnet50.tv_in1k", tmp_path)
    processor_file = json.loads((tmp_path / "preprocessor_config.json").read_text())
    config_file = json.loads((tmp_path / "config.json").read_text())
    assert processor_file["image_processor_type"] == config_file["image_processor_type"] == "TimmWrapperImageProcessor"
    assert processor_file["pretrained_cfg"] == config_file["pretrained_cfg"]
    assert config_file["pretrained_cfg"]["interpolation"] == "bilinear"
    assert sorted(p.name for p in tmp_path.glob("*.py")) == ["configuration_resnet.py", "modeling_resnet.py"]


def test_converted_folder_loads_its_timm_processor(tmp_path):
    timm_model = timm.create_model("resnet10t", pretrained=False, num_classes=3).eval()
    model = ResnetModelForImageClassification.from_timm(timm_model)
    model.save_pretrained(tmp_path)
    save_image_processor(timm_model, tmp_path, crop_pct=1.0)
    processor = AutoImageProcessor.from_pretrained(tmp_path)
    assert processor.data_config["input_size"] == (3, 176, 176)
    assert processor.data_config["crop_pct"] == 1.0
    assert data_config_for(model.config)["crop_pct"] == 0.875


@pytest.mark.slow
def test_processor_loads_on_transformers_4_57(tmp_path):
    name = "resnet50.tv_in1k"
    images = sample_images()
    _save_tiny(name, tmp_path / "model")
    for i, image in enumerate(images):
        image.save(tmp_path / f"{i}.png")
    code = """
import sys, pathlib, torch, transformers
from PIL import Image
from transformers import AutoImageProcessor
assert transformers.__version__.startswith("4.57"), transformers.__version__
folder = pathlib.Path(sys.argv[1])
images = [Image.open(folder / f"{i}.png").convert("RGB") for i in range(int(sys.argv[2]))]
processor = AutoImageProcessor.from_pretrained(folder / "model")
torch.save(processor(images, return_tensors="pt")["pixel_values"], folder / "pixels.pt")
"""
    run_isolated(code, str(tmp_path), str(len(images)), cwd=tmp_path, t4=True)
    pixels = torch.load(tmp_path / "pixels.pt")
    assert (pixels - timm_reference(name, images)).abs().max().item() <= 1e-5
