"""Diffs are bounded, fast on adversarial input, and cached (hardening round 2).

A reordered table made difflib quadratic (one anonymous `?diff=1` cost 28 s of CPU); diffs now come from git's
engine, files past the bounds are "too large to show", and the same diff is computed once.
"""

from __future__ import annotations

import random

import httpx2 as httpx
from huggingface_hub import CommitOperationAdd

from hub_server.storage import textdiff


def _table(rows: list[int]) -> bytes:
    return "".join(f"{i:06d},{i * 7919 % 100003:08d},row {i} of the table\n" for i in rows).encode()


def _pr_with(api, repo_id: str, before: bytes, after: bytes, path: str = "table.csv") -> int:
    api.upload_file(repo_id=repo_id, path_or_fileobj=before, path_in_repo=path)
    pr = api.create_commit(repo_id, [CommitOperationAdd(path, after)], commit_message="reorder", create_pr=True)
    return pr.pr_num


def test_a_reordered_table_is_diffed_once_and_quickly(hub, repo):
    api, repo_id = repo
    rows = list(range(7000))  # about 260 KB
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    before, after = _table(rows), _table(shuffled)
    assert 200_000 < len(before) <= textdiff.MAX_BYTES
    num = _pr_with(api, repo_id, before, after)
    url = f"{hub.url}/api/models/{repo_id}/discussions/{num}"
    runs = textdiff.runs
    first = httpx.get(url, params={"diff": "1"}, timeout=60)
    assert first.status_code == 200 and "+++ b/table.csv" in first.json()["diff"]
    assert textdiff.runs == runs + 1
    again = httpx.get(url, params={"diff": "1"}, timeout=60)  # the API and the page ask the same cache
    page = httpx.get(f"{hub.url}/{repo_id}/discussions/{num}", timeout=60)
    assert again.json()["diff"] == first.json()["diff"] and page.status_code == 200
    assert textdiff.runs == runs + 1, "the same diff was computed again"


def test_files_past_the_bound_are_too_large_to_show(hub, repo):
    api, repo_id = repo
    big = _table(list(range(16000)))
    assert len(big) > textdiff.MAX_BYTES
    num = _pr_with(api, repo_id, big, big[::-1].replace(b"\n", b"") + b"\n", path="big.csv")
    runs = textdiff.runs
    answer = httpx.get(f"{hub.url}/api/models/{repo_id}/discussions/{num}", params={"diff": "1"}, timeout=60)
    assert answer.status_code == 200 and "big.csv" in answer.json()["diff"]
    assert textdiff.runs == runs, "a file past the bound was diffed"
    page = httpx.get(f"{hub.url}/{repo_id}/discussions/{num}", timeout=60)
    assert "Binary or large file; not shown." in page.text


def test_small_diffs_read_as_before():
    old = b"a\nb\nc\n"
    new = b"a\nB\nc\nd\n"
    text = textdiff.unified_diff(old, new, "f.txt", ("1", "2"))
    assert text.startswith("--- a/f.txt\n+++ b/f.txt\n@@ ")
    assert "-b\n+B\n" in text and "+d\n" in text
    assert textdiff.unified_diff(None, b"x\n", "n.txt", ("-", "3")).endswith("@@ -0,0 +1 @@\n+x\n")
    assert textdiff.unified_diff(b"\0bin", b"x", "b.bin", ("4", "5")) is None
