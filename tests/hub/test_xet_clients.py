"""The unmodified clients through Xet: huggingface_hub 2.x + hf_xet push and pull through the CAS, and every other
reader (plain GET, the 0.36 client, git clone + the LFS batch API) gets the same bytes; LFS-pushed files stay
readable by the Xet client."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest
import torch
from hubtools import client_env, run_cli, seeded_bytes
from isolation import require_t4, run_isolated

from hub_server.storage import RepoRef, parse_lfs_pointer

H0_DOWNLOAD = """
import hashlib, sys
import huggingface_hub
from huggingface_hub import hf_hub_download
assert huggingface_hub.__version__.startswith("0."), huggingface_hub.__version__
path = hf_hub_download(sys.argv[1], sys.argv[2], cache_dir=sys.argv[3])
print(hashlib.sha256(open(path, "rb").read()).hexdigest())
"""

H0_UPLOAD = """
import sys
from huggingface_hub import HfApi
HfApi().upload_file(path_or_fileobj=sys.argv[3], path_in_repo=sys.argv[2], repo_id=sys.argv[1])
"""


def _git(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "GIT_LFS_SKIP_SMUDGE": "1"}
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def _lfs_fetch(hub_url: str, repo_id: str, token: str, oid: str, size: int) -> bytes:
    """What git-lfs does for a pointer: a download batch, then a GET of the href it answers."""
    batch = httpx.post(
        f"{hub_url}/{repo_id}.git/info/lfs/objects/batch",
        json={"operation": "download", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]},
        headers={"authorization": f"Bearer {token}", "accept": "application/vnd.git-lfs+json"},
    ).json()
    action = batch["objects"][0]["actions"]["download"]
    return httpx.get(action["href"], headers=action.get("header", {}), timeout=60).content


def _run_h0(code: str, args: list[str], env: dict, cwd: Path) -> str:
    require_t4()
    proc = run_isolated(code, *args, cwd=cwd, t4=True, env=env, timeout=300)
    return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


def test_a_file_pushed_through_xet_reads_back_everywhere(hub, alice, repo, tmp_path):
    from huggingface_hub import hf_hub_download

    api, repo_id = repo
    data = seeded_bytes(3_000_000, seed=20)
    sha = hashlib.sha256(data).hexdigest()
    stats = hub.storage.xet.stats
    sent = stats["xorb_bytes_received"]
    api.upload_file(path_or_fileobj=data, path_in_repo="weights.bin", repo_id=repo_id)
    assert stats["xorb_bytes_received"] - sent >= len(data), "the bytes went through the CAS"
    (entry,) = api.get_paths_info(repo_id, ["weights.bin"])
    assert entry.lfs.sha256 == sha and entry.xet_hash

    reconstructions = stats["reconstructions"]
    path = hf_hub_download(repo_id, "weights.bin", endpoint=hub.url, token=alice, cache_dir=tmp_path / "h2")
    assert Path(path).read_bytes() == data
    assert stats["reconstructions"] > reconstructions, "the Xet client read through the CAS"

    url = f"{hub.url}/{repo_id}/resolve/main/weights.bin"
    head = httpx.head(url)
    assert head.headers["x-xet-hash"] == entry.xet_hash and 'rel="xet-auth"' in head.headers["link"]
    assert httpx.get(url).content == data
    ranged = httpx.get(url, headers={"range": "bytes=1000000-1000999"})
    assert ranged.status_code == 206 and ranged.content == data[1_000_000:1_001_000]

    h0 = _run_h0(H0_DOWNLOAD, [repo_id, "weights.bin", str(tmp_path / "h0")], client_env(hub.url, tmp_path), tmp_path)
    assert h0 == sha, "the 0.36 client reads it"

    clone = _git("clone", f"{hub.url}/{repo_id}", str(tmp_path / "clone"))
    assert clone.returncode == 0, clone.stderr
    pointer = parse_lfs_pointer((tmp_path / "clone" / "weights.bin").read_bytes())
    assert pointer == (sha, len(data)), "git keeps an LFS pointer"
    assert _lfs_fetch(hub.url, repo_id, alice, sha, len(data)) == data, "and git-lfs gets the bytes"


def test_an_lfs_pushed_file_reads_back_through_the_xet_client(hub, alice, repo, tmp_path):
    from huggingface_hub import hf_hub_download

    api, repo_id = repo
    data = seeded_bytes(2_000_000, seed=21)
    source = tmp_path / "lfs.bin"
    source.write_bytes(data)
    lfs_before = hub.server.config.app.state.hub.stats["lfs_uploads"]
    _run_h0(H0_UPLOAD, [repo_id, "lfs.bin", str(source)], client_env(hub.url, tmp_path / "home", alice), tmp_path)
    assert hub.server.config.app.state.hub.stats["lfs_uploads"] > lfs_before, "pushed through the LFS batch API"
    (entry,) = api.get_paths_info(repo_id, ["lfs.bin"])
    assert entry.lfs is not None and entry.xet_hash is None
    path = hf_hub_download(repo_id, "lfs.bin", endpoint=hub.url, token=alice, cache_dir=tmp_path / "h2")
    assert Path(path).read_bytes() == data


def test_upload_folder_snapshot_and_cli_through_xet(hub, alice, repo, tmp_path):
    from huggingface_hub import snapshot_download

    api, repo_id = repo
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    files = {"a.bin": seeded_bytes(1_500_000, seed=22), "sub/b.bin": seeded_bytes(700_000, seed=23)}
    files["notes.txt"] = b"plain text\n"
    for name, content in files.items():
        (folder / name).write_bytes(content)
    stats = hub.storage.xet.stats
    registered = stats["files_registered"]
    api.upload_folder(folder_path=folder, repo_id=repo_id)
    assert stats["files_registered"] - registered == 2, "both binary files went through the CAS"
    snapshot = Path(snapshot_download(repo_id, endpoint=hub.url, token=alice, cache_dir=tmp_path / "snap"))
    for name, content in files.items():
        assert (snapshot / name).read_bytes() == content

    env = client_env(hub.url, tmp_path / "home", token=alice)
    (tmp_path / "c.bin").write_bytes(seeded_bytes(900_000, seed=24))
    up = run_cli(["upload", repo_id, str(tmp_path / "c.bin"), "c.bin"], env)
    assert up.returncode == 0, up.stderr
    assert stats["files_registered"] - registered == 3
    down = run_cli(["download", repo_id, "c.bin", "sub/b.bin", "--local-dir", str(tmp_path / "down")], env)
    assert down.returncode == 0, down.stderr
    assert (tmp_path / "down" / "c.bin").read_bytes() == (tmp_path / "c.bin").read_bytes()
    assert (tmp_path / "down" / "sub" / "b.bin").read_bytes() == files["sub/b.bin"]


@pytest.mark.slow
def test_push_to_hub_and_pinned_from_pretrained_through_xet(hub, tmp_path, repo_name):
    from test_hub_model_flow import _load, _model_copy, _publish

    token = hub.add_user("xetmodel")
    repo_id = f"xetmodel/{repo_name}"
    stats = hub.storage.xet.stats
    registered = stats["files_registered"]
    sha, logits = _publish(repo_id, client_env(hub.url, tmp_path / "home", token=token), tmp_path,
                           _model_copy(tmp_path / "pkg"))  # fmt: skip
    assert stats["files_registered"] > registered, "model.safetensors went through the CAS"
    ref = RepoRef.parse("model", repo_id)
    entry = hub.storage.stat(ref, sha, "model.safetensors")[1]
    assert entry.xet_hash is not None
    reconstructions = stats["reconstructions"]
    loaded = _load(repo_id, [{"revision": sha}], hub.url, tmp_path / "load")
    assert torch.equal(loaded[0], logits)
    assert stats["reconstructions"] > reconstructions, "from_pretrained read the weights through Xet"
    loaded = _load(repo_id, [{"revision": sha}], hub.url, tmp_path / "load4", t4=True)
    assert torch.equal(loaded[0], logits), "transformers 4.57 + huggingface_hub 0.36 read the same weights"


def test_pull_request_uploads_go_through_xet(hub, make_api, bob, repo, tmp_path):
    from huggingface_hub import hf_hub_download

    _, repo_id = repo
    data = seeded_bytes(1_000_000, seed=25)
    registered = hub.storage.xet.stats["files_registered"]
    info = make_api(bob).upload_file(path_or_fileobj=data, path_in_repo="pr.bin", repo_id=repo_id, create_pr=True)
    assert info.pr_revision.startswith("refs/pr/")
    assert hub.storage.xet.stats["files_registered"] > registered, "a reader's pull request went through the CAS"
    path = hf_hub_download(repo_id, "pr.bin", revision=info.pr_revision, endpoint=hub.url, cache_dir=tmp_path / "c")
    assert Path(path).read_bytes() == data
