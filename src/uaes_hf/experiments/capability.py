"""Alignment with a reference model against model capability (the study's re-ranking).

Capability comes from the model registry (Open LLM Leaderboard IFEval / average where it is
known, with where they were taken from, ``ModelSpec.score_source``; parameter count always)
and can be overridden in the config (``analyse.capability``; the source then says so).

Example:
    >>> import pandas as pd
    >>> conv = pd.DataFrame({"subset": ["s"], "model_a": ["a"], "model_b": ["ref"],
    ...     "score": [0.3], "calibrated": [0.2], "ci_low": [0.25], "ci_high": [0.35],
    ...     "chance": [0.05], "n": [100], "p_value": [0.01]})
    >>> info = {"a": {"params_millions": 10.0, "ifeval": 40.0, "leaderboard_average": None}}
    >>> capability_table(conv, "ref", ["s"], info)["ifeval"].tolist()
    [40.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CAPABILITY_COLUMNS = ("params_millions", "ifeval", "leaderboard_average")


def model_info(
    models: Sequence[str], overrides: Mapping[str, Mapping[str, float]] | None = None
) -> dict[str, dict[str, Any]]:
    """Parameters and leaderboard scores of each model (registry, then config overrides).

    ``overrides`` keys: ``params_millions``, ``ifeval``, ``average`` (or
    ``leaderboard_average``).
    """
    out: dict[str, dict[str, Any]] = {}
    for model in models:
        info: dict[str, Any] = {c: None for c in CAPABILITY_COLUMNS}
        info["score_source"] = None
        try:
            from uaes_hf.extract.registry import resolve_model

            spec = resolve_model(model)
            info.update(
                params_millions=spec.params_millions,
                ifeval=spec.ifeval,
                leaderboard_average=spec.leaderboard_average,
                score_source=spec.score_source,
            )
        except (ImportError, ValueError, KeyError):
            pass  # an unregistered model: only the config can say
        for key, value in (overrides or {}).get(model, {}).items():
            column = "leaderboard_average" if key == "average" else key
            if column not in CAPABILITY_COLUMNS:
                raise ValueError(
                    f"analyse.capability.{model}.{key}: unknown capability; use params_millions, "
                    f"ifeval or average"
                )
            info[column] = float(value)
            if column != "params_millions":
                info["score_source"] = "the config (analyse.capability)"
        out[model] = info
    return out


def capability_table(
    convergence: Any,
    reference_model: str,
    subsets: Sequence[str],
    info: Mapping[str, Mapping[str, Any]],
) -> Any:
    """One row per (model, subset): its alignment with ``reference_model`` and capability."""
    import pandas as pd

    rows = []
    for subset in subsets:
        part = convergence[convergence["subset"] == subset]
        for r in part.itertuples():
            if reference_model not in (r.model_a, r.model_b):
                continue
            other = r.model_b if r.model_a == reference_model else r.model_a
            rows.append(
                {
                    "model": other,
                    "subset": subset,
                    "reference_model": reference_model,
                    "score": r.score,
                    "calibrated": r.calibrated,
                    "ci_low": r.ci_low,
                    "ci_high": r.ci_high,
                    "chance": r.chance,
                    "p_value": r.p_value,
                    "n": r.n,
                    **{c: (info.get(other, {}) or {}).get(c) for c in CAPABILITY_COLUMNS},
                    "score_source": (info.get(other, {}) or {}).get("score_source"),
                }
            )
    table = pd.DataFrame(rows)
    if not table.empty:
        for column in CAPABILITY_COLUMNS:
            table[column] = pd.to_numeric(table[column], errors="coerce")
    return table
