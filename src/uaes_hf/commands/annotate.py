"""``uaes annotate``: rate poems with the LLM judge; compare ratings with humans.

    uaes annotate poems path/to/poems_repo --model gpt-4o --concurrency 8
    uaes annotate poems poems.txt --backend local          # offline, weak scores
    uaes annotate agreement ratings.csv human.csv

This module only parses arguments and calls ``uaes_hf.annotate``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_CONFIG_ERROR = 2
EXIT_SOME_FAILED = 3
EXIT_STORE_FULL = 4


def register(subparsers: Any) -> None:
    """Add ``annotate`` (with ``poems`` and ``agreement``) to the ``uaes`` parser."""
    parser = subparsers.add_parser(
        "annotate",
        help="rate poems 1-5 with an LLM judge; compare ratings with human ratings",
        description=(
            "Aesthetic annotation. `poems` rates every poem with the study's rubric "
            "(GPT-4o or any OpenAI-compatible server, or an offline local model) into a "
            "durable store: stop it any time and rerun the same command to continue; nothing "
            "finished is redone or billed twice. `agreement` compares ratings with humans."
        ),
    )
    sub = parser.add_subparsers(dest="annotate_command", metavar="<what>")
    parser.set_defaults(func=lambda args: (parser.print_help(), 0)[1])

    poems = sub.add_parser(
        "poems",
        help="rate poems 1-5 (resumable)",
        description=(
            "Rate poems with the prompt version's rubric. PATH is a poems dataset folder "
            "(data/<config>/*.parquet with id and text columns), or a .parquet/.csv/.jsonl "
            "file with id and text, or a .txt file with poems separated by '---' lines. "
            "The API key comes from OPENAI_API_KEY only. Several runs may share one store: "
            "an item another run is rating is left to it (and waited for). Exit code 3 when "
            "some items have no rating (rerun to retry them), 2 for a setup error or a dead "
            "endpoint, 4 when the store's disk is full."
        ),
    )
    poems.add_argument("path", type=Path, help="poems dataset folder or poems file")
    poems.add_argument("--config", default="main", help="dataset config under data/ (main)")
    poems.add_argument(
        "--backend",
        choices=("openai", "local"),
        default="openai",
        help="openai: any OpenAI-compatible endpoint; local: packaged SmolLM2-135M (offline, "
        "real but weak scores)",
    )
    poems.add_argument("--model", default=None, help="model name (gpt-4o; local: smollm2-135m)")
    poems.add_argument("--base-url", default=None, help="OpenAI-compatible base URL (.../v1)")
    poems.add_argument(
        "--prompt-version",
        default="poem-aesthetic-v2",
        help="prompt template (poem-aesthetic-v2: the study's request, verbatim)",
    )
    poems.add_argument("--concurrency", type=int, default=8, help="calls in flight (8)")
    poems.add_argument(
        "--max-retries", type=int, default=6, help="retries per call on 429/5xx/timeouts (6)"
    )
    poems.add_argument(
        "--max-reasks", type=int, default=2, help="re-asks after an unusable answer (2)"
    )
    poems.add_argument(
        "--timeout", type=float, default=60.0, help="total seconds per HTTP attempt (60)"
    )
    poems.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="answer token cap (default: the prompt's, 700 for the study's)",
    )
    poems.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (0)")
    poems.add_argument("--seed", type=int, default=0, help="sampling seed sent to the API (0)")
    poems.add_argument(
        "--backoff-base", type=float, default=1.0, help="first retry wait in seconds (1)"
    )
    poems.add_argument(
        "--store",
        type=Path,
        default=None,
        help="result store (SQLite); default $UAES_HOME/annotations/results.sqlite",
    )
    poems.add_argument(
        "--out", type=Path, default=Path("ratings.csv"), help="ratings file (.csv or .jsonl)"
    )
    poems.add_argument("--limit", type=int, default=None, help="rate only the first N poems")
    poems.add_argument(
        "--skip-failed",
        action="store_true",
        help="keep earlier failure records instead of retrying those items",
    )
    poems.add_argument(
        "--leave-claimed",
        action="store_true",
        help="leave items another run on this store is rating to it, instead of waiting",
    )
    poems.add_argument(
        "--lease-seconds",
        type=float,
        default=30.0,
        help="how long this run's claim on an item lives without renewal (30)",
    )
    poems.add_argument("--no-progress", action="store_true", help="no progress bar")
    poems.set_defaults(func=run_poems)

    agreement = sub.add_parser(
        "agreement",
        help="judge vs human ratings: Spearman, quadratic kappa, agreement, confusion",
        description=(
            "Compare judge ratings with human ratings, joined on id. With two files, both "
            "need id and score columns (e.g. ratings.csv from `uaes annotate poems` and a "
            "human CSV of id,score). With one file, it needs id, score and human_score."
        ),
    )
    agreement.add_argument("ratings", type=Path, help="judge ratings (CSV/JSONL: id, score)")
    agreement.add_argument("human", type=Path, nargs="?", help="human ratings (id, score)")
    agreement.add_argument("--score-column", default="score", help="judge score column")
    agreement.add_argument(
        "--human-column",
        default=None,
        help="human score column (default: score in HUMAN, or human_score in RATINGS)",
    )
    agreement.add_argument("--json", action="store_true", help="print JSON instead of text")
    agreement.set_defaults(func=run_agreement)


def run_poems(args: argparse.Namespace) -> int:
    from uaes_hf.annotate.client import ChatConfigError
    from uaes_hf.annotate.export import (
        FAILURE_COLUMNS,
        RATING_COLUMNS,
        failure_rows,
        ratings_rows,
        write_rows,
    )
    from uaes_hf.annotate.judge import judge_poems
    from uaes_hf.annotate.poem_inputs import load_poems
    from uaes_hf.annotate.prompts import get_prompt
    from uaes_hf.annotate.store import ResultStore, StoreFullError

    try:
        prompt = get_prompt(args.prompt_version)
        items = load_poems(args.path, config=args.config, limit=args.limit)
        backend = _backend(args, prompt)
        if args.lease_seconds <= 0:
            raise ValueError(f"--lease-seconds must be > 0, got {args.lease_seconds}")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    store_path = args.store or _default_store()
    print(
        f"{len(items)} poems from {args.path}; store {store_path}; "
        f"{backend.name}:{backend.model} prompt {prompt.version}",
        file=sys.stderr,
    )
    try:
        store = ResultStore(store_path)
    except (ValueError, StoreFullError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_STORE_FULL if isinstance(err, StoreFullError) else EXIT_CONFIG_ERROR
    with store:
        try:
            summary = judge_poems(
                items,
                store,
                backend,
                retry_failed=not args.skip_failed,
                progress=not args.no_progress,
                run_params={"command": "annotate poems", "input": str(args.path)},
                wait_for_others=not args.leave_claimed,
                lease_s=args.lease_seconds,
            )
        except ChatConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_CONFIG_ERROR
        except StoreFullError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_STORE_FULL
        rows = ratings_rows(items, store, backend.name, backend.model, prompt.version)
        failures = failure_rows(items, store, backend.name, backend.model, prompt.version)
    write_rows(rows, args.out, RATING_COLUMNS)
    print(summary.format())
    print(f"wrote {len(rows)} ratings to {args.out}")
    if failures:
        failures_path = args.out.with_name(args.out.stem + ".failures" + args.out.suffix)
        write_rows(failures, failures_path, FAILURE_COLUMNS)
        print(f"{len(failures)} items without a rating: see {failures_path}")
        return EXIT_SOME_FAILED
    return 0


def _backend(args: argparse.Namespace, prompt: Any) -> Any:
    if args.backend == "local":
        from uaes_hf.annotate.local_backend import DEFAULT_LOCAL_MODEL, LocalRatingBackend

        return LocalRatingBackend(model_name=args.model or DEFAULT_LOCAL_MODEL, prompt=prompt)
    from uaes_hf.annotate.client import DEFAULT_MODEL, ChatClient, ChatConfig
    from uaes_hf.annotate.judge import OpenAIRatingBackend

    config = ChatConfig(
        model=args.model or DEFAULT_MODEL,
        base_url=args.base_url,
        timeout=args.timeout,
        max_retries=args.max_retries,
        backoff_base=args.backoff_base,
        concurrency=args.concurrency,
        temperature=args.temperature,
        seed=args.seed,
    )
    return OpenAIRatingBackend(
        ChatClient(config), prompt, max_reasks=args.max_reasks, max_tokens=args.max_tokens
    )


def _default_store() -> Path:
    from uaes_hf.paths import cache_dir

    return cache_dir("annotations") / "results.sqlite"


def run_agreement(args: argparse.Namespace) -> int:
    from uaes_hf.annotate.agreement import agreement_report, read_ratings

    try:
        judge = read_ratings(args.ratings, score_column=args.score_column)
        if args.human is not None:
            human = read_ratings(args.human, score_column=args.human_column or "score")
        else:
            human = read_ratings(args.ratings, score_column=args.human_column or "human_score")
        report = agreement_report(judge, human)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0
