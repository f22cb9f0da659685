"""The application: middleware, error handling, the API routers and the web pages, composed once."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from . import errors
from .accesslog import AccessLogMiddleware
from .api import compat
from .api.deps import HubState
from .api.http import error_response
from .api.main import api_router
from .api.paths import RawPathMiddleware
from .middleware import BodyLimitMiddleware, RequestMemoMiddleware
from .settings import HubSettings
from .storage import HubStorage
from .web import router as web_router

log = logging.getLogger("hub_server")


async def _hub_error(request: Request, exc: errors.HubError) -> Response:
    return error_response(exc, request)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
    return error_response(errors.BadRequest(f"Invalid request: {detail}"[:1000]), request)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("Internal error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"error": f"Internal server error: {type(exc).__name__}"},
        status_code=500,
        headers={"X-Error-Code": "InternalError"},
    )


def create_app(storage: HubStorage, settings: HubSettings | None = None) -> FastAPI:
    """Build the FastAPI application serving ``storage`` (with its settings unless others are given)."""
    app = FastAPI(title="Hub-compatible server", version="1.0", docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.state.hub = HubState(storage=storage, settings=settings or storage.settings)
    app.add_middleware(RequestMemoMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RawPathMiddleware)
    app.add_middleware(AccessLogMiddleware)  # outermost: sees every request, redacts secrets from queries
    app.add_middleware(compat.RequestIdMiddleware)
    app.add_exception_handler(errors.HubError, _hub_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
    app.include_router(api_router)
    app.include_router(compat.router)  # unknown /api/... paths, before the pages' /{namespace}/{name}
    app.include_router(web_router)  # after the API: a page path like /{namespace}/{name} also matches /api/x
    return app
