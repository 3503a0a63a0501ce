"""``uaes retrieval``: the aesthetic-retrieval study (arXiv 2406.09397, our implementation).

Examples:
    uaes retrieval run --out retrieval_report/            # offline, packaged parts
    uaes retrieval run --config hub.yaml --out report/    # a Hub CLIP and a real VLM judge
    uaes retrieval example-config > hub.yaml
    uaes retrieval app --run retrieval_report/            # vote + results tabs (Gradio)
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``retrieval`` subcommand and its actions."""
    parser = subparsers.add_parser(
        "retrieval",
        help="aesthetic retrieval: rephrasing, fine-tuning, judged win rates, HPIR",
        description=__doc__.split("\n\n")[0],
    )
    actions = parser.add_subparsers(dest="action", metavar="<action>")
    run = actions.add_parser("run", help="run the whole study and write a report")
    run.add_argument("--out", required=True, help="report folder (index.html, summary.json)")
    run.add_argument("--config", help="YAML overrides of the defaults (see example-config)")
    run.add_argument("--votes", help="HPIR vote file (JSON lines from the vote tab)")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.set_defaults(func=_run)
    example = actions.add_parser("example-config", help="print a config for a Hub CLIP + VLM")
    example.set_defaults(func=_example)
    app = actions.add_parser("app", help="serve the vote and results tabs of a finished run")
    app.add_argument("--run", required=True, help="folder written by `uaes retrieval run`")
    app.add_argument("--votes", default="votes.jsonl", help="where votes are appended")
    app.add_argument("--port", type=int, default=7861)
    app.set_defaults(func=_app)
    parser.set_defaults(func=lambda _args: parser.print_help() or 0)


def _run(args: argparse.Namespace) -> int:
    import dataclasses

    from uaes_hf.retrieval.config import load_config
    from uaes_hf.retrieval.pipeline import run_retrieval

    try:
        cfg = load_config(args.config)
        if args.votes:
            cfg = dataclasses.replace(cfg, votes=args.votes)
        summary = run_retrieval(cfg, args.out, progress=not args.no_progress)
    except ValueError as err:
        print(f"uaes retrieval run: error: {err}", file=sys.stderr)
        return 2
    lines = {"n_queries": summary["n_queries"], "judge": summary["judge"]}
    for name, comparison in summary["comparisons"].items():
        lines[name] = (
            f"win {comparison['win_rate']:.3f} [{comparison['ci_low']:.3f}, "
            f"{comparison['ci_high']:.3f}], similar {comparison['similar_rate']:.3f}, "
            f"win-or-similar {comparison['win_or_similar_rate']:.3f}"
        )
    for system, metrics in summary["metrics"].items():
        lines[f"aesthetics@k {system}"] = round(metrics["aesthetics"]["mean"], 3)
    print(json.dumps(lines, indent=2))
    from uaes_hf.retrieval.layout import RetrievalLayout

    print(f"report: {RetrievalLayout(args.out).index}", file=sys.stderr)
    return 0


def _example(_args: argparse.Namespace) -> int:
    from uaes_hf.retrieval.config import hub_example_text

    print(hub_example_text(), end="")
    return 0


def _app(args: argparse.Namespace) -> int:
    from uaes_hf.retrieval.tabs import build_run_app

    try:
        demo, allowed = build_run_app(args.run, args.votes)
    except ValueError as err:
        print(f"uaes retrieval app: error: {err}", file=sys.stderr)
        return 2
    demo.launch(server_port=args.port, allowed_paths=allowed)
    return 0
