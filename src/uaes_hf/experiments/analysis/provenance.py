"""What a run substituted, and how many texts each model saw truncated.

* :func:`substitutions`: every fallback of the prepare stage (its summary), the align stage
  (``subsets.json``) and the analyse stage, each once (the report's "What was
  substituted").
* :func:`truncation_table`: texts truncated at each model's token cap. The extractor
  records them; they are read from the run's feature-store entries (``n_truncated``, which
  the extract stage writes per dataset and column, or ``totals`` of a merged ``uaes
  extract`` entry) and from the perplexity table's ``truncated`` column, with each
  model's cap (:func:`uaes_hf.extract.effective_token_caps`, no weights loaded).

Example:
    >>> count_in({"totals": {"n_truncated": 3}}), count_in({"options": {}})
    (3, None)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from uaes_hf.experiments.analysis.inputs import AnalysisInputs
from uaes_hf.experiments.fallbacks import merged, record


def count_in(meta: Mapping[str, Any]) -> int | None:
    """The truncation count an entry's metadata records: ``n_truncated`` (the extract
    stage's entries) or ``totals.n_truncated`` (entries merged by ``uaes extract``)."""
    for holder in (meta, meta.get("totals") or {}):
        value = holder.get("n_truncated") if isinstance(holder, Mapping) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return None


def truncation_table(inputs: AnalysisInputs) -> Any:
    """One row per (model, dataset, column) with a recorded truncation count and the cap."""
    import pandas as pd

    from uaes_hf.features.store import FeatureStore

    rows: list[dict[str, Any]] = []
    store = inputs.layout.feature_store
    for meta in FeatureStore(store).entries() if store.is_dir() else []:
        count = count_in(meta)
        if count is not None:
            rows.append(
                {
                    "model": meta.get("model"),
                    "dataset": meta.get("dataset"),
                    "column": (meta.get("options") or {}).get("column"),
                    "n_truncated": count,
                    "n_texts": meta.get("n_items"),
                    "source": "feature store",
                }
            )
    ppl = inputs.perplexity
    if ppl is not None and "truncated" in ppl:
        for dataset, part in ppl.groupby("dataset", sort=False):
            rows.append(
                {
                    "model": inputs.cfg.extract.perplexity_model,
                    "dataset": dataset,
                    "column": "text",
                    "n_truncated": int(part["truncated"].astype(bool).sum()),
                    "n_texts": len(part),
                    "source": "perplexity",
                }
            )
    if not rows:
        return None
    table = pd.DataFrame(rows)
    caps = _caps(inputs, [str(m) for m in table["model"].dropna().unique()])
    table["token_cap"] = table["model"].map(caps)
    table["max_tokens"] = inputs.cfg.extract.max_tokens
    return table


def _caps(inputs: AnalysisInputs, models: list[str]) -> dict[str, Any]:
    from uaes_hf.extract.token_limits import effective_token_caps

    caps: dict[str, Any] = {}
    for model in models:
        try:
            (cap,) = effective_token_caps([model], inputs.cfg.extract.max_tokens, from_hub=False)
        except (ValueError, KeyError):
            continue  # a model the registry cannot resolve offline: no cap shown
        caps[model] = cap.cap
    return caps


def substitutions(inputs: AnalysisInputs, found: list[dict[str, str]]) -> list[dict[str, str]]:
    """Every substitution of the run: prepare's, align's, then the analyse stage's."""
    prepare = (inputs.stage_summaries or {}).get("prepare", {}).get("substitutions", [])
    return merged(prepare, inputs.plan.get("substitutions", []), found)


def analyse_substitutions(inputs: AnalysisInputs, truncation: Any) -> list[dict[str, str]]:
    """The analyse stage's own fallbacks (logged)."""
    found: list[dict[str, str]] = []
    cfg = inputs.cfg
    if cfg.align.n_permutations == 0:
        record(
            found,
            "analyse",
            "calibrated scores",
            "align.n_permutations is 0: no calibrated scores or permutation p-values; the "
            "tests use raw differences",
        )
    for item in inputs.plan.get("skipped", []):
        record(
            found,
            "align",
            f"comparison {item['comparison']}",
            f"skipped: {item['reason']}",
            log_line=False,  # logged by the align stage
        )
    if truncation is not None and (truncation["source"] == "perplexity").all():
        record(
            found,
            "analyse",
            "truncation counts",
            "the extract stage recorded no truncation counts for the feature models; only "
            "the perplexity model's are shown",
            log_line=False,
        )
    return found
