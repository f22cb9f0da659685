"""A self-hosted, Hugging Face Hub-compatible HTTP server: repos, commits, files, users and tokens."""

from .app import create_app
from .server import RunningHub, running_hub, serve
from .settings import HubSettings
from .storage import HubStorage, RepoRef

__all__ = ["HubSettings", "HubStorage", "RepoRef", "RunningHub", "create_app", "running_hub", "serve"]
