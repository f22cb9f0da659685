"""Command line: ``serve`` a hub and ``add-user`` to it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import errors


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description="A self-hosted, Hugging Face Hub-compatible server.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve a hub over HTTP", description="Serve a hub over HTTP.")
    serve.add_argument("--root", required=True, type=Path, help="data directory (created if missing)")
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
        default="auto",
        help="which clients are offered LFS uploads: auto = huggingface_hub 0.x only (default)",
    )
    serve.add_argument("--max-commit-bytes", type=int, default=None, help="largest commit request body accepted")
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))

    add_user = sub.add_parser(
        "add-user",
        help="create a user and print a write token",
        description="Create a user (if missing) and print a new token as the last line.",
    )
    add_user.add_argument("name", help="user name")
    add_user.add_argument("--root", required=True, type=Path, help="data directory")
    add_user.add_argument("--role", choices=("write", "read"), default="write", help="token role (default: write)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the hub command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            from .app import Settings
            from .server import serve

            if not 0 <= args.port <= 65535:
                raise errors.BadRequest(f"Invalid port {args.port}")
            settings = Settings(lfs_mode=args.lfs_mode)
            if args.max_commit_bytes is not None:
                settings.max_commit_bytes = args.max_commit_bytes
            serve(
                args.root,
                args.host,
                args.port,
                scan_uploads=not args.allow_unsafe_pickles,
                settings=settings,
                log_level=args.log_level,
            )
            return 0
        from .storage import HubStorage

        storage = HubStorage(args.root)
        storage.add_user(args.name, exist_ok=True)
        token = storage.create_token(args.name, role=args.role)
        print(f"User {args.name!r} in {storage.root}; {args.role} token:")
        print(token)
        return 0
    except errors.HubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
