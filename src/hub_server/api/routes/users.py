"""Who is calling: ``whoami-v2`` (``hf auth login``, ``whoami``)."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import RequiredToken

router = APIRouter(tags=["users"])


@router.get("/api/whoami-v2")
def whoami(token: RequiredToken) -> dict:
    """The token owner's identity."""
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
        "auth": {"type": "access_token", "accessToken": {"displayName": token.display_name, "role": token.role}},
    }
