"""``uaes report``: re-render a report from stored results, or compare two runs' results.

Examples:
    uaes report report/ --out report_again/
    uaes report diff old_report/ new_report/ --tolerance 1e-12
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

MAX_SHOWN = 50


def register(subparsers: Any) -> None:
    """Add ``uaes report``."""
    parser = subparsers.add_parser(
        "report",
        help="re-draw figures and index.html from stored results, or diff two runs' results",
        description=(
            "Re-render a report from stored results: RESULTS_DIR is a report folder (or its "
            "results/ folder) written by `uaes run`. Figures are drawn again from the CSV/JSON "
            "results and index.html is rewritten, with every figure captioned with its numbers. "
            "`uaes report diff OLD NEW` instead compares every CSV and JSON file under the two "
            "results/ folders (numbers within --tolerance, strings exactly; timings, paths and "
            "creation times ignored) and exits 1 on any difference."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="RESULTS_DIR",
        help="a report folder or its results/ folder; or `diff OLD_DIR NEW_DIR`",
    )
    parser.add_argument("--out", default="report", metavar="DIR", help="report folder to write")
    parser.add_argument("--dpi", type=int, default=110, help="figure resolution")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-12,
        help="diff: largest difference of two numbers still counted as equal (relative above 1)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Publish the report, or diff two results folders."""
    paths = list(args.paths)
    if paths[0] == "diff" and len(paths) == 3:
        return diff(paths[1], paths[2], args.tolerance)
    if len(paths) != 1:
        print(
            f"uaes report: give one RESULTS_DIR, or `diff OLD_DIR NEW_DIR`; got {' '.join(paths)}",
            file=sys.stderr,
        )
        return 2
    from uaes_hf.experiments.report import console_summary, load_results, publish_report

    try:
        results = load_results(paths[0])
    except ValueError as err:
        print(f"uaes report: {err}", file=sys.stderr)
        return 2
    index = publish_report(paths[0], args.out, dpi=args.dpi, show_progress=not args.no_progress)
    print(console_summary(results))
    print(f"report: {index}")
    return 0


def diff(old: str, new: str, tolerance: float) -> int:
    """Print the differences of two runs' results; 0 when equal, 1 when not, 2 on bad input."""
    from uaes_hf.experiments.report import diff_results

    try:
        found = diff_results(old, new, tolerance=tolerance)
    except (ValueError, OSError) as err:
        print(f"uaes report diff: {err}", file=sys.stderr)
        return 2
    for difference in found[:MAX_SHOWN]:
        print(difference)
    if len(found) > MAX_SHOWN:
        print(f"... and {len(found) - MAX_SHOWN} more")
    if found:
        print(f"{len(found)} difference(s) above {tolerance:g} between {old} and {new}")
        return 1
    print(f"no difference above {tolerance:g} between the results of {old} and {new}")
    return 0
