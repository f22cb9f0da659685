"""Fixtures for the hub server tests: a running hub on a free loopback port, users and tokens, client helpers."""

from __future__ import annotations

import itertools

import pytest

from hub_server import HubSettings, running_hub

_counter = itertools.count()


@pytest.fixture(scope="session")
def hub(tmp_path_factory, hub_backends):
    """A hub served in-process for the whole session (each test uses its own repos)."""
    settings = None
    if hub_backends is not None:
        env = hub_backends.hub_env()
        settings = HubSettings(database_url=env["HUB_DATABASE_URL"], object_store=env["HUB_OBJECT_STORE"])
    with running_hub(tmp_path_factory.mktemp("hub-root"), settings=settings) as running:
        yield running


@pytest.fixture(scope="session")
def alice(hub) -> str:
    """A write token of user ``alice``."""
    return hub.add_user("alice")


@pytest.fixture(scope="session")
def bob(hub) -> str:
    """A write token of user ``bob``."""
    return hub.add_user("bob")


@pytest.fixture
def repo_name(request) -> str:
    """A repo name unique to this test."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.originalname)[:60]
    base = "-".join(part for part in base.split("-") if part)
    return f"{base}-{next(_counter)}"


@pytest.fixture
def make_api(hub):
    """Build an ``HfApi`` bound to the hub for a token (or anonymous)."""
    from huggingface_hub import HfApi

    def make(token: str | None = None) -> HfApi:
        return HfApi(endpoint=hub.url, token=token if token is not None else False)

    return make


@pytest.fixture
def repo(make_api, alice, repo_name):
    """A fresh public repo of alice: ``(HfApi with alice's token, repo id)``."""
    api = make_api(alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    return api, repo_id
