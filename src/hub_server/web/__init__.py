"""The hub's web pages, served by the hub itself (no CDN; strict content security policy)."""

from .pages import router
from .pulls import router as _pulls_router
from .render import remote_code_entries

router.include_router(_pulls_router)

__all__ = ["remote_code_entries", "router"]
