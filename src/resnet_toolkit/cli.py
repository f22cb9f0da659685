"""The `resnet-model` command line."""

from __future__ import annotations

import argparse
import os
import sys

from .errors import CheckFailed, UserError

PROG = "resnet-model"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit status 2)."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _add_hub_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", help="Hub URL (default: $HF_ENDPOINT or https://huggingface.co)")
    parser.add_argument("--token", help="Hub token (default: $HF_TOKEN or the stored login)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    from .demo import DEFAULT_EPOCHS, DEFAULT_OUT
    from .train import VARIANT_HELP

    parser = _Parser(prog=PROG, description="timm ResNets as Transformers custom-code models: convert, train, share.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "convert",
        help="turn a timm ResNet into a ready-to-push folder",
        description=(
            "Convert a timm ResNet (local checkpoint, timm's pretrained weights, or random init) into a folder with "
            "config, safetensors weights, image processor and modelling code; checks parity with timm on the way."
        ),
    )
    p.add_argument("timm_name", metavar="TIMM_NAME", help="timm variant, e.g. resnet50d or resnet18.a1_in1k")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (must be new or empty)")
    p.add_argument("--checkpoint", metavar="FILE", help="timm weights (.safetensors or torch file)")
    p.add_argument("--random-init", action="store_true", help="no weights: timm's random initialisation")
    p.add_argument("--num-classes", type=_positive_int, metavar="N", help="classifier size (head re-initialised)")
    p.add_argument("--labels", metavar="FILE", help="class names: JSON list/object or one per line")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")

    p = sub.add_parser(
        "train",
        help="fine-tune with transformers.Trainer",
        description=(
            "Train on an image folder (one sub-folder per class) or scikit-learn's bundled digits; writes DIR/model, "
            "metrics.json, loss_accuracy.png and confusion_matrix.png."
        ),
    )
    p.add_argument("--data", required=True, metavar="DIR|digits", help="image folder, or 'digits'")
    p.add_argument("--variant", required=True, metavar="NAME_OR_CONFIG", help=VARIANT_HELP)
    p.add_argument("--epochs", required=True, type=_positive_float, metavar="N", help="training epochs")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (must be new or empty)")
    p.add_argument("--push", metavar="REPO", help="push DIR/model to this repo afterwards")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="batch size (default: 64)")
    p.add_argument("--lr", type=_positive_float, default=2e-3, help="learning rate (default: 0.002)")
    p.add_argument("--image-size", type=_positive_int, help="resize images to this square size")
    p.add_argument("--test-size", type=_positive_float, default=0.2, help="held-out fraction (default: 0.2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--private", action="store_true", help="with --push: create the repo private")
    _add_hub_options(p)

    p = sub.add_parser(
        "push",
        help="upload a model folder; prints the commit SHA to pin",
        description=(
            "Upload a saved model folder as one commit; print the commit SHA and the from_pretrained line pinned to it."
        ),
    )
    p.add_argument("dir", metavar="DIR", help="saved model folder")
    p.add_argument("repo", metavar="REPO", help="repo id, e.g. user/my-resnet")
    p.add_argument("--private", action="store_true", help="create the repo private")
    _add_hub_options(p)

    p = sub.add_parser(
        "predict",
        help="classify images (remote code only with --trust-remote-code)",
        description=(
            "Classify images with a model folder or Hub repo. Shows the repo, the commit and every code file (sha256) "
            "that runs; refuses remote code without --trust-remote-code."
        ),
    )
    p.add_argument("source", metavar="DIR_OR_REPO", help="model folder or repo id")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    p.add_argument("--revision", metavar="SHA", help="commit SHA (a branch or tag works, with a warning)")
    p.add_argument("--top-k", type=_positive_int, default=5, metavar="K", help="labels per image (default: 5)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the repo's code to run")
    p.add_argument("--require-pinned", action="store_true", help="refuse a revision that is not a full commit SHA")
    p.add_argument(
        "--no-fast-path",
        dest="fast_path",
        action="store_false",
        default=None,
        help="run the model as loaded (default: the fastest engine measured on this machine, from 5 images on)",
    )
    _add_hub_options(p)

    p = sub.add_parser(
        "verify",
        help="parity report against timm",
        description=(
            "Load the weights of a folder or repo into this package's classes and into timm's model, and compare "
            "their outputs. Runs no remote code."
        ),
    )
    p.add_argument("source", metavar="DIR_OR_REPO", help="model folder or repo id")
    p.add_argument("--timm", required=True, metavar="NAME", help="timm variant to compare with")
    p.add_argument("--revision", metavar="SHA", help="repo revision")
    _add_hub_options(p)

    p = sub.add_parser(
        "audit",
        help="list and diff the code a remote-code load would run",
        description=(
            "List every code file a trust_remote_code load of REPO at --revision would execute (auto_map entries, "
            "cross-repo references, relative imports) with sha256, and diff it against a trusted version. Downloads "
            "and reads text only; nothing is imported. Exit status 1 when the code differs."
        ),
    )
    p.add_argument("repo", metavar="REPO", help="repo id")
    p.add_argument("--revision", required=True, metavar="SHA", help="commit SHA to audit")
    p.add_argument("--against", metavar="DIR_OR_SHA", help="trusted code: a folder or a commit SHA of REPO")
    _add_hub_options(p)

    p = sub.add_parser(
        "hub",
        help="run the self-hosted Hub (serve, add-user)",
        description=(
            "Delegate to the hub server: 'resnet-model hub serve --root DIR', "
            "'resnet-model hub add-user NAME --root DIR'. Run 'resnet-model hub serve --help' for its options."
        ),
    )
    p.add_argument("hub_command", choices=("serve", "add-user"), metavar="{serve,add-user}", help="hub command")
    p.add_argument("hub_args", nargs=argparse.REMAINDER, help="arguments for the hub command")

    p = sub.add_parser(
        "demo",
        help="train → push to an embedded Hub → reload pinned in a fresh process",
        description=(
            "Train a small ResNet on scikit-learn's digits, push it to an embedded Hub, reload it pinned at the "
            "pushed commit in a fresh process without resnet_model, and report held-out accuracy."
        ),
    )
    p.add_argument(
        "--epochs", type=_positive_float, default=DEFAULT_EPOCHS, help=f"training epochs (default: {DEFAULT_EPOCHS})"
    )
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default: {DEFAULT_OUT})")
    return parser


def _apply_hub_options(args: argparse.Namespace) -> None:
    """Point huggingface_hub at `--endpoint` before it is imported (it reads HF_ENDPOINT once)."""
    endpoint = getattr(args, "endpoint", None)
    if endpoint:
        if not endpoint.startswith(("http://", "https://")):
            raise UserError(f"--endpoint must be an http(s) URL, got {endpoint!r}")
        if "huggingface_hub" in sys.modules:
            from huggingface_hub import constants

            if constants.ENDPOINT != endpoint.rstrip("/"):
                raise UserError("--endpoint must be given before huggingface_hub is loaded; set HF_ENDPOINT instead")
        os.environ["HF_ENDPOINT"] = endpoint.rstrip("/")


def run(args: argparse.Namespace) -> int:
    """Execute one parsed command; returns the exit status."""
    _apply_hub_options(args)
    if args.command == "convert":
        from .convert import convert, read_labels

        labels = read_labels(args.labels) if args.labels else None
        convert(args.timm_name, args.out, args.checkpoint, args.random_init, args.num_classes, labels, args.overwrite)
        return 0
    if args.command == "train":
        from .train import train

        result = train(
            args.data,
            args.variant,
            args.epochs,
            args.out,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            image_size=args.image_size,
            test_size=args.test_size,
            seed=args.seed,
            overwrite=args.overwrite,
        )
        if args.push:
            from .hub import push

            push(result.model_dir, args.push, endpoint=args.endpoint, token=args.token, private=args.private)
        return 0
    if args.command == "push":
        from .hub import push

        push(args.dir, args.repo, endpoint=args.endpoint, token=args.token, private=args.private)
        return 0
    if args.command == "predict":
        from .predict import predict

        predict(
            args.source,
            args.images,
            args.revision,
            args.top_k,
            args.trust_remote_code,
            args.require_pinned,
            args.token,
            fast_path=args.fast_path,
        )
        return 0
    if args.command == "verify":
        from .verify import verify

        report = verify(args.source, args.timm, args.revision)
        print("\n".join(report.lines()))
        return 0 if report.ok else 1
    if args.command == "audit":
        from .audit import audit

        return 0 if audit(args.repo, args.revision, args.against, token=args.token) else 1
    if args.command == "hub":
        try:
            from hub_server.cli import main as hub_main
        except ImportError:
            raise UserError("the hub server is not installed; install resnet-model[hub]") from None
        return hub_main([args.hub_command, *args.hub_args])
    if args.command == "demo":
        os.environ["HF_HUB_OFFLINE"] = "0"  # the demo talks only to its own loopback Hub
        from .demo import demo

        demo(args.epochs, args.out)
        return 0
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `resnet-model` console script."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except UserError as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 2
    except CheckFailed as error:
        print(f"{PROG} {args.command}: failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
