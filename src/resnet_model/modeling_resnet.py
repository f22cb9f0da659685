"""timm's ResNet family as Transformers models: features, image classification and a backbone."""

from __future__ import annotations

import math
import os

import torch
from timm.models.resnet import BasicBlock, Bottleneck, ResNet
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import (
    BackboneOutput,
    BaseModelOutputWithPoolingAndNoAttention,
    ImageClassifierOutputWithNoAttention,
)

from .configuration_resnet import (
    LABEL_FIELDS,
    ResnetConfig,
    save_preprocessor_config,
    timm_data_config,
    timm_label_names,
)

try:  # transformers >= 5
    from transformers.backbone_utils import BackboneMixin
except ImportError:  # transformers 4.x
    from transformers.utils.backbone_utils import BackboneMixin

BLOCK_MAPPING = {"basic": BasicBlock, "bottleneck": Bottleneck}
# `save_pretrained` arguments that only matter when it also pushes
_PUSH_KWARGS = ("repo_id", "commit_message", "private", "token", "create_pr", "revision", "commit_description", "tags")

# Every head ships in this file, so one saved repo serves all of them whichever class was saved.
AUTO_MAP = {
    "AutoConfig": "configuration_resnet.ResnetConfig",
    "AutoModel": "modeling_resnet.ResnetModel",
    "AutoModelForImageClassification": "modeling_resnet.ResnetModelForImageClassification",
    "AutoBackbone": "modeling_resnet.ResnetBackbone",
}


def build_timm_resnet(config: ResnetConfig) -> ResNet:
    """The timm `ResNet` described by `config`, with each block's last BatchNorm tagged for zero-init."""
    model = ResNet(BLOCK_MAPPING[config.block_type], **config.timm_kwargs)
    for module in model.modules():
        if isinstance(module, (BasicBlock, Bottleneck)):
            last_bn = module.bn3 if isinstance(module, Bottleneck) else module.bn2
            last_bn._zero_init_last = True
    return model


class ResnetPreTrainedModel(PreTrainedModel):
    """Shared base: config class, weight init, input checks and gradient checkpointing."""

    config_class = ResnetConfig
    base_model_prefix = "model"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["BasicBlock", "Bottleneck"]
    accepts_loss_kwargs = False

    def __init__(self, config: ResnetConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        auto_map = dict(getattr(config, "auto_map", None) or {})
        for auto_class, reference in AUTO_MAP.items():
            auto_map.setdefault(auto_class, reference)
        config.auto_map = auto_map

    def _init_weights(self, module: nn.Module) -> None:
        """timm's ResNet initialisation; loaded tensors are never touched (Transformers guards `nn.init`)."""
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            zero = getattr(module, "_zero_init_last", False) and self.config.zero_init_last
            (nn.init.zeros_ if zero else nn.init.ones_)(module.weight)
            nn.init.zeros_(module.bias)
            nn.init.zeros_(module.running_mean)
            nn.init.ones_(module.running_var)
            nn.init.zeros_(module.num_batches_tracked)
        elif isinstance(module, nn.Linear):
            # torch's default `nn.Linear` init, which timm keeps for the classifier
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                bound = 1 / math.sqrt(module.in_features) if module.in_features > 0 else 0
                nn.init.uniform_(module.bias, -bound, bound)

    def save_pretrained(self, save_directory: str | os.PathLike, *args, push_to_hub: bool = False, **kwargs) -> None:
        """Save as Transformers does, plus `preprocessor_config.json` for `AutoImageProcessor`."""
        hub_kwargs = {k: kwargs.pop(k) for k in _PUSH_KWARGS if k in kwargs}
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            save_preprocessor_config(self.config.pretrained_cfg, save_directory)
            if push_to_hub:  # push_to_hub saves again into a folder it uploads whole, processor file included
                repo_id = hub_kwargs.pop("repo_id", os.path.basename(os.path.normpath(str(save_directory))))
                self.push_to_hub(repo_id, **hub_kwargs)

    def _set_gradient_checkpointing(self, enable: bool = True, *args, **kwargs) -> None:
        self.model.set_grad_checkpointing(enable)  # timm checkpoints block by block
        self.gradient_checkpointing = enable  # what Transformers reads back

    def load_state_dict(self, state_dict, *args, **kwargs):
        """Also accept a bare timm state dict (keys without the `model.` prefix)."""
        prefix = self.base_model_prefix + "."
        state_dict = {k if k.startswith(prefix) else prefix + k: v for k, v in state_dict.items()}
        return super().load_state_dict(state_dict, *args, **kwargs)

    def _prologue(
        self, pixel_values, output_hidden_states: bool | None, return_dict: bool | None
    ) -> tuple[torch.Tensor, bool, bool]:
        """The forward prologue every head shares: checked pixel values and the resolved output flags."""
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if return_dict is None:
            return_dict = self.config.return_dict
        return self._prepare_pixel_values(pixel_values), output_hidden_states, return_dict

    def _prepare_pixel_values(self, pixel_values) -> torch.Tensor:
        """Validate the input's shape and bring it to the model's dtype."""
        channels = self.config.input_channels
        expected = f"(batch_size, {channels}, height, width)"
        if not isinstance(pixel_values, torch.Tensor):
            raise TypeError(f"`pixel_values` must be a torch.Tensor of shape {expected}, got {type(pixel_values)}.")
        if pixel_values.dim() != 4 or pixel_values.shape[1] != channels:
            raise ValueError(
                f"`pixel_values` must have shape {expected}, got {tuple(pixel_values.shape)} "
                f"(config.input_channels={channels})."
            )
        dtype = next(self.parameters()).dtype
        if pixel_values.dtype != dtype:
            pixel_values = pixel_values.to(dtype)
        return pixel_values

    def _features(self, pixel_values, output_hidden_states: bool):
        """Final feature map and, if asked, the stem + four stage maps."""
        if output_hidden_states:
            features, hidden_states = self.model.forward_intermediates(pixel_values)
            return features, tuple(hidden_states)
        return self.model.forward_features(pixel_values), None


class ResnetModel(ResnetPreTrainedModel):
    """Feature extractor: the final feature map and its globally pooled vector."""

    def __init__(self, config: ResnetConfig):
        super().__init__(config)
        self.model = build_timm_resnet(config)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPoolingAndNoAttention | tuple:
        """`last_hidden_state` (B, C, H, W) = timm's `forward_features`; `pooler_output` (B, C)."""
        pixel_values, output_hidden_states, return_dict = self._prologue(
            pixel_values, output_hidden_states, return_dict
        )
        features, hidden_states = self._features(pixel_values, output_hidden_states)
        pooled = self.model.forward_head(features, pre_logits=True)
        if not return_dict:
            return tuple(v for v in (features, pooled, hidden_states) if v is not None)
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=features, pooler_output=pooled, hidden_states=hidden_states
        )


class ResnetModelForImageClassification(ResnetPreTrainedModel):
    """Image classifier; returns the loss too when `labels` are given, so it trains with `Trainer`."""

    def __init__(self, config: ResnetConfig):
        super().__init__(config)
        if config.num_classes == 0:
            raise ValueError(
                "`num_classes` is 0: a classifier needs classes. Pass `num_labels=N` (or `id2label`), "
                "or use `ResnetModel` / `AutoModel` for features."
            )
        self.model = build_timm_resnet(config)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutputWithNoAttention | tuple:
        """`logits` (B, num_classes); `loss` follows `config.problem_type` as in Transformers' classifiers."""
        pixel_values, output_hidden_states, return_dict = self._prologue(
            pixel_values, output_hidden_states, return_dict
        )
        features, hidden_states = self._features(pixel_values, output_hidden_states)
        logits = self.model.forward_head(features)
        loss = self._loss(logits, labels) if labels is not None else None
        if not return_dict:
            output = (logits,) + ((hidden_states,) if hidden_states is not None else ())
            return ((loss,) + output) if loss is not None else output
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits, hidden_states=hidden_states)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        num_labels = logits.shape[-1]
        labels = labels.to(logits.device)
        problem_type = self.config.problem_type
        if problem_type is None:
            if num_labels == 1:
                problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int, torch.int16, torch.int8, torch.uint8):
                problem_type = "single_label_classification"
            else:
                problem_type = "multi_label_classification"
            self.config.problem_type = problem_type
        if problem_type == "regression":
            return nn.functional.mse_loss(logits.squeeze(-1), labels.squeeze(-1).to(logits.dtype))
        if problem_type == "multi_label_classification":
            if labels.shape != logits.shape:
                shapes = f"{tuple(logits.shape)}, got {tuple(labels.shape)}"
                raise ValueError(f"multi-label `labels` must have the logits' shape {shapes}.")
            return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        labels = labels.view(-1)
        if labels.shape[0] != logits.shape[0]:
            raise ValueError(
                f"`labels` must hold one class index per image ({logits.shape[0]}), got {labels.shape[0]}."
            )
        valid = labels[labels != -100]
        if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= num_labels):
            bad = valid[(valid < 0) | (valid >= num_labels)].unique().tolist()
            raise ValueError(
                f"`labels` must be class indices in [0, {num_labels - 1}] (or -100 to ignore), got {bad[:10]}."
            )
        return nn.functional.cross_entropy(logits, labels.long())

    @classmethod
    def from_timm(cls, source, checkpoint: str | None = None, **overrides) -> ResnetModelForImageClassification:
        """Build from a timm ResNet: a variant name (+ optional local `checkpoint` file), a model or a state dict.

        `overrides` replace config fields (e.g. `id2label`). Every tensor must match in name and shape; any
        mismatch raises `ValueError` listing the offending keys.
        """
        import timm  # deferred: only this constructor needs timm's factory

        state_dict = None
        if isinstance(source, str):
            config = ResnetConfig.from_timm(source, **overrides)
            if checkpoint is not None:
                if not os.path.isfile(checkpoint):
                    raise FileNotFoundError(
                        f"`checkpoint` file not found: {checkpoint!r} (a timm state dict: .safetensors, .pth or .bin)."
                    )
                state_dict = timm.models.load_state_dict(str(checkpoint), weights_only=True)
        elif isinstance(source, nn.Module):
            overrides.setdefault(
                "pretrained_cfg", timm_data_config(model=source, input_channels=_timm_in_channels(source))
            )
            config = _config_from_timm_module(source, overrides)
            state_dict = source.state_dict()
        elif isinstance(source, dict):
            if "layers" not in overrides and "block_type" not in overrides:
                raise ValueError("A bare state dict needs the architecture: pass config fields or use a variant name.")
            config = ResnetConfig(**overrides)
            state_dict = source
        else:
            raise TypeError(f"`source` must be a timm variant name, a timm ResNet or a state dict, got {type(source)}.")
        model = cls(config)
        if state_dict is not None:
            load_timm_state_dict(model.model, state_dict)
        return model.eval()


class ResnetBackbone(BackboneMixin, ResnetPreTrainedModel):
    """Transformers backbone: the feature maps of `config.out_features` among stem, stage1…stage4."""

    has_attentions = False

    def __init__(self, config: ResnetConfig):
        super().__init__(config)
        if hasattr(self, "_init_backbone"):  # transformers 4.x sets up the backbone outside `__init__`
            self._init_backbone(config)
        self.num_features = list(config.stage_channels)
        self.model = build_timm_resnet(config)
        self.model.reset_classifier(0)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BackboneOutput | tuple:
        """`feature_maps`: one (B, C, H, W) map per `out_features` entry; `hidden_states`: all five maps."""
        pixel_values, output_hidden_states, return_dict = self._prologue(
            pixel_values, output_hidden_states, return_dict
        )
        if output_hidden_states:
            hidden_states = tuple(self.model.forward_intermediates(pixel_values, intermediates_only=True))
            feature_maps = tuple(hidden_states[i] for i in self.out_indices)
        else:
            hidden_states = None
            feature_maps = tuple(
                self.model.forward_intermediates(
                    pixel_values, indices=list(self.out_indices), intermediates_only=True, stop_early=True
                )
            )
        if not return_dict:
            return (feature_maps,) + ((hidden_states,) if hidden_states is not None else ())
        return BackboneOutput(feature_maps=feature_maps, hidden_states=hidden_states, attentions=None)


def _timm_in_channels(module: nn.Module) -> int:
    """Input channels of a timm ResNet's first convolution."""
    conv = module.conv1[0] if isinstance(module.conv1, nn.Sequential) else module.conv1
    return conv.in_channels


def _config_from_timm_module(module: nn.Module, overrides: dict) -> ResnetConfig:
    """Read a timm ResNet's architecture back from its layers."""
    if not isinstance(module, ResNet):
        raise TypeError(f"Expected a timm `ResNet`, got {type(module).__name__}.")
    first = module.layer1[0]
    fields = {
        "block_type": "bottleneck" if isinstance(first, Bottleneck) else "basic",
        "layers": [len(getattr(module, f"layer{i}")) for i in range(1, 5)],
        "num_classes": module.num_classes,
        "avg_down": isinstance(module.layer2[0].downsample[0], nn.AvgPool2d),
        "drop_rate": float(module.drop_rate),
    }
    if isinstance(first, Bottleneck):
        fields["cardinality"] = first.conv2.groups
        fields["base_width"] = first.conv1.out_channels // first.conv2.groups
    if isinstance(module.conv1, nn.Sequential):  # deep stem: conv-bn-act-conv-bn-act-conv
        fields["input_channels"] = module.conv1[0].in_channels
        fields["stem_width"] = module.conv1[3].out_channels
        tiered = module.conv1[0].out_channels != module.conv1[3].out_channels
        fields["stem_type"] = "deep_tiered" if tiered else "deep"
    else:
        fields["input_channels"] = module.conv1.in_channels
    if not LABEL_FIELDS & set(overrides):
        names = timm_label_names(module)
        if names is not None and len(names) == module.num_classes:
            fields["id2label"] = dict(enumerate(names))
    fields.update(overrides)
    return ResnetConfig(**fields)


def load_timm_state_dict(resnet: ResNet, state_dict: dict) -> None:
    """Copy a timm state dict into `resnet`, refusing any missing, unexpected or mis-shaped tensor."""
    own = resnet.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if tuple(state_dict[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or mismatched:
        parts = []
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if keys:
                shown = ", ".join(keys[:12]) + (f", … ({len(keys)} in all)" if len(keys) > 12 else "")
                parts.append(f"{title}: {shown}")
        raise ValueError("The timm weights do not fit this architecture — " + "; ".join(parts))
    resnet.load_state_dict(state_dict, strict=True)


ResnetModel.register_for_auto_class("AutoModel")
ResnetModelForImageClassification.register_for_auto_class("AutoModelForImageClassification")
ResnetBackbone.register_for_auto_class("AutoBackbone")
