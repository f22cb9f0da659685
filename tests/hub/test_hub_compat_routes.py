"""Hub routes and answers the client relies on: error shapes, request ids, gating, moves, squash, LFS files."""

from __future__ import annotations

import hashlib

import httpx2
import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError


def test_request_ids_and_error_shapes(hub):
    echoed = httpx2.get(f"{hub.url}/api/whoami-v2", headers={"X-Request-Id": "abc-123"})
    assert echoed.headers["X-Request-Id"] == "abc-123"
    fresh = httpx2.get(f"{hub.url}/api/models/gpt2", headers={"X-Request-Id": "bad id;"})
    assert fresh.status_code == 404 and fresh.headers["X-Error-Code"] == "RepoNotFound"
    assert fresh.headers["X-Request-Id"] != "bad id" and len(fresh.headers["X-Request-Id"]) == 32
    assert httpx2.head(f"{hub.url}/gpt2/resolve/main/config.json").headers["X-Error-Code"] == "RepoNotFound"
    unknown = httpx2.post(f"{hub.url}/api/no/such/route")
    assert unknown.status_code == 404 and unknown.headers["X-Error-Code"] == "NotFound"
    assert "error" in unknown.json()


def test_backslash_paths_are_unprocessable(repo):
    api, repo_id = repo
    with pytest.raises(HfHubHTTPError) as refused:
        api.upload_file(repo_id=repo_id, path_or_fileobj=b"x", path_in_repo="..\\ddd")
    assert refused.value.response.status_code == 422


def test_preupload_reports_remote_oids_and_gitignore(repo):
    api, repo_id = repo
    api.upload_file(repo_id=repo_id, path_or_fileobj=b"same", path_in_repo="a.txt")
    api.upload_file(repo_id=repo_id, path_or_fileobj=b"*.log\n!keep.log\n", path_in_repo=".gitignore")
    body = {"files": [{"path": p, "size": 4, "sample": ""} for p in ("a.txt", "new.txt", "x.log", "keep.log")]}
    answer = httpx2.post(
        f"{api.endpoint}/api/models/{repo_id}/preupload/main",
        json=body,
        headers={"authorization": f"Bearer {api.token}"},
    ).json()["files"]
    by_path = {f["path"]: f for f in answer}
    assert by_path["a.txt"]["oid"] == hashlib.sha1(b"blob 4\0same").hexdigest()
    assert by_path["new.txt"]["oid"] is None
    assert [by_path[p]["shouldIgnore"] for p in ("a.txt", "x.log", "keep.log")] == [False, True, False]
    before = api.model_info(repo_id).sha
    api.upload_file(repo_id=repo_id, path_or_fileobj=b"same", path_in_repo="a.txt")
    assert api.model_info(repo_id).sha == before, "an unchanged file makes no commit"


def test_gated_repo_access_requests(hub, make_api, repo):
    api, repo_id = repo
    api.upload_file(repo_id=repo_id, path_or_fileobj=b"weights", path_in_repo="w.txt")
    api.update_repo_settings(repo_id, gated="manual")
    assert api.model_info(repo_id).gated == "manual"
    bob = make_api(hub.add_user("bob"))
    with pytest.raises(GatedRepoError):
        bob.auth_check(repo_id)
    with pytest.raises(GatedRepoError):
        bob.hf_hub_download(repo_id, "w.txt", cache_dir=str(hub.storage.root / "gated-dl"))
    asked = httpx2.post(f"{hub.url}/api/models/{repo_id}/ask-access", headers={"authorization": f"Bearer {bob.token}"})
    assert asked.json() == {"status": "pending"}
    assert [r.username for r in api.list_pending_access_requests(repo_id)] == ["bob"]
    api.accept_access_request(repo_id, "bob")
    bob.auth_check(repo_id)
    assert bob.hf_hub_download(repo_id, "w.txt", cache_dir=str(hub.storage.root / "gated-dl2"))
    with pytest.raises(HfHubHTTPError):
        api.grant_access(repo_id, "bob")


def test_move_keeps_the_old_name_working(make_api, repo):
    api, repo_id = repo
    api.upload_file(repo_id=repo_id, path_or_fileobj=b"moved", path_in_repo="f.txt")
    api.move_repo(repo_id, repo_id + "-moved")
    assert api.model_info(repo_id + "-moved").id == repo_id + "-moved"
    assert api.model_info(repo_id).id == repo_id + "-moved", "the old name reaches the moved repo"
    other = make_api(None)
    with pytest.raises(RepositoryNotFoundError):
        other.model_info(repo_id + "-nowhere")
    api.create_repo(repo_id + "-other")
    with pytest.raises(HfHubHTTPError, match="already exists"):
        api.move_repo(repo_id + "-other", repo_id + "-moved")


def test_super_squash_and_lfs_file_deletion(hub, repo):
    api, repo_id = repo
    api.create_commit(
        repo_id,
        operations=[CommitOperationAdd("w.bin", b"lfs bytes"), CommitOperationAdd("t.txt", b"text")],
        commit_message="two files",
    )
    api.upload_file(repo_id=repo_id, path_or_fileobj=b"text 2", path_in_repo="t.txt")
    api.super_squash_history(repo_id, commit_message="squashed")
    commits = api.list_repo_commits(repo_id)
    assert [c.title for c in commits] == ["squashed"]
    lfs = list(api.list_lfs_files(repo_id))
    if not lfs:  # this client uploaded every file inline: nothing stored outside git
        return
    assert [f.filename for f in lfs] == ["w.bin"]
    api.permanently_delete_lfs_files(repo_id, lfs)
    assert list(api.list_lfs_files(repo_id)) == []
    assert "w.bin" not in api.list_repo_files(repo_id)
    assert hub.storage.lfs_size(lfs[0].file_oid) is None, "storage no other repo uses is freed"
