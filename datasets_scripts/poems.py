"""Build, inspect and publish the poems dataset repo (a thin shell over uaes_hf.data).

python datasets_scripts/poems.py build RAW_DIR OUT_REPO_DIR [--annotations ratings.csv]
python datasets_scripts/poems.py publish OUT_REPO_DIR <org>/poems      # needs HF_TOKEN
python datasets_scripts/poems.py english-table RAW_DIR                 # choose a threshold
python datasets_scripts/poems.py embedded OUT_RAW_DIR                  # offline raw sample
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def build(args: argparse.Namespace) -> int:
    from uaes_hf.data.pipeline import BuildOptions, build_poems_repo

    options = BuildOptions(
        english_threshold=args.english_threshold,
        min_zipf=args.min_zipf,
        n_bins=args.bins,
        seed=args.seed,
        main_size=args.main_size or None,
        aligned_from=args.aligned_from,
        encoding_fallback=args.encoding_fallback,
        source=args.source,
        progress=not args.quiet,
    )
    report = build_poems_repo(
        args.raw_dir,
        args.out_dir,
        annotations=args.annotations,
        reference_lengths=args.reference_lengths,
        options=options,
    )
    summary = {
        "files_read": report["read"]["files_seen"],
        "bad_inputs": report["read"]["bad"],
        "duplicates": report["duplicates"],
        "copyright_cut": report["copyright_cut"]["poems_cut"],
        "non_english_dropped": report["english"]["non_english_dropped"],
        "per_form_category": report["forms"]["per_category"],
        "configs": {name: c["rows"] for name, c in report["configs"].items()},
        "ks": {n: [a["ks_before"], a["ks_after"]] for n, a in report["alignment"].items()},
        "report": f"{args.out_dir}/build_report.json",
    }
    print(json.dumps(summary, indent=2))
    return 0


def publish(args: argparse.Namespace) -> int:
    from uaes_hf.data.repo import publish as publish_repo

    result = publish_repo(args.repo_dir, args.repo_id, private=args.private)
    print(json.dumps(result, indent=2))
    return 0


def english_table(args: argparse.Namespace) -> int:
    from uaes_hf.data.cleaning import cut_copyright
    from uaes_hf.data.english import (
        EnglishScorer,
        english_ratio_table,
        format_ratio_table,
    )
    from uaes_hf.data.ingest import merge_duplicates, read_poems_folder

    result = read_poems_folder(args.raw_dir, progress=not args.quiet)
    poems, _ = merge_duplicates(result.poems)
    texts = [cut_copyright(p.text)[0] for p in poems]
    ratios = EnglishScorer(min_zipf=args.min_zipf).ratios(texts, progress=not args.quiet)
    rows = english_ratio_table(texts, ratios, [p.title for p in poems], tolerance=args.tolerance)
    print(format_ratio_table(rows))
    kept = sum(r >= args.english_threshold for r in ratios)
    print(f"\n{kept}/{len(ratios)} poems at or above {args.english_threshold}")
    return 0


def embedded(args: argparse.Namespace) -> int:
    from uaes_hf.data.embedded import write_embedded_poems

    summary = write_embedded_poems(
        args.out_dir, max_per_source=args.max_per_source or None, max_poems=args.max_poems
    )
    print(
        json.dumps(
            {
                "out_dir": str(summary.out_dir),
                "poems": summary.n_poems,
                "files": summary.n_files,
                "per_form": summary.per_form,
            },
            indent=2,
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poems.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="raw Kaggle-layout folder -> dataset repo folder")
    p.add_argument("raw_dir", help="folder with forms/<form>/*.txt, topics/<topic>/*.txt, tables")
    p.add_argument("out_dir", help="dataset repo folder to write (README.md + data/<config>/)")
    p.add_argument("--annotations", help="CSV/JSONL of id, score (1-5), rationale, annotator")
    p.add_argument(
        "--reference-lengths",
        help="plain-text word counts (.txt one per line, .json, .jsonl/.parquet with n_words "
        "or text); default: the offline WordNet sample",
    )
    p.add_argument(
        "--english-threshold",
        type=float,
        default=0.8,
        help="keep poems whose English-word share is at least this (default 0.8)",
    )
    p.add_argument(
        "--min-zipf",
        type=float,
        default=3.0,
        help="English lexicon = wordfreq words with Zipf >= this (default 3.0)",
    )
    p.add_argument("--bins", type=int, default=20, help="quantile bins for length alignment")
    p.add_argument("--seed", type=int, default=0, help="seed of every sample (default 0)")
    p.add_argument(
        "--main-size",
        type=int,
        default=800,
        help="cap of the main config (0 = no cap; default 800 as in the study)",
    )
    p.add_argument(
        "--aligned-from",
        choices=("main", "large"),
        default="main",
        help="config the aligned samples are drawn from (default main)",
    )
    p.add_argument(
        "--encoding-fallback",
        default=None,
        help="read non-UTF-8 files with this encoding (e.g. cp1252) instead of skipping them",
    )
    p.add_argument("--source", default="kaggle-poems", help="value of the 'source' column")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=build)

    p = sub.add_parser("publish", help="push a repo folder to the Hub, one branch per config")
    p.add_argument("repo_dir")
    p.add_argument("repo_id", help="<org>/poems")
    p.add_argument("--private", action="store_true")
    p.set_defaults(func=publish)

    p = sub.add_parser("english-table", help="print one example poem per English share 0.0 ... 1.0")
    p.add_argument("raw_dir")
    p.add_argument("--min-zipf", type=float, default=3.0)
    p.add_argument("--english-threshold", type=float, default=0.8)
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.025,
        help="how far from each proportion an example may be",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=english_table)

    p = sub.add_parser("embedded", help="write the packaged public-domain sample (Kaggle layout)")
    p.add_argument("out_dir")
    p.add_argument("--max-per-source", type=int, default=120, help="0 = no cap")
    p.add_argument("--max-poems", type=int, default=None)
    p.set_defaults(func=embedded)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
