"""The hub's web pages, served by the hub itself (no CDN; strict content security policy)."""

from .pages import router
from .render import remote_code_entries

__all__ = ["remote_code_entries", "router"]
