"""Short-lived signed tickets: URLs that authorize themselves (LFS transfers, object downloads)."""

from __future__ import annotations

import hashlib
import hmac
import time


class Signer:
    """HMAC-SHA256 signatures with an expiry, under one secret shared by every replica."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("The signing secret must be at least 16 bytes long")
        self._secret = secret

    def _mac(self, expiry: int, message: str) -> str:
        return hmac.new(self._secret, f"{expiry}|{message}".encode(), hashlib.sha256).hexdigest()

    def sign(self, message: str, ttl: int = 3600) -> str:
        """An opaque ticket for ``message``, valid for ``ttl`` seconds."""
        expiry = int(time.time()) + ttl
        return f"{expiry}.{self._mac(expiry, message)}"

    def check(self, message: str, ticket: str) -> bool:
        """Whether ``ticket`` is a valid, unexpired signature of ``message``."""
        try:
            expiry_s, mac = ticket.split(".", 1)
            expiry = int(expiry_s)
        except (ValueError, AttributeError):
            return False
        if expiry < time.time():
            return False
        return hmac.compare_digest(self._mac(expiry, message), mac)
