"""Organisations: a namespace its members share, with read / write / admin roles, through the real client."""

from __future__ import annotations

import httpx2 as httpx
import pytest
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError


def _status(call) -> int:
    with pytest.raises(HfHubHTTPError) as info:
        call()
    return info.value.response.status_code


@pytest.fixture(scope="module")
def org(hub, alice, bob):
    """Organisation ``acme``: alice writes (admin), bob reads; carol is not a member."""
    hub.add_org("acme", {"alice": "admin", "bob": "read"}, fullname="Acme Research")
    return {"alice": alice, "bob": bob, "carol": hub.add_user("carol")}


def test_whoami_lists_the_organisations_and_roles(make_api, org):
    orgs = make_api(org["alice"]).whoami()["orgs"]
    assert [(o["name"], o["fullname"], o["roleInOrg"], o["type"]) for o in orgs] == [
        ("acme", "Acme Research", "admin", "org")
    ]
    assert [o["roleInOrg"] for o in make_api(org["bob"]).whoami()["orgs"]] == ["read"]
    assert make_api(org["carol"]).whoami()["orgs"] == []


def test_members_share_the_namespace_by_role(hub, make_api, org, repo_name):
    alice, bob, carol = (make_api(org[name]) for name in ("alice", "bob", "carol"))
    repo_id = f"acme/{repo_name}"
    alice.create_repo(repo_id, private=True)
    alice.upload_file(path_or_fileobj=b"weights", path_in_repo="w.bin", repo_id=repo_id)
    # a read member sees the private repo and its files, in listings too, but may not write or create
    assert bob.model_info(repo_id).private is True
    assert repo_id in [m.id for m in bob.list_models(author="acme")]
    assert bob.hf_hub_download(repo_id, "w.bin") and bob.list_repo_files(repo_id) == [".gitattributes", "w.bin"]
    assert _status(lambda: bob.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id=repo_id)) == 403
    assert _status(lambda: bob.create_repo(f"acme/{repo_name}-bob")) == 403
    # someone else sees nothing, as for any private repo
    with pytest.raises(RepositoryNotFoundError):
        carol.model_info(repo_id)
    assert repo_id not in [m.id for m in carol.list_models(author="acme")]
    assert _status(lambda: carol.create_repo(f"acme/{repo_name}-carol")) == 403
    # a read member takes part through pull requests; only writers merge
    pr = bob.upload_file(path_or_fileobj=b"proposal", path_in_repo="p.txt", repo_id=repo_id, create_pr=True)
    assert _status(lambda: bob.merge_pull_request(repo_id, pr.pr_num)) == 403
    alice.merge_pull_request(repo_id, pr.pr_num)
    assert "p.txt" in alice.list_repo_files(repo_id)
    # Xet write tokens follow the same rule
    url = f"{hub.url}/api/models/{repo_id}/xet-write-token/main"
    assert httpx.get(url, headers={"authorization": f"Bearer {org['alice']}"}).status_code == 200
    assert httpx.get(url, headers={"authorization": f"Bearer {org['bob']}"}).status_code == 403


def test_a_removed_member_loses_access_at_once(hub, make_api, org, repo_name):
    dave = hub.add_user("dave")
    hub.add_org("acme", {"dave": "write"})
    repo_id = f"acme/{repo_name}"
    make_api(dave).create_repo(repo_id, private=True)  # a write member creates repos in the organisation
    assert hub.storage.orgs.remove_member("acme", "dave")
    with pytest.raises(RepositoryNotFoundError):
        make_api(dave).model_info(repo_id)
    assert make_api(org["alice"]).model_info(repo_id).private is True  # the organisation keeps the repo


def test_names_are_a_user_or_an_organisation(hub, org):
    from hub_server import errors

    with pytest.raises(errors.Conflict, match="is a user"):
        hub.storage.orgs.add_org("carol")
    with pytest.raises(errors.Conflict, match="is an organisation"):
        hub.storage.add_user("acme")
    with pytest.raises(errors.BadRequest, match="expected one of read, write, admin"):
        hub.storage.orgs.set_member("acme", "carol", "owner")


def test_command_line(tmp_path, capsys):
    from hub_server.cli import main

    def hub(*args: str) -> tuple[int, str, str]:
        status = main([*args, "--root", str(tmp_path)])
        out, err = capsys.readouterr()
        return status, out, err

    assert hub("add-user", "erin")[0] == 0
    status, _, err = hub("add-org", "lab", "--member", "erin", "--member", "nobody:read")
    assert status == 2 and "'nobody' does not exist" in err
    status, _, err = hub("add-org", "lab", "--member", "erin:owner")
    assert status == 2 and "expected one of read, write, admin" in err
    assert hub("remove-member", "lab", "erin")[0] == 1  # the refused commands created nothing
    status, out, err = hub("add-org", "lab", "--fullname", "The Lab", "--member", "erin:admin")
    assert status == 0 and "erin (admin)" in out, err
    assert hub("add-user", "lab")[0] == 2
    assert hub("remove-member", "lab", "erin")[0] == 0
    status, _, err = hub("remove-member", "lab", "erin")
    assert status == 1 and "not a member" in err
