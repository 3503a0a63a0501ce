"""The six stages of an experiment, one module each, wired to the library's data, judge,
extraction and alignment modules. Each module states at its top what it reads, the config
keys of its cache key and what it writes (file names: :mod:`uaes_hf.experiments.layout`).

=========  ===============================================================================
stage      writes
=========  ===============================================================================
prepare    poems, plain texts, image-text pairs (and the length-aligned poems) as parquet
annotate   the poems with their aesthetic score
extract    a feature store (one entry per dataset x model, rows with ids), perplexity
align      the convergence table, the compared subsets, the cluster labels
analyse    results/*.csv and results/summary.json
report     figures/*.png, results/ (copied), index.html
=========  ===============================================================================

Caching is :mod:`uaes_hf.experiments.pipeline`: each stage's key holds its config keys, the
outputs it reads and the fingerprint of its module's code (with everything that module
imports from ``uaes_hf``); a whole run is :func:`uaes_hf.experiments.run.run_experiment`.

Example:
    >>> [s.name for s in default_stages()]
    ['prepare', 'annotate', 'extract', 'align', 'analyse', 'report']
"""

from __future__ import annotations

from uaes_hf.experiments.pipeline import Stage
from uaes_hf.experiments.stages import align, analyse, annotate, extract, prepare, report

EXTRACT_KEYS = extract.KEYS
ALIGN_KEYS = align.KEYS
ANALYSE_KEYS = analyse.KEYS


def default_stages() -> list[Stage]:
    """prepare -> annotate -> extract -> align -> analyse -> report, with their cache keys."""
    return [
        Stage(
            "prepare",
            prepare.KEYS,
            prepare.DEPENDS_ON,
            prepare.run_prepare,
            prepare.local_fingerprint,
        ),
        Stage("annotate", annotate.KEYS, annotate.DEPENDS_ON, annotate.run_annotate),
        Stage(
            "extract",
            extract.KEYS,
            extract.DEPENDS_ON,
            extract.run_extract,
            extract.environment_fingerprint,
            revision=extract.REVISION,
        ),
        Stage("align", align.KEYS, align.DEPENDS_ON, align.run_align),
        Stage("analyse", analyse.KEYS, analyse.DEPENDS_ON, analyse.run_analyse),
        Stage("report", report.KEYS, report.DEPENDS_ON, report.run_report),
    ]


__all__ = ["ALIGN_KEYS", "ANALYSE_KEYS", "EXTRACT_KEYS", "default_stages"]
