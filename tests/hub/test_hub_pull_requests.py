"""Pull requests with the real clients: a contributor proposes a code change, the owner reviews and merges it.

The consumer runs in a fresh interpreter without ``resnet_model`` (the code can only come from the hub), so
``revision="refs/pr/1"`` must run the proposed code, and a pinned commit the code it was pinned to.
"""

from __future__ import annotations

import httpx2
import pytest
import torch
from hubtools import client_env, run_cli
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import HfHubHTTPError
from test_hub_model_flow import CODE_CHANGE, MODEL_PKG, _load, _model_copy, _publish

from hub_server.storage import RepoRef


@pytest.mark.slow
def test_contributor_pull_request_reviewed_merged_and_pinned(hub, make_api, tmp_path, repo_name):
    owner = hub.add_user("prowner")
    contributor = hub.add_user("prcontrib")
    env = client_env(hub.url, tmp_path / "owner_home")
    assert run_cli(["auth", "login", "--token", owner], env).returncode == 0
    repo_id = f"prowner/{repo_name}"
    sha1, logits1 = _publish(repo_id, env, tmp_path, _model_copy(tmp_path / "v1"))

    proposed = (MODEL_PKG / "modeling_resnet.py").read_text() + CODE_CHANGE
    commit = make_api(contributor).upload_file(
        repo_id=repo_id,
        path_or_fileobj=proposed.encode(),
        path_in_repo="modeling_resnet.py",
        commit_message="Shift the logits",
        create_pr=True,
    )
    assert commit.pr_revision == "refs/pr/1" and commit.pr_url.endswith(f"/{repo_id}/discussions/1")
    owner_api = make_api(owner)
    assert owner_api.model_info(repo_id).sha == sha1, "a pull request leaves main alone"

    details = owner_api.get_discussion_details(repo_id, 1)
    assert details.is_pull_request and details.status == "open" and details.author == "prcontrib"
    assert details.target_branch == "refs/heads/main" and details.conflicting_files == []
    assert "+_ORIGINAL_FORWARD = ResnetModelForImageClassification.forward" in details.diff
    assert [e.type for e in details.events] == ["comment", "commit"]

    loaded = _load(repo_id, [{"revision": sha1}, {"revision": "refs/pr/1"}, {}], hub.url, tmp_path / "before")
    assert torch.equal(loaded[0], logits1)
    assert torch.equal(loaded[1], logits1 + 1000.0), "refs/pr/1 runs the proposed code before the merge"
    assert torch.equal(loaded[2], logits1), "main still runs the reviewed code"

    with pytest.raises(HfHubHTTPError) as refused:
        make_api(contributor).merge_pull_request(repo_id, 1)
    assert refused.value.response.status_code == 403
    owner_api.merge_pull_request(repo_id, 1, comment="Reviewed, thanks")
    merged = owner_api.get_discussion_details(repo_id, 1)
    assert merged.status == "merged" and merged.merge_commit_oid == owner_api.model_info(repo_id).sha

    loaded = _load(repo_id, [{"revision": sha1}, {}], hub.url, tmp_path / "after")
    assert torch.equal(loaded[0], logits1), "a consumer pinned to the old commit still runs the old code"
    assert torch.equal(loaded[1], logits1 + 1000.0)


def test_pull_request_permissions(hub, make_api, repo):
    api, repo_id = repo
    bob, carol = make_api(hub.add_user("bob")), make_api(hub.add_user("carol"))
    pr = bob.create_pull_request(repo_id, title="Bob's proposal")
    bob.upload_file(repo_id=repo_id, path_or_fileobj=b"bob", path_in_repo="bob.txt", revision=pr.git_reference)
    for call in (
        lambda: carol.upload_file(repo_id=repo_id, path_or_fileobj=b"c", path_in_repo="c.txt", revision="refs/pr/1"),
        lambda: carol.change_discussion_status(repo_id, pr.num, "closed"),
        lambda: bob.upload_file(repo_id=repo_id, path_or_fileobj=b"b", path_in_repo="b.txt"),
        lambda: bob.merge_pull_request(repo_id, pr.num),
    ):
        with pytest.raises(HfHubHTTPError) as refused:
            call()
        assert refused.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as anonymous:
        make_api().create_discussion(repo_id, title="anonymous")
    assert anonymous.value.response.status_code == 401
    carol.comment_discussion(repo_id, pr.num, "Looks good to me")
    bob.rename_discussion(repo_id, pr.num, "Bob's proposal, renamed")
    bob.change_discussion_status(repo_id, pr.num, "closed")
    with pytest.raises(HfHubHTTPError):
        bob.upload_file(repo_id=repo_id, path_or_fileobj=b"late", path_in_repo="late.txt", revision="refs/pr/1")
    details = api.get_discussion_details(repo_id, pr.num)
    assert details.status == "closed" and details.title == "Bob's proposal, renamed"
    assert [e.type for e in details.events] == ["comment", "commit", "comment", "title-change", "status-change"]
    assert [d.num for d in api.get_repo_discussions(repo_id, discussion_status="closed")] == [pr.num]


def test_merge_commit_and_conflicts(hub, make_api, repo):
    api, repo_id = repo
    api.upload_file(repo_id=repo_id, path_or_fileobj=b"base", path_in_repo="shared.txt")
    bob = make_api(hub.add_user("bob"))
    clean = bob.upload_file(repo_id=repo_id, path_or_fileobj=b"bob", path_in_repo="bob.txt", create_pr=True)
    clash = bob.upload_file(repo_id=repo_id, path_or_fileobj=b"bob's", path_in_repo="shared.txt", create_pr=True)
    head = api.upload_file(repo_id=repo_id, path_or_fileobj=b"alice's", path_in_repo="shared.txt").oid

    assert api.get_discussion_details(repo_id, clash.pr_num).conflicting_files == ["shared.txt"]
    with pytest.raises(HfHubHTTPError) as conflict:
        api.merge_pull_request(repo_id, clash.pr_num)
    assert conflict.value.response.status_code == 409
    assert api.model_info(repo_id).sha == head, "a refused merge moves nothing"

    api.merge_pull_request(repo_id, clean.pr_num)
    merge = hub.storage.repos.commit_info(RepoRef.parse("model", repo_id), "main")
    assert merge.parents == [head, clean.oid], "diverged histories meet in a merge commit"
    assert {"bob.txt", "shared.txt"} <= set(api.list_repo_files(repo_id))
    shared = httpx2.get(f"{hub.url}/{repo_id}/resolve/main/shared.txt")
    assert shared.content == b"alice's"
    refs = api.list_repo_refs(repo_id, include_pull_requests=True)
    assert {r.ref for r in refs.pull_requests} == {"refs/pr/1", "refs/pr/2"}


def test_pr_commit_from_create_commit_and_empty_pr(hub, make_api, repo):
    api, repo_id = repo
    pr = api.create_commit(
        repo_id,
        operations=[CommitOperationAdd("a.txt", b"a")],
        commit_message="Open with a commit",
        create_pr=True,
    )
    assert pr.pr_num == 1
    info = api.get_discussion_details(repo_id, 1)
    assert info.title == "Open with a commit" and info.events[-1].summary == "Open with a commit"
    assert api.model_info(repo_id, revision="refs/pr/1").sha == pr.oid
    assert "a.txt" not in api.list_repo_files(repo_id)
