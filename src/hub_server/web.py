"""Server-rendered pages: repo list, repo page, commit history, files, diffs and scan results."""

from __future__ import annotations

import functools
import json
import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import jinja2
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_for_filename
from pygments.util import ClassNotFound
from starlette.concurrency import run_in_threadpool

from . import errors
from .storage import RepoRef, TokenInfo

COOKIE = "hub_session"
COMMITS_PER_PAGE = 30
MAX_BLOB_BYTES = 512 * 1024
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
_HERE = Path(__file__).parent

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
)
_templates.filters["q"] = lambda value: quote(str(value), safe="")
_templates.filters["qpath"] = lambda value: quote(str(value), safe="/")
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_pygments_css = HtmlFormatter().get_style_defs(".highlight")


def _front_matter_split(text: str) -> tuple[str, str]:
    """Split a model card into its YAML header and Markdown body."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
    return (match.group(1), text[match.end() :]) if match else ("", text)


def remote_code_entries(config: dict, repo_id: str) -> list[dict]:
    """What `trust_remote_code=True` would run: one row per `auto_map` class, cross-repo references marked."""
    rows = []
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    if not isinstance(auto_map, dict):
        return rows
    for auto_class, references in auto_map.items():
        for reference in references if isinstance(references, list) else [references]:
            if not isinstance(reference, str) or not reference:
                continue
            repo, _, target = reference.rpartition("--")
            module, _, class_name = target.rpartition(".")
            rows.append(
                {
                    "auto_class": auto_class,
                    "repo": repo or repo_id,
                    "external": bool(repo) and repo != repo_id,
                    "linkable": not repo or bool(_REPO_ID.fullmatch(repo)),
                    "file": module.replace(".", "/") + ".py",
                    "class_name": class_name,
                }
            )
    return rows


def _highlight(path: str, text: str) -> str | None:
    try:
        lexer = get_lexer_for_filename(path, stripnl=False)
    except ClassNotFound:
        return None
    return highlight(text, lexer, HtmlFormatter(linenos="table", cssclass="highlight"))


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


_templates.filters["size"] = _human_size


def add_routes(app: FastAPI, hub) -> None:
    """Register the HTML pages on `app`; they follow the API's access rules (private repos are 404 to others)."""
    storage = hub.storage

    def viewer(request: Request) -> TokenInfo | None:
        token = request.cookies.get(COOKIE)
        return storage.token_info(token) if token else None

    def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
        context.setdefault("title", "Hub")
        html = _templates.get_template(template).render(
            viewer=viewer(request), request_path=request.url.path, **context
        )
        return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": _CSP})

    def page(handler: Callable) -> Callable:
        """Run a page handler in a thread; hub errors become an HTML error page with the right status."""

        @functools.wraps(handler)
        async def wrapper(request: Request, **kwargs):
            try:
                return await run_in_threadpool(handler, request, **kwargs)
            except errors.HubError as exc:
                status = 404 if exc.status in (401, 403, 404) else exc.status
                return render(request, "error.html", status=status, message=exc.message, title="Not found")

        return wrapper

    def visible_repo(request: Request, namespace: str, name: str) -> RepoRef:
        try:
            ref = RepoRef.parse("model", f"{namespace}/{name}")
        except errors.HubError:
            raise errors.RepoNotFound(f"Repository {namespace}/{name} not found") from None
        hub.can_read(ref, viewer(request))
        return ref

    def repo_context(ref: RepoRef, rev: str) -> dict:
        sha = storage.resolve(ref, rev)
        refs = storage.list_refs(ref)
        return {"repo": ref, "rev": rev, "sha": sha, "refs": refs, "meta": storage.repo_meta(ref)}

    def read_json(ref: RepoRef, sha: str, path: str) -> dict:
        try:
            return json.loads(storage.read_file(ref, sha, path))
        except (errors.HubError, ValueError, UnicodeDecodeError):
            return {}

    def home(request: Request, search: str = "") -> HTMLResponse:
        who = viewer(request)
        repos = [
            meta
            for meta in storage.list_repos("model")
            if (not meta.private or (who is not None and who.user == meta.owner))
            and search.lower() in meta.ref.id.lower()
        ]
        return render(request, "index.html", repos=repos, search=search, title="Models")

    def repo_page(request: Request, namespace: str, name: str, rev: str = "main", path: str = "") -> HTMLResponse:
        ref = visible_repo(request, namespace, name)
        ctx = repo_context(ref, rev)
        _, entries = storage.tree(ref, ctx["sha"], path)
        files = [
            {"entry": e, "scan": storage.scan_status(e) if e.type == "file" else None}
            for e in sorted(entries, key=lambda e: (e.type != "directory", e.path))
        ]
        all_files = [e.path for e in storage.list_files(ref, ctx["sha"])[1]]
        config = read_json(ref, ctx["sha"], "config.json")
        code = remote_code_entries(config, ref.id)
        card = ""
        if not path and "README.md" in all_files:
            _, body = _front_matter_split(storage.read_file(ref, ctx["sha"], "README.md").decode("utf-8", "replace"))
            card = _markdown.render(body)
        auto_class = next(
            (r["auto_class"] for r in code if r["auto_class"].startswith("AutoModelFor")),
            "AutoModel" if code else None,
        )
        last = storage.commit_info(ref, ctx["sha"])
        return render(
            request,
            "repo.html",
            **ctx,
            path=path,
            parent=posixpath.dirname(path) if path else None,
            files=files,
            code=code,
            code_files=[p for p in all_files if p.endswith(".py")],
            card=card,
            auto_class=auto_class,
            last_commit=last,
            title=ref.id,
        )

    def tree_page(request: Request, namespace: str, name: str, revision: str, path: str = "") -> HTMLResponse:
        return repo_page(request, namespace, name, rev=revision, path=path.strip("/"))

    def commits_page(request: Request, namespace: str, name: str, revision: str, p: int = 0) -> HTMLResponse:
        ref = visible_repo(request, namespace, name)
        ctx = repo_context(ref, revision)
        page_no = max(0, p)
        commits, total = storage.list_commits(ref, ctx["sha"], page_no * COMMITS_PER_PAGE, COMMITS_PER_PAGE)
        config = read_json(ref, ctx["sha"], "config.json")
        code = remote_code_entries(config, ref.id)
        auto_class = next((r["auto_class"] for r in code if r["auto_class"].startswith("AutoModelFor")), "AutoModel")
        return render(
            request,
            "commits.html",
            **ctx,
            commits=commits,
            page=page_no,
            pages=max(1, -(-total // COMMITS_PER_PAGE)),
            total=total,
            auto_class=auto_class,
            title=f"Commits · {ref.id}",
        )

    def blob_page(request: Request, namespace: str, name: str, revision: str, path: str) -> HTMLResponse:
        ref = visible_repo(request, namespace, name)
        ctx = repo_context(ref, revision)
        _, entry = storage.stat(ref, ctx["sha"], path)
        if entry.type != "file":
            return tree_page(request, namespace, name, revision, path)
        body = None
        if entry.lfs is None and entry.size <= MAX_BLOB_BYTES:
            data = storage.read_file(ref, ctx["sha"], path)
            if b"\0" not in data:
                text = data.decode("utf-8", "replace")
                body = {"html": _highlight(path, text), "text": text}
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

    def diffs(ref: RepoRef, base: str | None, head: str) -> list[dict]:
        if base is None:  # the first commit: everything is added
            changes = [{"path": e.path, "status": "added"} for e in storage.list_files(ref, head)[1]]
        else:
            changes = [{"path": c.path, "status": c.status} for c in storage.diff(ref, base, head)]
        for change in changes:
            if base is None:
                _, entry = storage.stat(ref, head, change["path"])
                text = None
                if entry.lfs is None and entry.size <= MAX_BLOB_BYTES:
                    data = storage.read_file(ref, head, change["path"])
                    if b"\0" not in data:
                        lines = data.decode("utf-8", "replace").splitlines()
                        header = f"--- /dev/null\n+++ b/{change['path']}\n@@ -0,0 +1,{len(lines)} @@\n"
                        text = header + "".join(f"+{line}\n" for line in lines)
            else:
                text = storage.unified_diff(ref, base, head, change["path"])
            change["lines"] = _diff_lines(text) if text is not None else None
        return changes

    def commit_page(request: Request, namespace: str, name: str, sha: str) -> HTMLResponse:
        ref = visible_repo(request, namespace, name)
        info = storage.commit_info(ref, sha)
        parent = info.parents[0] if info.parents else None
        return render(
            request,
            "commit.html",
            repo=ref,
            commit=info,
            parent=parent,
            changes=diffs(ref, parent, info.id),
            title=f"{info.title} · {ref.id}",
        )

    def compare_page(request: Request, namespace: str, name: str, spec: str) -> HTMLResponse:
        ref = visible_repo(request, namespace, name)
        if "..." not in spec:
            raise errors.BadRequest("Compare as <base>...<head>")
        base_rev, head_rev = spec.split("...", 1)
        base, head = storage.resolve(ref, base_rev), storage.resolve(ref, head_rev)
        changes = diffs(ref, base, head)
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

    def login_form(request: Request, error: str = "") -> HTMLResponse:
        return render(request, "login.html", error=error, title="Log in")

    async def login(request: Request, token: str = Form("")) -> Response:
        info = storage.token_info(token.strip()) if token.strip() else None
        if info is None:
            return render(request, "login.html", status=401, error="Invalid token.", title="Log in")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", max_age=30 * 24 * 3600)
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def static(request: Request, name: str) -> Response:
        media = {"hub.css": "text/css", "hub.js": "text/javascript"}.get(name)
        if media is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        text = (_HERE / "static" / name).read_text("utf-8")
        return Response(text + (_pygments_css if name == "hub.css" else ""), media_type=media)

    routes = [
        ("/", page(home)),
        ("/login", login_form),
        ("/-/static/{name}", static),
        ("/{namespace}/{name}", page(repo_page)),
        ("/{namespace}/{name}/tree/{revision}", page(tree_page)),
        ("/{namespace}/{name}/tree/{revision}/{path:path}", page(tree_page)),
        ("/{namespace}/{name}/commits/{revision}", page(commits_page)),
        ("/{namespace}/{name}/blob/{revision}/{path:path}", page(blob_page)),
        ("/{namespace}/{name}/commit/{sha}", page(commit_page)),
        ("/{namespace}/{name}/compare/{spec}", page(compare_page)),
    ]
    for path, endpoint in routes:
        app.add_api_route(path, endpoint, methods=["GET"], response_class=HTMLResponse, include_in_schema=False)
    app.add_api_route("/login", login, methods=["POST"], include_in_schema=False)
    app.add_api_route("/logout", logout, methods=["POST"], include_in_schema=False)


def _diff_lines(text: str) -> list[tuple[str, str]]:
    """A unified diff as (css class, line) pairs."""
    out = []
    for line in text.splitlines():
        if line.startswith(("+++", "---")):
            kind = "meta"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        out.append((kind, line))
    return out


_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'"
