"""Pull request pages: the list of a repo's discussions, a PR with its diff, and the writers' merge button.

The merge form is protected against cross-site requests three ways: the session cookie is
``SameSite=Strict``, the post must come from the hub's own origin, and it carries a signed token bound to
the session, the repo, the pull request and the head commit the page showed: the button merges that commit
or nothing (the PR's author cannot slip a push in between review and merge).
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .. import errors
from ..api.deps import is_writer, may_download
from ..api.pulls import merge_pull_request, reviewed_head
from ..storage import HubStorage, RepoRef
from .pages import COOKIE, _same_origin, _storage, diffs, page, remote_code, render, viewer, visible_repo

router = APIRouter(include_in_schema=False)


def _csrf_message(request: Request, repo_id: str, num: int, head: str) -> str:
    """What the merge form's token signs: the session, the pull request and the head its page showed."""
    return f"merge:{request.cookies.get(COOKIE, '')}:{repo_id}:{num}:{head}"


def _new_code_references(storage: HubStorage, ref: RepoRef, base: str, head: str) -> tuple[list[dict], list[str]]:
    """The classes ``trust_remote_code`` would import at the PR's head and not at its base (``auto_map`` and
    ``custom_pipelines`` of every config file, other repos' code included), and the config files too large to
    read at the head that were readable at the base."""
    before, before_unreadable = remote_code(storage, ref, base)
    after, after_unreadable = remote_code(storage, ref, head)
    return [r for r in after if r not in before], [f for f in after_unreadable if f not in before_unreadable]


@router.get("/{namespace:seg}/{name:seg}/discussions", response_class=HTMLResponse)
@page
def discussions_page(request: Request, namespace: str, name: str) -> HTMLResponse:
    """The repo's discussions and pull requests, newest first."""
    storage = _storage(request)
    ref = visible_repo(request, namespace, name)
    found = storage.discussions.list(ref)
    return render(request, "discussions.html", repo=ref, discussions=found, title=f"Discussions · {ref.id}")


@router.get("/{namespace:seg}/{name:seg}/discussions/{num:seg}", response_class=HTMLResponse)
@page
def discussion_page(request: Request, namespace: str, name: str, num: str, merged: str = "") -> HTMLResponse:
    """A discussion; for a pull request its diff against the target branch and, for writers, a merge button."""
    storage = _storage(request)
    ref = visible_repo(request, namespace, name)
    if not num.isdigit():
        raise errors.NotFound(f"Discussion {num!r} not found")
    discussion = storage.discussions.get(ref, int(num))
    context: dict = {"changes": [], "conflicts": [], "can_merge": False, "csrf": "", "code_changes": []}
    context.update(code_refs=[], refs_unreadable=[])
    if discussion.is_pr:
        target = discussion.target_branch or "main"
        head = storage.repos.resolve(ref, discussion.git_ref)
        base = storage.repos.resolve(ref, target) if discussion.status != "merged" else None
        context["gated"] = not may_download(storage, ref, viewer(request))
        if base is not None and not context["gated"]:
            context["changes"] = diffs(storage, ref, base, head)
            context["conflicts"] = storage.refs.conflicts(ref, discussion.git_ref, target)
        user = viewer(request)
        writer = is_writer(storage, ref, user)
        context["can_merge"] = discussion.status == "open" and writer and not context["conflicts"]
        if context["can_merge"]:
            context["csrf"] = storage.sign(_csrf_message(request, ref.id, discussion.num, head))
        context.update(head=head, base=base, target=target)
        context["code_changes"] = [c for c in context["changes"] if c["path"].endswith(".py")]
        if base is not None and not context["gated"]:
            context["code_refs"], context["refs_unreadable"] = _new_code_references(storage, ref, base, head)
    return render(
        request,
        "discussion.html",
        repo=ref,
        discussion=discussion,
        merged=bool(merged),
        title=f"#{discussion.num} {discussion.title} · {ref.id}",
        **context,
    )


@router.post("/{namespace:seg}/{name:seg}/discussions/{num:seg}/merge")
@page
def merge_form(
    request: Request, namespace: str, name: str, num: str, csrf: str = Form(""), head: str = Form("")
) -> Response:
    """Merge the head a pull request's page showed (writers only, same-origin, a form token signing that head);
    409 when the pull request moved since."""
    storage = _storage(request)
    ref = visible_repo(request, namespace, name)
    user = viewer(request)
    if not num.isdigit():
        raise errors.NotFound(f"Discussion {num!r} not found")
    if not _same_origin(request) or not storage.signer.check(_csrf_message(request, ref.id, int(num), head), csrf):
        return render(request, "error.html", status=403, message="Cross-site or expired merge form refused.")
    if not is_writer(storage, ref, user):
        return render(request, "error.html", status=403, message="Only the repo's writers may merge.")
    assert user is not None
    discussion = storage.discussions.get(ref, int(num))
    try:
        merge_pull_request(storage, ref, discussion, user.user, expected_head=reviewed_head(head=head))
    except errors.Conflict as exc:
        return render(request, "error.html", status=409, message=exc.message, title="Not merged", heading="Not merged")
    return RedirectResponse(f"/{ref.namespace}/{ref.name}/discussions/{discussion.num}?merged=1", status_code=303)
