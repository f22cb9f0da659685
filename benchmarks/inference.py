"""Inference throughput: ours vs timm, TimmWrapper and Transformers' ResNet, and our fast paths with agreement."""

from __future__ import annotations

import copy
import functools
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from resnet_model import ResnetModelForImageClassification
from resnet_toolkit.fastpath import choose, detect_capabilities, optimize_for_inference, top1_agreement

from .common import calibrated_timm_model, interleave, sample_images, synchronize

# Transformers' own ResNet closest to each timm variant (Transformers has no deep-stem "d" variant).
HF_RESNET = {
    "resnet18": ("ResNet-18", {"layer_type": "basic", "depths": [2, 2, 2, 2], "hidden_sizes": [64, 128, 256, 512]}),
    "resnet34": ("ResNet-34", {"layer_type": "basic", "depths": [3, 4, 6, 3], "hidden_sizes": [64, 128, 256, 512]}),
    "resnet50": ("ResNet-50", {"layer_type": "bottleneck", "depths": [3, 4, 6, 3]}),
    "resnet50d": ("ResNet-50", {"layer_type": "bottleneck", "depths": [3, 4, 6, 3]}),
}
AGREEMENT_GOAL = 0.99


@dataclass
class Contender:
    """One way of running the model: `run(x)` returns float logits for a batch."""

    key: str
    label: str
    run: Callable[[torch.Tensor], torch.Tensor]
    compare: bool = False  # top-1 agreement against our fp32 eager predictions is measured


class _Logits(nn.Module):
    """Our classifier reduced to `pixel_values -> logits`, for export."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values, return_dict=False)[0]


def onnx_runner(model: nn.Module, example: torch.Tensor, workdir: str) -> tuple[Callable, float]:
    """Export `model` to ONNX with a dynamic batch axis and return an ONNX Runtime runner and the export seconds."""
    import onnxruntime as ort

    path = os.path.join(workdir, "model.onnx")
    start = time.perf_counter()
    module = _Logits(copy.deepcopy(model).float().eval())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # the TorchScript exporter is several times faster to run than the dynamo one
            torch.onnx.export(
                module,
                (example,),
                path,
                input_names=["pixel_values"],
                output_names=["logits"],
                dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}},
                dynamo=False,
            )
        except Exception:  # noqa: BLE001 - fall back to the dynamo exporter
            batch = torch.export.Dim("batch")
            torch.onnx.export(
                module, (example,), path, dynamic_shapes={"pixel_values": {0: batch}}, dynamo=True, verbose=False
            )
    seconds = time.perf_counter() - start
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no busy-waiting between runs: spinning threads would steal the CPU from the contenders timed next
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {name: x.contiguous().numpy()})[0])

    return run, seconds


def hf_resnet(name: str) -> tuple[str, nn.Module] | None:
    """Transformers' built-in ResNet of the same depth (random weights), or None if it has no counterpart."""
    if name not in HF_RESNET:
        return None
    from transformers import ResNetConfig, ResNetForImageClassification

    label, fields = HF_RESNET[name]
    torch.manual_seed(0)
    return label, ResNetForImageClassification(ResNetConfig(num_labels=1000, **fields)).eval()


def timm_wrapper(name: str, timm_model: nn.Module) -> nn.Module:
    """`TimmWrapperForImageClassification` built from a config (no download), holding `timm_model`'s weights."""
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    wrapper = TimmWrapperForImageClassification(TimmWrapperConfig(architecture=name, num_labels=1000))
    wrapper.timm_model.load_state_dict(timm_model.state_dict())
    return wrapper.eval()


def build_contenders(
    name: str, images: torch.Tensor, *, device: str, use_compile: bool, use_onnx: bool, workdir: str
) -> tuple[list[Contender], dict]:
    """Every way of running `name` that the table compares, plus facts about how they were built."""
    facts: dict = {}
    calibration = sample_images(48, images.shape[-1], seed=1)
    timm_model = calibrated_timm_model(name, calibration)
    ours = ResnetModelForImageClassification.from_timm(timm_model).eval()
    timm_model.to(device)
    ours.to(device)

    def no_grad(fn: Callable) -> Callable:
        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return fn(x)

        return run

    contenders = [
        Contender("timm", "timm eager fp32", no_grad(timm_model)),
        Contender("ours", "ours eager fp32", no_grad(lambda x: ours(pixel_values=x).logits)),
    ]
    wrapper = timm_wrapper(name, timm_model).to(device)
    contenders.append(
        Contender("timm_wrapper", "TimmWrapper eager fp32", no_grad(lambda x: wrapper(pixel_values=x).logits))
    )
    hf = hf_resnet(name)
    if hf is not None:
        label, hf_model = hf
        hf_model.to(device)
        facts["hf_resnet"] = label
        contenders.append(
            Contender(
                "hf_resnet", f"Transformers {label} eager fp32", no_grad(lambda x: hf_model(pixel_values=x).logits)
            )
        )

    capabilities = detect_capabilities(device)
    auto = choose(capabilities)
    if not use_compile:
        auto = choose(capabilities, compile=False)
    facts["auto_choice"] = auto.as_dict()
    settings = [(True, False, False), (True, True, False)]
    if use_compile:
        settings.append((True, True, True))
    auto_setting = (auto.channels_last, auto.bf16, auto.compile)
    if auto_setting not in settings and any(auto_setting):
        settings.append(auto_setting)
    for channels_last, bf16, compiled in settings:
        fast = optimize_for_inference(
            copy.deepcopy(ours), channels_last=channels_last, bf16=bf16, compile=compiled, device=device
        )
        parts = [p for p, on in (("bf16", bf16), ("channels_last", channels_last), ("compile", compiled)) if on]
        label = "ours " + "+".join(parts)
        if (channels_last, bf16, compiled) == auto_setting:
            label += " (fastpath auto)"
        key = "ours_" + "_".join(parts)
        contenders.append(Contender(key, label, lambda x, fast=fast: fast(x).logits, compare=True))
    unfolded = optimize_for_inference(
        copy.deepcopy(ours), channels_last=True, bf16=auto.bf16, compile=False, fold_bn=False, device=device
    )
    label = "ours " + ("bf16+" if auto.bf16 else "") + "channels_last, BatchNorm not folded"
    contenders.append(Contender("ours_unfolded", label, lambda x: unfolded(x).logits, compare=True))
    if use_onnx and device == "cpu":
        run, seconds = onnx_runner(ours, images[:1].to(device), workdir)
        facts["onnx_export_s"] = round(seconds, 1)
        contenders.append(Contender("ours_onnxruntime", "ours ONNX Runtime fp32", run, compare=True))
    facts["_ours"] = ours
    facts["_timm"] = timm_model
    return contenders, facts


def agreement_pass(contenders: list[Contender], images: torch.Tensor, device: str, batch: int = 8) -> dict:
    """Top-1 agreement and max |diff| against our fp32 eager logits over `images`; warms every contender up."""
    logits: dict[str, torch.Tensor] = {}
    first_call: dict[str, float] = {}
    for contender in contenders:
        chunks = images.split(batch) if contender.compare or contender.key == "ours" else images[:batch].split(batch)
        outs = []
        for index, chunk in enumerate(chunks):
            synchronize(device)
            start = time.perf_counter()
            outs.append(contender.run(chunk.to(device)).float().cpu())
            synchronize(device)
            if index == 0:
                first_call[contender.key] = time.perf_counter() - start
        logits[contender.key] = torch.cat(outs)
    reference = logits["ours"]
    result = {
        "images": len(images),
        "ours_vs_timm_max_abs_diff": float((reference[:batch] - logits["timm"]).abs().max()),
        "timm_wrapper_vs_timm_max_abs_diff": float((logits["timm_wrapper"] - logits["timm"]).abs().max())
        if "timm_wrapper" in logits
        else None,
        "first_call_s": {k: round(v, 3) for k, v in first_call.items()},
        "top1_agreement": {},
        "max_abs_diff": {},
    }
    fitted = reference.max(0).values > -1e3  # classes the probe head can predict (the others sit at -1e4)
    for contender in contenders:
        if contender.compare:
            result["top1_agreement"][contender.key] = top1_agreement(reference, logits[contender.key])
            diff = (logits[contender.key] - reference)[:, fitted].abs().max()
            result["max_abs_diff"][contender.key] = float(diff)
    top2 = reference.topk(2, dim=-1).values
    margins = top2[:, 0] - top2[:, 1]
    result["median_top1_margin"] = float(margins.median())
    result["disagreeing_margins"] = {}  # the fp32 top-1 margin of each image whose top-1 changed
    for key, agreement in result["top1_agreement"].items():
        changed = logits[key].argmax(-1) != reference.argmax(-1)
        if agreement < 1.0:
            result["disagreeing_margins"][key] = sorted(float(m) for m in margins[changed])
    return result


def wrapper_overhead(ours: nn.Module, *, rounds: int, calls: int = 2000) -> dict:
    """Microseconds our forward adds around timm's compute: the call timed with that compute stubbed out."""
    inner = ours.model
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        features = inner.forward_features(x)
        logits = inner.forward_head(features)
        inner.forward_features = lambda pixel_values: features
        inner.forward_head = lambda feats, pre_logits=False: logits
        try:
            for _ in range(100):
                ours(pixel_values=x)
            timing = interleave({"ours": lambda: ours(pixel_values=x)}, rounds=rounds, calls=calls)
        finally:
            del inner.forward_features, inner.forward_head
    return {"overhead_us": timing.median("ours") * 1e6, "calls_per_round": calls, "rounds": rounds}


def run_inference(
    names: list[str],
    batches: list[int],
    images: torch.Tensor,
    *,
    rounds: int,
    target_s: float,
    device: str = "cpu",
    use_compile: bool = True,
    use_onnx: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Throughput of every contender for each model and batch size, as medians and paired ratios."""
    results: dict = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            log(f"[inference] {name}: building contenders")
            contenders, facts = build_contenders(
                name, images, device=device, use_compile=use_compile, use_onnx=use_onnx, workdir=workdir
            )
            ours = facts.pop("_ours")
            facts.pop("_timm")
            entry: dict = {"facts": facts, "contenders": {c.key: c.label for c in contenders}}
            log(f"[inference] {name}: agreement on {len(images)} images (also warms up batch 8)")
            entry["agreement"] = agreement_pass(contenders, images, device)
            if device == "cpu":
                entry["wrapper_overhead"] = wrapper_overhead(ours, rounds=rounds)
            entry["batches"] = {}
            for batch in batches:
                x = images[:batch].to(device)
                first_call = {}
                for contender in contenders:  # warm-up; compiles each new shape
                    start = time.perf_counter()
                    contender.run(x)
                    first_call[contender.key] = time.perf_counter() - start
                    contender.run(x)
                start = time.perf_counter()
                contenders[0].run(x)
                calls = max(1, round(target_s / max(time.perf_counter() - start, 1e-6)))
                log(f"[inference] {name} batch {batch}: {rounds} rounds x {calls} calls")
                timing = interleave(
                    {c.key: functools.partial(c.run, x) for c in contenders}, rounds=rounds, calls=calls, device=device
                )
                entry["batches"][str(batch)] = {
                    "calls_per_round": calls,
                    "first_call_s": {k: round(v, 3) for k, v in first_call.items()},
                    "seconds_per_call": timing.seconds,
                    "img_per_s": {c.key: batch / timing.median(c.key) for c in contenders},
                    "ratio_vs_timm": {c.key: timing.ratio(c.key, "timm") for c in contenders},
                    "ratio_vs_timm_range": {c.key: timing.ratio_spread(c.key, "timm") for c in contenders},
                    "ours_ratio_vs": {c.key: timing.ratio("ours", c.key) for c in contenders},
                    "best_round_ratio_vs_timm": {c.key: timing.best_ratio(c.key, "timm") for c in contenders},
                }
            results[name] = entry
    return results
