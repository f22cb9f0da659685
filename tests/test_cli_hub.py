"""`resnet-model` against a running Hub: each kind of Hub failure is one line with its exit status, and `push`
commits only what changed, with its message, and fills in the model card with the repo id and the commit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from huggingface_hub import HfApi, hf_hub_download

from resnet_model import ResnetConfig, ResnetModelForImageClassification
from resnet_toolkit.card import write_card
from resnet_toolkit.hub import push

hub_server = pytest.importorskip("hub_server")

CLI = str(Path(sys.executable).with_name("resnet-model"))
REPO = "alice/tiny"


def save_tiny(folder: Path, seed: int = 0) -> Path:
    """A tiny classifier with the model card `train` and `convert` write."""
    torch.manual_seed(seed)
    model = ResnetModelForImageClassification(ResnetConfig(block_type="basic", layers=[1, 1, 1, 1], num_classes=2))
    model.save_pretrained(folder)
    write_card(folder, "A tiny ResNet", "Two classes, random weights.", metrics={"accuracy": 0.5}, dataset="noise")
    return folder


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A running Hub with users alice and bob, and alice/tiny pushed once."""
    root = tmp_path_factory.mktemp("cli-hub")
    folder = save_tiny(root / "model")
    with hub_server.running_hub(root / "hub") as running:
        alice, bob = running.add_user("alice"), running.add_user("bob")
        sha = push(folder, REPO, endpoint=running.url, token=alice, log=lambda _: None)
        yield SimpleNamespace(url=running.url, alice=alice, bob=bob, folder=folder, root=root, sha=sha)


def run_cli(hub, *args: str) -> subprocess.CompletedProcess:
    """The console script with a private HF home and no token but the one passed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "RESNET_MODEL_"))}
    env.update(HF_HOME=str(hub.root / "hf_home"), HF_HUB_DISABLE_TELEMETRY="1", HF_ENDPOINT=hub.url)
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300)


def assert_one_line(proc: subprocess.CompletedProcess, status: int, *fragments: str) -> None:
    """Exit `status` and one line on stderr containing every fragment."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == status and len(lines) == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_wrong_token_is_rejected(hub) -> None:
    proc = run_cli(hub, "push", str(hub.folder), "alice/other", "--token", "hf_not_a_real_token")
    assert_one_line(proc, 2, "token rejected", "401", hub.url)


def test_another_users_namespace_is_no_write_access(hub) -> None:
    proc = run_cli(hub, "push", str(hub.folder), "bob/stolen", "--token", hub.alice)
    assert_one_line(proc, 2, "no write access to 'bob'", "403")


def test_a_missing_repo_or_revision_is_named(hub, tmp_path: Path) -> None:
    image = tmp_path / "x.png"
    image.write_bytes(b"")
    proc = run_cli(hub, "predict", "alice/nope", str(image), "--token", hub.alice)
    assert_one_line(proc, 2, "no such repo 'alice/nope'", hub.url)
    proc = run_cli(hub, "audit", REPO, "--revision", "0" * 40, "--token", hub.alice)
    assert_one_line(proc, 2, "no such revision", REPO)


def test_an_unreachable_hub_is_cannot_reach(hub) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    proc = run_cli(hub, "push", str(hub.folder), REPO, "--endpoint", endpoint, "--token", hub.alice)
    assert_one_line(proc, 3, "cannot reach the Hub", endpoint)


def test_push_fills_in_the_card_and_skips_unchanged_folders(hub, tmp_path: Path) -> None:
    api = HfApi(endpoint=hub.url, token=hub.alice)
    card = Path(hf_hub_download(REPO, "README.md", endpoint=hub.url, token=hub.alice)).read_text()
    assert f'from_pretrained("{REPO}", revision="{hub.sha}", trust_remote_code=True)' in card
    assert "REPO_ID" not in card and "COMMIT_SHA" not in card and "accuracy" in card
    commits = api.list_repo_commits(REPO)
    assert commits[0].title == f"Model card: pin {hub.sha[:12]}" and commits[1].commit_id == hub.sha

    lines = []
    again = push(hub.folder, REPO, endpoint=hub.url, token=hub.alice, log=lines.append)
    assert again == hub.sha and len(api.list_repo_commits(REPO)) == len(commits)
    assert any("no model commit made" in line for line in lines)

    changed = save_tiny(tmp_path / ".staging" / "v2", seed=1)  # a hidden parent folder hides nothing inside it
    sha = push(changed, REPO, endpoint=hub.url, token=hub.alice, message="Retrained", log=lambda _: None)
    titles = [c.title for c in api.list_repo_commits(REPO)]
    assert titles[:2] == [f"Model card: pin {sha[:12]}", "Retrained"] and sha != hub.sha
    files = {f.path for f in api.list_repo_tree(REPO, revision=sha)}
    assert {"config.json", "model.safetensors", "modeling_resnet.py"} <= files
