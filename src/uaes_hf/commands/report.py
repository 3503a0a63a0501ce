"""``uaes report``: re-render a report (figures + index.html) from stored results."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``uaes report``."""
    parser = subparsers.add_parser(
        "report",
        help="re-draw figures and index.html from stored results (no model is run)",
        description=(
            "Re-render a report from stored results: RESULTS_DIR is a report folder (or its "
            "results/ folder) written by `uaes run`. Figures are drawn again from the CSV/JSON "
            "results and index.html is rewritten, with every figure captioned with its numbers."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "results_dir", metavar="RESULTS_DIR", help="a report folder or its results/ folder"
    )
    parser.add_argument("--out", default="report", metavar="DIR", help="report folder to write")
    parser.add_argument("--dpi", type=int, default=110, help="figure resolution")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Load the results and publish the report."""
    from uaes_hf.experiments.report import console_summary, load_results, publish_report

    try:
        results = load_results(args.results_dir)
    except ValueError as err:
        print(f"uaes report: {err}", file=sys.stderr)
        return 2
    index = publish_report(
        args.results_dir, args.out, dpi=args.dpi, show_progress=not args.no_progress
    )
    print(console_summary(results))
    print(f"report: {index}")
    return 0
