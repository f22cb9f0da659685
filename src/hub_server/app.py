"""HTTP routes of the hub: the subset of the Hugging Face Hub API that its clients use."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import hashlib
import json
import mimetypes
import re
from collections.abc import Iterator
from urllib.parse import quote, unquote, urlencode

import anyio
from fastapi import FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from . import errors, gitserve, web
from .ndjson import parse_commit_body
from .storage import (
    HubStorage,
    RepoRef,
    StagedFile,
    TokenInfo,
    TreeEntry,
    format_date,
    validate_path,
)

JSON_LIMIT = 16 * 1024 * 1024
SPOOL_CHUNK = 4 * 1024 * 1024
READ_CHUNK = 4 * 1024 * 1024
LFS_JSON = "application/vnd.git-lfs+json"


@dataclasses.dataclass
class Settings:
    """Server options."""

    lfs_mode: str = "auto"  # "auto": LFS for hf_hub/0.x clients only; "always"; "never"
    max_commit_bytes: int = 8 * 1024**3
    max_lfs_bytes: int = 50 * 1024**3
    tree_page_size: int = 1000
    commits_page_size: int = 50


class RepoTypePlural(str, enum.Enum):
    """Repo types as they appear in API paths."""

    models = "models"
    datasets = "datasets"
    spaces = "spaces"


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class CreateRepoBody(_Body):
    """Body of ``POST /api/repos/create``."""

    name: str
    organization: str | None = None
    type: str | None = None
    private: bool | None = None
    visibility: str | None = None


class DeleteRepoBody(_Body):
    """Body of ``DELETE /api/repos/delete``."""

    name: str
    organization: str | None = None
    type: str | None = None


class SettingsBody(_Body):
    """Body of ``PUT /api/{type}/{ns}/{name}/settings``."""

    private: bool | None = None
    visibility: str | None = None


class BranchBody(_Body):
    """Body of ``POST …/branch/{branch}``."""

    startingPoint: str | None = None


class TagBody(_Body):
    """Body of ``POST …/tag/{rev}``."""

    tag: str
    message: str | None = None


class ValidateYamlBody(_Body):
    """Body of ``POST /api/validate-yaml``."""

    content: str = ""
    repoType: str | None = None


class PreuploadFile(_Body):
    """One file in a preupload request."""

    path: str
    sample: str = ""
    size: int = 0


class PreuploadBody(_Body):
    """Body of ``POST …/preupload/{rev}``."""

    files: list[PreuploadFile]
    gitIgnore: str | None = None


class LfsObject(_Body):
    """One object in an LFS batch request."""

    oid: str
    size: int


class LfsBatchBody(_Body):
    """Body of the LFS batch API."""

    operation: str
    objects: list[LfsObject]
    transfers: list[str] | None = None


class LfsVerifyBody(_Body):
    """Body of the LFS verify call."""

    oid: str
    size: int


# --------------------------------------------------------------------------- helpers


_SEGMENT = r"[^/]+"
_COMMIT_ROUTE = re.compile(rf"/api/(models|datasets|spaces)/{_SEGMENT}/{_SEGMENT}/commit/.+")
_UPLOAD_PACK_ROUTE = re.compile(rf"(/datasets|/spaces)?/{_SEGMENT}/{_SEGMENT}/git-upload-pack")
_LFS_PUT_ROUTE = re.compile(rf"(/datasets|/spaces)?/{_SEGMENT}/{_SEGMENT}/info/lfs/objects/[0-9a-f]{{64}}")
# Types a browser would render or execute: served as plain text, so repo files never run on the hub's origin.
_ACTIVE_TYPES = ("text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/xml",
                 "text/javascript", "application/javascript")  # fmt: skip


def _download_message(storage: HubStorage, ref: RepoRef, oid: str, size: int) -> str:
    """What an LFS download ticket signs; it includes the repo's visibility, so going private revokes tickets."""
    visibility = "private" if storage.repo_meta(ref).private else "public"
    return f"{ref.type}/{ref.id}/{oid}/{size}/download/{visibility}"


def _safe_media_type(path: str) -> str:
    """The content type to serve a repo file with."""
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return "text/plain" if media_type in _ACTIVE_TYPES else media_type


def _base_url(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


def _raw_segments(request: Request) -> list[str]:
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    return [unquote(s) for s in raw.decode("latin-1").split("?", 1)[0].split("/")]


def _repo_type(plural: str) -> str:
    return {"models": "model", "datasets": "dataset", "spaces": "space"}[plural]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _paginate_link(request: Request, **params: object) -> str:
    query = dict(request.query_params)
    query.update({k: str(v) for k, v in params.items()})
    return f'<{_base_url(request)}{request.url.path}?{urlencode(query)}>; rel="next"'


def _header_value(text: str) -> str:
    return " ".join(text.split()).encode("latin-1", "replace").decode("latin-1")[:500]


class Hub:
    """The hub's request handlers, bound to one storage and one set of settings."""

    def __init__(self, storage: HubStorage, settings: Settings) -> None:
        self.storage = storage
        self.settings = settings
        self.stats: dict[str, int] = {"lfs_uploads": 0, "commits": 0}

    # ----------------------------------------------------------------- auth

    def token(self, request: Request) -> TokenInfo | None:
        """The caller's token (Bearer, or Basic with the token as password); 401 when invalid."""
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                value = base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
            except (binascii.Error, ValueError, UnicodeDecodeError):
                raise errors.Unauthorized("Invalid credentials in Authorization header") from None
        elif scheme.lower() != "bearer":
            raise errors.Unauthorized("Invalid credentials in Authorization header")
        info = self.storage.token_info(value) if value else None
        if info is None:
            raise errors.Unauthorized("Invalid credentials in Authorization header")
        return info

    def can_read(self, ref: RepoRef, token: TokenInfo | None) -> None:
        """Raise RepoNotFound unless the repo exists and the caller may see it."""
        meta = self.storage.repo_meta(ref)
        if meta.private and (token is None or token.user != meta.owner):
            raise errors.RepoNotFound(f"Repository {ref.id} not found")

    def can_write(self, ref: RepoRef, token: TokenInfo | None) -> None:
        """Raise unless the caller holds a write token of the repo's namespace owner."""
        if token is None:
            if self.storage.repo_meta(ref).private:
                raise errors.RepoNotFound(f"Repository {ref.id} not found")
            raise errors.Unauthorized("You must be authenticated (write token) to write to this repo")
        self.can_read(ref, token)
        if token.user != ref.namespace:
            raise errors.Forbidden(f"You don't have the rights to write to {ref.id}")
        if token.role != "write":
            raise errors.Forbidden("This token is read-only")

    def api_repo(self, request: Request) -> tuple[RepoRef, list[str]]:
        """The repo and the remaining path segments of an ``/api/{type}s/{ns}/{name}/…`` request."""
        seg = _raw_segments(request)
        if len(seg) < 5 or seg[2] not in ("models", "datasets", "spaces"):
            raise errors.NotFound("Not found")
        try:
            ref = RepoRef.parse(_repo_type(seg[2]), f"{seg[3]}/{seg[4]}")
        except errors.InvalidRepoId:
            raise errors.RepoNotFound(f"Repository {seg[3]}/{seg[4]} not found") from None
        return ref, seg[5:]

    def file_repo(self, request: Request) -> tuple[RepoRef, list[str]]:
        """The repo and the remaining segments of a ``/[datasets/|spaces/]{ns}/{name}/…`` request."""
        seg = _raw_segments(request)[1:]
        repo_type = "model"
        if seg and seg[0] in ("datasets", "spaces"):
            repo_type = _repo_type(seg[0])
            seg = seg[1:]
        if len(seg) < 2:
            raise errors.NotFound("Not found")
        name = seg[1][: -len(".git")] if seg[1].endswith(".git") else seg[1]
        try:
            ref = RepoRef.parse(repo_type, f"{seg[0]}/{name}")
        except errors.InvalidRepoId:
            raise errors.RepoNotFound(f"Repository {seg[0]}/{name} not found") from None
        return ref, seg[2:]

    def repo_url(self, request: Request, ref: RepoRef) -> str:
        """The absolute URL of a repo, on the request's own host."""
        return f"{_base_url(request)}/{ref.url_prefix}{ref.id}"

    # ----------------------------------------------------------------- JSON shapes

    def entry_json(self, ref: RepoRef, entry: TreeEntry, last_commit: dict | None = None) -> dict:
        """A tree / paths-info entry as the Hub serialises it, plus its scan status."""
        if entry.type == "directory":
            return {"type": "directory", "oid": entry.oid, "size": 0, "path": entry.path}
        out: dict = {"type": "file", "oid": entry.oid, "size": entry.size, "path": entry.path}
        if entry.lfs:
            out["lfs"] = {"oid": entry.lfs.oid, "size": entry.lfs.size, "pointerSize": entry.lfs.pointer_size}
        if last_commit:
            out["lastCommit"] = last_commit
        scan = self.storage.scan_status(entry)
        applicable = scan["status"] != "not-applicable"
        out["securityFileStatus"] = {
            "status": "safe" if scan["status"] in ("safe", "not-applicable") else scan["status"],
            "avScan": {"status": "unscanned", "virusNames": None},
            "pickleImportScan": {"status": scan["status"], "imports": scan["imports"]} if applicable else None,
        }
        return out

    @staticmethod
    def commit_json(info) -> dict:
        """A commit as ``list_repo_commits`` reads it."""
        return {
            "id": info.id,
            "title": info.title,
            "message": info.message,
            "date": format_date(info.date),
            "authors": [{"user": a} for a in info.authors],
        }


def _error_response(exc: errors.HubError, request: Request) -> Response:
    headers = {"X-Error-Code": exc.code or "Error", "X-Error-Message": _header_value(exc.message)}
    headers.update(exc.headers)
    if request.method == "HEAD":
        return Response(status_code=exc.status, headers=headers)
    return JSONResponse({"error": exc.message, **exc.extra}, status_code=exc.status, headers=headers)


class BodyLimitMiddleware:
    """Refuse request bodies over a limit, except on routes that stream their body to disk."""

    def __init__(self, app, limit: int = JSON_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self._streams(scope):
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    response = JSONResponse(
                        {"error": f"Request body too large (limit {self.limit} bytes)"},
                        status_code=413,
                        headers={"X-Error-Code": "PayloadTooLarge"},
                    )
                    return await response(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise errors.PayloadTooLarge(f"Request body too large (limit {self.limit} bytes)")
            return message

        return await self.app(scope, limited_receive, send)

    @staticmethod
    def _streams(scope) -> bool:
        """Routes that stream their bodies to disk under their own limits (matched exactly, not by substring)."""
        path, method = scope.get("path", ""), scope.get("method")
        return bool(
            (method == "POST" and _COMMIT_ROUTE.fullmatch(path))
            or (method == "POST" and _UPLOAD_PACK_ROUTE.fullmatch(path))
            or (method == "PUT" and _LFS_PUT_ROUTE.fullmatch(path))
        )


async def spool_body(
    request: Request, storage: HubStorage, limit: int, suffix: str = ".body", *, hashed: bool = True
) -> StagedFile:
    """Stream a request body to a temporary file (hashing it unless ``hashed`` is false); PayloadTooLarge past
    ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise errors.PayloadTooLarge(f"Request body too large ({declared} > {limit} bytes)")
        except ValueError:
            raise errors.BadRequest("Invalid Content-Length") from None
    path = storage.new_temp_path(suffix)
    digest = hashlib.sha256()
    size = 0
    fh = await anyio.to_thread.run_sync(open, path, "wb")

    def flush(data: bytearray) -> None:
        if hashed:
            digest.update(data)
        fh.write(data)

    try:
        buffer = bytearray()
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise errors.PayloadTooLarge(f"Request body too large (limit {limit} bytes)")
            buffer += chunk
            if len(buffer) >= SPOOL_CHUNK:
                data, buffer = buffer, bytearray()
                await anyio.to_thread.run_sync(flush, data)
        if buffer:
            await anyio.to_thread.run_sync(flush, buffer)
        await anyio.to_thread.run_sync(fh.flush)
    except BaseException:
        fh.close()
        path.unlink(missing_ok=True)
        raise
    fh.close()
    return StagedFile(path=path, sha256=digest.hexdigest() if hashed else "", size=size)


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range as (start, end inclusive); None when absent or not parseable."""
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if start >= size or (last and int(last) < start):
            raise errors.RangeNotSatisfiable(
                f"Range {header} not satisfiable (size {size})", headers={"Content-Range": f"bytes */{size}"}
            )
    else:
        suffix = int(last)
        if suffix == 0:
            raise errors.RangeNotSatisfiable(
                f"Range {header} not satisfiable (size {size})", headers={"Content-Range": f"bytes */{size}"}
            )
        start, end = max(size - suffix, 0), size - 1
    return start, end


def create_app(storage: HubStorage, settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI application serving ``storage``."""
    settings = settings or Settings()
    hub = Hub(storage, settings)
    app = FastAPI(title="Hub-compatible server", version="1.0", docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.hub = hub
    app.add_middleware(BodyLimitMiddleware)

    @app.exception_handler(errors.HubError)
    async def _hub_error(request: Request, exc: errors.HubError) -> Response:
        return _error_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return _error_response(errors.BadRequest(f"Invalid request: {detail}"[:1000]), request)

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> Response:
        import logging

        logging.getLogger("hub_server").exception("Internal error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": f"Internal server error: {type(exc).__name__}"},
            status_code=500,
            headers={"X-Error-Code": "InternalError"},
        )

    # ----------------------------------------------------------------- users

    @app.get("/api/whoami-v2")
    def whoami(request: Request) -> dict:
        """The token owner's identity (used by ``hf auth login`` and ``whoami``)."""
        token = hub.token(request)
        if token is None:
            raise errors.Unauthorized("Invalid user token")
        return {
            "type": "user",
            "id": token.user,
            "name": token.user,
            "fullname": token.user,
            "email": None,
            "emailVerified": False,
            "canPay": False,
            "isPro": False,
            "periodEnd": None,
            "avatarUrl": "",
            "orgs": [],
            "auth": {
                "type": "access_token",
                "accessToken": {"displayName": token.display_name, "role": token.role},
            },
        }

    # ----------------------------------------------------------------- repo lifecycle

    @app.post("/api/repos/create")
    def create_repo(request: Request, body: CreateRepoBody) -> Response:
        """Create a repo (409 with its ``url`` when it exists)."""
        token = hub.token(request)
        if token is None:
            raise errors.Unauthorized("You must be authenticated to create a repo")
        namespace, name = body.organization, body.name
        if "/" in name and namespace is None:
            namespace, _, name = name.partition("/")
        namespace = namespace or token.user
        ref = RepoRef.parse(body.type or "model", f"{namespace}/{name}")
        if namespace != token.user:
            raise errors.Forbidden(f"You don't have the rights to create a repo under the namespace {namespace!r}")
        if token.role != "write":
            raise errors.Forbidden("This token is read-only")
        private = body.private if body.private is not None else body.visibility == "private"
        url = hub.repo_url(request, ref)
        try:
            storage.create_repo(ref, owner=token.user, private=bool(private))
        except errors.Conflict as exc:
            raise errors.Conflict(exc.message, extra={"url": url}) from None
        return JSONResponse({"url": url, "name": ref.id, "id": ref.id})

    @app.delete("/api/repos/delete")
    def delete_repo(request: Request, body: DeleteRepoBody) -> dict:
        """Delete a repo."""
        namespace, name = body.organization, body.name
        token = hub.token(request)
        if "/" in name and namespace is None:
            namespace, _, name = name.partition("/")
        if namespace is None:
            if token is None:
                raise errors.Unauthorized("You must be authenticated to delete a repo")
            namespace = token.user
        try:
            ref = RepoRef.parse(body.type or "model", f"{namespace}/{name}")
        except errors.InvalidRepoId:
            raise errors.RepoNotFound(f"Repository {namespace}/{name} not found") from None
        hub.can_write(ref, token)
        storage.delete_repo(ref)
        return {}

    @app.put("/api/{repo_type}/{namespace}/{name}/settings")
    def repo_settings(
        request: Request, repo_type: RepoTypePlural, namespace: str, name: str, body: SettingsBody
    ) -> dict:
        """Change a repo's visibility."""
        ref, _ = hub.api_repo(request)
        hub.can_write(ref, hub.token(request))
        private = body.private
        if private is None and body.visibility is not None:
            if body.visibility not in ("private", "public"):
                raise errors.BadRequest(f"Invalid visibility {body.visibility!r}")
            private = body.visibility == "private"
        meta = storage.update_repo(ref, private=private)
        return {"private": meta.private}

    @app.get("/api/{repo_type}")
    def list_repos(
        request: Request, repo_type: RepoTypePlural, author: str | None = None, search: str | None = None
    ) -> list[dict]:
        """Repos visible to the caller, optionally filtered by author and a name substring."""
        token = hub.token(request)
        out = []
        kind = _repo_type(repo_type.value)
        if author is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,96}", author):
            return []
        for meta in storage.list_repos(kind, author):
            if meta.private and (token is None or token.user != meta.owner):
                continue
            if search and search.lower() not in meta.ref.id.lower():
                continue
            try:
                commit = storage.commit_info(meta.ref, "main")
            except errors.HubError:
                continue
            out.append(
                {
                    "id": meta.ref.id,
                    "modelId": meta.ref.id,
                    "author": meta.ref.namespace,
                    "sha": commit.id,
                    "private": meta.private,
                    "lastModified": format_date(commit.date),
                    "createdAt": format_date(meta.created_at),
                    "tags": [],
                    "downloads": 0,
                    "likes": 0,
                }
            )
        return out

    # ----------------------------------------------------------------- repo info

    def _repo_info(request: Request, rev: str) -> dict:
        ref, _ = hub.api_repo(request)
        hub.can_read(ref, hub.token(request))
        meta = storage.repo_meta(ref)
        sha, files = storage.list_files(ref, rev)
        commit = storage.commit_info(ref, sha)
        siblings = []
        for entry in files:
            sibling: dict = {"rfilename": entry.path, "size": entry.size, "blobId": entry.oid}
            if entry.lfs:
                sibling["lfs"] = {
                    "size": entry.lfs.size,
                    "sha256": entry.lfs.oid,
                    "pointerSize": entry.lfs.pointer_size,
                }
            siblings.append(sibling)
        info = {
            "_id": hashlib.sha1(f"{ref.type}/{ref.id}".encode()).hexdigest()[:24],
            "id": ref.id,
            "author": ref.namespace,
            "sha": sha,
            "lastModified": format_date(commit.date),
            "createdAt": format_date(meta.created_at),
            "private": meta.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(e.size for e in files),
        }
        if ref.type == "model":
            info["modelId"] = ref.id
            config = next((e for e in files if e.path == "config.json" and e.size < 1_000_000), None)
            if config is not None:
                try:
                    data = json.loads(storage.read_file(ref, sha, "config.json"))
                    info["config"] = {
                        k: data[k]
                        for k in ("architectures", "model_type", "auto_map")
                        if isinstance(data, dict) and k in data
                    }
                except (ValueError, UnicodeDecodeError):
                    pass
        return info

    @app.get("/api/{repo_type}/{namespace}/{name}")
    def repo_info(request: Request, repo_type: RepoTypePlural, namespace: str, name: str) -> dict:
        """A repo's info at ``main``: sha, siblings, privacy, dates."""
        return _repo_info(request, "main")

    @app.get("/api/{repo_type}/{namespace}/{name}/revision/{revision:path}")
    def repo_info_rev(request: Request, repo_type: RepoTypePlural, namespace: str, name: str, revision: str) -> dict:
        """A repo's info at a branch, tag or commit."""
        _, rest = hub.api_repo(request)
        return _repo_info(request, "/".join(rest[1:]) or "main")

    @app.get("/api/{repo_type}/{namespace}/{name}/tree/{rest:path}")
    def tree(
        request: Request,
        repo_type: RepoTypePlural,
        namespace: str,
        name: str,
        rest: str,
        recursive: str | None = None,
        expand: str | None = None,
        cursor: int = Query(0, ge=0),
        limit: int | None = Query(None, ge=1, le=10000),
    ) -> Response:
        """Files and folders under a path at a revision (paginated with a ``Link`` header)."""
        ref, seg = hub.api_repo(request)
        hub.can_read(ref, hub.token(request))
        rev = seg[1] if len(seg) > 1 else "main"
        path = "/".join(seg[2:]).strip("/")
        if path:
            validate_path(path)
        sha, entries = storage.tree(ref, rev, path, recursive=_truthy(recursive))
        entries.sort(key=lambda e: (e.type != "directory", e.path) if not _truthy(recursive) else e.path)
        page = limit or (50 if _truthy(expand) else settings.tree_page_size)
        chunk = entries[cursor : cursor + page]
        body = []
        for entry in chunk:
            last = None
            if _truthy(expand):
                info = storage.last_commit(ref, sha, entry.path)
                if info:
                    last = {"id": info.id, "title": info.title, "date": format_date(info.date)}
            body.append(hub.entry_json(ref, entry, last))
        headers = {"X-Repo-Commit": sha}
        if cursor + page < len(entries):
            headers["Link"] = _paginate_link(request, cursor=cursor + page)
        return JSONResponse(body, headers=headers)

    @app.post("/api/{repo_type}/{namespace}/{name}/paths-info/{revision:path}")
    def paths_info(
        request: Request,
        repo_type: RepoTypePlural,
        namespace: str,
        name: str,
        revision: str,
        paths: list[str] = Form(default=[]),
        expand: str | None = Form(None),
    ) -> Response:
        """Entries for the requested paths (missing paths are left out)."""
        ref, seg = hub.api_repo(request)
        hub.can_read(ref, hub.token(request))
        if len(paths) > 10000:
            raise errors.BadRequest("Too many paths")
        valid = []
        for p in paths:
            try:
                valid.append(validate_path(p.strip("/")))
            except errors.InvalidPath:
                continue
        sha, entries = storage.paths_info(ref, "/".join(seg[1:]) or "main", valid)
        body = []
        for entry in entries:
            last = None
            if _truthy(expand):
                info = storage.last_commit(ref, sha, entry.path)
                if info:
                    last = {"id": info.id, "title": info.title, "date": format_date(info.date)}
            body.append(hub.entry_json(ref, entry, last))
        return JSONResponse(body, headers={"X-Repo-Commit": sha})

    @app.get("/api/{repo_type}/{namespace}/{name}/refs")
    def refs(
        request: Request, repo_type: RepoTypePlural, namespace: str, name: str, include_prs: str | None = None
    ) -> dict:
        """Branches and tags with their target commits."""
        ref, _ = hub.api_repo(request)
        hub.can_read(ref, hub.token(request))
        found = storage.list_refs(ref)
        out: dict = {
            "branches": [
                {"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in sorted(found["branches"].items())
            ],
            "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in sorted(found["tags"].items())],
            "converts": [],
        }
        if _truthy(include_prs):
            out["pullRequests"] = []
        return out

    @app.get("/api/{repo_type}/{namespace}/{name}/commits/{revision:path}")
    def commits(
        request: Request,
        repo_type: RepoTypePlural,
        namespace: str,
        name: str,
        revision: str,
        p: int = Query(0, ge=0, le=10**6),
        limit: int | None = Query(None, ge=1, le=1000),
    ) -> Response:
        """First-parent history from a revision, newest first (paginated with a ``Link`` header)."""
        ref, seg = hub.api_repo(request)
        hub.can_read(ref, hub.token(request))
        page = limit or settings.commits_page_size
        items, total = storage.list_commits(ref, "/".join(seg[1:]) or "main", offset=p * page, limit=page)
        headers = {"X-Total-Count": str(total)}
        if (p + 1) * page < total:
            headers["Link"] = _paginate_link(request, p=p + 1)
        return JSONResponse([hub.commit_json(c) for c in items], headers=headers)

    # ----------------------------------------------------------------- branches and tags

    @app.post("/api/{repo_type}/{namespace}/{name}/branch/{branch:path}")
    def create_branch(
        request: Request,
        repo_type: RepoTypePlural,
        namespace: str,
        name: str,
        branch: str,
        body: BranchBody | None = None,
    ) -> dict:
        """Create a branch from ``startingPoint`` (default: main)."""
        ref, seg = hub.api_repo(request)
        hub.can_write(ref, hub.token(request))
        storage.create_branch(ref, "/".join(seg[1:]), body.startingPoint if body else None)
        return {}

    @app.delete("/api/{repo_type}/{namespace}/{name}/branch/{branch:path}")
    def delete_branch(request: Request, repo_type: RepoTypePlural, namespace: str, name: str, branch: str) -> dict:
        """Delete a branch."""
        ref, seg = hub.api_repo(request)
        hub.can_write(ref, hub.token(request))
        storage.delete_branch(ref, "/".join(seg[1:]))
        return {}

    @app.post("/api/{repo_type}/{namespace}/{name}/tag/{revision:path}")
    def create_tag(
        request: Request, repo_type: RepoTypePlural, namespace: str, name: str, revision: str, body: TagBody
    ) -> dict:
        """Tag a revision."""
        ref, seg = hub.api_repo(request)
        token = hub.token(request)
        hub.can_write(ref, token)
        storage.create_tag(ref, body.tag, "/".join(seg[1:]) or "main", body.message, token.user)
        return {}

    @app.delete("/api/{repo_type}/{namespace}/{name}/tag/{tag:path}")
    def delete_tag(request: Request, repo_type: RepoTypePlural, namespace: str, name: str, tag: str) -> dict:
        """Delete a tag."""
        ref, seg = hub.api_repo(request)
        hub.can_write(ref, hub.token(request))
        storage.delete_tag(ref, "/".join(seg[1:]))
        return {}

    # ----------------------------------------------------------------- uploads

    @app.post("/api/validate-yaml")
    def validate_yaml(body: ValidateYamlBody) -> Response:
        """Check a README's YAML front matter."""
        text = body.content
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
        if match:
            try:
                import yaml

                data = yaml.safe_load(match.group(1))
                if data is not None and not isinstance(data, dict):
                    return JSONResponse(
                        {"errors": [{"message": "YAML metadata must be a mapping"}], "warnings": []}, status_code=400
                    )
            except ImportError:
                pass
            except Exception as exc:
                message = f"Invalid YAML metadata: {exc}"
                return JSONResponse({"errors": [{"message": message}], "warnings": []}, status_code=400)
        return JSONResponse({"errors": [], "warnings": []})

    @app.post("/api/{repo_type}/{namespace}/{name}/preupload/{revision:path}")
    def preupload(
        request: Request, repo_type: RepoTypePlural, namespace: str, name: str, revision: str, body: PreuploadBody
    ) -> dict:
        """Tell the client which files go through LFS and which inline in the commit."""
        ref, seg = hub.api_repo(request)
        hub.can_write(ref, hub.token(request))
        if len(body.files) > 1000:
            raise errors.BadRequest("Too many files in one preupload request")
        branch = "/".join(seg[1:]) or "main"
        try:
            head = storage.branch_head(ref, branch)
            patterns_text = storage.read_file(ref, head, ".gitattributes").decode("utf-8", "replace")
        except errors.EntryNotFound:
            patterns_text = ""
        from .storage import _gitattributes_lfs_patterns, _matches_gitattributes

        patterns = _gitattributes_lfs_patterns(patterns_text)
        offer_lfs = settings.lfs_mode == "always" or (
            settings.lfs_mode == "auto" and "hf_hub/0." in request.headers.get("user-agent", "")
        )
        out = []
        for item in body.files:
            validate_path(item.path)
            if item.size < 0:
                raise errors.BadRequest(f"Invalid size for {item.path}")
            mode = "regular"
            if offer_lfs and item.size > 0:
                try:
                    sample = base64.b64decode(item.sample or "", validate=True)
                except (binascii.Error, ValueError):
                    sample = b""
                if item.size >= storage.lfs_threshold or _matches_gitattributes(item.path, patterns) or b"\0" in sample:
                    mode = "lfs"
            out.append({"path": item.path, "uploadMode": mode, "shouldIgnore": False})
        return {"files": out, "commitOid": None}

    @app.post(
        "/api/{repo_type}/{namespace}/{name}/commit/{revision:path}",
        openapi_extra={
            "requestBody": {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}, "required": True}
        },
    )
    async def commit(
        request: Request,
        repo_type: RepoTypePlural,
        namespace: str,
        name: str,
        revision: str,
        create_pr: str | None = None,
    ) -> Response:
        """Apply an NDJSON list of file operations as one commit on a branch."""
        ref, seg = hub.api_repo(request)
        token = await run_in_threadpool(hub.token, request)
        await run_in_threadpool(hub.can_write, ref, token)
        if _truthy(create_pr):
            raise errors.BadRequest("Pull requests are not supported by this server")
        branch = "/".join(seg[1:]) or "main"
        await run_in_threadpool(storage.branch_head, ref, branch)
        body = await spool_body(request, storage, settings.max_commit_bytes, hashed=False)
        try:

            def work() -> str:
                header, operations = parse_commit_body(body.path, storage)
                try:
                    return storage.commit(
                        ref,
                        branch,
                        operations,
                        author=token.user,
                        summary=header.get("summary") or "Upload files",
                        description=header.get("description") or "",
                        parent_commit=header.get("parentCommit"),
                    )
                finally:
                    for op in operations:
                        staged = getattr(op, "content", None)
                        if staged is not None:
                            staged.path.unlink(missing_ok=True)

            sha = await run_in_threadpool(work)
        finally:
            body.path.unlink(missing_ok=True)
        hub.stats["commits"] += 1
        base = hub.repo_url(request, ref)
        return JSONResponse(
            {"commitUrl": f"{base}/commit/{sha}", "commitOid": sha, "pullRequestUrl": None, "success": True}
        )

    # ----------------------------------------------------------------- LFS

    def _lfs_base(request: Request, ref: RepoRef) -> str:
        return f"{_base_url(request)}/{ref.url_prefix}{ref.id}.git/info/lfs"

    def lfs_batch(request: Request, namespace: str, name: str, body: LfsBatchBody) -> Response:
        ref, _ = hub.file_repo(request)
        token = hub.token(request)
        if body.operation == "upload":
            hub.can_write(ref, token)
        elif body.operation == "download":
            hub.can_read(ref, token)
        else:
            raise errors.BadRequest(f"Unknown LFS operation {body.operation!r}")
        if len(body.objects) > 1000:
            raise errors.BadRequest("Too many objects in one LFS batch")
        base = _lfs_base(request, ref)
        objects = []
        for obj in body.objects:
            item: dict = {"oid": obj.oid, "size": obj.size}
            if not re.fullmatch(r"[0-9a-f]{64}", obj.oid) or obj.size < 0:
                item["error"] = {"code": 422, "message": "Invalid oid or size"}
            elif obj.size > settings.max_lfs_bytes:
                item["error"] = {"code": 422, "message": f"Object larger than {settings.max_lfs_bytes} bytes"}
            elif body.operation == "upload":
                if storage.repo_lfs_size(ref, obj.oid) != obj.size:
                    ticket = storage.sign(f"{ref.type}/{ref.id}/{obj.oid}/{obj.size}")
                    query = urlencode({"size": obj.size, "ticket": ticket})
                    item["authenticated"] = True
                    item["actions"] = {
                        "upload": {"href": f"{base}/objects/{obj.oid}?{query}", "expires_in": 3600},
                        "verify": {"href": f"{base}/verify", "expires_in": 3600},
                    }
            else:
                if storage.repo_lfs_size(ref, obj.oid) != obj.size:
                    item["error"] = {"code": 404, "message": "Object does not exist"}
                else:
                    ticket = storage.sign(_download_message(storage, ref, obj.oid, obj.size))
                    query = urlencode({"size": obj.size, "ticket": ticket})
                    item["actions"] = {"download": {"href": f"{base}/objects/{obj.oid}?{query}", "expires_in": 3600}}
            objects.append(item)
        return JSONResponse({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}, media_type=LFS_JSON)

    async def lfs_upload(
        request: Request, oid: str, size: int = Query(..., ge=0), ticket: str = Query(...)
    ) -> Response:
        ref, _ = hub.file_repo(request)
        if not re.fullmatch(r"[0-9a-f]{64}", oid) or not storage.check_signature(
            f"{ref.type}/{ref.id}/{oid}/{size}", ticket
        ):
            raise errors.Forbidden("Invalid or expired upload ticket")
        staged = await spool_body(request, storage, size, suffix=".lfs")
        try:
            await run_in_threadpool(storage.lfs_import, staged, oid, size, ref)
        finally:
            staged.path.unlink(missing_ok=True)
        hub.stats["lfs_uploads"] += 1
        return Response(status_code=200)

    def lfs_download(
        request: Request, namespace: str, name: str, oid: str, size: int = Query(..., ge=0), ticket: str = Query(...)
    ) -> Response:
        ref, _ = hub.file_repo(request)
        if not re.fullmatch(r"[0-9a-f]{64}", oid) or not storage.check_signature(
            _download_message(storage, ref, oid, size), ticket
        ):
            raise errors.Forbidden("Invalid or expired download ticket")
        if storage.repo_lfs_size(ref, oid) != size:
            raise errors.NotFound(f"LFS object {oid} ({size} bytes) not found")
        return StreamingResponse(
            _iter_file(storage.lfs_path(oid), 0, size - 1),
            media_type="application/octet-stream",
            headers={"Content-Length": str(size)},
        )

    def lfs_verify(request: Request, namespace: str, name: str, body: LfsVerifyBody) -> Response:
        ref, _ = hub.file_repo(request)
        hub.can_write(ref, hub.token(request))
        if not re.fullmatch(r"[0-9a-f]{64}", body.oid):
            raise errors.BadRequest("Invalid oid")
        if storage.repo_lfs_size(ref, body.oid) != body.size:
            raise errors.NotFound(f"LFS object {body.oid} ({body.size} bytes) not found")
        return JSONResponse({"message": "Object verified"}, media_type=LFS_JSON)

    # ----------------------------------------------------------------- downloads

    def resolve(request: Request, namespace: str, name: str, revision: str, path: str) -> Response:
        ref, seg = hub.file_repo(request)
        hub.can_read(ref, hub.token(request))
        if len(seg) < 3:
            raise errors.EntryNotFound("No file path given")
        rev, path = seg[1], "/".join(seg[2:])
        try:
            validate_path(path)
        except errors.InvalidPath as exc:
            raise errors.EntryNotFound(exc.message) from None
        sha, entry = storage.stat(ref, rev, path)
        visibility = "private" if storage.repo_meta(ref).private else "public"
        etag = f'"{entry.etag}"'
        headers = {
            "X-Repo-Commit": sha,
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}",
            "Cache-Control": "private, max-age=0" if sha != rev else f"{visibility}, max-age=31536000, immutable",
            # repo files are untrusted: never let a browser run them on the hub's origin
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
        }
        if entry.lfs:
            headers["X-Linked-Etag"] = etag
            headers["X-Linked-Size"] = str(entry.size)
        media_type = _safe_media_type(path)
        size = entry.size
        byte_range = _parse_range(request.headers.get("range"), size) if size else None
        status = 200
        start, end = 0, size - 1
        if byte_range is not None:
            start, end = byte_range
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1 if size else 0)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=media_type)
        if entry.lfs:
            stream = _iter_file(storage.lfs_path(entry.lfs.oid), start, end)
        else:
            data = storage.read_file(ref, sha, path)
            stream = iter([data[start : end + 1]]) if size else iter([b""])
        return StreamingResponse(stream, status_code=status, headers=headers, media_type=media_type)

    # ----------------------------------------------------------------- per-prefix routes

    for prefix in ("", "/datasets", "/spaces"):
        tag = ["files" if not prefix else prefix.strip("/")]
        app.add_api_route(
            prefix + "/{namespace}/{name}/info/lfs/objects/batch",
            lfs_batch,
            methods=["POST"],
            tags=tag,
            summary="LFS batch API",
        )
        app.add_api_route(
            prefix + "/{namespace}/{name}/info/lfs/objects/{oid}",
            lfs_upload,
            methods=["PUT"],
            tags=tag,
            summary="LFS upload (self-authorizing href)",
            openapi_extra={"requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string"}}}}},
        )
        app.add_api_route(
            prefix + "/{namespace}/{name}/info/lfs/objects/{oid}",
            lfs_download,
            methods=["GET"],
            tags=tag,
            summary="LFS download (self-authorizing href)",
        )
        app.add_api_route(
            prefix + "/{namespace}/{name}/info/lfs/verify", lfs_verify, methods=["POST"], tags=tag, summary="LFS verify"
        )
        for kind in ("resolve", "raw"):
            for method in ("GET", "HEAD"):
                app.add_api_route(
                    prefix + "/{namespace}/{name}/" + kind + "/{revision}/{path:path}",
                    resolve,
                    methods=[method],
                    tags=tag,
                    summary="Download a file at a revision",
                    operation_id=f"{kind}_{method.lower()}_{prefix.strip('/') or 'models'}",
                )
        gitserve.add_routes(app, hub, prefix, tag)

    web.add_routes(app, hub)  # HTML pages last: the API routes above take precedence
    return app


def _iter_file(path, start: int, end: int, chunk: int = READ_CHUNK) -> Iterator[bytes]:
    """Yield bytes ``start``..``end`` (inclusive) of a file in large chunks."""
    with open(path, "rb") as fh:
        fh.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            data = fh.read(min(chunk, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data
