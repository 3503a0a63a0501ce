"""``uaes align``: score the alignment of two feature files.

Examples:
    uaes align llm.npy vit.safetensors -k 10 --permutations 1000 --json
    uaes align features/poems/<fp>/smollm2-135m/mean features/poems/<fp>/gpt2/mean
        (feature-store folders or N x L x D stacks: best layer pair, search-corrected)
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
            "the (1 - alpha) quantile of scores with B's rows shuffled) and a permutation p-value."
        ),
        epilog=(
            "Inputs: .npy, .safetensors (--key for several tensors), .pt, .csv (numeric), "
            "each N x D or an N x L x D layer stack, or a feature-store entry folder "
            "(features.safetensors + meta.json from `uaes extract`). When an input has "
            "several layers and no --layer-a/--layer-b picks one, every layer pair is "
            "scored and the best is reported; its permutation null (--permutations) takes "
            "the max over the grid, so the search is corrected."
        ),
    )
    parser.add_argument("a_file", help="features of model A: N x D_a file, stack, or store folder")
    parser.add_argument("b_file", help="features of model B: same N samples, same row order")
    parser.add_argument(
        "-k", "--k", type=int, default=10, help="neighbours per sample (default 10)"
    )
    parser.add_argument(
        "--layer-a", type=int, help="use this layer of A (negative counts from the last)"
    )
    parser.add_argument(
        "--layer-b", type=int, help="use this layer of B (negative counts from the last)"
    )
    parser.add_argument(
        "--grid", metavar="OUT.csv", help="with a layer search, write the L_A x L_B score grid"
    )
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


def _pick_layer(layers: list[Any], index: int | None, name: str) -> list[Any]:
    if index is None:
        return layers
    if not -len(layers) <= index < len(layers):
        raise ValueError(
            f"--layer-{name} {index} is out of range: {name.upper()} has {len(layers)} layer(s)"
        )
    return [layers[index]]


def _align(args: argparse.Namespace) -> dict[str, Any]:
    from uaes_hf.feature_files import read_layers

    layers_a = _pick_layer(read_layers(args.a_file, key=args.key), args.layer_a, "a")
    layers_b = _pick_layer(read_layers(args.b_file, key=args.key), args.layer_b, "b")
    if len(layers_a) == 1 and len(layers_b) == 1:
        if args.grid:
            raise ValueError("--grid needs a layer search (inputs with several layers)")
        return _align_pair(args, layers_a[0], layers_b[0])
    return _align_layers(args, layers_a, layers_b)


def _align_layers(args: argparse.Namespace, layers_a: list[Any], layers_b: list[Any]) -> dict:
    import numpy as np

    from uaes_hf.alignment import best_layer_pair, chance_level

    if args.metric != "mutual_knn":
        raise ValueError(
            f"a layer search is available for --metric mutual_knn only; pick one layer of "
            f"each input with --layer-a/--layer-b to use {args.metric}"
        )
    if args.per_sample:
        raise ValueError("--per-sample needs one layer per input; add --layer-a/--layer-b")
    found = best_layer_pair(
        layers_a,
        layers_b,
        args.k,
        permutations=args.permutations,
        alpha=args.alpha,
        seed=args.seed,
        device=args.device,
        dtype=args.dtype,
        progress=args.permutations >= 200,
    )
    if args.grid:
        np.savetxt(args.grid, found.grid, delimiter=",", fmt="%.6f")
    n = int(layers_a[0].shape[0])
    result: dict[str, Any] = {
        "metric": "mutual_knn",
        "n_samples": n,
        "k": found.k,
        "layers_a": len(layers_a),
        "layers_b": len(layers_b),
        "best_layer_a": found.layer_a if args.layer_a is None else args.layer_a,
        "best_layer_b": found.layer_b if args.layer_b is None else args.layer_b,
        "score": found.score,
        "chance_level": chance_level(found.k, n),
    }
    if found.calibration is not None:
        result.update(
            calibrated_score=found.calibration.calibrated,
            p_value=found.calibration.p_value,
            null_quantile=found.calibration.null_quantile,
            n_permutations=found.calibration.n_permutations,
        )
    if args.json:
        result["grid"] = found.grid.tolist()
    return result


def _align_pair(args: argparse.Namespace, a: Any, b: Any) -> dict[str, Any]:
    import numpy as np

    from uaes_hf.alignment import (
        chance_level,
        mutual_knn_per_sample,
        permutation_test,
        score,
    )

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
