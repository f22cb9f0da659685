"""The fast inference path: choices follow the machine, predictions match fp32 eager on real photographs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from benchmarks.common import fit_nearest_centroid_head
from resnet_model import ResnetConfig, ResnetModelForImageClassification
from resnet_toolkit import fastpath
from resnet_toolkit.fastpath import choose, detect_capabilities, optimize_for_inference, top1_agreement

SIZE = 96


def _photos() -> list[np.ndarray]:
    import skimage.data as data
    from sklearn.datasets import load_sample_images

    names = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")
    return [getattr(data, n)() for n in names] + list(load_sample_images().images)


def _crops(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded random crops of the sample photographs, normalised, with the index of their photograph."""
    photos = [torch.from_numpy(p.copy()).permute(2, 0, 1).float().div(255) for p in _photos()]
    gen = torch.Generator().manual_seed(seed)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    out, labels = [], []
    for i in range(count):
        photo = photos[i % len(photos)]
        side = int(min(photo.shape[1:]) * float(torch.empty(1).uniform_(0.4, 1.0, generator=gen)))
        top = int(torch.randint(0, photo.shape[1] - side + 1, (1,), generator=gen))
        left = int(torch.randint(0, photo.shape[2] - side + 1, (1,), generator=gen))
        crop = photo[None, :, top : top + side, left : left + side]
        crop = nn.functional.interpolate(crop, size=(SIZE, SIZE), mode="bilinear", antialias=True)[0]
        out.append((crop - mean) / std)
        labels.append(i % len(photos))
    return torch.stack(out), torch.tensor(labels)


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """Held-out crops the predictions are compared on."""
    return _crops(48, seed=0)[0]


@pytest.fixture(scope="module")
def classifier() -> ResnetModelForImageClassification:
    """A resnet18 whose BatchNorm statistics and (nearest-centroid) head are fitted to crops of the photographs."""
    torch.manual_seed(0)
    config = ResnetConfig.from_timm("resnet18", zero_init_last=False)
    model = ResnetModelForImageClassification(config)
    images, labels = _crops(32, seed=1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.reset_running_stats()
                module.momentum = None
        model.train()
        model(pixel_values=images)
        model.eval()
        features = model.model.forward_head(model.model.forward_features(images), pre_logits=True)
        fit_nearest_centroid_head(model.model.fc, features, labels)
    return model


@pytest.fixture
def cpu_machine(monkeypatch: pytest.MonkeyPatch):
    """Set what the CPU probe sees: `cpu_machine(flags, mkldnn=True, compiler=True)`."""

    def configure(flags: set[str], *, mkldnn: bool = True, compiler: bool = True) -> None:
        monkeypatch.setattr(fastpath, "cpu_flags", lambda: frozenset(flags))
        monkeypatch.setattr(fastpath, "_mkldnn_available", lambda: mkldnn)
        monkeypatch.setattr(fastpath, "_mkldnn_bf16_supported", lambda: mkldnn)
        monkeypatch.setattr(fastpath, "_cxx_compiler", lambda: "/usr/bin/g++" if compiler else None)

    return configure


def test_bf16_only_where_the_cpu_has_native_bf16(cpu_machine) -> None:
    cpu_machine({"avx2", "avx512f", "avx512_bf16"})
    assert detect_capabilities("cpu").bf16
    cpu_machine({"avx2", "amx_bf16"})
    assert detect_capabilities("cpu").bf16
    cpu_machine({"avx2", "avx512f", "avx512bw"})
    caps = detect_capabilities("cpu")
    assert not caps.bf16 and "lacks native bf16" in caps.reasons["bf16"]
    assert caps.channels_last and not caps.compile and "off by default on CPU" in caps.reasons["compile"]


def test_nothing_without_onednn_or_compiler(cpu_machine) -> None:
    cpu_machine({"avx512_bf16"}, mkldnn=False, compiler=False)
    caps = detect_capabilities("cpu")
    assert (caps.channels_last, caps.bf16, caps.compile) == (False, False, False)
    assert "no C++ compiler" in caps.reasons["compile"]
    assert "not detected" in choose(caps, compile=True).reasons["compile"]


@pytest.mark.parametrize(
    ("capability", "triton", "expected"),
    [((9, 0), True, (True, True, True)), ((7, 5), True, (True, False, True)), ((6, 1), False, (False, False, False))],
)
def test_cuda_choices_follow_compute_capability(monkeypatch, capability, triton, expected) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Mock GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: capability[0] >= 8)
    monkeypatch.setattr(fastpath, "_triton_available", lambda: triton)
    choice = choose(detect_capabilities("cuda:0"))
    assert (choice.channels_last, choice.bf16, choice.compile) == expected
    assert "compute capability" in choice.reasons["bf16"]


def test_explicit_options_override_detection(cpu_machine) -> None:
    cpu_machine({"avx512_bf16"})
    choice = choose(detect_capabilities("cpu"), bf16=False, compile=False)
    assert (choice.channels_last, choice.bf16, choice.compile) == (True, False, False)
    assert choice.reasons["bf16"] == "requested" and choice.reasons["channels_last"].startswith("auto")
    cpu_machine(set())
    forced = choose(detect_capabilities("cpu"), bf16=True)
    assert forced.bf16 and "not detected" in forced.reasons["bf16"]
    assert choose(detect_capabilities("cpu"), compile=True).reasons["compile"] == "requested"
    assert "bf16=on" in str(forced) and "compile=" in str(forced)


def test_optimize_applies_the_choice(cpu_machine, tiny_config, images) -> None:
    cpu_machine({"avx512_bf16"}, compiler=False)
    model = ResnetModelForImageClassification(tiny_config)
    fast = optimize_for_inference(model)
    assert (fast.choice.channels_last, fast.choice.bf16, fast.choice.compile) == (True, True, False)
    conv = model.model.conv1
    assert conv.weight.dtype == torch.bfloat16
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    out = fast(images)
    assert out.logits.dtype == torch.float32 and out.logits.shape == (2, tiny_config.num_classes)
    assert not out.logits.requires_grad
    assert fast.choice.folded_batchnorms > 0 and "BatchNorms folded" in str(fast.choice)


def test_batchnorm_folding_keeps_outputs(classifier, photos) -> None:
    model = copy.deepcopy(classifier)
    with torch.no_grad():
        reference = model(pixel_values=photos[:8]).logits
        batchnorms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        folded = fastpath.fold_batchnorm(model)
        assert folded == batchnorms - 1  # all but the stem's, which the wrapper reads for its dtype
        assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 1
        torch.testing.assert_close(model(pixel_values=photos[:8]).logits, reference, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="eval mode"):
        fastpath.fold_batchnorm(copy.deepcopy(classifier).train())


def test_unknown_device_is_refused() -> None:
    with pytest.raises(ValueError, match="Unsupported device"):
        detect_capabilities("tpu")


@pytest.mark.parametrize(("channels_last", "bf16"), [(True, False), (True, True)])
def test_fast_predictions_agree_with_fp32_eager(classifier, photos, channels_last, bf16) -> None:
    with torch.no_grad():
        reference = classifier(pixel_values=photos).logits
    fast = optimize_for_inference(copy.deepcopy(classifier), channels_last=channels_last, bf16=bf16, compile=False)
    logits = fast(photos).logits
    assert top1_agreement(reference, logits) >= (0.95 if bf16 else 1.0)
    # bf16 may only flip near-ties: images whose fp32 top-2 margin is a small fraction of the typical one
    top2 = reference.topk(2, dim=-1).values
    margins = top2[:, 0] - top2[:, 1]
    changed = logits.argmax(-1) != reference.argmax(-1)
    assert (margins[changed] < 0.15 * margins.median()).all()
    head = slice(0, 8)  # the fitted classes
    tolerance = 0.05 if bf16 else 1e-4
    assert (logits[:, head] - reference[:, head]).abs().max() < tolerance * reference[:, head].abs().max()


def test_agreement_detects_changed_predictions(classifier, photos) -> None:
    with torch.no_grad():
        reference = classifier(pixel_values=photos).logits
    broken = copy.deepcopy(classifier)
    with torch.no_grad():
        broken.model.fc.weight[:12] = broken.model.fc.weight[:12].roll(1, dims=0)
        broken.model.fc.bias[:12] = broken.model.fc.bias[:12].roll(1, dims=0)
    logits = optimize_for_inference(broken, compile=False, bf16=False)(photos).logits
    assert top1_agreement(reference, logits) < 0.5
    with pytest.raises(ValueError, match="shapes differ"):
        top1_agreement(reference, logits[:, :10])
