"""A data directory written by the previous release (JSON metadata) starts under the SQL store intact."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx2 as httpx
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo
from hubtools import seeded_bytes
from huggingface_hub import HfApi

from hub_server import running_hub
from hub_server.storage import lfs_pointer

TOKEN = "hf_" + "a" * 34
USERS = {
    "users": {"olga": {"createdAt": "2026-01-02T03:04:05.000Z"}},
    "tokens": {
        hashlib.sha256(TOKEN.encode()).hexdigest(): {
            "user": "olga",
            "role": "write",
            "displayName": "olga-write-1",
            "createdAt": "2026-01-02T03:04:05.000Z",
        }
    },
}


def _old_repo(root: Path, name: str, files: dict[str, bytes], *, private: bool, indexed: set[str] | None) -> str:
    """A bare repo as the previous release wrote it: hub.json, and ownership markers unless ``indexed`` is None."""
    git_dir = root / "repos" / "models" / "olga" / f"{name}.git"
    git_dir.mkdir(parents=True)
    repo = Repo.init_bare(str(git_dir), default_branch=b"main")
    tree = Tree()
    for path, data in files.items():
        blob = Blob.from_string(data)
        repo.object_store.add_object(blob)
        tree.add(path.encode(), 0o100644, blob.id)
    repo.object_store.add_object(tree)
    commit = Commit()
    commit.tree, commit.parents = tree.id, []
    commit.author = commit.committer = b"olga <olga@users.noreply.hub>"
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = b"old commit\n"
    repo.object_store.add_object(commit)
    repo.refs[b"refs/heads/main"] = commit.id
    repo.close()
    meta = {"private": private, "createdAt": "2026-01-02T03:04:05+00:00", "owner": "olga"}
    (git_dir / "hub.json").write_text(json.dumps(meta))
    if indexed is not None:
        (git_dir / "hub-lfs").mkdir()
        (git_dir / "hub-lfs" / ".history-indexed").write_bytes(b"")
        for oid in indexed:
            (git_dir / "hub-lfs" / oid).write_bytes(b"")
    return commit.id.decode()


def _old_data_dir(root: Path, weights: bytes, pickle_verdict: dict) -> tuple[str, str]:
    oid = hashlib.sha256(weights).hexdigest()
    (root / "lfs" / oid[:2] / oid[2:4]).mkdir(parents=True)
    (root / "lfs" / oid[:2] / oid[2:4] / oid).write_bytes(weights)
    (root / "users.json").write_text(json.dumps(USERS))
    (root / "secret.key").write_bytes(b"s" * 32)
    (root / "scans").mkdir()
    (root / "scans" / f"{oid}.json").write_text(json.dumps(pickle_verdict))
    (root / "tmp").mkdir()
    (root / "tmp" / "leftover.body").write_bytes(b"x")
    files = {"model.bin": lfs_pointer(oid, len(weights)), "config.json": b"{}"}
    indexed_sha = _old_repo(root, "indexed", files, private=True, indexed={oid})
    history_sha = _old_repo(root, "unindexed", files, private=False, indexed=None)
    return indexed_sha, history_sha


def test_a_previous_release_data_dir_keeps_users_repos_objects_and_verdicts(tmp_path):
    root = tmp_path / "data"
    weights = seeded_bytes(3000, seed=7)
    verdict = {"status": "safe", "imports": [{"module": "torch", "name": "FloatStorage", "safety": "innocuous"}]}
    indexed_sha, history_sha = _old_data_dir(root, weights, verdict)

    with running_hub(root) as hub:
        api = HfApi(endpoint=hub.url, token=TOKEN)
        assert api.whoami()["name"] == "olga"
        info = api.model_info("olga/indexed")
        assert info.private and info.sha == indexed_sha
        assert not HfApi(endpoint=hub.url, token=False).repo_exists("olga/indexed")
        assert api.model_info("olga/unindexed").sha == history_sha
        for repo in ("olga/indexed", "olga/unindexed"):  # ownership from markers, and from history
            got = httpx.get(
                f"{hub.url}/{repo}/resolve/main/model.bin",
                headers={"authorization": f"Bearer {TOKEN}"},
                follow_redirects=True,
            )
            assert got.status_code == 200 and got.content == weights
            (entry,) = api.get_paths_info(repo, ["model.bin"])
            assert entry.lfs is not None and entry.security["status"] == "safe"
        api.upload_file(path_or_fileobj=b"new", path_in_repo="new.txt", repo_id="olga/indexed")

    assert not (root / "users.json").exists() and (root / "backup-pre-sql" / "users.json").exists()
    assert (root / "backup-pre-sql" / "repos" / "models" / "olga" / "indexed.json").exists()
    assert not (root / "lfs").exists() and not (root / "tmp" / "leftover.body").exists()
    assert not list((root / "repos").rglob("hub.json"))

    with running_hub(root) as hub:  # a second start finds nothing left to import
        assert HfApi(endpoint=hub.url, token=TOKEN).list_repo_files("olga/indexed") == [
            "config.json",
            "model.bin",
            "new.txt",
        ]
