"""Command line: ``serve`` a hub, ``add-user`` to it, ``list-tokens``, ``revoke-token``, ``add-org``, ``remove-member``.

Every option can also come from the environment (``HUB_ROOT``, ``HUB_DATABASE_URL``, ``HUB_OBJECT_STORE``,
``HUB_SECRET_KEY``…); a flag given on the command line wins.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from pydantic import ValidationError

from . import errors
from .settings import HubSettings
from .storage.models import format_date, utcnow
from .storage.orgs import check_role


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
        help="accept uploads whose pickles name globals outside the allow-list, or that cannot be scanned "
        "(they are still scanned and flagged)",
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
    add_user.add_argument("--expires-in", type=int, metavar="DAYS", help="the token stops working after DAYS days")
    _add_token_commands(sub)
    _add_org_commands(sub)
    return parser


def _add_org_commands(sub) -> None:
    add_org = sub.add_parser(
        "add-org",
        help="create an organisation (a namespace its members share)",
        description="Create an organisation (if missing). Its members read its private repos; members with the "
        "write or admin role create and write its repos. Example: add-org acme --member alice --member bob:read",
    )
    add_org.add_argument("name", help="organisation name (not a user's)")
    add_org.add_argument("--fullname", help="display name (default: the name)")
    add_org.add_argument(
        "--member",
        action="append",
        default=[],
        metavar="USER[:ROLE]",
        help="add a member; ROLE read, write (default) or admin",
    )
    _add_storage_options(add_org)
    remove = sub.add_parser(
        "remove-member", help="take a user out of an organisation", description="Take a user out of an organisation."
    )
    remove.add_argument("org", help="organisation name")
    remove.add_argument("user", help="user name")
    _add_storage_options(remove)


def _add_token_commands(sub) -> None:
    tokens = sub.add_parser(
        "list-tokens", help="list tokens (never their values)", description="List tokens: id, user, role, dates."
    )
    _add_storage_options(tokens)
    tokens.add_argument("--user", help="only this user's tokens")
    revoke = sub.add_parser(
        "revoke-token",
        help="revoke a token at once",
        description="Revoke a token (by its value or its id), or every token of a user with --user (which also "
        "ends the user's browser sessions). A revoked token is refused from the next request on.",
    )
    _add_storage_options(revoke)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("token", nargs="?", help="the token's value")
    which.add_argument("--id", type=int, help="the token's id (see list-tokens)")
    which.add_argument("--user", help="revoke every token of this user")


def _add_user(storage, args: argparse.Namespace) -> int:
    if args.expires_in is not None and args.expires_in <= 0:
        raise errors.BadRequest(f"invalid --expires-in {args.expires_in}: expected a number of days >= 1")
    expires = utcnow() + dt.timedelta(days=args.expires_in) if args.expires_in else None
    storage.add_user(args.name, exist_ok=True)
    token = storage.meta.create_token(args.name, role=args.role, expires_at=expires)
    until = f", expires {format_date(expires)}" if expires else ""
    print(f"User {args.name!r} in {storage.root}; {args.role} token{until}:")
    print(token)
    return 0


def _list_tokens(storage, args: argparse.Namespace) -> int:
    print("id\tuser\trole\tname\tcreated\texpires\trevoked")
    for t in storage.meta.list_tokens(args.user):
        dates = [format_date(t[k]) if t[k] else "-" for k in ("created_at", "expires_at", "revoked_at")]
        print("\t".join([str(t["id"]), t["user"], t["role"], t["display_name"], *dates]))
    return 0


def _revoke_token(storage, args: argparse.Namespace) -> int:
    if args.token:
        count = int(storage.meta.revoke_token(args.token.strip()))
    else:
        count = storage.meta.revoke_tokens(token_id=args.id, user=args.user)
    if not count:
        print("error: no live token matched", file=sys.stderr)
        return 1
    print(f"revoked {count} token(s)")
    return 0


def _add_org(storage, args: argparse.Namespace) -> int:
    members = [(spec.partition(":")[0], spec.partition(":")[2] or "write") for spec in args.member]
    for user, role in members:  # everything checked before anything is written
        check_role(role)
        if not storage.meta.user_exists(user):
            raise errors.NotFound(f"User {user!r} does not exist (add it first: add-user {user})")
    storage.orgs.add_org(args.name, fullname=args.fullname, exist_ok=True)
    for user, role in members:
        storage.orgs.set_member(args.name, user, role)
    listed = ", ".join(f"{user} ({role})" for user, role in storage.orgs.members(args.name).items()) or "no members"
    print(f"Organisation {args.name!r} in {storage.root}: {listed}")
    return 0


def _remove_member(storage, args: argparse.Namespace) -> int:
    if not storage.orgs.remove_member(args.org, args.user):
        print(f"error: {args.user!r} is not a member of {args.org!r}", file=sys.stderr)
        return 1
    print(f"removed {args.user!r} from {args.org!r}")
    return 0


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
            command = {
                "add-user": _add_user,
                "list-tokens": _list_tokens,
                "revoke-token": _revoke_token,
                "add-org": _add_org,
                "remove-member": _remove_member,
            }
            return command[args.command](storage, args)
        finally:
            storage.close()
    except errors.HubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
