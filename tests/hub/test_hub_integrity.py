"""Integrity and bounded history work (issue #13, items 9, 11, 13, 14, 15): one history walk for expanded
listings, folder last commits, commit size limits, stale git lock files, revision and path validation."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import httpx2 as httpx
import pytest
import tomllib
from hubtools import REPO_ROOT, git_fsck
from huggingface_hub import CommitOperationAdd, HfFileSystem

from hub_server import HubStorage, RepoRef
from hub_server.storage import AddFile, DeleteFile
from hub_server.storage.gitlocks import stale_lock_files

# --------------------------------------------------------------------------- 9. expand: one walk, folders too


def _history(hub, repo_id: str, files: int = 600, commits: int = 40) -> None:
    """``files`` files in 6 folders, then ``commits`` commits each touching a few of them."""
    storage, ref = hub.storage, RepoRef.parse("model", repo_id)
    ops = [AddFile(f"d{i % 6}/f{i}.txt", storage.stage_bytes(f"v0 {i}".encode())) for i in range(files)]
    storage.commit(ref, "main", ops, author="alice", summary="many files")
    for c in range(1, commits + 1):
        touched = [(c * 7 + k) % files for k in range(3)]
        ops = [AddFile(f"d{i % 6}/f{i}.txt", storage.stage_bytes(f"v{c} {i}".encode())) for i in touched]
        storage.commit(ref, "main", ops, author="alice", summary=f"edit {c}")


def _naive_last_commit(storage: HubStorage, ref: RepoRef, path: str) -> str:
    """The newest commit whose tree entry for ``path`` differs from its parent's (the definition)."""
    commits, _ = storage.repos.list_commits(ref, "main", 0, 10_000)
    for info in commits:
        now = storage.repos.paths_info(ref, info.id, [path])[1]
        before = storage.repos.paths_info(ref, info.parents[0], [path])[1] if info.parents else []
        if [e.oid for e in now] != [e.oid for e in before]:
            return info.id
    raise AssertionError(path)


def test_expanded_listing_of_600_files_over_41_commits(hub, repo):
    api, repo_id = repo
    _history(hub, repo_id)
    entries = list(api.list_repo_tree(repo_id, recursive=True, expand=True))
    assert len(entries) == 600 + 6 + 1
    assert all(e.last_commit is not None for e in entries)
    storage, ref = hub.storage, RepoRef.parse("model", repo_id)
    by_path = {e.path: e for e in entries}
    for path in ("d0", "d5", "d1/f1.txt", "d2/f14.txt", "d3/f279.txt", ".gitattributes"):
        assert by_path[path].last_commit.oid == _naive_last_commit(storage, ref, path), path


def test_expanded_pages_are_capped_and_linked(hub, repo):
    api, repo_id = repo
    _history(hub, repo_id, files=300, commits=2)
    r = httpx.get(f"{hub.url}/api/models/{repo_id}/tree/main?recursive=1&expand=1&limit=10000", timeout=120)
    assert r.status_code == 200 and len(r.json()) == 100
    assert "cursor=100" in r.headers["link"]
    assert all("lastCommit" in e for e in r.json())


def test_folders_have_a_last_commit_in_paths_info_and_fsspec(hub, repo, alice):
    api, repo_id = repo
    api.upload_file(path_or_fileobj=b"a", path_in_repo="sub/a.txt", repo_id=repo_id, commit_message="first")
    second = api.upload_file(path_or_fileobj=b"b", path_in_repo="sub/b.txt", repo_id=repo_id).oid
    api.upload_file(path_or_fileobj=b"c", path_in_repo="other.txt", repo_id=repo_id)
    (folder,) = api.get_paths_info(repo_id, ["sub"], expand=True)
    assert folder.last_commit is not None and folder.last_commit.oid == second
    fs = HfFileSystem(endpoint=hub.url, token=alice)
    assert fs.modified(f"{repo_id}/sub") == folder.last_commit.date


# --------------------------------------------------------------------------- 11. commit size limits


def _ndjson(*ops: dict) -> bytes:
    lines = [{"key": "header", "value": {"summary": "x", "description": ""}}, *ops]
    return b"\n".join(json.dumps(line).encode() for line in lines)


def test_deep_paths_and_oversized_commits_are_refused_before_any_write(hub, repo, alice):
    api, repo_id = repo
    head = api.model_info(repo_id).sha
    headers = {"authorization": f"Bearer {alice}", "content-type": "application/x-ndjson"}
    url = f"{hub.url}/api/models/{repo_id}/commit/main"
    deep = "/".join(["d"] * 65) + "/f.txt"
    body = _ndjson({"key": "file", "value": {"path": deep, "content": "eA==", "encoding": "base64"}})
    r = httpx.post(url, content=body, headers=headers, timeout=60)
    assert r.status_code == 400 and "nested too deeply" in r.json()["error"]
    many = [{"key": "deletedFile", "value": {"path": f"f{i}"}} for i in range(25_001)]
    r = httpx.post(url, content=_ndjson(*many), headers=headers, timeout=60)
    assert r.status_code == 400 and "Too many operations" in r.json()["error"]
    assert api.model_info(repo_id).sha == head


def test_a_commit_writing_many_objects_writes_one_pack(hub, repo):
    api, repo_id = repo
    paths = ["/".join(f"l{i}x{k}" for k in range(40)) + "/f.txt" for i in range(10)]  # ~400 new trees
    api.create_commit(
        repo_id, [CommitOperationAdd(path_in_repo=p, path_or_fileobj=b"x") for p in paths], commit_message="deep"
    )
    git_dir = hub.storage.git_dir(RepoRef.parse("model", repo_id))
    assert list((git_dir / "objects" / "pack").glob("*.pack"))
    fsck = git_fsck(git_dir)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert sorted(f for f in api.list_repo_files(repo_id) if f.endswith("f.txt")) == sorted(paths)


# --------------------------------------------------------------------------- 13. stale lock files


def test_lock_files_left_by_a_killed_writer_are_recovered(hub, repo):
    api, repo_id = repo
    git_dir = hub.storage.git_dir(RepoRef.parse("model", repo_id))
    blob = b"content whose object write was interrupted"
    blob_id = hashlib.sha1(b"blob %d\0" % len(blob) + blob).hexdigest()
    (git_dir / "objects" / blob_id[:2]).mkdir(exist_ok=True)
    leftovers = [
        git_dir / "refs" / "heads" / "main.lock",
        git_dir / "objects" / blob_id[:2] / f"{blob_id[2:]}.lock",
        git_dir / "packed-refs.lock",
    ]
    for path in leftovers:
        path.write_bytes(b"")
    sha = api.upload_file(path_or_fileobj=blob, path_in_repo="a.txt", repo_id=repo_id).oid
    assert api.model_info(repo_id).sha == sha
    assert stale_lock_files(git_dir) == []
    api.create_branch(repo_id, branch="after-recovery")
    assert git_fsck(git_dir).returncode == 0


def test_a_restarted_hub_writes_through_stale_locks(tmp_path):
    storage = HubStorage(tmp_path / "root")
    storage.add_user("erin")
    ref = RepoRef.parse("model", "erin/crashed")
    storage.create_repo(ref, owner="erin")
    git_dir = storage.git_dir(ref)
    storage.close()
    (git_dir / "refs" / "heads" / "main.lock").write_text("0" * 40 + "\n")
    restarted = HubStorage(tmp_path / "root")
    try:
        restarted.commit(ref, "main", [AddFile("a.txt", restarted.stage_bytes(b"a"))], author="erin", summary="s")
        restarted.commit(ref, "main", [DeleteFile("a.txt")], author="erin", summary="t")
        assert restarted.repos.list_commits(ref, "main")[1] == 3
    finally:
        restarted.close()


# --------------------------------------------------------------------------- 14. revisions


DOTS = "%2E%2E"  # encoded, so that the client does not resolve them itself
BAD_REVISIONS = [DOTS, f"main%2F{DOTS}%2F{DOTS}", f"{DOTS}%2Fbob", "main%00", "a%20b", "x.lock"]
BAD_REVISIONS += [f"refs%2Fheads%2F{DOTS}%2Fconfig"]


@pytest.mark.parametrize("revision", BAD_REVISIONS)
def test_revisions_are_validated_everywhere(hub, repo, alice, revision):
    _, repo_id = repo
    auth = {"authorization": f"Bearer {alice}"}
    for method, url, kwargs in (
        ("GET", f"/api/models/{repo_id}/tree/{revision}", {}),
        ("GET", f"/api/models/{repo_id}/revision/{revision}", {}),
        ("GET", f"/api/models/{repo_id}/commits/{revision}", {}),
        ("POST", f"/api/models/{repo_id}/paths-info/{revision}", {"data": {"paths": ["a"]}}),
        ("GET", f"/{repo_id}/resolve/{revision}/.gitattributes", {}),
        ("HEAD", f"/{repo_id}/resolve/{revision}/.gitattributes", {}),
        ("POST", f"/api/models/{repo_id}/commit/{revision}", {"content": _ndjson(), "headers": auth}),
        ("DELETE", f"/api/models/{repo_id}/branch/{revision}", {"headers": auth}),
    ):
        r = httpx.request(method, hub.url + url, timeout=30, **kwargs)
        assert r.status_code in (400, 404), (method, url, r.status_code)
        assert r.status_code != 500
        if method != "HEAD" and r.status_code == 400:
            assert "Invalid" in r.json()["error"]


def test_valid_revisions_still_resolve(hub, repo):
    api, repo_id = repo
    api.create_branch(repo_id, branch="feature/x-1.0")
    api.create_tag(repo_id, tag="v1.0")
    for rev in ("main", "feature/x-1.0", "v1.0", "refs/heads/main", api.model_info(repo_id).sha):
        assert api.list_repo_files(repo_id, revision=rev) == [".gitattributes"]


def test_dulwich_floor_is_the_safe_release():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    (spec,) = [d for d in project["project"]["optional-dependencies"]["hub"] if d.startswith("dulwich")]
    assert tuple(int(x) for x in spec.split(">=")[1].split(".")) >= (1, 2, 7), spec


# --------------------------------------------------------------------------- 15. .git aliases


ALIASES = [
    ".git",
    ".GIT",
    ".git.",
    ".git ",
    "git~1",
    ".g\u200cit",
    ".g\u200dit",
    ".git::$INDEX_ALLOCATION",
    ".gitmodules",
]


@pytest.mark.parametrize("alias", ALIASES)
def test_git_aliases_are_refused_and_the_repo_stays_cloneable(hub, repo, alice, alias, tmp_path):
    api, repo_id = repo
    headers = {"authorization": f"Bearer {alice}", "content-type": "application/x-ndjson"}
    for path in (f"{alias}/config", f"sub/{alias}/hooks/post-checkout", alias):
        body = _ndjson({"key": "file", "value": {"path": path, "content": "W2NvcmVdCg==", "encoding": "base64"}})
        r = httpx.post(f"{hub.url}/api/models/{repo_id}/commit/main", content=body, headers=headers, timeout=60)
        assert r.status_code == 400 and r.headers["x-error-code"] == "InvalidPath", (path, r.text)
    api.upload_file(path_or_fileobj=b"ok", path_in_repo=".github/ok.txt", repo_id=repo_id)
    git_dir = hub.storage.git_dir(RepoRef.parse("model", repo_id))
    assert git_fsck(git_dir).returncode == 0
    clone = subprocess.run(
        ["git", "clone", "-q", f"{hub.url}/{repo_id}", str(tmp_path / "c")], capture_output=True, text=True, timeout=120
    )
    assert clone.returncode == 0, clone.stderr
    assert (Path(tmp_path / "c" / ".github" / "ok.txt")).read_text() == "ok"
