"""What a token opened dies with it (hardening round 2): browser sessions and Xet grants minted with a token
stop working as soon as that token is revoked or expires, whatever it is called with."""

from __future__ import annotations

import datetime as dt
import re

import httpx2 as httpx
import sqlalchemy as sa
from hubtools import seeded_bytes
from xettools import Cas, pack, token_response, upload

from hub_server.storage import schema
from hub_server.storage.sql import secret_hash


def _login(hub, token: str) -> httpx.Client:
    browser = httpx.Client(base_url=hub.url)
    csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text).group(1)
    assert browser.post("/login", data={"token": token, "csrf": csrf}).status_code == 303
    assert "Signed in as" in browser.get("/").text
    return browser


def _expire(hub, token: str) -> None:
    """The token's expiry date passes (set in the past, as time would)."""
    t = schema.tokens
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    with hub.storage.meta.engine.begin() as conn:
        assert conn.execute(t.update().where(t.c.token_hash == secret_hash(token)).values(expires_at=past)).rowcount


def _token_id(hub, token: str) -> int:
    t = schema.tokens
    with hub.storage.meta.engine.connect() as conn:
        return conn.execute(sa.select(t.c.id).where(t.c.token_hash == secret_hash(token))).scalar_one()


def test_sessions_end_with_the_token_they_were_opened_with(hub, alice, make_api, repo_name):
    repo_id = f"alice/{repo_name}"
    make_api(alice).create_repo(repo_id, private=True)
    by_value, by_id, expiring, other = (hub.add_user("alice") for _ in range(4))
    browsers = {token: _login(hub, token) for token in (by_value, by_id, expiring, other)}
    try:
        assert hub.storage.meta.revoke_token(by_value)
        assert hub.storage.meta.revoke_tokens(token_id=_token_id(hub, by_id)) == 1
        _expire(hub, expiring)
        for token in (by_value, by_id, expiring):
            assert "Signed in as" not in browsers[token].get("/").text
            assert browsers[token].get(f"/{repo_id}").status_code == 404, "the private repo is hidden again"
        assert "Signed in as" in browsers[other].get("/").text, "a session of another token lives on"
        assert browsers[other].get(f"/{repo_id}").status_code == 200
    finally:
        for browser in browsers.values():
            browser.close()


def test_xet_grants_end_with_the_token_that_minted_them(hub, alice, make_api, repo_name):
    repo_id = f"alice/{repo_name}"
    make_api(alice).create_repo(repo_id)
    item, second = pack(seeded_bytes(20_000, seed=71)), pack(seeded_bytes(20_000, seed=72))
    revoked, expiring = hub.add_user("alice"), hub.add_user("alice")
    writer, reader = Cas.of(hub, revoked, repo_id), Cas.of(hub, expiring, repo_id, "read")
    upload(writer, item)
    assert reader.reconstruction(item.file_hash).status_code == 200
    anonymous = token_response(hub, None, repo_id, "read").json()
    anonymous = Cas(anonymous["casUrl"], anonymous["accessToken"])

    assert hub.storage.meta.revoke_token(revoked)
    _expire(hub, expiring)
    refused = writer.post_xorb(second.xorb, second.xorb_name)
    assert refused.status_code == 401, refused.text
    assert writer.reconstruction(item.file_hash).status_code == 401
    assert reader.reconstruction(item.file_hash).status_code == 401
    assert anonymous.reconstruction(item.file_hash).status_code == 200, "an anonymous grant has no token to lose"
    upload(Cas.of(hub, alice, repo_id), second)  # a live token still gets a working grant
