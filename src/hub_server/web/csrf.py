"""CSRF protection for the pages' forms: a signed token bound to a per-browser cookie (double submit).

Every page render gives its forms a ``csrf`` value, a signature of the random nonce in the ``hub_csrf``
cookie (``SameSite=Strict``, ``HttpOnly``; set on the first page a browser sees). A state-changing POST
must carry a token that matches the cookie of the same browser: another site can neither read the cookie
nor make one, and the signature expires. Checked together with the Origin check of ``pages._same_origin``.
Any page with a form puts ``{{ form_csrf }}`` in a ``csrf`` field and checks it with ``csrf_valid`` in its POST route.
"""

from __future__ import annotations

import re
import secrets

from fastapi import Request
from fastapi.responses import Response

COOKIE = "hub_csrf"
TTL = 12 * 3600
_NONCE = re.compile(r"[A-Za-z0-9_-]{24,64}")


def is_https(request: Request) -> bool:
    """Whether the browser talks https to us (directly, or through a proxy that says so)."""
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def csrf_token(request: Request, signer) -> tuple[str, str | None]:
    """The token for this browser's forms, and a new nonce to set as its cookie when it has none."""
    nonce = request.cookies.get(COOKIE, "")
    new = None
    if not _NONCE.fullmatch(nonce):
        nonce = new = secrets.token_urlsafe(24)
    return signer.sign(f"csrf:{nonce}", TTL), new


def set_csrf_cookie(response: Response, request: Request, nonce: str) -> None:
    """Give the browser its nonce cookie."""
    response.set_cookie(COOKIE, nonce, httponly=True, samesite="strict", secure=is_https(request), path="/")


def csrf_valid(request: Request, signer, token: str) -> bool:
    """Whether a form's token was issued to this browser (its cookie) and has not expired."""
    nonce = request.cookies.get(COOKIE, "")
    return bool(_NONCE.fullmatch(nonce) and token) and signer.check(f"csrf:{nonce}", token)
