"""JSON shapes of the Hub API: tree entries, commits and repo info, as the clients parse them."""

from __future__ import annotations

import hashlib
import json

from ..storage import CommitInfo, HubStorage, RepoRef, TreeEntry, format_date


def entry_json(storage: HubStorage, entry: TreeEntry, last_commit: CommitInfo | None = None) -> dict:
    """A tree / paths-info entry as the Hub serialises it, plus its scan status."""
    if entry.type == "directory":
        out: dict = {"type": "directory", "oid": entry.oid, "size": 0, "path": entry.path}
    else:
        out = {"type": "file", "oid": entry.oid, "size": entry.size, "path": entry.path}
        if entry.lfs:
            out["lfs"] = {"oid": entry.lfs.oid, "size": entry.lfs.size, "pointerSize": entry.lfs.pointer_size}
        if entry.xet_hash:
            out["xetHash"] = entry.xet_hash
    if last_commit is not None:
        out["lastCommit"] = {"id": last_commit.id, "title": last_commit.title, "date": format_date(last_commit.date)}
    if entry.type == "file":
        scan = storage.scan_status(entry)
        applicable = scan["status"] != "not-applicable"
        out["securityFileStatus"] = {
            "status": "safe" if scan["status"] in ("safe", "not-applicable") else scan["status"],
            "avScan": {"status": "unscanned", "virusNames": None},
            "pickleImportScan": {"status": scan["status"], "imports": scan["imports"]} if applicable else None,
        }
    return out


def commit_json(info: CommitInfo) -> dict:
    """A commit as ``list_repo_commits`` reads it."""
    return {
        "id": info.id,
        "title": info.title,
        "message": info.message,
        "date": format_date(info.date),
        "authors": [{"user": a} for a in info.authors],
    }


def repo_info_json(storage: HubStorage, ref: RepoRef, rev: str) -> dict:
    """``model_info`` / ``repo_info`` at a revision: sha, siblings, privacy, dates, config summary."""
    meta = storage.meta.get_repo(ref)
    sha, files = storage.list_files(ref, rev)
    commit = storage.repos.commit_info(ref, sha)
    siblings = []
    for entry in files:
        sibling: dict = {"rfilename": entry.path, "size": entry.size, "blobId": entry.oid}
        if entry.lfs:
            sibling["lfs"] = {"size": entry.lfs.size, "sha256": entry.lfs.oid, "pointerSize": entry.lfs.pointer_size}
        siblings.append(sibling)
    info = {
        "_id": hashlib.sha1(f"{ref.type}/{ref.id}".encode()).hexdigest()[:24],
        "id": ref.id,
        "author": ref.namespace,
        "sha": sha,
        "lastModified": format_date(commit.date),
        "createdAt": format_date(meta.created_at),
        "private": meta.private,
        "gated": storage.discussions.gated(ref) or False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "siblings": siblings,
        "usedStorage": sum(e.size for e in files),
    }
    if ref.type == "model":
        info["modelId"] = ref.id
        config = _config_summary(storage, ref, sha, files)
        if config is not None:
            info["config"] = config
    return info


def _config_summary(storage: HubStorage, ref: RepoRef, sha: str, files: list[TreeEntry]) -> dict | None:
    entry = next((e for e in files if e.path == "config.json" and e.size < 1_000_000), None)
    if entry is None:
        return None
    try:
        data = json.loads(storage.read_file(ref, sha, "config.json"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    return {k: data[k] for k in ("architectures", "model_type", "auto_map") if k in data}
