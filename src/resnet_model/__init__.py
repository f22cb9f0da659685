"""timm's ResNet family as a Transformers custom-code model (the tutorial's `resnet_model` folder)."""

from .configuration_resnet import TIMM_PRESETS, ResnetConfig
from .modeling_resnet import (
    ResnetBackbone,
    ResnetModel,
    ResnetModelForImageClassification,
    ResnetPreTrainedModel,
    load_timm_state_dict,
)

__all__ = [
    "TIMM_PRESETS",
    "ResnetBackbone",
    "ResnetConfig",
    "ResnetModel",
    "ResnetModelForImageClassification",
    "ResnetPreTrainedModel",
    "load_timm_state_dict",
    "register",
]


def register() -> None:
    """Register the classes with the Auto classes named in `AUTO_MAP` (idempotent)."""
    import transformers

    from . import modeling_resnet

    for auto_name, reference in modeling_resnet.AUTO_MAP.items():
        auto_class = getattr(transformers, auto_name)
        if auto_name == "AutoConfig":
            auto_class.register(ResnetConfig.model_type, ResnetConfig, exist_ok=True)
        else:
            auto_class.register(ResnetConfig, getattr(modeling_resnet, reference.split(".")[1]), exist_ok=True)
