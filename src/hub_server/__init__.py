"""A self-hosted, Hugging Face Hub-compatible HTTP server: repos, commits, files, users and tokens."""

from .app import Settings, create_app
from .server import RunningHub, running_hub, serve
from .storage import HubStorage, RepoRef

__all__ = ["HubStorage", "RepoRef", "RunningHub", "Settings", "create_app", "running_hub", "serve"]
