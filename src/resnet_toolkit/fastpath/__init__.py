"""Fast inference: the fastest engine for this machine and batch size, measured, never guessed.

```python
from resnet_toolkit.fastpath import optimize_for_inference

fast = optimize_for_inference(model)  # model: ResnetModelForImageClassification (or any image nn.Module)
print(fast.choice)  # the engine for batch 1, why, its top-1 agreement with fp32 eager, what else was measured
logits = fast(pixel_values).logits  # float32 logits from the engine chosen for this batch size
```

Candidates: fp32 eager; torch with BatchNorm folding + channels-last (+ bf16 where the CPU has it natively);
ONNX Runtime and OpenVINO (fp32, from one ONNX export); on request `torch.compile` (max-autotune) and int8
(`precision="int8"`). They are timed side by side per batch size and checked against fp32 eager on real photo
crops, from the fastest down (seconds for a ResNet-18, tens of seconds for a ResNet-50 on two busy cores, then
cached per machine and model architecture under `$XDG_CACHE_HOME/resnet-model/fastpath`; safe to delete).
Pass `engine="openvino"` (or any engine name) to skip the timing. A pipeline:
`accelerate_pipeline(pipeline("image-classification", model=...))`; a command: `batched_logits(model, pixels)`.
"""

from .calibration import AGREEMENT_FLOOR, AGREEMENT_IMAGES, FastPathChoice, Parity, cache_dir, top1_agreement
from .capabilities import Capabilities, TorchSettings, choose, cpu_flags, cpu_model, detect_capabilities
from .engines import ENGINE_NAMES, ENGINES, PRECISIONS, Engine, library_versions
from .folding import fold_batchnorm
from .model import EngineUnavailable, FastModel, check_engines, engine_models, optimize_for_inference
from .serving import FAST_PATH_MIN_IMAGES, accelerate_pipeline, batched_logits

__all__ = [
    "AGREEMENT_FLOOR",
    "AGREEMENT_IMAGES",
    "FAST_PATH_MIN_IMAGES",
    "ENGINES",
    "ENGINE_NAMES",
    "PRECISIONS",
    "Capabilities",
    "Engine",
    "EngineUnavailable",
    "FastModel",
    "FastPathChoice",
    "Parity",
    "TorchSettings",
    "accelerate_pipeline",
    "batched_logits",
    "cache_dir",
    "check_engines",
    "choose",
    "cpu_flags",
    "cpu_model",
    "detect_capabilities",
    "engine_models",
    "fold_batchnorm",
    "library_versions",
    "optimize_for_inference",
    "top1_agreement",
]
