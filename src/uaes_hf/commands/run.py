"""``uaes run``: the whole experiment (prepare -> annotate -> extract -> align -> analyse ->
report), each stage cached by content so a rerun does only what changed."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from uaes_hf.experiments.config import STAGES


def register(subparsers: Any) -> None:
    """Add ``uaes run``."""
    parser = subparsers.add_parser(
        "run",
        help="run the experiment end to end and write report/ (offline default: embedded data)",
        description=(
            "Run the experiment end to end: prepare the data, annotate poems with the aesthetic "
            "judge, extract features of every model, compute mutual-kNN matrices with chance "
            "level, permutation calibration and bootstrap CIs, run the comparisons and "
            "per-sample analyses, and write report/index.html. With no arguments it runs the "
            "embedded default offline (packaged poems, plain texts, images and models). Every "
            "stage is cached by a hash of its inputs and config: a rerun redoes only what changed."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help="experiment YAML (keys you leave out keep the embedded defaults; "
        "configs/study.yaml is the full study); default: the embedded default",
    )
    parser.add_argument(
        "--out",
        default="report",
        metavar="DIR",
        help="report folder to write (index.html, figures/, results/)",
    )
    parser.add_argument(
        "--force",
        action="append",
        default=[],
        choices=STAGES,
        metavar="STAGE",
        help="recompute this stage even if cached, its own checkpoints included (extract: "
        "every model's features in $UAES_HOME/runs/model_features; annotate asks the judge "
        "store again but never re-bills a stored rating); later stages rerun only if its "
        f"outputs change (repeatable; one of {', '.join(STAGES)})",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="use at most N poems and N plain texts (and at most N images) for a quick run",
    )
    parser.add_argument(
        "--work-dir",
        default=None,
        metavar="DIR",
        help="where stage outputs are cached (default: $UAES_HOME/runs)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="validate the config and print the plan; run nothing"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Parse-level glue: load the config, then run or print the plan."""
    from uaes_hf.experiments.config import load_config

    overrides: dict[str, Any] = {}
    if args.limit is not None:
        if args.limit < 1:
            print("uaes run: --limit must be >= 1", file=sys.stderr)
            return 2
        base = load_config(args.config)
        overrides["data"] = {
            "n_poems": min(args.limit, base.data.n_poems or args.limit),
            "n_plain_texts": min(args.limit, base.data.n_plain_texts or args.limit),
            "n_images": min(args.limit, base.data.n_images),
        }
    try:
        cfg = load_config(args.config, overrides=overrides)
    except ValueError as err:
        print(f"uaes run: invalid config: {err}", file=sys.stderr)
        return 2
    from uaes_hf.experiments.layout import default_work_dir
    from uaes_hf.experiments.run import plan_lines, run_experiment

    work_dir = args.work_dir or default_work_dir()
    if args.dry_run:
        print("\n".join(plan_lines(cfg, work_dir)))
        print("config is valid; nothing was run (--dry-run).")
        return 0
    index, results = run_experiment(
        cfg,
        args.out,
        force=tuple(args.force),
        work_dir=work_dir,
        show_progress=not args.no_progress,
    )
    from uaes_hf.experiments.report import console_summary, load_results

    print(console_summary(load_results(args.out)))
    for r in results:
        state = "cached" if r.cached else "ran"
        print(
            f"  {r.name:<9} {state:<6} {r.seconds:8.1f} s (computed in {r.compute_seconds:.1f} s)"
        )
    print(f"report: {index}")
    return 0
