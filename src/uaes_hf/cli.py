"""The ``uaes`` command line: a thin shell over the library.

Each subcommand lives in ``uaes_hf.commands.<name>`` and exposes ``register(subparsers)``;
this module only assembles them, so adding a command never touches the others, and
``uaes --help`` imports no heavy library.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

# Order is the order shown in `uaes --help`: the pipeline's stages, then `run`.
COMMANDS: tuple[str, ...] = (
    "prepare",
    "annotate",
    "extract",
    "align",
    "report",
    "run",
    "publish",
    "retrieval",  # the related aesthetic-retrieval study
)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``uaes`` parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="uaes",
        description=(
            "Measure whether different AI models agree (converge) on aesthetic data: "
            "poems vs plain text, high- vs low-rated poems, beautiful vs plain images."
        ),
        epilog="Run `uaes <command> --help` for the options of one stage.",
    )
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMANDS:
        import_module(f"uaes_hf.commands.{name}").register(subparsers)
    return parser


def _version() -> str:
    from uaes_hf import __version__

    return f"uaes-hf {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``uaes`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; finished work is saved and a rerun resumes.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
