"""``uaes publish metric``: push an evaluate metric module to the Hub as a Space.

Examples:
    uaes publish metric --repo my-org/cka --dry-run space_files/   (offline: the exact files)
    HF_TOKEN=... uaes publish metric --repo my-org/cka             (module from metrics/cka)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``uaes publish``."""
    parser = subparsers.add_parser(
        "publish",
        help="push a metric module (script, card, app) to the Hub as a Space",
        description=(
            "Push an evaluate metric module folder (metrics/<name>/: the module script, its "
            "card README.md, app.py, requirements.txt) to the Hub as a Gradio Space, after "
            "checking its card header and its uaes-hf pin. The token comes from HF_TOKEN."
        ),
    )
    kinds = parser.add_subparsers(dest="kind", metavar="<kind>", required=True)
    metric = kinds.add_parser("metric", help="an evaluate metric module")
    metric.add_argument("--repo", required=True, help="the Space, ORG/NAME")
    metric.add_argument(
        "--module",
        metavar="DIR",
        help="the module folder (default: metrics/<NAME of --repo> under the current folder)",
    )
    metric.add_argument(
        "--dry-run", metavar="OUT", help="write the exact files to OUT instead of pushing"
    )
    metric.add_argument("--private", action="store_true", help="create the Space as private")
    metric.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``uaes publish metric``; 2 on bad input, with a one-line message."""
    from uaes_hf.hub.publish import check_repo_id, module_files, push, stage

    try:
        repo = check_repo_id(args.repo)
        module = Path(args.module or Path("metrics") / repo.split("/", 1)[1])
        if args.dry_run:
            out = stage(module, Path(args.dry_run))
            files = module_files(out)
            print(f"dry run: {len(files)} files for the Space {repo} written to {out}:")
            for path in files:
                print(f"  {path}")
            return 0
        with tempfile.TemporaryDirectory() as tmp:
            staged = stage(module, Path(tmp) / module.name)
            url = push(staged, repo, private=args.private)
        print(f"published {module} to {url}")
        return 0
    except ValueError as err:
        print(f"uaes publish: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"uaes publish: error: {err}", file=sys.stderr)
        return 2
