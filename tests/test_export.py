"""Fast paths and exports agree with eager fp32: ONNX, torch.export, torch.compile, channels_last, bf16, device_map."""

from __future__ import annotations

import pytest
import torch
from model_utils import randomize_batchnorm_stats
from test_image_processor import sample_images
from transformers import AutoImageProcessor

from resnet_model import ResnetConfig, ResnetModelForImageClassification
from resnet_toolkit.export import export_onnx, export_program, onnx_logits, quantize_onnx
from resnet_toolkit.samples import sample_images as photo_crops


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny saved classifier (64 px input) and the sample images preprocessed by its own image processor."""
    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    config = ResnetConfig(
        block_type="basic",
        layers=[1, 1, 1, 1],
        num_classes=10,
        stem_width=16,
        pretrained_cfg={"input_size": [3, 64, 64]},
    )
    model = ResnetModelForImageClassification(config).eval()
    randomize_batchnorm_stats(model)
    model.save_pretrained(root)
    pixels = AutoImageProcessor.from_pretrained(root)(sample_images(), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        logits = model(pixel_values=pixels).logits
    return root, model, pixels, logits


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_onnx_runtime_matches_eager(tiny, tmp_path, exporter):
    _, model, pixels, logits = tiny
    path = export_onnx(model, tmp_path / "model.onnx", image_size=64, exporter=exporter)
    got = onnx_logits(path, pixels)
    assert got.shape == logits.shape  # batch of 6, exported with an example batch of 2
    assert (got - logits).abs().max().item() <= 1e-4
    assert not model.training  # exporting leaves the model in eval mode


def test_unknown_exporter_is_refused(tiny, tmp_path):
    with pytest.raises(ValueError, match="exporter must be one of 'dynamo', 'torchscript'; got 'tvm'"):
        export_onnx(tiny[1], tmp_path / "model.onnx", exporter="tvm")


def test_int8_onnx_keeps_most_predictions(tiny, tmp_path):
    _, model, pixels, logits = tiny
    path = export_onnx(model, tmp_path / "model.onnx", image_size=64, exporter="torchscript")
    calibration = photo_crops(16, 64, seed=1)
    int8 = quantize_onnx(path, tmp_path / "model-int8.onnx", calibration)
    got = onnx_logits(int8, pixels)
    assert got.shape == logits.shape and int8.stat().st_size < path.stat().st_size
    assert (got - logits).abs().max().item() <= 0.25 * logits.abs().max().item()  # the int8 engine's tolerance
    with pytest.raises(ValueError, match="calibration_images must be a non-empty"):
        quantize_onnx(path, tmp_path / "x.onnx", calibration[0])


def test_torch_export_matches_eager(tiny):
    _, model, pixels, logits = tiny
    program = export_program(model, image_size=64)
    with torch.no_grad():
        got = program.module()(pixels)
    assert (got - logits).abs().max().item() <= 1e-5


def test_torch_compile_and_channels_last_match_eager(tiny):
    _, model, pixels, logits = tiny
    compiled = torch.compile(model)
    with torch.no_grad():
        assert (compiled(pixel_values=pixels).logits - logits).abs().max().item() <= 1e-4
    channels_last = ResnetModelForImageClassification.from_pretrained(tiny[0]).eval()
    channels_last = channels_last.to(memory_format=torch.channels_last)
    with torch.no_grad():
        got = channels_last(pixel_values=pixels.contiguous(memory_format=torch.channels_last)).logits
    assert (got - logits).abs().max().item() <= 1e-4


def test_device_map_auto_loads_the_same_model(tiny):
    root, _, pixels, logits = tiny
    model = ResnetModelForImageClassification.from_pretrained(root, device_map="auto").eval()
    assert {p.device.type for p in model.parameters()} == {"cpu"}  # the only device here
    with torch.no_grad():
        assert torch.equal(model(pixel_values=pixels).logits, logits)


@pytest.mark.slow  # tens of seconds where the CPU has no native bf16 (emulated)
def test_bf16_model_keeps_fp32_top1(tmp_path):
    """A ResNet-18 whose head is fitted in fp32 (one prototype per image) keeps its top-1 when loaded in bf16."""
    torch.manual_seed(0)
    config = ResnetConfig.from_timm("resnet18", num_classes=6, zero_init_last=False)
    model = ResnetModelForImageClassification(config).eval()
    pixels = AutoImageProcessor.from_pretrained(_save(model, tmp_path))(sample_images(), return_tensors="pt")
    pixels = pixels["pixel_values"]
    with torch.no_grad():
        features = model.model.forward_head(model.model.forward_features(pixels), pre_logits=True)
        centred = features - features.mean(0)
        model.model.fc.weight.copy_(centred / centred.norm(dim=1, keepdim=True))
        model.model.fc.bias.copy_(-(model.model.fc.weight * features.mean(0)).sum(1))
        fp32 = model(pixel_values=pixels).logits
    assert fp32.argmax(-1).tolist() == list(range(6))  # the fitted head tells the six images apart
    model.save_pretrained(tmp_path)
    bf16 = ResnetModelForImageClassification.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    with torch.no_grad():
        low = bf16(pixel_values=pixels).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = model(pixel_values=pixels).logits
    assert low.dtype == torch.bfloat16
    assert torch.equal(low.float().argmax(-1), fp32.argmax(-1))
    assert torch.equal(autocast.float().argmax(-1), fp32.argmax(-1))
    assert (low.float() - fp32).abs().max().item() < 0.1 * fp32.abs().max().item()


def _save(model, path):
    model.save_pretrained(path)
    return path
