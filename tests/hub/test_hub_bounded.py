"""Work any caller can ask for stays bounded (issue #13, items 8, 10, 11, 12): YAML validation, repo pages,
git negotiation bodies and clones, hostile header values and ranges."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess

import httpx2 as httpx
import pytest
from hubtools import seeded_bytes

from hub_server.web import cards

# --------------------------------------------------------------------------- 8. validate-yaml


def _validate(hub, content: str) -> httpx.Response:
    return httpx.post(f"{hub.url}/api/validate-yaml", json={"content": content, "repoType": "model"}, timeout=60)


def test_validate_yaml_answers_as_before(hub):
    assert _validate(hub, "---\nlicense: mit\ntags: [a, b]\n---\n# Card\n").json() == {"errors": [], "warnings": []}
    assert _validate(hub, "no front matter").status_code == 200
    bad = _validate(hub, "---\nlicense: [unclosed\n---\n")
    assert bad.status_code == 400 and bad.json()["errors"][0]["message"].startswith("Invalid YAML metadata")
    assert _validate(hub, "---\n- a list\n---\n").status_code == 400


def test_validate_yaml_sizes_are_capped(hub):
    big_card = "---\nlicense: mit\n---\n" + "text " * (600 * 1024)  # clients send the whole README
    assert _validate(hub, big_card).json() == {"errors": [], "warnings": []}
    huge_body = httpx.post(f"{hub.url}/api/validate-yaml", content=b'{"content": "' + b"a" * (17 << 20) + b'"}')
    assert huge_body.status_code == 413
    front = "---\n" + "".join(f"k{i}: {'v' * 60}\n" for i in range(5000)) + "---\n"
    r = _validate(hub, front)
    assert r.status_code == 413 and "too large" in r.json()["errors"][0]["message"]


@pytest.mark.slow
def test_concurrent_anonymous_yaml_leaves_other_requests_answered(hub, alice):
    card = "---\n" + "".join(f"key{i}: [{', '.join(str(j) for j in range(20))}]\n" for i in range(1200)) + "---\n"
    assert len(card) < 128 * 1024
    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        pending = [pool.submit(_validate, hub, card) for _ in range(40)]
        answered = 0
        while not all(f.done() for f in pending) or answered == 0:
            r = httpx.get(f"{hub.url}/api/whoami-v2", headers={"authorization": f"Bearer {alice}"}, timeout=30)
            assert r.status_code == 200
            answered += 1
        assert all(f.result().status_code == 200 for f in pending)


# --------------------------------------------------------------------------- 10. repo pages


def test_huge_readme_and_config_are_not_rendered_or_parsed(hub, repo):
    api, repo_id = repo
    readme = "# Title\n" + "word " * (600 * 1024)
    config = {"auto_map": {"AutoModel": "modeling_x.Model"}, "padding": "p" * (2 << 20)}
    api.upload_file(path_or_fileobj=readme.encode(), path_in_repo="README.md", repo_id=repo_id)
    api.upload_file(path_or_fileobj=json.dumps(config).encode(), path_in_repo="config.json", repo_id=repo_id)
    page = httpx.get(f"{hub.url}/{repo_id}", timeout=60)
    assert page.status_code == 200
    assert "too large to show here" in page.text and "word word" not in page.text
    assert "data-config-too-large" in page.text and "data-remote-code" in page.text


def test_cards_are_rendered_once_per_blob(hub, repo):
    api, repo_id = repo
    info = api.upload_file(path_or_fileobj=b"# Hello card\n", path_in_repo="README.md", repo_id=repo_id)
    assert "Hello card" in httpx.get(f"{hub.url}/{repo_id}", timeout=60).text
    (entry,) = api.get_paths_info(repo_id, ["README.md"], revision=info.oid)
    calls = []
    cards._cards.get_or_make(entry.blob_id, lambda: calls.append(1) or "unused")
    assert calls == [], "the second lookup of the same blob used the cache"


# --------------------------------------------------------------------------- 11. git upload-pack


def test_oversized_negotiation_body_is_refused(hub, repo):
    _, repo_id = repo
    r = httpx.post(
        f"{hub.url}/{repo_id}/git-upload-pack",
        content=b"0" * (17 << 20),
        headers={"content-type": "application/x-git-upload-pack-request"},
        timeout=60,
    )
    assert r.status_code == 413


def test_parallel_clones_all_complete(hub, repo, tmp_path):
    api, repo_id = repo
    text = seeded_bytes(1000, seed=3).hex().encode()  # text: stored in git (binary files go to LFS/Xet)
    api.upload_file(path_or_fileobj=text, path_in_repo="data.txt", repo_id=repo_id)

    def clone(i: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "clone", "-q", f"{hub.url}/{repo_id}", str(tmp_path / f"c{i}")],
            capture_output=True,
            text=True,
            timeout=180,
        )

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        results = list(pool.map(clone, range(10)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    assert all((tmp_path / f"c{i}" / "data.txt").read_bytes() == text for i in range(10))


# --------------------------------------------------------------------------- 12. header values, ranges


@pytest.mark.parametrize("revision", ["main%00", "%00", "a%0d%0aX-Injected:%201", "%7F"])
def test_control_characters_in_echoed_values_give_a_clean_4xx(hub, repo, revision):
    _, repo_id = repo
    for method, url in (
        ("GET", f"/api/models/{repo_id}/tree/{revision}"),
        ("GET", f"/{repo_id}/resolve/{revision}/.gitattributes"),
        ("HEAD", f"/{repo_id}/resolve/{revision}/.gitattributes"),
    ):
        r = httpx.request(method, hub.url + url, timeout=30)
        assert 400 <= r.status_code < 500, (url, method, r.status_code)
        message = r.headers.get("x-error-message", "")
        assert message and all(c.isprintable() for c in message)
        assert "x-injected" not in r.headers


def test_absurd_ranges_never_fail_the_server(hub, repo):
    api, repo_id = repo
    api.upload_file(path_or_fileobj=b"0123456789", path_in_repo="a.txt", repo_id=repo_id)
    url = f"{hub.url}/{repo_id}/resolve/main/a.txt"
    for header in ("bytes=" + "9" * 5000 + "-", "bytes=-" + "9" * 5000, "bytes=1-" + "1" * 5000, "bytes=5-2"):
        r = httpx.get(url, headers={"range": header}, timeout=30)
        assert r.status_code in (200, 206, 416), (header[:20], r.status_code)
    assert httpx.get(url, headers={"range": "bytes=2-4"}, timeout=30).content == b"234"
