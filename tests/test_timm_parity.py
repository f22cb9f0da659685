"""Our models reproduce timm's ResNet family exactly, and load timm weights strictly."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file

from resnet_model import TIMM_PRESETS, ResnetConfig, ResnetModel, ResnetModelForImageClassification

REQUIRED = [
    "resnet18", "resnet18d", "resnet26", "resnet26d", "resnet26t", "resnet34", "resnet34d", "resnet50",
    "resnet50d", "resnet50t", "resnet101", "resnet101d", "resnet152", "resnet152d", "resnext50_32x4d",
    "resnext101_32x8d", "wide_resnet50_2",
]  # fmt: skip


def test_required_presets_are_in_the_table():
    assert set(REQUIRED) <= set(TIMM_PRESETS)


# The shallow presets cover every block, stem and downsample kind in the fast loop; the deep ones run in CI.
PRESET_PARAMS = [
    pytest.param(name, marks=pytest.mark.slow) if sum(TIMM_PRESETS[name]["layers"]) > 8 else name
    for name in sorted(TIMM_PRESETS)
]


@pytest.mark.parametrize("name", PRESET_PARAMS)
def test_preset_matches_timm_exactly(name):
    torch.manual_seed(0)
    reference = timm.create_model(name, pretrained=False).eval()
    ours = ResnetModelForImageClassification(ResnetConfig.from_timm(name)).eval()
    ours.model.load_state_dict(reference.state_dict())  # the tutorial's way of copying weights
    features = ResnetModel(ours.config).eval()
    features.load_state_dict(ours.state_dict())
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(ours(x).logits, reference(x))
        assert torch.equal(features(x).last_hidden_state, reference.forward_features(x))
        assert torch.equal(features(x).pooler_output, reference.forward_head(reference.forward_features(x), True))


def test_config_read_back_from_a_timm_module_matches_the_preset():
    for name in ("resnet26t", "resnext50_32x4d", "wide_resnet50_2", "resnet34d"):
        module = timm.create_model(name, pretrained=False, num_classes=7)
        model = ResnetModelForImageClassification.from_timm(module)
        preset = ResnetConfig.from_timm(name, num_classes=7)
        for field in ("block_type", "layers", "cardinality", "base_width", "stem_width", "stem_type", "avg_down"):
            assert getattr(model.config, field) == getattr(preset, field), (name, field)
        assert model.config.num_classes == 7


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_from_timm_loads_a_local_checkpoint_file(tmp_path, fmt):
    reference = timm.create_model("resnet18", pretrained=False, num_classes=3).eval()
    path = tmp_path / f"ckpt.{fmt}"
    if fmt == "safetensors":
        save_file(reference.state_dict(), path)
    else:
        torch.save({"state_dict": reference.state_dict()}, path)
    model = ResnetModelForImageClassification.from_timm("resnet18", checkpoint=str(path), num_classes=3)
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(model(x).logits, reference(x))


def test_from_timm_refuses_a_partial_or_misshaped_checkpoint(tmp_path):
    state = timm.create_model("resnet18", pretrained=False).state_dict()
    state.pop("layer1.0.conv1.weight")
    state["fc.weight"] = torch.zeros(3, 512)
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError) as info:
        ResnetModelForImageClassification.from_timm(state, block_type="basic", layers=[2, 2, 2, 2])
    message = str(info.value)
    assert "missing: layer1.0.conv1.weight" in message
    assert "unexpected: extra.weight" in message
    assert "fc.weight" in message and "shape mismatch" in message


def test_unknown_variant_lists_the_known_ones():
    with pytest.raises(ValueError, match="resnet50d"):
        ResnetConfig.from_timm("resnet51")
