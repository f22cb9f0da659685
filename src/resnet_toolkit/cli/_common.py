"""What every command shares: the parser class, argument types, hub and output options, examples in help."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Callable

from ..errors import UserError

PROG = "resnet-model"
DEBUG_ENV = "RESNET_MODEL_DEBUG"


class CliParser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit status 2)."""

    def error(self, message: str) -> None:
        """Print one line naming the problem and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    *,
    help: str,
    description: str,
    examples: list[str],
    run: Callable[[argparse.Namespace], int],
    add_help: bool = True,
    prefix_chars: str = "-",
) -> argparse.ArgumentParser:
    """Add subcommand `name` with its description, examples at the end of its help, and `--debug`/`--verbose`."""
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)
    parser = sub.add_parser(
        name,
        help=help,
        description=textwrap.fill(description, width=100),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=add_help,
        prefix_chars=prefix_chars,
    )
    if add_help:
        add_output_options(parser, default=argparse.SUPPRESS)
    parser.set_defaults(run=run)
    return parser


def add_output_options(parser: argparse.ArgumentParser, default: object = False) -> None:
    """`--verbose` (the libraries' own progress bars and logs) and `--debug` (tracebacks)."""
    parser.add_argument(
        "--verbose", action="store_true", default=default, help="also show Transformers' own progress bars and logs"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help=f"print the full traceback of an error (or set {DEBUG_ENV}=1)",
    )


def add_hub_options(parser: argparse.ArgumentParser) -> None:
    """`--endpoint` and `--token`."""
    parser.add_argument("--endpoint", metavar="URL", help="Hub URL (default: $HF_ENDPOINT or https://huggingface.co)")
    parser.add_argument("--token", help="Hub token (default: $HF_TOKEN or the stored login)")


def apply_environment(args: argparse.Namespace) -> None:
    """Before huggingface_hub is imported (it reads its settings once): a command's own environment variables
    (`parser.set_defaults(environment={...})`) and `--endpoint` as HF_ENDPOINT."""
    os.environ.update(getattr(args, "environment", None) or {})
    endpoint = getattr(args, "endpoint", None)
    if not endpoint:
        return
    if not endpoint.startswith(("http://", "https://")):
        raise UserError(f"--endpoint must be an http(s) URL, got {endpoint!r}")
    endpoint = endpoint.rstrip("/")
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import constants

        if constants.ENDPOINT != endpoint:
            raise UserError("--endpoint must be given before huggingface_hub is loaded; set HF_ENDPOINT instead")
    os.environ["HF_ENDPOINT"] = endpoint
