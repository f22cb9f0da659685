"""What a reviewer sees is what gets merged (hardening round 2): merges bound to the reviewed head, hidden
comments that stay hidden, and a pull request page that names code another repo would run."""

from __future__ import annotations

import json
import re

import httpx2 as httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

_FIELD = r'<form[^>]*data-merge-form[^>]*>.*?name="{}" value="([^"]+)"'


def _browser(hub, token: str) -> httpx.Client:
    browser = httpx.Client(base_url=hub.url)
    csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text).group(1)
    assert browser.post("/login", data={"token": token, "csrf": csrf}).status_code == 303
    return browser


def _pr_head(api: HfApi, repo_id: str, num: int) -> str:
    refs = api.list_repo_refs(repo_id, include_pull_requests=True)
    return next(r.target_commit for r in refs.pull_requests if r.ref == f"refs/pr/{num}")


def _bobs_pull_request(make_api, bob, repo_id: str) -> tuple[HfApi, int, str]:
    bob_api = make_api(bob)
    pr = bob_api.upload_file(path_or_fileobj=b"reviewed\n", path_in_repo="code.py", repo_id=repo_id, create_pr=True)
    return bob_api, pr.pr_num, _pr_head(bob_api, repo_id, pr.pr_num)


def _push(bob_api: HfApi, repo_id: str, num: int) -> str:
    """The PR's author pushes after the review."""
    bob_api.upload_file(
        path_or_fileobj=b"unreviewed\n", path_in_repo="code.py", repo_id=repo_id, revision=f"refs/pr/{num}"
    )
    return _pr_head(bob_api, repo_id, num)


# --------------------------------------------------------------------------- 3. merges bound to the reviewed head


def test_the_api_merges_only_the_head_the_reviewer_names(hub, make_api, repo, alice, bob):
    api, repo_id = repo
    bob_api, num, reviewed = _bobs_pull_request(make_api, bob, repo_id)
    pushed = _push(bob_api, repo_id, num)
    url = f"{hub.url}/api/models/{repo_id}/discussions/{num}/merge"
    auth = {"authorization": f"Bearer {alice}"}
    for field in ("expected_head", "parent"):
        moved = httpx.post(url, json={field: reviewed}, headers=auth)
        assert moved.status_code == 409, moved.text
        assert reviewed in moved.json()["error"] and pushed in moved.json()["error"]
    bad = httpx.post(url, json={"expected_head": "main"}, headers=auth)
    assert bad.status_code == 400 and "expected_head" in bad.json()["error"]
    both = httpx.post(url, json={"expected_head": pushed, "parent": reviewed}, headers=auth)
    assert both.status_code == 400 and "parent" in both.json()["error"]
    assert "code.py" not in api.list_repo_files(repo_id), "nothing was merged"
    assert api.get_discussion_details(repo_id, num).status == "open"
    merged = httpx.post(url, json={"expected_head": pushed}, headers=auth)
    assert merged.status_code == 200, merged.text
    assert api.get_discussion_details(repo_id, num).status == "merged"


def test_the_client_merge_without_a_head_still_works(make_api, repo, bob):
    api, repo_id = repo
    _, num, _ = _bobs_pull_request(make_api, bob, repo_id)
    api.merge_pull_request(repo_id, num)  # huggingface_hub sends no head: the API keeps the Hub's behaviour
    assert api.get_discussion_details(repo_id, num).status == "merged"


def test_the_merge_button_merges_the_head_shown_on_the_page(hub, make_api, repo, alice, bob):
    api, repo_id = repo
    bob_api, num, reviewed = _bobs_pull_request(make_api, bob, repo_id)
    browser = _browser(hub, alice)
    try:
        page = browser.get(f"/{repo_id}/discussions/{num}").text
        form = {name: re.search(_FIELD.format(name), page, re.S).group(1) for name in ("csrf", "head")}
        assert form["head"] == reviewed
        pushed = _push(bob_api, repo_id, num)
        stale = browser.post(f"/{repo_id}/discussions/{num}/merge", data=form)
        assert stale.status_code == 409 and reviewed[:12] in stale.text and pushed[:12] in stale.text
        forged = browser.post(f"/{repo_id}/discussions/{num}/merge", data={**form, "head": pushed})
        assert forged.status_code == 403, "the head is covered by the form's token"
        assert "code.py" not in api.list_repo_files(repo_id)
        page = browser.get(f"/{repo_id}/discussions/{num}").text
        form = {name: re.search(_FIELD.format(name), page, re.S).group(1) for name in ("csrf", "head")}
        assert form["head"] == pushed
        assert browser.post(f"/{repo_id}/discussions/{num}/merge", data=form).status_code == 303
    finally:
        browser.close()
    assert api.get_discussion_details(repo_id, num).status == "merged"


# --------------------------------------------------------------------------- 12. hidden comments stay hidden


def test_a_hidden_comment_stays_hidden_when_its_author_edits_it(hub, make_api, repo, bob):
    api, repo_id = repo
    bob_api = make_api(bob)
    discussion = bob_api.create_discussion(repo_id, title="A question")
    comment = bob_api.comment_discussion(repo_id, discussion.num, "first words")
    with pytest.warns(UserWarning, match="irreversible"):  # the client's own words: so it is here
        hidden = api.hide_discussion_comment(repo_id, discussion.num, comment.id)
    assert hidden.hidden and hidden.content == ""
    with pytest.raises(HfHubHTTPError) as refused:
        bob_api.edit_discussion_comment(repo_id, discussion.num, comment.id, "edited words")
    assert refused.value.response.status_code == 403 and "hidden" in refused.value.server_message
    for reader in (api, bob_api, make_api()):
        (shown,) = [e for e in reader.get_discussion_details(repo_id, discussion.num).events if e.id == comment.id]
        assert shown.hidden and shown.content == "" and not shown.edited
    page = httpx.get(f"{hub.url}/{repo_id}/discussions/{discussion.num}").text
    assert "edited words" not in page and "first words" not in page


# --------------------------------------------------------------------------- 14. cross-repo code in the banner


@pytest.mark.parametrize("where", ["config.json", "tokenizer_config.json"])
def test_the_pull_request_page_names_code_from_another_repo(hub, make_api, repo, bob, where):
    api, repo_id = repo
    api.upload_file(path_or_fileobj=b'{"model_type": "resnet"}', path_in_repo=where, repo_id=repo_id)
    proposed = {"model_type": "resnet", "auto_map": {"AutoModel": "other-ns/helpers--modeling.Helper"}}
    pr = make_api(bob).upload_file(
        path_or_fileobj=json.dumps(proposed).encode(), path_in_repo=where, repo_id=repo_id, create_pr=True
    )
    page = httpx.get(f"{hub.url}/{repo_id}/discussions/{pr.pr_num}").text
    banner = re.search(r"<div[^>]*data-code-changed[^>]*>(.*?)</div>", page, re.S)
    assert banner is not None, "only a JSON file changed, but it points trust_remote_code at other code"
    assert "other-ns/helpers" in banner.group(1) and "modeling.py" in banner.group(1)
    assert "another repository" in banner.group(1)
