"""Command line: ``serve`` a hub, ``add-user`` to it.

Every option can also come from the environment (``HUB_ROOT``, ``HUB_DATABASE_URL``, ``HUB_OBJECT_STORE``,
``HUB_SECRET_KEY``…); a flag given on the command line wins.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from . import errors
from .settings import HubSettings


def _add_storage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root", type=Path, help="data directory, created if missing (default: $HUB_ROOT or ./hub-data)"
    )
    parser.add_argument(
        "--database-url", help="metadata database URL (default: $HUB_DATABASE_URL or SQLite inside the data directory)"
    )
    parser.add_argument("--object-store", help="where large files live (default: $HUB_OBJECT_STORE or <root>/objects)")


def build_parser(prog: str = "hub") -> argparse.ArgumentParser:
    """The hub command's parser; ``prog`` names it as it is invoked (e.g. ``resnet-model hub``)."""
    parser = argparse.ArgumentParser(prog=prog, description="A self-hosted, Hugging Face Hub-compatible server.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve a hub over HTTP", description="Serve a hub over HTTP.")
    _add_storage_options(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", default=8765, type=int, help="port to bind (default: 8765)")
    serve.add_argument(
        "--allow-unsafe-pickles",
        action="store_true",
        help="accept uploads whose pickles import dangerous globals (they are still scanned and flagged)",
    )
    serve.add_argument(
        "--lfs-mode",
        choices=("auto", "always", "never"),
        help="which clients are offered LFS uploads: auto = huggingface_hub 0.x only (default: auto)",
    )
    serve.add_argument("--max-commit-bytes", type=int, help="largest commit request body accepted")
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))

    add_user = sub.add_parser(
        "add-user",
        help="create a user and print a write token",
        description="Create a user (if missing) and print a new token as the last line.",
    )
    add_user.add_argument("name", help="user name")
    _add_storage_options(add_user)
    add_user.add_argument("--role", choices=("write", "read"), default="write", help="token role (default: write)")
    return parser


def settings_from_args(args: argparse.Namespace) -> HubSettings:
    """Settings from the environment, overridden by the flags that were given."""
    flags = {
        "root": args.root,
        "database_url": args.database_url,
        "object_store": args.object_store,
        "lfs_mode": getattr(args, "lfs_mode", None),
        "max_commit_bytes": getattr(args, "max_commit_bytes", None),
    }
    if getattr(args, "allow_unsafe_pickles", False):
        flags["scan_uploads"] = False
    try:
        return HubSettings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise errors.BadRequest(f"invalid setting: {problems}") from None


def main(argv: list[str] | None = None, prog: str = "hub") -> int:
    """Run the hub command line; returns the exit status."""
    args = build_parser(prog).parse_args(argv)
    try:
        settings = settings_from_args(args)
        if args.command == "serve":
            from .server import serve

            if not 0 <= args.port <= 65535:
                raise errors.BadRequest(f"invalid port {args.port}: expected 0-65535")
            serve(settings, args.host, args.port, log_level=args.log_level)
            return 0
        from .storage import HubStorage

        storage = HubStorage(settings=settings)
        try:
            storage.add_user(args.name, exist_ok=True)
            token = storage.create_token(args.name, role=args.role)
        finally:
            storage.close()
        print(f"User {args.name!r} in {storage.root}; {args.role} token:")
        print(token)
        return 0
    except errors.HubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
