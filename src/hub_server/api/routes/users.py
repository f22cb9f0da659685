"""Who is calling: ``whoami-v2`` (``hf auth login``, ``whoami``)."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import RequiredToken, Storage

router = APIRouter(tags=["users"])


@router.get("/api/whoami-v2")
def whoami(token: RequiredToken, storage: Storage) -> dict:
    """The token owner's identity and organisations."""
    orgs = [
        {
            "type": "org",
            "id": m.org,
            "name": m.org,
            "fullname": m.fullname,
            "email": None,
            "canPay": False,
            "periodEnd": None,
            "avatarUrl": "",
            "roleInOrg": m.role,
            "isEnterprise": False,
        }
        for m in storage.orgs.memberships(token.user)
    ]
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
        "orgs": orgs,
        "auth": {"type": "access_token", "accessToken": {"displayName": token.display_name, "role": token.role}},
    }
