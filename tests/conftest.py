"""Shared fixtures: tiny configs, deterministic inputs, every test seeded."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from resnet_model import ResnetConfig


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same random state: weights initialised without a seed are still reproducible."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def tiny_config() -> ResnetConfig:
    """A small basic-block ResNet that runs in milliseconds."""
    return ResnetConfig(block_type="basic", layers=[1, 1, 1, 1], num_classes=5, stem_width=16)


@pytest.fixture
def images() -> torch.Tensor:
    """A fixed batch of 3-channel images."""
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--hub-backend postgres-s3`` runs every hub on PostgreSQL + an S3-API server instead of SQLite + a folder."""
    parser.addoption(
        "--hub-backend",
        choices=("default", "postgres-s3"),
        default=os.environ.get("HUB_TEST_BACKEND", "default"),
        help="metadata and object store of the hubs under test (default: SQLite + local directory)",
    )


@pytest.fixture(scope="session")
def hub_backends(request: pytest.FixtureRequest):
    """PostgreSQL and an S3-API server for the session, or None with the default backend."""
    if request.config.getoption("--hub-backend") != "postgres-s3":
        yield None
        return
    from backends import Backends

    backends = Backends()
    os.environ.update(backends.s3.env())
    try:
        yield backends
    finally:
        backends.stop()


@pytest.fixture(autouse=True)
def _hub_backend_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``--hub-backend postgres-s3``, every hub a test starts (in-process or not) gets a fresh database
    and object-store prefix through the ``HUB_*`` variables."""
    if request.config.getoption("--hub-backend") == "postgres-s3":
        for key, value in request.getfixturevalue("hub_backends").hub_env().items():
            monkeypatch.setenv(key, value)
