"""The analyse stage's work: every derived result table and the summary.

:func:`analyse` loads the run's inputs (:class:`~uaes_hf.experiments.analysis.inputs.AnalysisInputs`),
calls one function per report section (:mod:`uaes_hf.experiments.analysis.sections`) and
writes ``results/*.csv`` and ``results/summary.json`` (the layout
:func:`uaes_hf.experiments.report.load_results` reads).

Example:
    >>> from uaes_hf.experiments.analysis import STEPS
    >>> STEPS[0], STEPS[-1]
    ('differences', 'tables')
"""

from __future__ import annotations

from typing import Any

from uaes_hf.experiments.analysis import sections
from uaes_hf.experiments.analysis.headline import headline_section
from uaes_hf.experiments.analysis.inputs import AnalysisInputs
from uaes_hf.experiments.analysis.provenance import (
    analyse_substitutions,
    substitutions,
    truncation_table,
)
from uaes_hf.experiments.analysis.summary import headline_rows, run_summary
from uaes_hf.experiments.pipeline import StageContext

STEPS = (
    "differences",
    "text test",
    "per-sample",
    "cross-modal",
    "clusters",
    "capability",
    "t-SNE",
    "tables",
)


def analyse(ctx: StageContext) -> dict[str, Any]:
    """Run every analysis; write the results into the stage's ``results/`` folder."""
    from tqdm.auto import tqdm

    from uaes_hf.experiments.report import write_results

    inputs = AnalysisInputs.load(ctx)
    bar = tqdm(list(STEPS), desc="analyse", disable=not ctx.show_progress)

    def step(name: str) -> None:
        bar.set_postfix_str(name)

    step("differences")
    tables, present = sections.comparison_section(inputs)
    bar.update(1)
    step("text test")
    tables.update(headline_section(inputs, present))
    bar.update(1)
    step("per-sample")
    covariates = sections.poem_covariates(inputs)
    text_frames, per_sample_n = sections.per_sample_section(inputs, covariates)
    bar.update(1)
    step("cross-modal")
    image_frames, level_frames = sections.multimodal_section(inputs)
    tables.update(sections.per_sample_tables(text_frames + image_frames, level_frames))
    bar.update(1)
    step("clusters")
    tables.update(sections.topics_section(inputs))
    bar.update(1)
    step("capability")
    tables["capability"] = sections.capability_section(inputs)
    bar.update(1)
    step("t-SNE")
    tsne, tsne_model, tsne_layer = sections.tsne_section(inputs)
    if tsne is not None:
        tables["tsne"] = tsne
    bar.update(1)
    step("tables")
    tables["truncation"] = truncation_table(inputs)
    tables["lengths"] = sections.lengths_section(inputs)
    perplexity = sections.perplexity_section(inputs, covariates)
    if perplexity is not None:
        tables["perplexity"] = perplexity
    bar.update(1)
    bar.close()

    headline = headline_rows(tables["comparison_tests"], present, tables.get("text_tests"))
    summary = run_summary(
        inputs,
        headline=headline,
        per_sample_n=per_sample_n,
        tsne_model=tsne_model,
        tsne_layer=tsne_layer,
        substituted=substitutions(inputs, analyse_substitutions(inputs, tables["truncation"])),
    )
    write_results(inputs.layout.results.folder, tables, summary)
    return {
        "headline": [
            (h["comparison"], round(h["mean_difference"], 4), h.get("p_text")) for h in headline
        ]
    }
