"""Shared fixtures: tiny configs, deterministic inputs."""

from __future__ import annotations

import pytest
import torch

from resnet_model import ResnetConfig


@pytest.fixture
def tiny_config() -> ResnetConfig:
    """A small basic-block ResNet that runs in milliseconds."""
    return ResnetConfig(block_type="basic", layers=[1, 1, 1, 1], num_classes=5, stem_width=16)


@pytest.fixture
def images() -> torch.Tensor:
    """A fixed batch of 3-channel images."""
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
