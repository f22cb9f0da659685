"""`resnet-model hub`: the self-hosted Hub's own commands (`serve`, `add-user`) as a group of this CLI."""

from __future__ import annotations

import argparse

from ..errors import UserError
from ._common import PROG, add_command

EXAMPLES = [
    "resnet-model hub add-user alice --root ./hub-data     # prints a write token on its last line",
    "resnet-model hub serve --root ./hub-data --port 8765",
    "resnet-model hub serve --help",
]


def register(sub: argparse._SubParsersAction) -> None:
    """Add `hub`, whose arguments the hub server's own parser reads (so its help names `resnet-model hub`)."""
    parser = add_command(
        sub,
        "hub",
        help="run the self-hosted Hub (serve, add-user)",
        description="Serve a Hugging Face Hub-compatible server, or add a user to it. "
        "'resnet-model hub COMMAND --help' lists a command's options.",
        examples=EXAMPLES,
        run=run,
        add_help=False,  # every argument, --help included, goes to the hub server's parser
        prefix_chars="\0",
    )
    parser.add_argument("hub_args", nargs=argparse.REMAINDER, metavar="COMMAND ...", help="serve | add-user")


def run(args: argparse.Namespace) -> int:
    """Hand the arguments to the hub server's command line."""
    try:
        from hub_server.cli import main as hub_main
    except ImportError:
        raise UserError("the hub server is not installed; install resnet-model[hub]") from None
    try:
        return hub_main(args.hub_args, prog=f"{PROG} hub")
    except SystemExit as exit_:  # its parser exits on --help and on usage errors, as argparse does
        return int(exit_.code or 0)
