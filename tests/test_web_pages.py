"""The Hub's web pages in a real browser: copy a commit hash, pin it, review diffs; escaping and privacy."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from huggingface_hub import HfApi
from isolation import REPO, run_isolated

from hub_server import running_hub
from resnet_model import ResnetConfig, ResnetModelForImageClassification

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", REPO / "test-artifacts"))
BROWSER_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; scripts/setup.sh installs it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def hub_with_model(tmp_path_factory):
    """A running hub with alice's model pushed twice (the second push edits the modeling code)."""
    root = tmp_path_factory.mktemp("web")
    with running_hub(root / "data") as hub:
        token = hub.add_user("alice")
        api = HfApi(endpoint=hub.url, token=token)
        folder = root / "model"
        model = ResnetModelForImageClassification(
            ResnetConfig(block_type="basic", layers=[1, 1, 1, 1], num_classes=3, stem_width=16)
        )
        model.save_pretrained(folder)
        (folder / "README.md").write_text("---\nlicense: mit\n---\n# Tiny <script>window.__pwned = 1</script>\n")
        api.create_repo("alice/tiny")
        first = api.upload_folder(repo_id="alice/tiny", folder_path=folder, commit_message="Add model").oid
        modeling = folder / "modeling_resnet.py"
        modeling.write_text(modeling.read_text() + "\nREVIEWED_MARKER = 'second push'\n")
        second = api.upload_folder(repo_id="alice/tiny", folder_path=folder, commit_message="Edit modeling code").oid
        api.upload_file(
            repo_id="alice/tiny",
            path_or_fileobj=b"hello",
            path_in_repo="<img src=x onerror=window.__pwned=2>.txt",
            commit_message="<img src=x onerror='window.__pwned = 3'> sneaky",
        )
        api.create_repo("alice/secret", private=True)
        yield {"hub": hub, "token": token, "first": first, "second": second, "root": root}


def _new_page(browser, hub):
    context = browser.new_context(base_url=hub.url, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=hub.url)
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a script opened a dialog: {dialog.message}"))
    return context, page


def test_copy_commit_hash_then_load_that_revision(browser, hub_with_model):
    hub = hub_with_model["hub"]
    context, page = _new_page(browser, hub)
    page.goto("/alice/tiny/commits/main")
    rows = page.locator("[data-commits] tbody tr")
    assert rows.count() == 4  # .gitattributes at creation + three pushes
    target = rows.filter(has_text="Edit modeling code")
    target.locator("button.copy[data-copy]").click()
    page.wait_for_function("document.querySelector('button.copy[data-copied]') !== null")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == hub_with_model["second"] and len(copied) == 40
    snippet = target.locator("[data-load-snippet]").text_content()
    assert f'revision="{copied}"' in snippet and "trust_remote_code=True" in snippet
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "commits-page.png"), full_page=True)
    page.goto("/alice/tiny")
    assert page.locator("[data-remote-code]").is_visible()
    page.screenshot(path=str(ARTIFACTS / "repo-page.png"), full_page=True)
    context.close()

    code = """
import sys
from transformers import AutoModelForImageClassification
model = AutoModelForImageClassification.from_pretrained("alice/tiny", trust_remote_code=True, revision=sys.argv[1])
print(getattr(sys.modules[type(model).__module__], "REVIEWED_MARKER", "none"))
"""
    env = {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1"}
    proc = run_isolated(code, copied, cwd=hub_with_model["root"], env=env)
    assert "second push" in proc.stdout


def test_compare_page_shows_the_changed_modeling_line(browser, hub_with_model):
    context, page = _new_page(browser, hub_with_model["hub"])
    page.goto(f"/alice/tiny/compare/{hub_with_model['first']}...{hub_with_model['second']}")
    assert page.locator("[data-code-changed]").is_visible()
    added = page.locator(".diff .add", has_text="REVIEWED_MARKER")
    assert added.count() == 1 and added.text_content().startswith("+REVIEWED_MARKER")
    assert page.locator("[data-diff-file]").all_text_contents() == ["modified: modeling_resnet.py"]
    context.close()


def test_markup_in_names_messages_and_cards_is_shown_as_text(browser, hub_with_model):
    context, page = _new_page(browser, hub_with_model["hub"])
    for path in ("/alice/tiny", "/alice/tiny/commits/main"):
        page.goto(path)
        assert page.evaluate("window.__pwned") is None
        assert page.locator("script:not([src])").count() == 0
    page.goto("/alice/tiny/commits/main")
    assert page.get_by_text("<img src=x onerror='window.__pwned = 3'> sneaky").count() == 1
    page.goto("/alice/tiny")
    assert page.get_by_text("<img src=x onerror=window.__pwned=2>.txt", exact=True).count() == 1
    assert "<script>window.__pwned = 1</script>" in page.locator("[data-model-card]").text_content()
    context.close()


def test_private_repo_pages_need_the_owners_login(browser, hub_with_model):
    hub = hub_with_model["hub"]
    context, page = _new_page(browser, hub)
    assert page.goto("/alice/secret").status == 404
    page.goto("/")
    assert page.get_by_text("alice/secret").count() == 0
    page.goto("/login")
    page.fill("input[name=token]", hub_with_model["token"])
    page.click("button[type=submit]")
    page.wait_for_url(hub.url + "/")
    assert page.get_by_role("link", name="alice/secret").count() == 1
    assert page.goto("/alice/secret").status == 200
    context.close()
    other = hub.add_user("bob")
    context, page = _new_page(browser, hub)
    page.goto("/login")
    page.fill("input[name=token]", other)
    page.click("button[type=submit]")
    page.wait_for_url(hub.url + "/")
    assert page.goto("/alice/secret").status == 404
    context.close()


def test_commit_history_of_a_thousand_commits_is_paginated(hub_with_model):
    import httpx2

    from hub_server.storage import AddFile, RepoRef

    hub = hub_with_model["hub"]
    HfApi(endpoint=hub.url, token=hub_with_model["token"]).create_repo("alice/long")
    repo = RepoRef.parse("model", "alice/long")
    for i in range(1000):
        staged = hub.storage.stage_bytes(str(i).encode())
        hub.storage.commit(repo, "main", [AddFile("n.txt", staged)], author="alice", summary=f"step {i}")
    first = httpx2.get(hub.url + "/alice/long/commits/main")
    assert first.status_code == 200 and "step 999<" in first.text and "step 969<" not in first.text
    assert 'rel="next"' in first.text and "1001 commits" in first.text
    last = httpx2.get(hub.url + "/alice/long/commits/main?p=33")
    assert "step 0<" in last.text and 'rel="next"' not in last.text


def test_remote_code_banner_lists_cross_repo_code_and_links_only_valid_repo_ids():
    from hub_server.web import remote_code_entries

    config = {
        "auto_map": {
            "AutoConfig": "bob/code--configuration_resnet.ResnetConfig",
            "AutoModel": "//evil.example--modeling_resnet.ResnetModel",
            "AutoModelForImageClassification": "modeling_resnet.ResnetModelForImageClassification",
        }
    }
    rows = {row["auto_class"]: row for row in remote_code_entries(config, "alice/tiny")}
    assert rows["AutoConfig"]["external"] and rows["AutoConfig"]["repo"] == "bob/code"
    assert rows["AutoConfig"]["linkable"] and rows["AutoConfig"]["file"] == "configuration_resnet.py"
    assert rows["AutoModel"]["external"] and not rows["AutoModel"]["linkable"]
    local = rows["AutoModelForImageClassification"]
    assert not local["external"] and local["repo"] == "alice/tiny" and local["file"] == "modeling_resnet.py"


def _login(page, hub, token: str) -> None:
    page.goto("/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(hub.url + "/")


def test_pull_request_page_shows_the_diff_and_lets_the_owner_merge(browser, hub_with_model):
    hub = hub_with_model["hub"]
    bob = hub.add_user("bob")
    api_bob = HfApi(endpoint=hub.url, token=bob)
    modeling = HfApi(endpoint=hub.url).hf_hub_download(
        "alice/tiny", "modeling_resnet.py", cache_dir=hub_with_model["root"] / "c"
    )
    changed = Path(modeling).read_text() + "\nPROPOSED_MARKER = 'from bob'\n"
    pr = api_bob.upload_file(
        repo_id="alice/tiny",
        path_or_fileobj=changed.encode(),
        path_in_repo="modeling_resnet.py",
        commit_message="Propose a modeling change",
        create_pr=True,
    )
    num = pr.pr_num
    context, page = _new_page(browser, hub)
    page.goto("/alice/tiny/discussions")
    assert page.locator(f"[data-discussion='{num}']").is_visible()
    page.goto(f"/alice/tiny/discussions/{num}")
    assert page.locator("[data-code-changed]").is_visible()
    assert page.locator("[data-diff-file='modeling_resnet.py']").is_visible()
    assert "PROPOSED_MARKER" in page.locator(".diff").first.text_content()
    assert page.locator("[data-merge-button]").count() == 0, "anonymous visitors cannot merge"
    context.close()

    context, page = _new_page(browser, hub)  # the PR's author is not a writer of the repo: no merge button
    _login(page, hub, bob)
    page.goto(f"/alice/tiny/discussions/{num}")
    assert page.locator("[data-merge-button]").count() == 0
    context.close()

    context, page = _new_page(browser, hub)
    _login(page, hub, hub_with_model["token"])
    page.goto(f"/alice/tiny/discussions/{num}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "pull-request-page.png"), full_page=True)
    page.click("[data-merge-button]")
    page.wait_for_url(f"{hub.url}/alice/tiny/discussions/{num}?merged=1")
    assert page.locator("[data-status]").first.text_content() == "merged"
    context.close()
    main = HfApi(endpoint=hub.url).hf_hub_download(
        "alice/tiny", "modeling_resnet.py", cache_dir=hub_with_model["root"] / "c2"
    )
    assert "PROPOSED_MARKER" in Path(main).read_text()


def test_merge_form_refuses_cross_site_posts(browser, hub_with_model):
    import httpx2

    hub = hub_with_model["hub"]
    api = HfApi(endpoint=hub.url, token=hub_with_model["token"])
    pr = api.create_pull_request("alice/tiny", title="Cross-site target")
    api.upload_file(repo_id="alice/tiny", path_or_fileobj=b"x", path_in_repo="csrf.txt", revision=pr.git_reference)
    context, page = _new_page(browser, hub)
    _login(page, hub, hub_with_model["token"])
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    context.close()
    url = f"{hub.url}/alice/tiny/discussions/{pr.num}/merge"
    forged = httpx2.post(url, data={"csrf": "forged"}, cookies=cookies, headers={"Origin": hub.url})
    assert forged.status_code == 403
    other_site = httpx2.post(url, data={"csrf": "x"}, cookies=cookies, headers={"Origin": "http://evil.example"})
    assert other_site.status_code == 403
    assert api.get_discussion_details("alice/tiny", pr.num).status == "open"
