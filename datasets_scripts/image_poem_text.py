#!/usr/bin/env python
"""Build and publish the image-poem-text dataset (a thin shell over uaes_hf).

Commands::

    # the offline sample: packaged photos + captions -> an imagefolder
    python datasets_scripts/image_poem_text.py embedded OUT_DIR

    # images + captions (imagefolder or Hub dataset id) -> dataset repo folder
    python datasets_scripts/image_poem_text.py build IMAGE_CAPTION_DIR OUT_REPO_DIR \\
        --poems vlm|retrieval --scorer vlm|laion|classical [--base-url URL --model NAME]

    # push the folder to the Hub (needs HF_TOKEN)
    python datasets_scripts/image_poem_text.py publish OUT_REPO_DIR <org>/image-poem-text

Defaults: with ``OPENAI_API_KEY`` set, poems and scores come from the VLM; without it, from
the offline retrieval baseline and the classical heuristic scorer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _has_key() -> bool:
    return bool(os.environ.get("OPENAI_API_KEY", "").strip())


def cmd_embedded(args: argparse.Namespace) -> int:
    from uaes_hf.data.embedded_images import build_embedded_imagefolder

    started = time.perf_counter()
    result = build_embedded_imagefolder(
        args.out_dir, max_side=args.max_side, overwrite=args.overwrite
    )
    took = time.perf_counter() - started
    state = "built" if result.rebuilt else "already up to date"
    print(f"{result.folder}: {result.n_images} images ({state}, {took:.1f} s)")
    for missing in result.missing:
        print(f"  missing (package not installed?): {missing}", file=sys.stderr)
    return 0


def _chat_client(args: argparse.Namespace) -> Any:
    from uaes_hf.annotate.client import ChatClient, ChatConfig

    client = ChatClient(
        ChatConfig(model=args.model, base_url=args.base_url, concurrency=args.concurrency)
    )
    client.preflight()
    return client


def _store(args: argparse.Namespace) -> Any:
    from uaes_hf.annotate.store import ResultStore
    from uaes_hf.paths import cache_dir

    path = Path(args.store) if args.store else cache_dir("annotations") / "image_poem_text.sqlite"
    return ResultStore(path)


def cmd_build(args: argparse.Namespace) -> int:
    from uaes_hf.annotate.client import ChatConfigError
    from uaes_hf.annotate.store import StoreFullError
    from uaes_hf.data.image_ingest import read_image_captions
    from uaes_hf.images.dataset import build_image_poem_text_repo

    poems = args.poems or ("vlm" if _has_key() else "retrieval")
    scorer_kind = args.scorer or ("vlm" if _has_key() else "classical")
    hub_kwargs = (
        {"split": args.split, "limit": args.limit} if not Path(args.source).is_dir() else {}
    )
    ingest = read_image_captions(args.source, args.caption_column, **hub_kwargs)
    print(ingest.report(), file=sys.stderr)
    client = store = None
    try:
        if "vlm" in (poems, scorer_kind):
            client, store = _chat_client(args), _store(args)
        if scorer_kind == "vlm":
            from uaes_hf.images.scorers import VLMScorer

            scorer: Any = VLMScorer(client, store)
        elif scorer_kind == "laion":
            from uaes_hf.images.scorers import LaionPredictorScorer

            scorer = LaionPredictorScorer(device=args.device)
        else:
            from uaes_hf.images.scorers import ClassicalAestheticScorer

            scorer = ClassicalAestheticScorer()
        if poems == "vlm":
            from uaes_hf.images.poems import VLMPoemGenerator

            generator: Any = VLMPoemGenerator(client, store, show_caption=args.show_caption)
        else:
            from uaes_hf.images.poems import RetrievalPoemBaseline

            generator = RetrievalPoemBaseline()
        report = build_image_poem_text_repo(
            ingest,
            args.out_repo_dir,
            poem_generator=generator,
            scorer=scorer,
            default_license=args.default_license,
            batch_size=args.batch_size,
        )
    except (ChatConfigError, StoreFullError, RuntimeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if store is not None:
            store.close()
    summary = {
        k: report[k]
        for k in ("records", "poem_generator", "scorer", "level_mode", "levels", "unscored")
    }
    summary["timings_s"] = report["timings_s"]
    print(json.dumps(summary, indent=2))
    print(
        f"wrote {args.out_repo_dir} (load it with datasets.load_dataset({str(args.out_repo_dir)!r}))"
    )
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from uaes_hf.data.repo import publish

    try:
        result = publish(args.out_repo_dir, args.repo_id, private=args.private, branches=False)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="image_poem_text.py",
        description="Build and publish the image-poem-text dataset (images, captions, poems, "
        "image aesthetic scores).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    emb = sub.add_parser("embedded", help="build the offline imagefolder from packaged photos")
    emb.add_argument("out_dir", type=Path, help="folder to write (images + metadata.csv)")
    emb.add_argument("--max-side", type=int, default=1024, help="downscale to this longer side")
    emb.add_argument("--overwrite", action="store_true", help="rebuild even if up to date")
    emb.set_defaults(func=cmd_embedded)

    build = sub.add_parser("build", help="images + captions -> dataset repo folder")
    build.add_argument("source", help="imagefolder (metadata.csv/.jsonl) or Hub dataset id")
    build.add_argument("out_repo_dir", type=Path, help="dataset repo folder to write")
    build.add_argument(
        "--poems",
        choices=("vlm", "retrieval"),
        default=None,
        help="poem backend (default: vlm if OPENAI_API_KEY is set, else retrieval)",
    )
    build.add_argument(
        "--scorer",
        choices=("vlm", "laion", "classical"),
        default=None,
        help="image aesthetic scorer (default: vlm if OPENAI_API_KEY is set, else classical, "
        "a heuristic baseline)",
    )
    build.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint (/v1)")
    build.add_argument("--model", default="gpt-4o", help="VLM model name (default gpt-4o)")
    build.add_argument("--concurrency", type=int, default=8, help="VLM calls in flight")
    build.add_argument("--store", default=None, help="SQLite result store for VLM answers")
    build.add_argument(
        "--show-caption", action="store_true", help="show the caption to the poet VLM"
    )
    build.add_argument("--caption-column", default=None, help="caption column name")
    build.add_argument("--split", default="train", help="split of a Hub dataset")
    build.add_argument("--limit", type=int, default=None, help="first N rows of a Hub dataset")
    build.add_argument("--device", default="cpu", help="device for the LAION predictor")
    build.add_argument("--batch-size", type=int, default=32, help="images decoded at a time")
    build.add_argument(
        "--default-license",
        default="unknown (see the source dataset)",
        help="license recorded for images whose metadata has no license column",
    )
    build.set_defaults(func=cmd_build)

    pub = sub.add_parser("publish", help="push the repo folder to the Hub (needs HF_TOKEN)")
    pub.add_argument("out_repo_dir", type=Path, help="dataset repo folder written by build")
    pub.add_argument("repo_id", help="<org>/image-poem-text")
    pub.add_argument("--private", action="store_true", help="create a private dataset repo")
    pub.set_defaults(func=cmd_publish)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
