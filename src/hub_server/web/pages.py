"""Server-rendered pages: repo list, repo page, commit history, files, diffs and scan results.

Pages follow the API's access rules (a private repo is 404 to everyone but its owner). The browser is
identified by a session cookie opened at ``/login`` with a token; the cookie is a revocable session id,
never the token itself.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import posixpath
from collections.abc import Callable

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .. import errors
from ..api.deps import check_download, check_read, may_read_private, parse_ref
from ..api.http import base_url
from ..api.limits import run_limited
from ..storage import HubStorage, RepoRef, TokenInfo
from .cards import config_files, model_card
from .csrf import csrf_token, csrf_valid, is_https, set_csrf_cookie
from .render import (
    CSP,
    STATIC,
    diff_lines,
    highlight_code,
    pygments_css,
    remote_code_entries,
    templates,
)

COOKIE = "hub_session"
SESSION_TTL = dt.timedelta(days=7)
COMMITS_PER_PAGE = 30
MAX_BLOB_BYTES = 512 * 1024

router = APIRouter(include_in_schema=False)


def _storage(request: Request) -> HubStorage:
    return request.app.state.hub.storage


def viewer(request: Request) -> TokenInfo | None:
    """Who the browser is logged in as (None when anonymous or the session ended)."""
    session = request.cookies.get(COOKIE)
    return _storage(request).meta.session_info(session) if session else None


def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    """A page from a template, with the strict content security policy."""
    context.setdefault("title", "Hub")
    csrf, new_nonce = csrf_token(request, _storage(request).signer)
    html = templates.get_template(template).render(
        viewer=viewer(request), request_path=request.url.path, form_csrf=csrf, **context
    )
    response = HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": CSP})
    if new_nonce is not None:
        set_csrf_cookie(response, request, new_nonce)
    return response


def page(handler: Callable) -> Callable:
    """Run a page handler in a thread; hub errors become an HTML error page (401/403 read as 404)."""

    @functools.wraps(handler)
    async def wrapper(request: Request, **kwargs):
        try:
            return await run_limited(request, "pages", handler, request, **kwargs)
        except errors.HubError as exc:
            status = 404 if exc.status in (401, 403, 404) else exc.status
            return render(request, "error.html", status=status, message=exc.message, title="Not found")

    return wrapper


def visible_repo(request: Request, namespace: str, name: str) -> RepoRef:
    """The model repo named in the URL, when the viewer may see it."""
    return check_read(_storage(request), parse_ref("model", namespace, name), viewer(request))


def downloadable_repo(request: Request, namespace: str, name: str) -> RepoRef:
    """A model repo whose file content the viewer may see (the download rule: gated repos need access)."""
    return check_download(_storage(request), parse_ref("model", namespace, name), viewer(request))


def repo_context(storage: HubStorage, ref: RepoRef, rev: str) -> dict:
    """What every repo page shows in its header."""
    sha = storage.repos.resolve(ref, rev)
    refs = storage.repos.list_refs(ref)
    return {"repo": ref, "rev": rev, "sha": sha, "refs": refs, "meta": storage.meta.get_repo(ref)}


def read_json(storage: HubStorage, ref: RepoRef, sha: str, path: str) -> dict:
    """A JSON file of the repo, or {} when absent or invalid."""
    try:
        return json.loads(storage.read_file(ref, sha, path))
    except (errors.HubError, ValueError, UnicodeDecodeError):
        return {}


def remote_code(storage: HubStorage, ref: RepoRef, sha: str) -> tuple[list[dict], list[str]]:
    """The banner's rows (every class trust_remote_code would import) and the config files too large to read."""
    configs, too_large = config_files(storage, ref, sha)
    return remote_code_entries(configs.get("config.json", {}), ref.id, configs), too_large


def _auto_class(code: list[dict], default: str | None) -> str | None:
    return next((r["auto_class"] for r in code if r["auto_class"].startswith("AutoModelFor")), default)


@router.get("/", response_class=HTMLResponse)
@page
def home(request: Request, search: str = "") -> HTMLResponse:
    """The repo list, with a search box."""
    who, storage = viewer(request), _storage(request)
    repos = [
        meta
        for meta in storage.meta.list_repos("model")
        if (not meta.private or may_read_private(storage, meta.ref, who)) and search.lower() in meta.ref.id.lower()
    ]
    return render(request, "index.html", repos=repos, search=search, title="Models")


def _repo_page(request: Request, namespace: str, name: str, rev: str = "main", path: str = "") -> HTMLResponse:
    storage = _storage(request)
    ref = visible_repo(request, namespace, name)
    ctx = repo_context(storage, ref, rev)
    _, entries = storage.tree(ref, ctx["sha"], path)
    files = [
        {"entry": e, "scan": storage.scan_status(e) if e.type == "file" else None}
        for e in sorted(entries, key=lambda e: (e.type != "directory", e.path))
    ]
    all_files = [e.path for e in storage.list_files(ref, ctx["sha"])[1]]
    code, unreadable = remote_code(storage, ref, ctx["sha"])
    card = model_card(storage, ref, ctx["sha"]) if not path else ""
    return render(
        request,
        "repo.html",
        code_unreadable=unreadable,
        **ctx,
        path=path,
        parent=posixpath.dirname(path) if path else None,
        files=files,
        code=code,
        code_files=[p for p in all_files if p.endswith(".py")],
        card=card,
        auto_class=_auto_class(code, "AutoModel" if code else None),
        last_commit=storage.repos.commit_info(ref, ctx["sha"]),
        title=ref.id,
    )


@router.get("/{namespace:seg}/{name:seg}", response_class=HTMLResponse)
@page
def repo_page(request: Request, namespace: str, name: str) -> HTMLResponse:
    """A repo's model card and files at main."""
    return _repo_page(request, namespace, name)


@router.get("/{namespace:seg}/{name:seg}/tree/{revision:seg}", response_class=HTMLResponse)
@router.get("/{namespace:seg}/{name:seg}/tree/{revision:seg}/{path:rpath}", response_class=HTMLResponse)
@page
def tree_page(request: Request, namespace: str, name: str, revision: str, path: str = "") -> HTMLResponse:
    """A folder at a branch, tag or commit."""
    return _repo_page(request, namespace, name, rev=revision, path=path.strip("/"))


@router.get("/{namespace:seg}/{name:seg}/commits/{revision:seg}", response_class=HTMLResponse)
@page
def commits_page(request: Request, namespace: str, name: str, revision: str, p: int = 0) -> HTMLResponse:
    """The commit history, 30 per page, with copyable SHAs and pinned loading lines."""
    storage = _storage(request)
    ref = visible_repo(request, namespace, name)
    ctx = repo_context(storage, ref, revision)
    page_no = max(0, p)
    commits, total = storage.repos.list_commits(ref, ctx["sha"], page_no * COMMITS_PER_PAGE, COMMITS_PER_PAGE)
    code, _ = remote_code(storage, ref, ctx["sha"])
    return render(
        request,
        "commits.html",
        **ctx,
        commits=commits,
        page=page_no,
        pages=max(1, -(-total // COMMITS_PER_PAGE)),
        total=total,
        auto_class=_auto_class(code, "AutoModel"),
        title=f"Commits · {ref.id}",
    )


@router.get("/{namespace:seg}/{name:seg}/blob/{revision:seg}/{path:rpath}", response_class=HTMLResponse)
@page
def blob_page(request: Request, namespace: str, name: str, revision: str, path: str) -> HTMLResponse:
    """One file, highlighted when it is text."""
    storage = _storage(request)
    ref = downloadable_repo(request, namespace, name)
    ctx = repo_context(storage, ref, revision)
    _, entry = storage.stat(ref, ctx["sha"], path)
    body = None
    if entry.lfs is None and entry.size <= MAX_BLOB_BYTES:
        data = storage.repos.read_blob(ref, entry.oid)
        if b"\0" not in data:
            text = data.decode("utf-8", "replace")
            body = {"html": highlight_code(path, text), "text": text}
    return render(
        request,
        "blob.html",
        **ctx,
        path=path,
        entry=entry,
        scan=storage.scan_status(entry),
        body=body,
        title=f"{path} · {ref.id}",
    )


def _added_file_diff(storage: HubStorage, ref: RepoRef, head: str, path: str) -> str | None:
    _, entry = storage.stat(ref, head, path)
    if entry.lfs is not None or entry.size > MAX_BLOB_BYTES:
        return None
    data = storage.repos.read_blob(ref, entry.oid)
    if b"\0" in data:
        return None
    lines = data.decode("utf-8", "replace").splitlines()
    return f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{line}\n" for line in lines)


def diffs(storage: HubStorage, ref: RepoRef, base: str | None, head: str) -> list[dict]:
    """Changed files between two commits, each with its diff lines (None for binary or large files)."""
    if base is None:  # the first commit: everything is added
        changes = [{"path": e.path, "status": "added"} for e in storage.list_files(ref, head)[1]]
    else:
        changes = [{"path": c.path, "status": c.status} for c in storage.repos.diff(ref, base, head)]
    for change in changes:
        if base is None:
            text = _added_file_diff(storage, ref, head, change["path"])
        else:
            text = storage.unified_diff(ref, base, head, change["path"])
        change["lines"] = diff_lines(text) if text is not None else None
    return changes


@router.get("/{namespace:seg}/{name:seg}/commit/{sha:seg}", response_class=HTMLResponse)
@page
def commit_page(request: Request, namespace: str, name: str, sha: str) -> HTMLResponse:
    """One commit and its diff."""
    storage = _storage(request)
    ref = downloadable_repo(request, namespace, name)
    info = storage.repos.commit_info(ref, sha)
    parent = info.parents[0] if info.parents else None
    changes = diffs(storage, ref, parent, info.id)
    return render(
        request, "commit.html", repo=ref, commit=info, parent=parent, changes=changes, title=f"{info.title} · {ref.id}"
    )


@router.get("/{namespace:seg}/{name:seg}/compare/{spec:seg}", response_class=HTMLResponse)
@page
def compare_page(request: Request, namespace: str, name: str, spec: str) -> HTMLResponse:
    """``<base>...<head>``: the review to do before moving a pin, with a banner when code changed."""
    storage = _storage(request)
    ref = downloadable_repo(request, namespace, name)
    if "..." not in spec:
        raise errors.BadRequest("Compare as <base>...<head>")
    base_rev, head_rev = spec.split("...", 1)
    base, head = storage.repos.resolve(ref, base_rev), storage.repos.resolve(ref, head_rev)
    changes = diffs(storage, ref, base, head)
    return render(
        request,
        "compare.html",
        repo=ref,
        base_rev=base_rev,
        head_rev=head_rev,
        base=base,
        head=head,
        changes=changes,
        code_changes=[c for c in changes if c["path"].endswith(".py")],
        title=f"Compare · {ref.id}",
    )


@router.get("/-/static/{name:seg}")
def static(name: str) -> Response:
    """The pages' stylesheet and script."""
    media = {"hub.css": "text/css", "hub.js": "text/javascript"}.get(name)
    if media is None:
        return Response("Not found", status_code=404, media_type="text/plain")
    text = (STATIC / name).read_text("utf-8")
    return Response(text + (pygments_css if name == "hub.css" else ""), media_type=media)


# --------------------------------------------------------------------------- sessions


def _same_origin(request: Request) -> bool:
    """Whether a form post comes from the hub's own pages (login CSRF protection)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin is None or origin == base_url(request)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, error: str = "") -> HTMLResponse:
    """The login form (paste a token)."""
    return render(request, "login.html", error=error, title="Log in")


@router.post("/login")
def login(request: Request, token: str = Form(""), csrf: str = Form("")) -> Response:
    """Open a session for the token's user; the cookie holds the session id, not the token."""
    if not _same_origin(request) or not csrf_valid(request, _storage(request).signer, csrf):
        return render(request, "login.html", status=403, error="Cross-site login refused.", title="Log in")
    meta = _storage(request).meta
    info = meta.token_info(token.strip()) if token.strip() else None
    if info is None:
        return render(request, "login.html", status=401, error="Invalid token.", title="Log in")
    session = meta.create_session(info, ttl=SESSION_TTL)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        session,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        max_age=int(SESSION_TTL.total_seconds()),
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    """End the session (server-side too)."""
    if not _same_origin(request) or not csrf_valid(request, _storage(request).signer, csrf):
        return Response("Cross-site logout refused", status_code=403, media_type="text/plain")
    session = request.cookies.get(COOKIE)
    if session:
        _storage(request).meta.delete_session(session)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE)
    return response
