"""Discussions and pull requests: list, open, read (with the diff), comment, edit, rename, close, merge."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from ... import errors
from ...storage import HubStorage, RepoRef, TokenInfo
from ...storage.discussions import Discussion, comment_data
from ..deps import ApiRepo, CurrentToken, ReadableRepo, Storage, check_download, is_writer
from ..http import repo_url, truthy
from ..limits import run_limited
from ..paths import API_REPO
from ..pulls import discussion_json, event_json, may_moderate, merge_pull_request, participant, reviewed_head
from ..schemas import CommentBody, DiscussionBody, EditCommentBody, MergeBody, StatusBody, TitleBody

router = APIRouter(tags=["discussions"])
DISCUSSION = API_REPO + "/discussions/{num:seg}"
PAGE = 50


def _num(num: str) -> int:
    if not num.isdigit() or not 0 < int(num) < 10**9:
        raise errors.NotFound(f"Discussion {num!r} not found")
    return int(num)


def _diff(storage: HubStorage, ref: RepoRef, discussion: Discussion) -> str:
    source, target = discussion.git_ref, discussion.target_branch or "main"
    try:
        changes = storage.repos.diff(ref, target, source)
    except errors.RevisionNotFound:
        return ""
    parts = []
    for change in changes:
        text = storage.unified_diff(ref, target, source, change.path)
        parts.append(text if text is not None else f"Binary or large file {change.path} {change.status}\n")
    return "".join(parts)


def details_json(storage: HubStorage, ref: RepoRef, discussion: Discussion, *, diff: bool) -> dict:
    """A discussion with its events, and for a PR its target, merge commit, conflicts and diff."""
    out = discussion_json(ref, discussion)
    out["events"] = [event_json(e) for e in discussion.events]
    if discussion.is_pr:
        target = discussion.target_branch or "main"
        out["changes"] = {"base": f"refs/heads/{target}", "mergeCommitId": discussion.merge_commit}
        out["filesWithConflicts"] = []
        if discussion.status in ("open", "draft"):
            try:
                out["filesWithConflicts"] = storage.refs.conflicts(ref, discussion.git_ref, target)
            except (errors.HubError, KeyError):
                out["filesWithConflicts"] = []
            if diff:
                out["diff"] = _diff(storage, ref, discussion)
    return out


@router.get(API_REPO + "/discussions")
def list_discussions(
    repo: ReadableRepo,
    storage: Storage,
    p: int = Query(0, ge=0, le=10**6),
    type: str = "all",
    status: str = "all",
    author: str | None = None,
) -> dict:
    """Discussions, newest first, 50 a page."""
    if type not in ("all", "discussion", "pull_request"):
        raise errors.BadRequest(f"Invalid type {type!r}: expected all, discussion or pull_request")
    if status not in ("all", "open", "closed", "merged", "draft"):
        raise errors.BadRequest(f"Invalid status {status!r}: expected all, open, closed, merged or draft")
    found = [
        d
        for d in storage.discussions.list(repo)
        if (type == "all" or d.is_pr == (type == "pull_request"))
        and (status == "all" or d.status == status or (status == "closed" and d.status == "merged"))
        and (author is None or d.author == author)
    ]
    page = found[p * PAGE : (p + 1) * PAGE]
    return {
        "discussions": [discussion_json(repo, d) for d in page],
        "count": len(found),
        "start": p * PAGE,
        "numClosedDiscussions": sum(1 for d in found if d.status in ("closed", "merged")),
    }


@router.post(API_REPO + "/discussions")
def create_discussion(
    request: Request, repo: ApiRepo, body: DiscussionBody, token: CurrentToken, storage: Storage
) -> dict:
    """Open a discussion, or a draft pull request whose ref starts at main."""
    ref, token = participant(storage, repo, token)
    title = body.title.strip()
    if not 3 <= len(title) <= 200:
        raise errors.BadRequest("Invalid title: between 3 and 200 characters")
    discussion = storage.discussions.create(
        ref,
        author=token.user,
        title=title,
        description=body.description or "",
        is_pr=bool(body.pullRequest),
        status="open",
        target="main" if body.pullRequest else None,
    )
    if discussion.is_pr:
        try:
            storage.refs.create_pr_ref(ref, discussion.num, "main")
        except BaseException:
            storage.discussions.delete(ref, discussion.num)
            raise
    return {
        "num": discussion.num,
        "pullRequest": discussion.is_pr,
        "url": f"{repo_url(request, ref)}/discussions/{discussion.num}",
    }


def _discussion(storage: HubStorage, repo: RepoRef, num: str, token: TokenInfo | None, diff: bool) -> dict:
    if diff:
        check_download(storage, repo, token)
    return details_json(storage, repo, storage.discussions.get(repo, _num(num)), diff=diff)


@router.get(DISCUSSION)
async def get_discussion(
    request: Request, repo: ReadableRepo, num: str, storage: Storage, token: CurrentToken, diff: str | None = None
) -> dict:
    """A discussion with its events (and the PR's diff with ``diff=1``: file content, so the download rule).

    Diffs are computed under the pages' limiter, like the pages that show them.
    """
    if truthy(diff):
        return await run_limited(request, "pages", _discussion, storage, repo, num, token, True)
    return await run_in_threadpool(_discussion, storage, repo, num, token, False)


def _moderated(storage: HubStorage, repo: RepoRef, num: str, token: TokenInfo | None):
    ref, token = participant(storage, repo, token)
    discussion = storage.discussions.get(ref, _num(num))
    if not may_moderate(storage, discussion, ref, token):
        raise errors.Forbidden("Only the author of this discussion and the repo's writers may change it")
    return ref, token, discussion


@router.post(DISCUSSION + "/comment")
def comment(repo: ApiRepo, num: str, body: CommentBody, token: CurrentToken, storage: Storage) -> dict:
    """Add a comment."""
    ref, token = participant(storage, repo, token)
    if not body.comment.strip():
        raise errors.BadRequest("Invalid comment: it is empty")
    event = storage.discussions.add_event(ref, _num(num), "comment", token.user, comment_data(body.comment))
    return {"newMessage": event_json(event)}


@router.post(DISCUSSION + "/title")
def rename(repo: ApiRepo, num: str, body: TitleBody, token: CurrentToken, storage: Storage) -> dict:
    """Change the title (author or writers)."""
    ref, token, discussion = _moderated(storage, repo, num, token)
    title = body.title.strip()
    if not 3 <= len(title) <= 200:
        raise errors.BadRequest("Invalid title: between 3 and 200 characters")
    data = {"from": discussion.title, "to": title}
    event = storage.discussions.add_event(ref, discussion.num, "title-change", token.user, data, title=title)
    return {"newTitle": event_json(event)}


@router.post(DISCUSSION + "/status")
def change_status(repo: ApiRepo, num: str, body: StatusBody, token: CurrentToken, storage: Storage) -> dict:
    """Close or reopen (author or writers)."""
    ref, token, discussion = _moderated(storage, repo, num, token)
    if body.status not in ("open", "closed"):
        raise errors.BadRequest(f"Invalid status {body.status!r}: expected 'open' or 'closed'")
    if discussion.status == "merged":
        raise errors.BadRequest("This pull request is merged: its status cannot change")
    if body.comment and body.comment.strip():
        storage.discussions.add_event(ref, discussion.num, "comment", token.user, comment_data(body.comment))
    event = storage.discussions.add_event(
        ref, discussion.num, "status-change", token.user, {"status": body.status}, status=body.status
    )
    return {"newStatus": event_json(event)}


@router.post(DISCUSSION + "/merge")
def merge(repo: ApiRepo, num: str, token: CurrentToken, storage: Storage, body: MergeBody | None = None) -> dict:
    """Merge a pull request into its target branch (writers only); only the reviewed commit when the body
    names it (``expected_head`` or ``parent``: 409 when the pull request moved since)."""
    ref, token = participant(storage, repo, token)
    if not is_writer(storage, ref, token):
        raise errors.Forbidden(f"You don't have the rights to merge pull requests of {ref.id}")
    discussion = storage.discussions.get(ref, _num(num))
    body = body or MergeBody()
    head = reviewed_head(expected_head=body.expected_head, parent=body.parent)
    sha = merge_pull_request(storage, ref, discussion, token.user, body.comment or "", expected_head=head)
    return {"mergeCommitId": sha}


@router.post(DISCUSSION + "/comment/{comment_id:seg}/edit")
def edit_comment(
    repo: ApiRepo, num: str, comment_id: str, body: EditCommentBody, token: CurrentToken, storage: Storage
) -> dict:
    """Edit one's own comment."""
    ref, token = participant(storage, repo, token)
    event = storage.discussions.edit_comment(ref, _num(num), comment_id, editor=token.user, content=body.content)
    return {"updatedComment": event_json(event)}


@router.post(DISCUSSION + "/comment/{comment_id:seg}/hide")
def hide_comment(repo: ApiRepo, num: str, comment_id: str, token: CurrentToken, storage: Storage) -> dict:
    """Hide a comment (writers of the repo)."""
    ref, token = participant(storage, repo, token)
    if not is_writer(storage, ref, token):
        raise errors.Forbidden("Only the repo's writers may hide comments")
    event = storage.discussions.edit_comment(ref, _num(num), comment_id, editor=token.user, content=None)
    return {"updatedComment": event_json(event)}
