"""The annotate stage: give every poem an aesthetic score with the configured judge.

==========  ==================================================================================
inputs      prepare: ``RunLayout.prepared_poems``
cache key   the ``annotate`` section; the code of this module and all it imports
            (not cached while poems are left without a rating: the next run retries them)
outputs     ``RunLayout.annotated_poems`` (the poems with ``aesthetic_score``, and with the
            judge's ``expected_score``, rationale and name when it rated them)
==========  ==================================================================================

Example:
    >>> KEYS, DEPENDS_ON
    (('annotate',), ('prepare',))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from uaes_hf.experiments.layout import RunLayout
from uaes_hf.experiments.pipeline import INCOMPLETE, StageContext
from uaes_hf.experiments.stages.common import log

KEYS: tuple[str, ...] = ("annotate",)
DEPENDS_ON: tuple[str, ...] = ("prepare",)


def run_annotate(ctx: StageContext) -> dict[str, Any]:
    """Give every poem an aesthetic score (existing scores kept unless told otherwise).

    Ratings go through :func:`uaes_hf.annotate.judge.judge_poems` into the same durable
    store as ``uaes annotate poems`` (``$UAES_HOME/annotations/results.sqlite``), so a poem
    rated once, by either command, is never rated (or billed) again. With
    ``annotate.rescale: quantile`` the local judge's expected score is turned into levels
    1-5 by quintile (a ranking within the set: the 135M judge's argmax is nearly constant).

    When the judge leaves poems unrated (failed calls; ``JudgeSummary.complete`` is False)
    the summary says so under ``"incomplete"``: the pipeline publishes the stage for this
    run but does not cache it, so the next run retries exactly those poems.
    """
    import pandas as pd

    cfg = ctx.config.annotate
    layout = RunLayout.for_stage(ctx)
    poems = pd.read_parquet(layout.prepared_poems)
    if "aesthetic_score" not in poems:
        poems["aesthetic_score"] = np.nan
    scores = pd.to_numeric(poems["aesthetic_score"], errors="coerce")
    todo = scores.isna() if cfg.keep_existing else pd.Series(True, index=poems.index)
    summary: dict[str, Any] = {"backend": cfg.backend, "n_existing": int(scores.notna().sum())}
    if cfg.backend != "existing" and todo.any():
        from uaes_hf.annotate.judge import PoemItem, judge_poems, stored_ratings
        from uaes_hf.annotate.store import ResultStore
        from uaes_hf.paths import cache_dir

        backend = _judge_backend(cfg)
        ids = [str(i) for i in poems.loc[todo, "id"]]
        items = [PoemItem(i, t) for i, t in zip(ids, poems.loc[todo, "text"], strict=True)]
        with ResultStore(cache_dir("annotations") / "results.sqlite") as store:
            result = judge_poems(
                items,
                store,
                backend,
                progress=ctx.show_progress,
                run_params={"command": "uaes run (annotate stage)"},
            )
            rows = {
                key: row.payload
                for key, row in stored_ratings(items, store, backend).items()
                if row.ok and row.payload
            }
        log(result.format().splitlines()[1].strip())
        for column in ("aesthetic_rationale", "annotator"):  # all-null columns load as float
            if column in poems:
                poems[column] = poems[column].astype(object)
            else:
                poems[column] = pd.Series(None, index=poems.index, dtype=object)
        expected = poems.get("expected_score", np.nan)
        poems["expected_score"] = pd.to_numeric(expected, errors="coerce")
        poems["aesthetic_score"] = pd.to_numeric(poems["aesthetic_score"], errors="coerce")
        for column, field in (("aesthetic_score", "score"), ("expected_score", "expected_score")):
            values = [rows.get(i, {}).get(field) for i in ids]  # None: failed or not given
            poems.loc[todo, column] = np.array([np.nan if v is None else v for v in values], float)
        poems.loc[todo, "aesthetic_rationale"] = [rows.get(i, {}).get("thinking") for i in ids]
        poems.loc[todo, "annotator"] = f"{backend.name}:{backend.model}"
        summary.update(
            n_rated=len(rows),
            done_now=result.done,
            cached=result.cached,
            failed=dict(result.failed),
            unrated=result.unrated,
            annotator=f"{backend.name}:{backend.model}",
        )
        if not result.complete:
            # Published for this run, but not cached: the next run asks the judge again for
            # these poems (and only these; the store keeps every rating already paid for).
            summary[INCOMPLETE] = (
                f"{result.unrated} poem(s) without a rating from the judge "
                f"(failed now: {result.n_failed})"
            )
        if cfg.rescale == "quantile":
            expected = pd.to_numeric(poems["expected_score"], errors="coerce")
            if expected.notna().sum() >= 5:
                poems["judge_score"] = poems["aesthetic_score"]
                ranks = expected.rank(method="first", pct=True)
                poems.loc[expected.notna(), "aesthetic_score"] = np.ceil(
                    ranks[expected.notna()] * 5
                ).clip(1, 5)
                summary["rescaled"] = "expected score -> quintile levels 1-5"
    poems["aesthetic_score"] = pd.to_numeric(poems["aesthetic_score"], errors="coerce")
    poems.to_parquet(layout.annotated_poems, index=False)
    counts = poems["aesthetic_score"].value_counts(dropna=False).sort_index()
    summary["score_counts"] = {str(k): int(v) for k, v in counts.items()}
    return summary


def _judge_backend(cfg: Any) -> Any:
    """The configured rating backend (local packaged LM or an OpenAI-compatible endpoint)."""
    if cfg.backend == "local":
        from uaes_hf.annotate.local_backend import LocalRatingBackend

        return LocalRatingBackend(cfg.model, max_prompt_tokens=cfg.max_prompt_tokens)
    from uaes_hf.annotate.client import ChatClient, ChatConfig
    from uaes_hf.annotate.judge import OpenAIRatingBackend

    chat = ChatConfig(model=cfg.model, base_url=cfg.base_url, concurrency=cfg.max_concurrency)
    return OpenAIRatingBackend(ChatClient(chat))
