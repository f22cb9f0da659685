"""Image processor files: timm's eval preprocessing through Transformers' built-in `TimmWrapperImageProcessor`.

`TimmWrapperImageProcessor` reads its `pretrained_cfg` from `config.json`, so a saved model carries the data
config in both `config.json` (what the processor reads) and `preprocessor_config.json` (what `AutoImageProcessor`
reads first on a Hub repo to find the class). No image-processing code ships with the model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from resnet_model.configuration_resnet import (
    DATA_CONFIG_KEYS,
    IMAGE_PROCESSOR_TYPE,
    save_preprocessor_config,
    timm_data_config,
)

CONFIG_FILE = "config.json"


def data_config_for(config_or_name: Any, **overrides: Any) -> dict:
    """timm's evaluation data config for a timm name, a timm model or a `ResnetConfig`, with `overrides` applied."""
    if isinstance(config_or_name, nn.Module):
        conv = config_or_name.conv1
        conv = conv[0] if isinstance(conv, nn.Sequential) else conv
        data = timm_data_config(model=config_or_name, input_channels=conv.in_channels)
    elif isinstance(config_or_name, str):
        try:
            data = timm_data_config(config_or_name)
        except RuntimeError as error:
            raise ValueError(f"timm has no model named {config_or_name!r}.") from error
    elif getattr(config_or_name, "pretrained_cfg", None) is not None:
        data = {k: v for k, v in config_or_name.pretrained_cfg.items() if k in DATA_CONFIG_KEYS}
    else:
        data = timm_data_config(input_channels=getattr(config_or_name, "input_channels", 3))
    unknown = sorted(set(overrides) - set(DATA_CONFIG_KEYS))
    if unknown:
        raise ValueError(f"Unknown data-config keys {unknown}; allowed: {', '.join(DATA_CONFIG_KEYS)}.")
    data = dict(data, **overrides)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def save_image_processor(config_or_name: Any, out_dir: str | os.PathLike, **overrides: Any) -> Path:
    """Write the image processor for `config_or_name` into `out_dir` (and into its `config.json`); returns its path."""
    data = data_config_for(config_or_name, **overrides)
    out_dir = Path(out_dir)
    path = Path(save_preprocessor_config(data, out_dir))
    config_path = out_dir / CONFIG_FILE
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config.update(image_processor_type=IMAGE_PROCESSOR_TYPE, pretrained_cfg=data)
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def image_processor_from_data_config(data: dict) -> Any:
    """A `TimmWrapperImageProcessor` built from a timm data config."""
    from transformers import TimmWrapperImageProcessor

    return TimmWrapperImageProcessor(pretrained_cfg=dict(data))


def load_image_processor(path_or_repo: str | os.PathLike, revision: str | None = None, **kwargs: Any) -> Any:
    """The image processor saved with a model (local folder or Hub repo)."""
    import transformers
    from transformers import AutoImageProcessor

    if int(transformers.__version__.split(".")[0]) >= 5:
        # TimmWrapperImageProcessor has only a PIL implementation; asking for it avoids a misleading
        # "torchvision backend is not available" warning from Transformers' default choice.
        kwargs.setdefault("backend", "pil")
    return AutoImageProcessor.from_pretrained(str(path_or_repo), revision=revision, **kwargs)
