"""The one table that turns exceptions into a one-line message and an exit status (cf. `huggingface_hub.cli._errors`).

Exit status: 1 a check ran and its answer is no; 2 bad input (arguments, files, token, repo, revision);
3 the Hub could not be reached or failed; 130 interrupted. Exceptions not in the table are bugs: they propagate
with their traceback.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import CheckFailed, UserError

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_HUB = 3
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Context:
    """What the command was working on, for messages: the repo, the revision asked for, the Hub's URL."""

    repo: str | None = None
    revision: str | None = None
    endpoint: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Context:
        """The repo, revision and endpoint a parsed command names."""
        from ..remote import REPO_ID

        repo = getattr(args, "repo", None) or getattr(args, "push", None)
        source = getattr(args, "source", None)
        if repo is None and source and REPO_ID.match(source) and not os.path.exists(source):
            repo = source
        endpoint = getattr(args, "endpoint", None) or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
        return cls(repo=repo, revision=getattr(args, "revision", None), endpoint=endpoint.rstrip("/"))


@dataclass(frozen=True)
class Rule:
    """Exceptions of `kind` (and, for HTTP errors, of `status`) get `message(error, context)` and `exit_code`."""

    kind: type[BaseException] | tuple[type[BaseException], ...]
    exit_code: int
    message: Callable[[BaseException, Context], str]
    status: int | None = None

    def matches(self, error: BaseException) -> bool:
        """Whether this rule applies to `error`."""
        return isinstance(error, self.kind) and (self.status is None or _status(error) == self.status)


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _endpoint(error: BaseException, context: Context) -> str:
    """The Hub's URL as the failed request used it, else the command's."""
    try:  # httpx raises RuntimeError from `.request` when none was recorded
        response = getattr(error, "response", None)
        request = getattr(response, "request", None) or getattr(error, "request", None)
        url = urlsplit(str(request.url))
    except (AttributeError, RuntimeError):
        return context.endpoint or "the Hub"
    return f"{url.scheme}://{url.netloc}" if url.netloc else context.endpoint or "the Hub"


def _server_says(error: BaseException) -> str:
    """The server's own explanation (`X-Error-Message`), if it gave one."""
    response = getattr(error, "response", None)
    message = response.headers.get("X-Error-Message") if response is not None else None
    return f" (the server says: {message})" if message else ""


def _repo(error: BaseException, context: Context) -> str:
    return getattr(error, "repo_id", None) or context.repo or "the repo"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection failures of whichever HTTP library huggingface_hub uses (httpx2 on 1.x+, requests on 0.x)."""
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import httpx2

        kinds.append(httpx2.TransportError)
    except ImportError:
        pass
    try:
        import requests

        kinds += [requests.ConnectionError, requests.Timeout]
    except ImportError:
        pass
    return tuple(kinds)


def _rules() -> tuple[Rule, ...]:
    """The table, first match wins (subclasses before their bases)."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    def token_rejected(error, context):
        return (
            f"token rejected by {_endpoint(error, context)} (401){_server_says(error)}; "
            "pass a valid --token, set HF_TOKEN, or log in with 'hf auth login'"
        )

    def no_write_access(error, context):
        namespace = _repo(error, context).split("/")[0]
        return f"no write access to {namespace!r} at {_endpoint(error, context)} (403){_server_says(error)}"

    def no_such_repo(error, context):
        return (
            f"no such repo {_repo(error, context)!r} at {_endpoint(error, context)} "
            "(or it is private and the token may not read it)"
        )

    def no_such_revision(error, context):
        revision = f" {context.revision!r}" if context.revision else ""
        return f"no such revision{revision} in {_repo(error, context)!r} at {_endpoint(error, context)}"

    def no_such_file(error, context):
        response = getattr(error, "response", None)
        path = urlsplit(str(response.url)).path.split("/resolve/", 1)[-1] if response is not None else "a file"
        return f"no such file in {_repo(error, context)!r}: {path}"

    def cannot_reach(error, context):
        return f"cannot reach the Hub at {_endpoint(error, context)}: {_first_line(error)}"

    def hub_failed(error, context):
        return f"the Hub at {_endpoint(error, context)} answered {_status(error)}{_server_says(error)}"

    return (
        Rule(UserError, EXIT_USAGE, lambda error, _: str(error)),
        Rule(CheckFailed, EXIT_FAILED, lambda error, _: str(error)),
        Rule(KeyboardInterrupt, EXIT_INTERRUPTED, lambda error, _: "interrupted"),
        Rule(RevisionNotFoundError, EXIT_USAGE, no_such_revision),
        Rule(RepositoryNotFoundError, EXIT_USAGE, no_such_repo),
        Rule(LocalEntryNotFoundError, EXIT_HUB, cannot_reach),  # a subclass of EntryNotFoundError
        Rule(EntryNotFoundError, EXIT_USAGE, no_such_file),
        Rule(HfHubHTTPError, EXIT_USAGE, token_rejected, status=401),
        Rule(HfHubHTTPError, EXIT_USAGE, no_write_access, status=403),
        Rule(HfHubHTTPError, EXIT_USAGE, no_such_repo, status=404),
        Rule(HfHubHTTPError, EXIT_HUB, hub_failed),
        Rule(OfflineModeIsEnabled, EXIT_HUB, lambda error, _: f"the Hub is off: HF_HUB_OFFLINE is set ({error})"),
        Rule(_transport_errors(), EXIT_HUB, cannot_reach),
    )


def explain(error: BaseException, context: Context) -> tuple[str, int] | None:
    """(one-line message, exit status) for a known kind of error; None for anything else (a bug)."""
    for rule in _rules():
        if rule.matches(error):
            return rule.message(error, context), rule.exit_code
    return None
