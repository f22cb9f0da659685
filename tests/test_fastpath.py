"""The fast inference path: every engine keeps parity with fp32 eager on real photographs; the choice is measured."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from resnet_model import ResnetConfig, ResnetModelForImageClassification
from resnet_toolkit import fastpath
from resnet_toolkit.fastpath import (
    ENGINES,
    EngineUnavailable,
    Parity,
    accelerate_pipeline,
    check_engines,
    choose,
    detect_capabilities,
    engine_models,
    optimize_for_inference,
    runners,
    top1_agreement,
)
from resnet_toolkit.fastpath import capabilities as caps
from resnet_toolkit.fastpath import engines as engine_table
from resnet_toolkit.fastpath import model as fastpath_model
from resnet_toolkit.fastpath.runners import Runner
from resnet_toolkit.samples import calibrate_on_photos, sample_images, source_photos

# The presets' own input size: the photo crops' top-1 margins there are those the benchmarks measure (at 64² a
# random-weight network's features are so alike that most margins are near-ties).
SIZE = 224
PRESETS = ("resnet18", "resnet50d")
FP32_ENGINES = [k for k, e in ENGINES.items() if e.precision == "fp32" and not k.startswith("torch-compile")]
REDUCED_ENGINES = [k for k, e in ENGINES.items() if e.precision != "fp32" and not k.startswith("torch-compile")]


@pytest.fixture(autouse=True)
def calibration_cache(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """Calibrations of this module go to a fresh cache directory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "resnet-model" / "fastpath"


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """The parity images of the automatic choice: 64 seeded photo crops (seed 0; the models are fitted on seed 1)."""
    return sample_images(fastpath.AGREEMENT_IMAGES, SIZE, seed=0)


def fitted_classifier(name: str) -> ResnetModelForImageClassification:
    """A preset with seeded weights, made to classify photo crops as the benchmarks' models do."""
    torch.manual_seed(0)
    config = ResnetConfig.from_timm(name, zero_init_last=False)
    config.pretrained_cfg = {**(config.pretrained_cfg or {}), "input_size": [3, SIZE, SIZE]}
    return calibrate_on_photos(ResnetModelForImageClassification(config), sample_images(48, SIZE, seed=1))


class PerPreset(dict):
    """Computed for a preset the first time a test asks for it (a run that selects one preset pays for one)."""

    def __init__(self, compute):
        super().__init__()
        self.compute = compute

    def __missing__(self, name: str):
        self[name] = self.compute(name)
        return self[name]


@pytest.fixture(scope="module")
def classifiers() -> PerPreset:
    """The presets, fitted."""
    return PerPreset(fitted_classifier)


@pytest.fixture(scope="module")
def reports(classifiers, photos) -> PerPreset:
    """`check_engines` of every engine but torch.compile (slow, tested on its own) on each preset."""
    keys = FP32_ENGINES + REDUCED_ENGINES
    return PerPreset(lambda name: check_engines(classifiers[name], engines=keys, images=photos))


@pytest.fixture(scope="module")
def choices(classifiers, photos) -> PerPreset:
    """The automatic choice on each preset, on the same photo crops (no cache: measured in this run)."""
    return PerPreset(lambda name: optimize_for_inference(classifiers[name], images=photos, cache=False))


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("key", FP32_ENGINES)
def test_fp32_engines_match_eager_on_every_cpu(reports, preset, key) -> None:
    result = reports[preset][key]
    if isinstance(result, str):
        pytest.skip(f"{key}: {result}")
    assert isinstance(result, Parity) and result.images >= fastpath.AGREEMENT_IMAGES
    assert result.relative_error <= ENGINES[key].tolerance, result.describe()
    assert result.agreement == 1.0 and result.ok, result.describe()


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("key", REDUCED_ENGINES)
def test_reduced_precision_is_judged_as_the_automatic_choice_judges_it(reports, choices, preset, key) -> None:
    """One definition of agreement: an engine test can never contradict what the choice does with the engine."""
    result = reports[preset][key]
    if isinstance(result, str):
        pytest.skip(f"{key}: {result}")
    assert result.images >= fastpath.AGREEMENT_IMAGES and result.margins["p50"] > 0
    assert len(result.flipped_margins) == round((1 - result.agreement) * result.images)
    for batch, choice in choices[preset].choices.items():
        if key in choice.agreements:  # measured by the choice too: the same images give the same verdict
            assert choice.agreements[key] == pytest.approx(result.agreement), (batch, result.describe())
        if not result.ok:
            assert choice.engine != key, f"batch {batch} chose {key} although {result.describe()}"
    print(f"{preset} {key}: {result.describe()}")


@pytest.mark.slow
def test_torch_compile_within_its_tolerance_of_eager(classifiers, photos) -> None:
    fast = optimize_for_inference(
        copy.deepcopy(classifiers["resnet18"]), engine="torch-compile-fp32", batch_sizes=(8,), images=photos[:8]
    )
    assert fast.choice.parity["relative_error"] <= ENGINES["torch-compile-fp32"].tolerance
    assert fast.choice.parity["agreement"] == 1.0 and fast.choice.torch["compile"]


@pytest.mark.parametrize("preset", PRESETS)
def test_automatic_choice_keeps_parity(classifiers, choices, photos, preset) -> None:
    model, fast = classifiers[preset], choices[preset]
    assert sorted(fast.choices) == [1, 8]
    for batch, choice in fast.choices.items():
        assert choice.parity["agreement"] >= fastpath.AGREEMENT_FLOOR
        assert choice.parity["images"] >= fastpath.AGREEMENT_IMAGES
        assert choice.parity["relative_error"] <= ENGINES[choice.engine].tolerance
        assert choice.computes_in == choice.precision
        assert choice.speedups[choice.engine] == max(
            v for k, v in choice.speedups.items() if choice.agreements.get(k, 0) >= fastpath.AGREEMENT_FLOOR
        )
        assert f"fast path for batch {batch} on cpu: {ENGINES[choice.engine].describe()}" in str(choice)
    with torch.no_grad():
        reference = model(pixel_values=photos).logits
    assert top1_agreement(reference, fast(photos).logits) >= fastpath.AGREEMENT_FLOOR
    assert top1_agreement(reference[:1], fast(photos[:1]).logits) == 1.0
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # the model itself is left as it was


class ConstantRunner(Runner):
    """The fastest path there is, and a wrong one: the same logits for every image."""

    def __init__(self, classes: int):
        self.logits = torch.zeros(1, classes)
        self.logits[0, 0] = 1.0

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(pixel_values), -1)


def test_a_fast_path_that_breaks_parity_is_never_chosen(classifiers, photos, monkeypatch) -> None:
    real_build = engine_table.build

    def build(engine, model, **kwargs):
        if engine.key == "torch-fp32":
            return ConstantRunner(model.config.num_labels), {}
        return real_build(engine, model, **kwargs)

    monkeypatch.setattr(fastpath_model, "build", build)
    fast = optimize_for_inference(classifiers["resnet18"], images=photos, candidates=["torch-fp32", "eager"])
    for choice in fast.choices.values():
        assert choice.engine == "eager-fp32"
        assert choice.speedups["torch-fp32"] > choice.speedups["eager-fp32"]
        assert choice.skipped["torch-fp32"].startswith("parity:") and "did not" in choice.reason


def test_missing_engines_are_skipped_with_a_reason(classifiers, photos, monkeypatch) -> None:
    monkeypatch.setattr(engine_table, "_installed", lambda module: module != "openvino")
    fast = optimize_for_inference(classifiers["resnet18"], images=photos, batch_sizes=(1,))
    reason = "openvino is not installed (pip install 'resnet-model[export]')"
    assert fast.choice.skipped["openvino-fp32"] == reason
    assert f"openvino-fp32 ({reason})" in str(fast.choice)
    with pytest.raises(EngineUnavailable, match=r"engine 'openvino-fp32' cannot run here: openvino is not installed"):
        optimize_for_inference(classifiers["resnet18"], engine="openvino", images=photos)
    assert check_engines(classifiers["resnet18"], engines=["openvino"], images=photos) == {"openvino-fp32": reason}


def test_int8_only_on_request(classifiers, photos) -> None:
    fast = optimize_for_inference(classifiers["resnet18"], images=photos, batch_sizes=(8,))
    assert fast.choice.precision != "int8"
    assert "explicit opt-in" in fast.choice.skipped["onnxruntime-int8"]
    requested = optimize_for_inference(classifiers["resnet18"], engine="onnxruntime-int8", images=photos)
    assert requested.choice.engine == "onnxruntime-int8" and requested.choice.reason == "requested"
    assert 0.0 < requested.choice.parity["agreement"] <= 1.0  # shown, whatever it is
    assert "top-1 agreement" in str(requested.choice)


def test_calibration_is_cached_per_machine_and_batch_size(tiny_config, calibration_cache, monkeypatch) -> None:
    model = ResnetModelForImageClassification(tiny_config)
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    options = {"images": images, "candidates": ["torch"]}
    first = optimize_for_inference(model, batch_sizes=(2,), **options)
    assert not first.choice.cached and first.choice.speedups
    files = list(calibration_cache.glob("calibration-*.json"))
    assert len(files) == 1
    stored = json.loads(files[0].read_text())
    assert stored["engine"] == first.choice.engine and stored["key"]["batch_size"] == 2
    again = optimize_for_inference(model, batch_sizes=(2,), **options)
    assert again.choice.cached and again.choice.engine == first.choice.engine
    assert "timing batch 2" not in again.choice.setup_s
    assert not optimize_for_inference(model, batch_sizes=(4,), **options).choice.cached
    monkeypatch.setattr(caps, "cpu_flags", lambda: frozenset({"avx2", "fma"}))  # another machine
    assert not optimize_for_inference(model, batch_sizes=(2,), **options).choice.cached
    for path in calibration_cache.iterdir():  # deleting the cache only costs a recalibration
        path.unlink()
    assert not optimize_for_inference(model, batch_sizes=(2,), cache=False, **options).choice.cached
    assert not list(calibration_cache.iterdir())


def test_explicit_engine_skips_calibration(tiny_config, calibration_cache) -> None:
    model = ResnetModelForImageClassification(tiny_config)
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    fast = optimize_for_inference(model, engine="onnxruntime", images=images)
    assert fast.choice.engine == "onnxruntime-fp32" and fast.choice.reason == "requested"
    assert not fast.choice.speedups and not calibration_cache.exists()
    assert fast.choice.parity["agreement"] == 1.0
    with torch.no_grad():
        torch.testing.assert_close(fast(images).logits, model(pixel_values=images).logits, rtol=1e-4, atol=1e-4)
    assert fast(images, return_dict=False)[0].shape == (8, tiny_config.num_classes)
    with pytest.raises(ValueError, match="onnxruntime-fp32 path computes logits only.*output_hidden_states"):
        fast(images, output_hidden_states=True)
    with pytest.warns(UserWarning, match="differs from the calibrated"):
        assert fast(torch.randn(2, 3, 48, 48)).logits.shape == (2, tiny_config.num_classes)
    torch_path = optimize_for_inference(model, engine="torch", precision="fp32", images=images)
    assert len(torch_path(images, output_hidden_states=True).hidden_states) > 1  # torch paths pass options on


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"engine": "tensorrt"}, "engine must be one of 'auto', 'eager', 'torch'"),
        ({"engine": "onnxruntime", "precision": "bf16"}, "engine 'onnxruntime' has no bf16 path"),
        ({"precision": "fp16"}, "precision must be one of 'fp32', 'bf16', 'int8'"),
        ({"engine": "openvino-fp32", "precision": "int8"}, "runs in fp32, but precision='int8'"),
        ({"batch_sizes": (0, 8)}, "batch_sizes must be one or more positive integers"),
        ({"images": torch.zeros(3, 32, 32)}, "images must be a non-empty"),
        ({"candidates": ["cuda-graphs"]}, "engine must be one of"),
    ],
)
def test_bad_arguments_name_the_parameter(tiny_config, options, message) -> None:
    with pytest.raises(ValueError, match=message):
        optimize_for_inference(ResnetModelForImageClassification(tiny_config), **options)


def test_pipeline_can_run_on_the_fast_path(tmp_path, tiny_config) -> None:
    from PIL import Image
    from transformers import pipeline

    torch.manual_seed(0)
    tiny_config.pretrained_cfg = {"input_size": [3, 32, 32], "interpolation": "bilinear", "crop_pct": 1.0}
    ResnetModelForImageClassification(tiny_config).eval().save_pretrained(tmp_path)
    images = [Image.fromarray(photo) for photo in source_photos()[:3]]
    classify = pipeline("image-classification", model=str(tmp_path), trust_remote_code=True)
    eager = classify(images, top_k=2)
    fast = accelerate_pipeline(classify, engine="openvino" if engine_table._installed("openvino") else "onnxruntime")
    assert fast is classify and isinstance(classify.model, fastpath.FastModel)
    got = classify(images, top_k=2)
    for want, have in zip(eager, got, strict=True):
        assert [w["label"] for w in want] == [h["label"] for h in have]
        assert [w["score"] for w in want] == pytest.approx([h["score"] for h in have], abs=1e-4)
    with pytest.raises(ValueError, match="needs a Transformers pipeline"):
        accelerate_pipeline(object())


def test_bf16_only_where_the_cpu_has_native_bf16(cpu_machine) -> None:
    cpu_machine({"avx2", "avx512f", "avx512_bf16"})
    assert detect_capabilities("cpu").bf16
    cpu_machine({"avx2", "amx_bf16"})
    assert detect_capabilities("cpu").bf16
    cpu_machine({"avx2", "avx512f", "avx512bw"})
    capabilities = detect_capabilities("cpu")
    assert not capabilities.bf16 and "lacks native bf16" in capabilities.reasons["bf16"]
    assert capabilities.channels_last and not capabilities.compile
    assert "off by default on CPU" in capabilities.reasons["compile"]


@pytest.fixture
def cpu_machine(monkeypatch: pytest.MonkeyPatch):
    """Set what the CPU probe sees: `cpu_machine(flags, mkldnn=True, compiler=True)`."""

    def configure(flags: set[str], *, mkldnn: bool = True, compiler: bool = True) -> None:
        monkeypatch.setattr(caps, "cpu_flags", lambda: frozenset(flags))
        monkeypatch.setattr(caps, "_mkldnn_available", lambda: mkldnn)
        monkeypatch.setattr(caps, "_mkldnn_bf16_supported", lambda: mkldnn)
        monkeypatch.setattr(caps, "_cxx_compiler", lambda: "/usr/bin/g++" if compiler else None)

    return configure


def test_nothing_without_onednn_or_compiler(cpu_machine, tiny_config) -> None:
    cpu_machine({"avx512_bf16"}, mkldnn=False, compiler=False)
    capabilities = detect_capabilities("cpu")
    assert (capabilities.channels_last, capabilities.bf16, capabilities.compile) == (False, False, False)
    assert "no C++ compiler" in capabilities.reasons["compile"]
    assert "not detected" in choose(capabilities, compile=True).reasons["compile"]
    with pytest.raises(EngineUnavailable, match="no C\\+\\+ compiler for Inductor"):
        optimize_for_inference(ResnetModelForImageClassification(tiny_config), engine="torch-compile")


@pytest.mark.parametrize(
    ("capability", "triton", "expected"),
    [((9, 0), True, (True, True, True)), ((7, 5), True, (True, False, True)), ((6, 1), False, (False, False, False))],
)
def test_cuda_choices_follow_compute_capability(monkeypatch, capability, triton, expected) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Mock GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: capability[0] >= 8)
    monkeypatch.setattr(caps, "_triton_available", lambda: triton)
    settings = choose(detect_capabilities("cuda:0"))
    assert (settings.channels_last, settings.bf16, settings.compile) == expected
    assert "compute capability" in settings.reasons["bf16"]


def test_explicit_options_override_detection(cpu_machine) -> None:
    cpu_machine({"avx512_bf16"})
    settings = choose(detect_capabilities("cpu"), bf16=False, compile=False)
    assert (settings.channels_last, settings.bf16, settings.compile) == (True, False, False)
    assert settings.reasons["bf16"] == "requested" and settings.reasons["channels_last"].startswith("auto")
    cpu_machine(set())
    forced = choose(detect_capabilities("cpu"), bf16=True)
    assert forced.bf16 and "not detected" in forced.reasons["bf16"]
    assert "bf16=on" in str(forced) and "compile=" in str(forced)


def test_torch_path_applies_its_settings(cpu_machine, tiny_config) -> None:
    cpu_machine({"avx512_bf16"}, compiler=False)
    model = ResnetModelForImageClassification(tiny_config)
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    fast = optimize_for_inference(model, engine="torch", images=images)
    assert fast.choice.engine == "torch-bf16"  # native bf16 (as the probe sees it): torch's default precision
    assert fast.choice.torch["channels_last"] and fast.choice.torch["bf16"] and not fast.choice.torch["compile"]
    conv = fast.runner_for(images).module.model.conv1
    assert conv.weight.dtype == torch.bfloat16 and conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert model.model.conv1.weight.dtype == torch.float32  # the model itself is untouched
    out = fast(images)
    assert out.logits.dtype == torch.float32 and out.logits.shape == (8, tiny_config.num_classes)
    assert not out.logits.requires_grad
    assert fast.choice.folded_batchnorms > 0 and "BatchNorms folded" in str(fast.choice)


def test_batchnorm_folding_keeps_outputs(classifiers, photos) -> None:
    model = copy.deepcopy(classifiers["resnet18"])
    with torch.no_grad():
        reference = model(pixel_values=photos[:8]).logits
        batchnorms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        folded = fastpath.fold_batchnorm(model)
        assert folded == batchnorms - 1  # all but the stem's, which the wrapper reads for its dtype
        assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 1
        torch.testing.assert_close(model(pixel_values=photos[:8]).logits, reference, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="eval mode"):
        fastpath.fold_batchnorm(copy.deepcopy(classifiers["resnet18"]).train())


def test_unknown_device_is_refused() -> None:
    with pytest.raises(ValueError, match="Unsupported device"):
        detect_capabilities("tpu")


def test_agreement_detects_changed_predictions(classifiers, photos) -> None:
    with torch.no_grad():
        reference = classifiers["resnet18"](pixel_values=photos).logits
    assert top1_agreement(reference, reference.roll(1, dims=-1)) < 0.5
    with pytest.raises(ValueError, match="shapes differ"):
        top1_agreement(reference, reference[:, :10])


@pytest.fixture
def saved_photos(tmp_path, tiny_config):
    """A tiny classifier saved with its code, and six photographs as PNG files."""
    from PIL import Image

    torch.manual_seed(0)
    tiny_config.pretrained_cfg = {"input_size": [3, 32, 32], "interpolation": "bilinear", "crop_pct": 1.0}
    ResnetModelForImageClassification(tiny_config).eval().save_pretrained(tmp_path / "model")
    paths = []
    for index, photo in enumerate(source_photos()[:6]):
        paths.append(str(tmp_path / f"{index}.png"))
        Image.fromarray(photo).save(paths[-1])
    return str(tmp_path / "model"), paths


def test_predict_uses_the_fast_path_for_more_than_a_few_images(saved_photos, capsys) -> None:
    import io

    from resnet_toolkit.predict import predict

    folder, paths = saved_photos
    options = {"trust_remote_code": True, "top_k": 2, "out": io.StringIO()}
    eager = predict(folder, paths, fast_path=False, **options)
    assert "fast path:" not in capsys.readouterr().err
    fast = predict(folder, paths, **options)
    printed = capsys.readouterr().err
    assert "fast path: " in printed and "% top-1 of 64" in printed and "median top-1 margin" in printed
    engine = ENGINES[printed.split("fast path: ", 1)[1].split(" ", 1)[0]]
    # probabilities move by at most half the largest logit change, a fraction (the engine's tolerance) of the logits
    tolerance = 1e-4 if engine.precision == "fp32" else engine.tolerance
    for want, have in zip(eager, fast, strict=True):
        assert [label for label, _ in want] == [label for label, _ in have]
        assert [p for _, p in want] == pytest.approx([p for _, p in have], abs=tolerance)
    predict(folder, paths[: fastpath.FAST_PATH_MIN_IMAGES - 1], **options)
    assert "fast path:" not in capsys.readouterr().err


def test_predict_command_can_leave_the_fast_path_off(saved_photos) -> None:
    import subprocess
    import sys
    from pathlib import Path

    folder, paths = saved_photos
    command = [str(Path(sys.executable).with_name("resnet-model")), "predict", folder, *paths, "--trust-remote-code"]
    result = subprocess.run([*command, "--no-fast-path"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "fast path:" not in result.stderr and result.stdout.count(".png: ") == len(paths)


def test_cpu_kind_can_be_forced_lower(monkeypatch) -> None:
    monkeypatch.setattr(
        caps, "_proc_cpu_flags", lambda: frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"})
    )
    monkeypatch.delenv(caps.CPU_ISA_VARIABLE, raising=False)
    assert caps.cpu_kind() == "amx" and caps.native_bf16() == ["avx512_bf16", "amx_bf16"]
    monkeypatch.setenv(caps.CPU_ISA_VARIABLE, "avx512")
    assert caps.cpu_kind() == "avx512" and caps.native_bf16() == ["avx512_bf16"]
    monkeypatch.setenv(caps.CPU_ISA_VARIABLE, "AVX2")
    assert caps.cpu_flags() == {"avx2", "fma"} and caps.cpu_kind() == "avx2"
    capabilities = detect_capabilities("cpu")
    assert not capabilities.bf16 and "RESNET_MODEL_CPU_ISA=avx2" in capabilities.reasons["bf16"]
    why = engine_table.unavailable(ENGINES["openvino-bf16"], device="cpu", exportable=True, native_bf16=False)
    assert why is not None and ("no native bf16" in why or "not installed" in why)
    monkeypatch.setenv(caps.CPU_ISA_VARIABLE, "avx1024")
    with pytest.raises(ValueError, match="RESNET_MODEL_CPU_ISA must be one of 'native', 'amx', 'avx512', 'avx2'"):
        caps.cpu_flags()


def test_the_automatic_choice_follows_the_cpu_kind(tiny_config, monkeypatch) -> None:
    """On a CPU without native bf16 (forced here), no bf16 engine is chosen; with it, bf16 engines are candidates."""
    model = ResnetModelForImageClassification(tiny_config)
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(caps, "_proc_cpu_flags", lambda: frozenset({"avx2", "fma", "avx512f", "amx_bf16"}))
    monkeypatch.setattr(caps, "_mkldnn_bf16_supported", lambda: True)
    monkeypatch.setenv(caps.CPU_ISA_VARIABLE, "avx2")
    fast = optimize_for_inference(model, images=images, batch_sizes=(1,), cache=False)
    assert fast.choice.precision == "fp32" and fast.choice.computes_in == "fp32"
    for key in ("torch-bf16", "openvino-bf16"):
        assert "no native bf16" in fast.choice.skipped[key] and "RESNET_MODEL_CPU_ISA=avx2" in fast.choice.skipped[key]
    assert fast.choice.parity["images"] == fastpath.AGREEMENT_IMAGES
    assert fast.choice.parity_images == "8 given images + 56 seeded random images (non-square input)" or (
        fast.choice.parity_images.startswith("8 given images + 56 photo crops")
    )
    monkeypatch.setenv(caps.CPU_ISA_VARIABLE, "amx")
    fast = optimize_for_inference(model, images=images, batch_sizes=(1,), cache=False)
    assert "torch-bf16" not in fast.choice.skipped or fast.choice.skipped["torch-bf16"].startswith("parity:")


def test_fp32_paths_stay_ieee_when_the_process_allows_bf16(classifiers, photos) -> None:
    """`torch.backends.mkldnn.fp32_precision = "bf16"` lets oneDNN use bf16 for float32 on AMX; fp32 paths refuse it."""
    model = classifiers["resnet18"]
    fast = optimize_for_inference(model, engine="torch-fp32", images=photos)
    backend = torch.backends.mkldnn.conv
    with torch.no_grad():
        reference = model(pixel_values=photos[:8]).logits
    saved = {name: runners.precision_node(name).fp32_precision for name in runners.PRECISION_NODES}
    try:
        backend.fp32_precision = "bf16"
        logits = fast(photos[:8]).logits
        assert backend.fp32_precision == "bf16"  # the process's setting is left as it was
    finally:
        for name, value in saved.items():
            runners.precision_node(name).fp32_precision = value
    torch.testing.assert_close(logits, reference, rtol=1e-4, atol=1e-4 * float(reference.abs().max()))
    assert fast.choice.computes_in == "fp32"


def test_exported_engines_compute_in_their_precision(classifiers, photos) -> None:
    built = engine_models(
        classifiers["resnet18"], ["openvino-fp32", "openvino-bf16", "onnxruntime-fp32"], images=photos
    )
    for key, fast in built.items():
        if isinstance(fast, str):  # not installed, or no native bf16 here
            continue
        assert fast.choice.computes_in == ENGINES[key].precision, key


def test_cached_parity_belongs_to_the_weights_it_was_measured_for(tiny_config, calibration_cache) -> None:
    model = ResnetModelForImageClassification(tiny_config)
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    first = optimize_for_inference(model, images=images, candidates=["torch-fp32"], batch_sizes=(2,))
    again = optimize_for_inference(model, images=images, candidates=["torch-fp32"], batch_sizes=(2,))
    assert again.choice.cached and "measured for these weights" in again.choice.parity_images
    assert again.choice.parity == first.choice.parity
    assert "fp32 eager reference" not in again.choice.setup_s  # no reference pass: the cached parity holds
    with torch.no_grad():
        model.model.fc.bias.add_(1.0)  # other weights: parity is measured again
    changed = optimize_for_inference(model, images=images, candidates=["torch-fp32"], batch_sizes=(2,))
    assert changed.choice.cached and "measured for these weights" not in changed.choice.parity_images
    assert "fp32 eager reference" in changed.choice.setup_s
