"""The console summary of a report: one line per headline comparison (``uaes run``).

Example:
    >>> from uaes_hf.experiments.report.results import Results
    >>> console_summary(Results(summary={"title": "T", "k": 10})).splitlines()[0]
    '== T =='
    >>> _text_test({"n": 64, "n_b": 96, "p_text": 0.01, "ci_low": None, "text_null_mean": 0.05})
    '; over texts: p=0.01, null centre +0.0500'
    >>> _text_test({"n": 80, "n_b": 80, "p_text": 0.01, "ci_low": None, "text_null_mean": 0.001})
    '; over texts: p=0.01'
"""

from __future__ import annotations

from uaes_hf.experiments.report.figure_set import p_text
from uaes_hf.experiments.report.results import Results


def console_summary(results: Results) -> str:
    """Plain-text summary of the headline comparisons (printed by ``uaes run``).

    One line per comparison: mean mutual kNN on each side (equal N) with the chance level and
    the mean permutation-calibrated score, the count of model pairs higher (with the paired
    sign-flip p-value, a description), then the test over texts (interval and p-value);
    below, the lexical and embedding-layer variants of each difference.
    """
    s = results.summary
    conv = results.get("convergence")
    lines = [
        f"== {s.get('title', 'uaes report')} ==",
        f"k={s.get('k')}  layer selection={s.get('layer_selection')} "
        f"(rule {s.get('layer_rule', 'best')})  outlier clamp q={s.get('outlier_quantile')}  "
        f"per-sample={s.get('per_sample_mode')}  sizes={s.get('sizes')}",
    ]

    def side_text(comparison: str, side: str) -> str:
        if conv.empty:
            return side
        part = conv[conv["subset"] == f"{comparison}/{side}"]
        if part.empty:
            return side
        cal = part["calibrated"].mean()
        return f"{side} {part['score'].mean():.3f}" + (f" (cal {cal:+.3f})" if cal == cal else "")

    def chance_of(comparison: str, side: str) -> float | None:
        part = conv[conv["subset"] == f"{comparison}/{side}"] if not conv.empty else conv
        return None if part.empty else float(part["chance"].iloc[0])

    for row in s.get("headline", []):
        comparison, a, b = row["comparison"], row["side_a"], row["side_b"]
        chances = [c for c in (chance_of(comparison, a), chance_of(comparison, b)) if c is not None]
        chance = ""
        if chances:
            chance = ", chance " + "/".join(f"{c:.3f}" for c in dict.fromkeys(chances))
        n_b = row.get("n_b", row["n"])
        sizes = f"N={row['n']}" if n_b == row["n"] else f"N={row['n']}/{n_b}"
        lines.append(
            f"{comparison:<24} {side_text(comparison, a)} vs {side_text(comparison, b)} "
            f"({sizes}{chance}): diff {row['mean_difference']:+.4f}, "
            f"{row['n_a_greater']}/{row['n_pairs']} pairs higher on {a} "
            f"(sign-flip p={p_text(row['p_two_sided'])})" + _text_test(row)
        )
    variants = results.get("headline_variants")
    for comparison, part in variants.groupby("comparison", sort=False) if len(variants) else []:
        lines.append(
            f"  {comparison:<22} "
            + "; ".join(f"{r.variant}: {r.mean_difference:+.4f}" for r in part.itertuples())
        )
    if not conv.empty:
        for subset, label in (
            ("crossmodal/image_caption", "LLM x vision, image-caption"),
            ("crossmodal/image_poem", "LLM x vision, image-poem"),
        ):
            part = conv[conv["subset"] == subset]
            if not part.empty:
                lines.append(
                    f"{label:<28} mean {part['score'].mean():.3f} (chance "
                    f"{part['chance'].iloc[0]:.3f}, cal {part['calibrated'].mean():+.3f}, "
                    f"{int((part['p_value'] < 0.05).sum())}/{len(part)} pairs p < 0.05)"
                )
    for item in s.get("skipped", []):
        lines.append(f"skipped {item['comparison']}: {item['reason']}")
    substituted = s.get("substituted", [])
    if substituted:
        lines.append(
            f"{len(substituted)} substitution(s): see 'What was substituted' in the report"
        )
    return "\n".join(lines)


def _text_test(row: dict) -> str:
    """``; texts: [lo, hi] p=...`` when the test over texts ran."""
    if row.get("ci_low") is None and row.get("p_text") is None:
        return ""
    interval = (
        f" {row.get('ci_level', 0.95):.0%} CI [{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]"
        if row.get("ci_low") is not None
        else ""
    )
    centre = row.get("text_null_mean")
    # With unequal sides the null is not centred on 0 (mutual kNN's level depends on N):
    # show where it is, so that the difference is read against it.
    unequal = row.get("n_b") is not None and row.get("n_b") != row.get("n")
    shifted = f", null centre {centre:+.4f}" if centre is not None and unequal else ""
    return f"; over texts:{interval} p={p_text(row.get('p_text'))}{shifted}"
