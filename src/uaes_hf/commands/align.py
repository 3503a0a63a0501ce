"""``uaes align``: score the alignment of two feature files (a thin shell over ``compare``).

Examples:
    uaes align llm.npy vit.safetensors -k 10 --permutations 1000 --json
    uaes align A.npy B.npy --metric cka --kernel rbf --rbf-sigma 0.5
    uaes align A.npy B.npy --outlier-quantile 0.95 --per-sample out.csv --per-sample-layers max
        (N x L x D stacks: best layer pair, search-corrected; the study's clamp and
        per-sample max)
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

METRIC_CHOICES = (
    "mutual_knn",
    "cycle_knn",
    "lcs_knn",
    "edit_distance_knn",
    "cknna",
    "cka",
    "unbiased_cka",
    "svcca",
)


def register(subparsers: Any) -> None:
    """Add the ``align`` subcommand."""
    parser = subparsers.add_parser(
        "align",
        help="score how much two models' features agree (the 8 platonic-rep metrics)",
        description=(
            "Score the alignment of two representations of the same N samples (row i of "
            "both files is sample i) with one of the platonic-rep metrics. Prints the score, "
            "its chance level where one exists in closed form, and with --permutations a "
            "calibrated score and a permutation p-value."
        ),
        epilog=(
            "Inputs: .npy, .safetensors (--key for several tensors), .pt, .csv (numeric), "
            "each N x D or an N x L x D layer stack, or a feature-store entry folder "
            "(features.safetensors + meta.json from `uaes extract`). When an input has "
            "several layers and no --layer-a/--layer-b picks one, every layer pair is "
            "scored and the best is reported; its permutation null (--permutations) takes "
            "the max over the grid, so the search is corrected. --outlier-quantile clamps "
            "each whole stack first, as the study did."
        ),
    )
    parser.add_argument("a_file", help="features of model A: N x D_a file, stack, or store folder")
    parser.add_argument("b_file", help="features of model B: same N samples, same row order")
    parser.add_argument(
        "-k", "--k", type=int, default=10, help="neighbours per sample (default 10)"
    )
    parser.add_argument(
        "--metric", choices=METRIC_CHOICES, default="mutual_knn", help="default mutual_knn"
    )
    parser.add_argument(
        "--layer-a", type=int, help="use this layer of A (negative counts from the last)"
    )
    parser.add_argument(
        "--layer-b", type=int, help="use this layer of B (negative counts from the last)"
    )
    parser.add_argument(
        "--layer-selection",
        choices=("best", "reference"),
        default="best",
        help="best: the grid's max (first in row order); reference: the study's loop, which "
        "reports 0 and no pair when no score is above 0 (default best)",
    )
    parser.add_argument(
        "--grid", metavar="OUT.csv", help="with a layer search, write the L_A x L_B score grid"
    )
    parser.add_argument(
        "--permutations",
        type=int,
        default=0,
        help="permutations for the calibrated score and p-value (e.g. 1000; 0 = skip)",
    )
    parser.add_argument("--alpha", type=float, default=0.05, help="calibration level (0.05)")
    parser.add_argument(
        "--calibration",
        choices=("quantile", "order-statistic"),
        default="quantile",
        help="quantile: tau = the (1 - alpha) null quantile, unclamped (default); "
        "order-statistic: calibrated-similarity's tau, score clamped to [0, 1]",
    )
    parser.add_argument("--bootstrap", type=int, default=0, help="bootstrap resamples (CI)")
    parser.add_argument("--ci-level", type=float, default=0.95, help="CI confidence (0.95)")
    parser.add_argument("--seed", type=int, default=0, help="seed of permutations/bootstrap")
    parser.add_argument(
        "--per-sample", metavar="OUT.csv", help="write per-sample scores (row, score) to a CSV"
    )
    parser.add_argument(
        "--per-sample-layers",
        choices=("best", "max", "heldout"),
        default="best",
        help="best: the selected pair; max: the study's element-wise max over all pairs "
        "(inflated; its chance level is printed); heldout: pair chosen on half the rows",
    )
    parser.add_argument(
        "--outlier-quantile",
        type=float,
        metavar="Q",
        help="clamp each input to the Q quantile of |x| first (the study used 0.95)",
    )
    parser.add_argument(
        "--outlier-exact",
        action="store_true",
        help="clamp value from the whole-array sort (default: mean of per-row quantiles)",
    )
    parser.add_argument("--kernel", choices=("linear", "rbf"), help="cka, unbiased_cka")
    parser.add_argument("--rbf-sigma", type=float, help="RBF bandwidth (cka, unbiased_cka)")
    parser.add_argument("--cca-dim", type=int, help="svcca: singular directions kept (10)")
    parser.add_argument("--svd", choices=("exact", "randomized"), help="svcca's SVD (exact)")
    parser.add_argument("--svd-seed", type=int, help="svcca: sketch seed for --svd randomized")
    parser.add_argument(
        "--normalize-lcs", action="store_true", help="lcs_knn: divide the LCS length by k"
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
    except OSError as err:  # unreadable input, unwritable output: one line, no traceback
        where = f" {err.filename}" if getattr(err, "filename", None) else ""
        print(f"uaes align: error:{where} {err.strerror or err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, value in result.items():
            if value is not None and not isinstance(value, (list, dict)):
                shown = f"{value:.6g}" if isinstance(value, float) else value
                print(f"{name:>20}: {shown}")
    return 0


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The metric's options that were given (others keep the library's defaults)."""
    given = {
        "kernel": args.kernel,
        "rbf_sigma": args.rbf_sigma,
        "cca_dim": args.cca_dim,
        "svd": args.svd,
        "svd_seed": args.svd_seed,
        "normalize": True if args.normalize_lcs else None,
    }
    return {name: value for name, value in given.items() if value is not None}


def _check_layer(index: int | None, count: int, name: str) -> None:
    if index is not None and not -count <= index < count:
        raise ValueError(
            f"--layer-{name} {index} is out of range: {name.upper()} has {count} layer(s)"
        )


def _align(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from uaes_hf.alignment import compare
    from uaes_hf.feature_files import read_layers

    layers_a = read_layers(args.a_file, key=args.key)
    layers_b = read_layers(args.b_file, key=args.key)
    _check_layer(args.layer_a, len(layers_a), "a")
    _check_layer(args.layer_b, len(layers_b), "b")
    searched = (len(layers_a) if args.layer_a is None else 1) * (
        len(layers_b) if args.layer_b is None else 1
    )
    if args.grid and searched == 1:
        raise ValueError("--grid needs a layer search (inputs with several layers)")
    result = compare(
        layers_a,
        layers_b,
        metric=args.metric,
        k=args.k,
        permutations=args.permutations,
        per_sample=bool(args.per_sample),
        per_sample_layers=args.per_sample_layers,
        alpha=args.alpha,
        calibration=args.calibration,
        bootstrap=args.bootstrap,
        ci_level=args.ci_level,
        seed=args.seed,
        outlier_quantile=args.outlier_quantile,
        outlier_exact=args.outlier_exact,
        layer_a=args.layer_a,
        layer_b=args.layer_b,
        layer_selection=args.layer_selection,
        device=args.device,
        dtype=args.dtype,
        progress=args.permutations >= 200 and not args.json,
        **_options(args),
    )
    if args.grid:
        np.savetxt(args.grid, result.grid, delimiter=",", fmt="%.9f")
    if args.per_sample:
        table = np.column_stack([result.per_sample_rows, result.per_sample])
        np.savetxt(
            args.per_sample,
            table,
            delimiter=",",
            header="row,score",
            comments="",
            fmt=["%d", "%.9f"],
        )
    return _summary(result, len(layers_a), len(layers_b), args.json)


def _summary(result: Any, n_layers_a: int, n_layers_b: int, with_grid: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "metric": result.metric,
        "n_samples": result.n,
        "k": result.k,
        "options": result.options or None,
        "layers_a": n_layers_a,
        "layers_b": n_layers_b,
    }
    if result.n_layer_pairs > 1:
        out.update(
            best_layer_a=result.layer_a,
            best_layer_b=result.layer_b,
            layer_selection=result.selection,
            n_layer_pairs=result.n_layer_pairs,
        )
    elif n_layers_a > 1 or n_layers_b > 1:
        out.update(layer_a=result.layer_a, layer_b=result.layer_b)
    out.update(score=result.score, chance_level=result.chance_level)
    if result.outlier_quantile is not None:
        out.update(outlier_quantile=result.outlier_quantile, outlier_exact=result.outlier_exact)
    if result.n_permutations:
        out.update(
            calibrated_score=result.calibrated_score,
            p_value=result.p_value,
            null_quantile=result.null_quantile,
            null_mean=result.null_mean,
            calibration=result.calibration,
            n_permutations=result.n_permutations,
        )
    if result.ci_low is not None:
        out.update(ci_low=result.ci_low, ci_high=result.ci_high, ci_level=result.ci_level)
    if result.per_sample is not None:
        out.update(
            per_sample_layers=result.per_sample_layers,
            per_sample_mean=float(result.per_sample.mean()),
            per_sample_chance=result.per_sample_chance,
            per_sample_inflated=result.per_sample_inflated,
        )
        if result.per_sample_inflated:
            single = "" if result.chance_level is None else f", not {result.chance_level:.4g}"
            out["per_sample_note"] = (
                f"INFLATED: element-wise max over {result.n_layer_pairs} layer pairs (the "
                f"study's per-sample scores); its chance level under the same max is "
                f"{result.per_sample_chance:.4g}{single}"
            )
        if result.per_sample_layer_a is not None:
            out.update(
                per_sample_layer_a=result.per_sample_layer_a,
                per_sample_layer_b=result.per_sample_layer_b,
            )
    if with_grid and result.n_layer_pairs > 1:
        out["grid"] = result.grid.tolist()
    return {key: _json_ready(value) for key, value in out.items()}


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN is not valid JSON
        return None
    return value
