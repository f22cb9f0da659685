"""The `resnet-model` command line: one module per command, each registering itself; errors mapped in `_errors`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from ..errors import CheckFailed, UserError
from ._common import DEBUG_ENV, PROG, CliParser, add_output_options, apply_environment
from ._errors import EXIT_FAILED, Context, explain

# (module, command) in the order `resnet-model --help` lists them; each module has `register(subparsers)`.
COMMANDS = ("convert", "train", "push", "predict", "verify", "audit", "hub", "demo")

EXAMPLES = """examples:
  resnet-model convert resnet18 --random-init --out resnet18-hf
  resnet-model train --data digits --variant tiny --epochs 3 --out digits-run
  resnet-model push digits-run/model alice/digits-resnet --endpoint http://127.0.0.1:8765
  resnet-model hub serve --root ./hub-data
  resnet-model COMMAND --help"""


def build_parser() -> argparse.ArgumentParser:
    """The parser of `resnet-model` with every command registered."""
    parser = CliParser(
        prog=PROG,
        description="timm ResNets as Transformers custom-code models: convert, train, share, audit.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_output_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CliParser)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _debug_requested(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes")


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (errors: one line on stderr, see `_errors`)."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already printed as one line
        return int(exit_.code or 0)
    try:
        apply_environment(args)  # before huggingface_hub is imported
        from ..progress import library_output

        with library_output(verbose=bool(getattr(args, "verbose", False))):
            return args.run(args)
    except (Exception, KeyboardInterrupt) as error:
        explained = explain(error, Context.from_args(args))
        if explained is None:
            raise  # not a failure we know: a bug, shown with its traceback
        message, status = explained
        debug = _debug_requested(args)
        if debug:
            traceback.print_exc()
        from_a_library = not isinstance(error, (UserError, CheckFailed, KeyboardInterrupt))
        hint = f" [--debug or {DEBUG_ENV}=1 shows the traceback]" if from_a_library and not debug else ""
        label = "failed" if status == EXIT_FAILED else "error"
        print(f"{PROG} {args.command}: {label}: {message}{hint}", file=sys.stderr)
        return status
