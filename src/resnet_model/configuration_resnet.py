"""Configuration of the timm ResNet family wrapped as a Transformers model."""

from __future__ import annotations

import copy
import json
import os

from transformers import PretrainedConfig
from transformers.utils import logging

try:  # transformers >= 5
    from transformers.backbone_utils import BackboneConfigMixin
except ImportError:  # transformers 4.x
    from transformers.utils.backbone_utils import BackboneConfigMixin

logger = logging.get_logger(__name__)

BLOCK_TYPES = ("basic", "bottleneck")
STEM_TYPES = ("", "deep", "deep_tiered")  # timm's spellings; configs saved with "deep-tiered" still load
STAGE_NAMES = ("stem", "stage1", "stage2", "stage3", "stage4")
IMAGE_PROCESSOR_TYPE = "TimmWrapperImageProcessor"
PROCESSOR_FILE = "preprocessor_config.json"
DATA_CONFIG_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")
# The fields that set the classifier's size or class names; when none is given, timm's ImageNet names apply.
LABEL_FIELDS = {"num_classes", "num_labels", "id2label", "label2id"}

# One row per timm variant: the config fields that reproduce `timm.create_model(name)`.
# Mirrors the `model_args` of timm's `@register_model` functions in `timm/models/resnet.py`.
_DEEP_D = {"stem_width": 32, "stem_type": "deep", "avg_down": True}
_DEEP_T = {"stem_width": 32, "stem_type": "deep_tiered", "avg_down": True}
TIMM_PRESETS: dict[str, dict] = {
    "resnet10t": {"block_type": "basic", "layers": [1, 1, 1, 1], **_DEEP_T},
    "resnet14t": {"block_type": "bottleneck", "layers": [1, 1, 1, 1], **_DEEP_T},
    "resnet18": {"block_type": "basic", "layers": [2, 2, 2, 2]},
    "resnet18d": {"block_type": "basic", "layers": [2, 2, 2, 2], **_DEEP_D},
    "resnet26": {"block_type": "bottleneck", "layers": [2, 2, 2, 2]},
    "resnet26d": {"block_type": "bottleneck", "layers": [2, 2, 2, 2], **_DEEP_D},
    "resnet26t": {"block_type": "bottleneck", "layers": [2, 2, 2, 2], **_DEEP_T},
    "resnet34": {"block_type": "basic", "layers": [3, 4, 6, 3]},
    "resnet34d": {"block_type": "basic", "layers": [3, 4, 6, 3], **_DEEP_D},
    "resnet50": {"block_type": "bottleneck", "layers": [3, 4, 6, 3]},
    "resnet50c": {"block_type": "bottleneck", "layers": [3, 4, 6, 3], "stem_width": 32, "stem_type": "deep"},
    "resnet50d": {"block_type": "bottleneck", "layers": [3, 4, 6, 3], **_DEEP_D},
    "resnet50s": {"block_type": "bottleneck", "layers": [3, 4, 6, 3], "stem_width": 64, "stem_type": "deep"},
    "resnet50t": {"block_type": "bottleneck", "layers": [3, 4, 6, 3], **_DEEP_T},
    "resnet101": {"block_type": "bottleneck", "layers": [3, 4, 23, 3]},
    "resnet101d": {"block_type": "bottleneck", "layers": [3, 4, 23, 3], **_DEEP_D},
    "resnet152": {"block_type": "bottleneck", "layers": [3, 8, 36, 3]},
    "resnet152d": {"block_type": "bottleneck", "layers": [3, 8, 36, 3], **_DEEP_D},
    "resnet200d": {"block_type": "bottleneck", "layers": [3, 24, 36, 3], **_DEEP_D},
    "resnext50_32x4d": {"block_type": "bottleneck", "layers": [3, 4, 6, 3], "cardinality": 32, "base_width": 4},
    "resnext101_32x4d": {"block_type": "bottleneck", "layers": [3, 4, 23, 3], "cardinality": 32, "base_width": 4},
    "resnext101_32x8d": {"block_type": "bottleneck", "layers": [3, 4, 23, 3], "cardinality": 32, "base_width": 8},
    "wide_resnet50_2": {"block_type": "bottleneck", "layers": [3, 4, 6, 3], "base_width": 128},
    "wide_resnet101_2": {"block_type": "bottleneck", "layers": [3, 4, 23, 3], "base_width": 128},
}


def save_preprocessor_config(pretrained_cfg: dict, save_directory: str | os.PathLike) -> str:
    """Write `preprocessor_config.json` (Transformers' `TimmWrapperImageProcessor` + timm's data config); its path."""
    payload = {"image_processor_type": IMAGE_PROCESSOR_TYPE, "pretrained_cfg": dict(pretrained_cfg)}
    path = os.path.join(save_directory, PROCESSOR_FILE)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(payload, indent=2) + "\n")
    return path


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value, minimum: int) -> None:
    if not _is_int(value) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")


def _check_data_config(data, input_channels: int) -> dict:
    """timm's default eval data config updated with the data-config keys of `data` (a timm `pretrained_cfg`)."""
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"`pretrained_cfg` must be a dict (timm data config), got {type(data).__name__}.")
    merged = timm_data_config(input_channels=input_channels)
    merged.update({k: list(v) if isinstance(v, tuple) else v for k, v in (data or {}).items() if k in DATA_CONFIG_KEYS})
    size = merged["input_size"]
    if not isinstance(size, list) or len(size) != 3 or not all(_is_int(n) and n >= 1 for n in size):
        raise ValueError(f"`pretrained_cfg['input_size']` must be [channels, height, width], got {size!r}.")
    return merged


def _check_rate(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1), got {value!r}.")


def _check_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be a bool (True or False), got {value!r}.")


def timm_label_names(model_or_cfg) -> list[str] | None:
    """ImageNet class names from timm's own tables when a timm model's (or pretrained config's) head has the size
    of an ImageNet subset timm knows (1k, 12k, 21k, 22k...); None otherwise."""
    from timm.data import ImageNetInfo, infer_imagenet_subset

    subset = infer_imagenet_subset(model_or_cfg)
    if subset is None:
        return None
    info = ImageNetInfo(subset)
    descriptions = info.label_descriptions(as_dict=True)
    return [descriptions[synset] for synset in info.label_names()]


def timm_data_config(name: str | None = None, model=None, input_channels: int = 3) -> dict:
    """timm's evaluation data config (`resolve_data_config`) for a timm name, a timm model, or timm's defaults."""
    import timm
    from timm.data import resolve_data_config

    if model is not None:
        data = resolve_data_config(model=model)
    elif name is not None:
        pretrained_cfg = timm.models.get_pretrained_cfg(name, allow_unregistered=False)
        if pretrained_cfg is None:
            raise ValueError(f"timm has no pretrained config for {name!r}.")
        data = resolve_data_config(pretrained_cfg=pretrained_cfg.to_dict())
    else:
        data = resolve_data_config(pretrained_cfg={"input_size": (3, 224, 224)})
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in data.items() if k in DATA_CONFIG_KEYS}
    if input_channels != data["input_size"][0]:
        data["input_size"] = [input_channels, *data["input_size"][1:]]
        if input_channels == 1:
            data["mean"] = [sum(data["mean"]) / len(data["mean"])]
            data["std"] = [sum(data["std"]) / len(data["std"])]
    return data


class ResnetConfig(BackboneConfigMixin, PretrainedConfig):
    r"""
    Configuration of a timm `ResNet` wrapped as a Transformers model: `ResnetModel`, `ResnetModelForImageClassification`
    and `ResnetBackbone`. The defaults describe timm's `resnet50`; `ResnetConfig.from_timm(name)` gives any variant of
    `TIMM_PRESETS`. `model_type` is `"custom_resnet"`, distinct from Transformers' built-in `"resnet"`.

    Args:
        block_type (`str`, *optional*, defaults to `"bottleneck"`):
            The residual block: `"basic"` (two 3x3 convolutions, ResNet-18/34) or `"bottleneck"` (1x1-3x3-1x1,
            ResNet-50 and deeper).
        layers (`list[int]`, *optional*, defaults to `[3, 4, 6, 3]`):
            Number of blocks in each of the four stages.
        num_classes (`int`, *optional*, defaults to 1000):
            Size of the classifier head; 0 for features only. Always equal to `num_labels` and `len(id2label)`:
            passing `id2label` (or `num_labels`) sets it.
        input_channels (`int`, *optional*, defaults to 3):
            Channels of the input images (1 for grayscale).
        cardinality (`int`, *optional*, defaults to 1):
            Groups of the 3x3 convolution in bottleneck blocks (32 for ResNeXt).
        base_width (`int`, *optional*, defaults to 64):
            Width per group of bottleneck blocks (4 or 8 for ResNeXt, 128 for Wide ResNet).
        stem_width (`int`, *optional*, defaults to 64):
            Channels of the stem's first convolutions (deep stems end with twice this many).
        stem_type (`str`, *optional*, defaults to `""`):
            `""` for one 7x7 convolution, `"deep"` for three 3x3 convolutions (the "c"/"d" variants),
            `"deep_tiered"` for three 3x3 convolutions of growing width (the "t" variants). The older spelling
            `"deep-tiered"` is read as `"deep_tiered"`.
        avg_down (`bool`, *optional*, defaults to `False`):
            Downsample shortcuts with average pooling + 1x1 convolution instead of a strided 1x1 convolution
            (the "d" variants).
        drop_rate (`float`, *optional*, defaults to 0.0):
            Dropout before the classifier, in [0, 1).
        drop_path_rate (`float`, *optional*, defaults to 0.0):
            Stochastic-depth rate of the residual branches, in [0, 1).
        zero_init_last (`bool`, *optional*, defaults to `True`):
            Initialise the last BatchNorm of each block to zero, so every block starts as the identity.
        pretrained_cfg (`dict`, *optional*):
            timm's evaluation data config (`input_size`, `interpolation`, `mean`, `std`, `crop_pct`, `crop_mode`);
            missing keys take timm's defaults. With `image_processor_type` it makes `config.json` readable by
            Transformers' `TimmWrapperImageProcessor`, so `AutoImageProcessor` needs no custom code.
        out_features (`list[str]`, *optional*):
            Stages a `ResnetBackbone` returns, by name among `stem`, `stage1`...`stage4` (default: `["stage4"]`).
        out_indices (`list[int]`, *optional*):
            The same stages by index 0-4; must agree with `out_features` when both are given.
        kwargs:
            Any `PretrainedConfig` argument: `id2label`, `label2id`, `num_labels`, `problem_type`, ...

    Example:

    ```python
    >>> from resnet_model import ResnetConfig, ResnetModelForImageClassification

    >>> # a ResNet-50d for 10 classes, as in the tutorial
    >>> config = ResnetConfig(block_type="bottleneck", stem_width=32, stem_type="deep", avg_down=True, num_classes=10)
    >>> model = ResnetModelForImageClassification(config)

    >>> # or any timm variant by name, with ImageNet's class names when the head has 1000 classes
    >>> config = ResnetConfig.from_timm("resnet18")
    >>> config.id2label[0]
    'tench, Tinca tinca'
    ```
    """

    model_type = "custom_resnet"

    def __init__(
        self,
        block_type: str = "bottleneck",
        layers: list[int] = [3, 4, 6, 3],  # noqa: B006 - the tutorial's signature, copied before use
        num_classes: int = 1000,
        input_channels: int = 3,
        cardinality: int = 1,
        base_width: int = 64,
        stem_width: int = 64,
        stem_type: str = "",
        avg_down: bool = False,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        zero_init_last: bool = True,
        pretrained_cfg: dict | None = None,
        **kwargs,
    ):
        if block_type not in BLOCK_TYPES:
            raise ValueError(f"`block_type` must be 'basic' or 'bottleneck', got {block_type!r}.")
        if stem_type == "deep-tiered":  # the spelling of configs saved before timm's was adopted
            stem_type = "deep_tiered"
        if stem_type not in STEM_TYPES:
            raise ValueError(f"`stem_type` must be one of {list(STEM_TYPES)}, got {stem_type!r}.")
        layers = list(layers) if isinstance(layers, (list, tuple)) else layers
        if not isinstance(layers, list) or len(layers) != 4 or not all(_is_int(n) and n >= 1 for n in layers):
            raise ValueError(f"`layers` must be a list of 4 positive integers (blocks per stage), got {layers!r}.")
        _check_int("num_classes", num_classes, 0)
        for name, value in (
            ("input_channels", input_channels),
            ("cardinality", cardinality),
            ("base_width", base_width),
            ("stem_width", stem_width),
        ):
            _check_int(name, value, 1)
        _check_bool("avg_down", avg_down)
        _check_bool("zero_init_last", zero_init_last)
        _check_rate("drop_rate", drop_rate)
        _check_rate("drop_path_rate", drop_path_rate)

        # `num_classes` (the tutorial's name) and Transformers' `num_labels` / `id2label` describe one fact.
        num_classes = self._reconcile_labels(num_classes, kwargs)

        self.block_type = block_type
        self.layers = layers
        self.input_channels = input_channels
        self.cardinality = cardinality
        self.base_width = base_width
        self.stem_width = stem_width
        self.stem_type = stem_type
        self.avg_down = avg_down
        self.drop_rate = float(drop_rate)
        self.drop_path_rate = float(drop_path_rate)
        self.zero_init_last = zero_init_last
        self.pretrained_cfg = _check_data_config(pretrained_cfg, input_channels)
        self.image_processor_type = kwargs.pop("image_processor_type", IMAGE_PROCESSOR_TYPE)
        out_features = kwargs.pop("out_features", None)
        out_indices = kwargs.pop("out_indices", None)
        super().__init__(**kwargs)
        self.num_labels = num_classes
        self.set_backbone_outputs(out_features=out_features, out_indices=out_indices)

    @property
    def num_classes(self) -> int:
        """Number of classes (the tutorial's name): always `len(id2label)`, i.e. `num_labels`."""
        return len(self.id2label) if self.id2label is not None else 0

    @num_classes.setter
    def num_classes(self, value: int) -> None:
        _check_int("num_classes", value, 0)
        self.num_labels = value

    def to_dict(self) -> dict:
        """Serializable fields, `num_classes` included so `config.json` reads like the tutorial's."""
        output = super().to_dict()
        output["num_classes"] = self.num_classes
        return output

    @staticmethod
    def _reconcile_labels(num_classes: int, kwargs: dict) -> int:
        """Make `num_classes`, `num_labels`, `id2label` and `label2id` agree, or raise naming the conflict."""
        id2label = kwargs.get("id2label")
        label2id = kwargs.get("label2id")
        num_labels = kwargs.pop("num_labels", None)
        if num_labels is not None:  # an explicit `num_labels` (e.g. from_pretrained(..., num_labels=N)) wins
            _check_int("num_labels", num_labels, 0)
            if id2label is not None and len(id2label) != num_labels:
                kwargs.pop("id2label")
                kwargs.pop("label2id", None)
            return num_labels
        if id2label is not None:
            id2label = {int(k): str(v) for k, v in dict(id2label).items()}
            if sorted(id2label) != list(range(len(id2label))):
                raise ValueError(f"`id2label` keys must be 0..N-1, got {sorted(id2label)!r}.")
            derived = len(id2label)
            kwargs["id2label"] = id2label
        else:
            return num_classes
        if num_classes not in (1000, derived):  # 1000 is the default: then the labels decide
            raise ValueError(
                f"`num_classes`={num_classes} disagrees with the {derived} labels given by "
                "`id2label`/`num_labels`; pass one of them or make them match."
            )
        expected = {v: k for k, v in id2label.items()}
        if label2id is not None and {str(k): int(v) for k, v in dict(label2id).items()} != expected:
            # e.g. `from_pretrained(..., id2label=new)` leaves the saved label2id behind: id2label decides
            logger.warning("`label2id` is not the inverse of `id2label`; rebuilding it from `id2label`.")
        kwargs["label2id"] = expected
        return derived

    def set_backbone_outputs(self, out_features=None, out_indices=None) -> None:
        """Select the stages a backbone returns, by name (`stem`, `stage1`…`stage4`) or by index 0-4."""
        self.stage_names = list(STAGE_NAMES)
        if out_features is None and out_indices is None:
            out_indices = [len(STAGE_NAMES) - 1]
        if out_features is not None:
            out_features = list(out_features)
            bad = [f for f in out_features if f not in STAGE_NAMES]
            if bad:
                raise ValueError(f"`out_features` must be names from {list(STAGE_NAMES)}, got {bad!r}.")
            derived = [STAGE_NAMES.index(f) for f in out_features]
            if out_indices is not None and list(out_indices) != derived:
                raise ValueError(f"`out_indices` {list(out_indices)!r} disagrees with `out_features` {out_features!r}.")
            out_indices = derived
        out_indices = [i + len(STAGE_NAMES) if _is_int(i) and i < 0 else i for i in out_indices]
        bad = [i for i in out_indices if not _is_int(i) or not 0 <= i < len(STAGE_NAMES)]
        if bad:
            raise ValueError(f"`out_indices` must be integers in 0..{len(STAGE_NAMES) - 1}, got {bad!r}.")
        if sorted(set(out_indices)) != list(out_indices):
            raise ValueError(f"`out_indices` must be increasing without repeats, got {list(out_indices)!r}.")
        # the storage `BackboneConfigMixin` (transformers 4.57 and 5.x) reads and serialises
        self._out_indices = list(out_indices)
        self._out_features = [STAGE_NAMES[i] for i in out_indices]

    @property
    def out_features(self) -> list[str]:
        """Names of the stages a backbone returns."""
        return self._out_features

    @out_features.setter
    def out_features(self, value: list[str]) -> None:
        self.set_backbone_outputs(out_features=value)

    @property
    def out_indices(self) -> list[int]:
        """Indices (into `stage_names`) of the stages a backbone returns."""
        return self._out_indices

    @out_indices.setter
    def out_indices(self, value: list[int]) -> None:
        self.set_backbone_outputs(out_indices=value)

    @property
    def stage_channels(self) -> list[int]:
        """Channels of the stem and of each stage's output, in `STAGE_NAMES` order."""
        expansion = 4 if self.block_type == "bottleneck" else 1
        stem = self.stem_width * 2 if "deep" in self.stem_type else 64
        return [stem] + [c * expansion for c in (64, 128, 256, 512)]

    @property
    def timm_kwargs(self) -> dict:
        """Keyword arguments for `timm.models.resnet.ResNet`, except the block class."""
        return {
            "layers": list(self.layers),
            "num_classes": self.num_classes,
            "in_chans": self.input_channels,
            "cardinality": self.cardinality,
            "base_width": self.base_width,
            "stem_width": self.stem_width,
            "stem_type": self.stem_type,
            "avg_down": self.avg_down,
            "drop_rate": self.drop_rate,
            "drop_path_rate": self.drop_path_rate,
            "zero_init_last": self.zero_init_last,
        }

    @classmethod
    def from_timm(cls, name: str, **overrides) -> ResnetConfig:
        """Config reproducing `timm.create_model(name)`, with timm's ImageNet class names for a 1000-class head;
        `overrides` replace any field (e.g. `num_classes`, `id2label`)."""
        arch = name.split(".", 1)[0]  # accept pretrained tags such as "resnet50d.ra2_in1k"
        if arch not in TIMM_PRESETS:
            raise ValueError(f"Unknown timm ResNet variant {name!r}; known variants: {', '.join(TIMM_PRESETS)}.")
        fields = copy.deepcopy(TIMM_PRESETS[arch])
        fields.update(overrides)
        if "pretrained_cfg" not in fields:
            fields["pretrained_cfg"] = timm_data_config(name, input_channels=fields.get("input_channels", 3))
        if not LABEL_FIELDS & set(overrides):
            import timm

            names = timm_label_names(timm.models.get_pretrained_cfg(name).to_dict())
            if names is not None:
                fields["id2label"] = dict(enumerate(names))
        return cls(**fields)


ResnetConfig.register_for_auto_class()
