"""Deduplication is real (a changed classifier re-sends and stores only itself; the same file in a second repo
stores nothing new) and a hub killed with SIGKILL mid-upload loses nothing committed; the retry succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx2 as httpx
import pytest
from backends import free_port, start_hub
from hubtools import seeded_bytes
from xettools import Cas, auth, commit, lfs_line, pack, upload

from hub_server import xet


def _resnet50d_checkpoint(path, seed: int) -> int:
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = timm.create_model("resnet50d", pretrained=False)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.manual_seed(seed)
    state["fc.weight"] = torch.randn_like(state["fc.weight"])  # only the classifier differs between seeds
    state["fc.bias"] = torch.randn_like(state["fc.bias"])
    save_file(state, str(path))
    return path.stat().st_size


@pytest.mark.slow
def test_a_new_classifier_sends_and_stores_only_itself(hub, make_api, alice, repo_name, tmp_path):
    api = make_api(alice)
    repo_id, other = f"alice/{repo_name}", f"alice/{repo_name}-copy"
    api.create_repo(repo_id)
    api.create_repo(other)
    stats, index = hub.storage.xet.stats, hub.storage.xet.index

    def push(seed: int, target: str) -> tuple[int, int, int]:
        path = tmp_path / f"model-{seed}.safetensors"
        size = _resnet50d_checkpoint(path, seed)
        sent, stored = stats["xorb_bytes_received"], index.stored_bytes()
        api.upload_file(path_or_fileobj=str(path), path_in_repo="model.safetensors", repo_id=target)
        return size, stats["xorb_bytes_received"] - sent, index.stored_bytes() - stored

    size, sent, stored = push(1, repo_id)
    assert size > 90_000_000 and sent > size * 0.5 and stored > size * 0.5  # xorbs are compressed
    size, sent, stored = push(2, repo_id)
    assert sent <= size * 0.10, f"re-sent {sent} of {size} bytes"
    assert stored <= size * 0.10, f"stored {stored} new bytes of {size}"
    _, _, stored = push(2, other)
    assert stored == 0, "the same file in a second repo stores nothing new"
    for target in (repo_id, other):
        got = httpx.get(f"{hub.url}/{target}/resolve/main/model.safetensors", timeout=120).content
        assert got == (tmp_path / "model-2.safetensors").read_bytes()


def _add_user(root, name: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "hub_server", "add-user", name, "--root", str(root)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


class _Hub:
    def __init__(self, url: str) -> None:
        self.url = url


def _killing_body(body: bytes, pid: int):
    """Half the body, then SIGKILL the hub, then (never delivered) the rest."""
    half = len(body) // 2
    for i in range(0, half, 1 << 20):
        yield body[i : min(i + (1 << 20), half)]
    os.kill(pid, signal.SIGKILL)
    yield body[half:]


@pytest.mark.slow
def test_kill_during_a_xet_upload_loses_nothing_and_the_retry_succeeds(tmp_path):
    root, port = tmp_path / "root", free_port()
    token = _add_user(root, "erin")
    proc = start_hub(root, port)
    hub = _Hub(f"http://127.0.0.1:{port}")
    try:
        httpx.post(f"{hub.url}/api/repos/create", json={"name": "crash"}, headers=auth(token)).raise_for_status()
        kept = pack(seeded_bytes(500_000, seed=30))
        upload(Cas.of(hub, token, "erin/crash"), kept)
        assert commit(hub, token, "erin/crash", lfs_line("kept.bin", kept.sha256, len(kept.data))).status_code == 200
        big = pack(seeded_bytes(12_000_000, seed=31), chunk_size=64 * 1024)
        cas = Cas.of(hub, token, "erin/crash")
        with pytest.raises(httpx.TransportError):
            httpx.post(f"{cas.url}/v1/xorbs/default/{big.xorb_name}", content=_killing_body(big.xorb, proc.pid),
                       headers=auth(cas.token), timeout=60)  # fmt: skip
        assert proc.wait(10) == -signal.SIGKILL

        proc = start_hub(root, port)
        assert httpx.get(f"{hub.url}/erin/crash/resolve/main/kept.bin").content == kept.data
        cas = Cas.of(hub, token, "erin/crash")
        assert cas.post_shard(big.shard()).status_code == 400, "the interrupted xorb was not kept"
        assert not any(p.is_file() for p in (root / "tmp").rglob("*.xet")), "its temporary file is gone"
        upload(cas, big)
        assert commit(hub, token, "erin/crash", lfs_line("big.bin", big.sha256, len(big.data))).status_code == 200
        assert httpx.get(f"{hub.url}/erin/crash/resolve/main/big.bin", timeout=60).content == big.data
        plan = cas.reconstruction(big.file_hash).json()
        assert list(plan["fetch_info"]) == [xet.hash_to_hex(big.info.hash)]
    finally:
        proc.kill()
        proc.wait()
