"""Pull requests as the Hub has them: who may commit where, opening a PR from a commit, and the JSON shapes.

Anyone who can read a repo may open a discussion or a pull request (with a write-role token); a PR's
author and the repo's writers may push to ``refs/pr/<num>``, change its title or status; only writers
merge, or close someone else's. A merge may name the head that was reviewed: then it merges that commit or
nothing (the page's merge button always does).
"""

from __future__ import annotations

import dataclasses
import re

from .. import errors
from ..storage import HubStorage, RepoRef, TokenInfo, format_date
from ..storage.discussions import Discussion, DiscussionEvent, comment_data
from .deps import WriteAccess, check_read, check_write, is_writer

PR_REF = re.compile(r"^refs/pr/([1-9][0-9]{0,8})$")
FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")


def participant(storage: HubStorage, ref: RepoRef, token: TokenInfo | None) -> tuple[RepoRef, TokenInfo]:
    """A readable repo and a token that may take part in its discussions (write role)."""
    ref = check_read(storage, ref, token)
    if token is None:
        raise errors.Unauthorized("You must be authenticated (write token) to take part in discussions or PRs")
    if token.role != "write":
        raise errors.Forbidden("This token is read-only")
    return ref, token


def may_moderate(storage: HubStorage, discussion: Discussion, ref: RepoRef, token: TokenInfo) -> bool:
    """The discussion's author or a writer of the repo."""
    return is_writer(storage, ref, token) or token.user == discussion.author


@dataclasses.dataclass(frozen=True)
class CommitTarget:
    """Where a commit lands: the access it is made with, the ref, and the PR it belongs to."""

    access: WriteAccess
    branch: str
    pr: int | None = None
    created: bool = False


def commit_target(
    storage: HubStorage, ref: RepoRef, token: TokenInfo | None, revision: str, create_pr: bool, *, prepare: bool
) -> CommitTarget:
    """Check the caller may commit to ``revision`` (or open a PR from it); with ``prepare``, open the PR."""
    match = PR_REF.match(revision)
    if not create_pr and match is None:
        ref = check_write(storage, ref, token)
        assert token is not None
        return CommitTarget(WriteAccess(ref, token), revision)
    ref, token = participant(storage, ref, token)
    access = WriteAccess(ref, token)
    if match is not None:
        discussion = storage.discussions.get(ref, int(match.group(1)))
        if not discussion.is_pr:
            raise errors.RevisionNotFound(f"Invalid rev id: {revision}")
        if not may_moderate(storage, discussion, ref, token):
            raise errors.Forbidden(f"You don't have the rights to push to pull request #{discussion.num}")
        if discussion.status in ("merged", "closed"):
            raise errors.BadRequest(f"Pull request #{discussion.num} is {discussion.status}")
        if create_pr:
            raise errors.BadRequest("create_pr cannot be combined with a pull request revision")
        return CommitTarget(access, revision, discussion.num)
    storage.repos.branch_head(ref, revision)  # the PR's target must be a branch
    if not prepare:
        return CommitTarget(access, revision)
    discussion = storage.discussions.create(
        ref, author=token.user, title="", description="", is_pr=True, status="open", target=revision
    )
    try:
        storage.refs.create_pr_ref(ref, discussion.num, revision)
    except BaseException:
        storage.discussions.delete(ref, discussion.num)
        raise
    return CommitTarget(access, f"refs/pr/{discussion.num}", discussion.num, created=True)


def record_commit(storage: HubStorage, target: CommitTarget, sha: str, title: str) -> None:
    """After a commit on a PR: its event (and, for a PR opened by this commit, its title)."""
    if target.pr is None:
        return
    if target.created:
        storage.discussions.update(target.access.ref, target.pr, title=title[:200] or "Upload files")
    storage.discussions.add_event(
        target.access.ref, target.pr, "commit", target.access.token.user, {"subject": title, "oid": sha}
    )


def abandon(storage: HubStorage, target: CommitTarget) -> None:
    """Remove a PR opened for a commit that failed."""
    if target.created and target.pr is not None:
        storage.refs.delete_pr_ref(target.access.ref, target.pr)
        storage.discussions.delete(target.access.ref, target.pr)


def reviewed_head(**fields: str | None) -> str | None:
    """The one commit a merge request names (``expected_head=…``, ``parent=…``), or None when it names none."""
    named = {}
    for field, value in fields.items():
        if value is None:
            continue
        if not FULL_SHA.fullmatch(value):
            raise errors.BadRequest(f"Invalid {field} {value[:100]!r}: expected the full 40-hex SHA of a commit")
        named[field] = value.lower()
    if len(set(named.values())) > 1:
        raise errors.BadRequest(f"{' and '.join(named)} name different commits: give one")
    return next(iter(named.values()), None)


def merge_pull_request(
    storage: HubStorage,
    ref: RepoRef,
    discussion: Discussion,
    user: str,
    comment: str = "",
    *,
    expected_head: str | None = None,
) -> str:
    """Merge an open PR into its target branch and record it (the caller has checked the user is a writer).

    With ``expected_head`` (what the reviewer saw), Conflict (409) naming both commits when the PR has moved.
    """
    if not discussion.is_pr:
        raise errors.BadRequest(f"#{discussion.num} is a discussion, not a pull request")
    if discussion.status not in ("open", "draft"):
        raise errors.BadRequest(f"Pull request #{discussion.num} is {discussion.status}")
    sha = storage.refs.merge(
        ref,
        discussion.git_ref,
        discussion.target_branch or "main",
        author=user,
        title=f"Merge pull request #{discussion.num}: {discussion.title}",
        message=comment,
        expected_source=expected_head,
    )
    if comment.strip():
        storage.discussions.add_event(ref, discussion.num, "comment", user, comment_data(comment))
    storage.discussions.add_event(
        ref, discussion.num, "status-change", user, {"status": "merged"}, status="merged", merge_commit=sha
    )
    return sha


# ----------------------------------------------------------------- JSON shapes


def _user(name: str) -> dict:
    return {"name": name, "fullname": name, "type": "user", "isPro": False, "isHf": False, "avatarUrl": ""}


def event_json(event: DiscussionEvent) -> dict:
    """An event as ``deserialize_event`` reads it."""
    return {
        "id": event.id,
        "type": event.type,
        "createdAt": format_date(event.created_at),
        "author": _user(event.author),
        "data": event.data,
    }


def discussion_json(ref: RepoRef, discussion: Discussion) -> dict:
    """A discussion as listed."""
    return {
        "num": discussion.num,
        "title": discussion.title,
        "status": discussion.status,
        "createdAt": format_date(discussion.created_at),
        "isPullRequest": discussion.is_pr,
        "author": _user(discussion.author),
        "repo": {"name": ref.id, "type": ref.type},
        "pinned": False,
        "numComments": sum(1 for e in discussion.events if e.type == "comment"),
    }
