"""`save_pretrained(..., push_to_hub=True)` uploads the same files as a local save, processor config included."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from huggingface_hub import HfApi

from hub_server import running_hub

PUSH = """
from resnet_model import ResnetConfig, ResnetModelForImageClassification
model = ResnetModelForImageClassification(ResnetConfig(block_type="basic", layers=[1, 1, 1, 1], num_classes=3))
model.save_pretrained("saved", push_to_hub=True, repo_id="alice/pushed-on-save", commit_message="save and push")
"""


@pytest.mark.slow
def test_save_pretrained_with_push_to_hub_uploads_everything(tmp_path):
    with running_hub(tmp_path / "hub") as hub:
        token = hub.add_user("alice")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(HF_ENDPOINT=hub.url, HF_TOKEN=token, HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1")
        proc = subprocess.run([sys.executable, "-c", PUSH], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        remote = set(HfApi(endpoint=hub.url, token=token).list_repo_files("alice/pushed-on-save"))
    local = {p.name for p in (tmp_path / "saved").iterdir()}
    assert "preprocessor_config.json" in local
    assert local <= remote, local - remote


def test_push_private_refuses_an_existing_public_repo(tmp_path):
    from resnet_model import ResnetConfig, ResnetModelForImageClassification
    from resnet_toolkit.errors import UserError
    from resnet_toolkit.hub import push

    folder = tmp_path / "model"
    ResnetModelForImageClassification(
        ResnetConfig(block_type="basic", layers=[1, 1, 1, 1], num_classes=2)
    ).save_pretrained(folder)
    with running_hub(tmp_path / "hub") as hub:
        token = hub.add_user("alice")
        api = HfApi(endpoint=hub.url, token=token)
        api.create_repo("alice/public-one")
        before = api.model_info("alice/public-one").sha
        with pytest.raises(UserError, match="public"):
            push(folder, "alice/public-one", endpoint=hub.url, token=token, private=True, log=lambda _: None)
        assert api.model_info("alice/public-one").sha == before
        sha = push(folder, "alice/private-one", endpoint=hub.url, token=token, private=True, log=lambda _: None)
        assert api.model_info("alice/private-one").private and len(sha) == 40
