"""``uaes align``: score the alignment of two feature files.

Example:
    uaes align llm.npy vit.safetensors --k 10 --permutations 1000 --json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

METRIC_CHOICES = ("mutual_knn", "cka", "unbiased_cka", "cknna")


def register(subparsers: Any) -> None:
    """Add the ``align`` subcommand."""
    parser = subparsers.add_parser(
        "align",
        help="score how much two models' features agree (mutual kNN, CKA, CKNNA)",
        description=(
            "Score the alignment of two representations of the same N samples (row i of "
            "both files is sample i). Prints the score, the chance level k/(N-1) for kNN "
            "metrics, and with --permutations a calibrated score ((s - tau)/(1 - tau), tau "
            "the 95%% quantile of scores with B's rows shuffled) and a permutation p-value."
        ),
        epilog="Files: .npy, .safetensors (--key for several tensors), .pt, .csv (numeric).",
    )
    parser.add_argument("a_file", help="features of model A: N x D_a")
    parser.add_argument("b_file", help="features of model B: N x D_b (same N, same order)")
    parser.add_argument("--k", type=int, default=10, help="neighbours per sample (default 10)")
    parser.add_argument(
        "--metric", choices=METRIC_CHOICES, default="mutual_knn", help="default mutual_knn"
    )
    parser.add_argument(
        "--permutations",
        type=int,
        default=0,
        help="permutations for the calibrated score and p-value (e.g. 1000; 0 = skip)",
    )
    parser.add_argument(
        "--alpha", type=float, default=0.05, help="null quantile 1 - alpha (default 0.05)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the permutations")
    parser.add_argument(
        "--per-sample",
        metavar="OUT.csv",
        help="write per-sample mutual kNN scores (row, score) to this CSV",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (neighbour search)")
    parser.add_argument(
        "--dtype", choices=("float32", "float64"), default="float32", help="search precision"
    )
    parser.add_argument("--key", help="tensor name inside .safetensors/.pt files")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``uaes align``; returns the exit code (2 on bad input, with a message)."""
    try:
        result = _align(args)
    except ValueError as err:
        print(f"uaes align: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, value in result.items():
            if value is not None:
                shown = f"{value:.6g}" if isinstance(value, float) else value
                print(f"{name:>16}: {shown}")
    return 0


def _align(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from uaes_hf.alignment import (
        chance_level,
        mutual_knn_per_sample,
        permutation_test,
        score,
    )
    from uaes_hf.feature_files import read_features

    a = read_features(args.a_file, key=args.key)
    b = read_features(args.b_file, key=args.key)
    search = {"device": args.device, "dtype": args.dtype}
    if args.per_sample and args.metric != "mutual_knn":
        raise ValueError("--per-sample is available for --metric mutual_knn only")
    knn_metric = args.metric in ("mutual_knn", "cknna")
    result: dict[str, Any] = {
        "metric": args.metric,
        "n_samples": int(a.shape[0]),
        "k": args.k if knn_metric else None,
    }
    if args.metric == "mutual_knn":
        per_sample = mutual_knn_per_sample(a, b, args.k, **search)
        result["score"] = float(per_sample.mean())
        if args.per_sample:
            table = np.column_stack([np.arange(per_sample.size), per_sample])
            np.savetxt(
                args.per_sample,
                table,
                delimiter=",",
                header="row,score",
                comments="",
                fmt=["%d", "%.6f"],
            )
    else:
        result["score"] = float(score(a, b, args.metric, args.k, **search))
    is_mknn = args.metric == "mutual_knn"
    result["chance_level"] = chance_level(args.k, a.shape[0]) if is_mknn else None
    if args.permutations:
        calibrated = permutation_test(
            a,
            b,
            args.k,
            metric=args.metric,
            n_permutations=args.permutations,
            alpha=args.alpha,
            seed=args.seed,
            **search,
        )
        result.update(
            calibrated_score=calibrated.calibrated,
            p_value=calibrated.p_value,
            null_quantile=calibrated.null_quantile,
            n_permutations=calibrated.n_permutations,
        )
    return result
