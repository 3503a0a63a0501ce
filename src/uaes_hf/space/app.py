"""Build and launch the Space: a ``gr.Blocks`` with one tab per :class:`~uaes_hf.space.tabs.TabSpec`.

``spaces/demo/app.py`` is ``launch_demo(build_demo())``; tests build the same app with
their own data. Nothing is loaded until a tab asks for it.

Example:
    >>> import tempfile
    >>> empty = tempfile.mkdtemp()
    >>> demo = build_demo("no-report-here", cwd=empty, home=empty)
    >>> demo.title, "/convergence" in [f"/{fn.api_name}" for fn in demo.fns.values()]
    ('Do AI models agree on beautiful things?', True)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from uaes_hf.space.budget import SpaceBudget
from uaes_hf.space.data import SpaceData
from uaes_hf.space.judge import SpaceJudge
from uaes_hf.space.sources import SpaceSources
from uaes_hf.space.tabs import DEFAULT_TABS, TabContext, TabSpec

TITLE = "Do AI models agree on beautiful things?"
INTRO = """\
# Do AI models agree on beautiful things?

**Universal aesthetics**, measured: when different models (language models, sentence
encoders, vision models) embed the same poems, texts or images, do their neighbourhoods
agree, and do they agree *more* on beautiful things? Agreement is the **mutual kNN** score of
the Platonic Representation Hypothesis: for every sample, the share of its k nearest
neighbours that two models have in common. Unrelated models score about **k / (N - 1)**
(the chance level); the **calibrated** score rescales to 0 at chance (permutation null) and
1 for identical neighbourhoods. Built with [uaes-hf](https://github.com/uaes-hf/uaes-hf).
"""


def build_demo(
    results_dir: str | Path | None = None,
    *,
    poems: Any = None,
    poems_revision: str | None = None,
    images: Any = None,
    features_root: str | Path | None = None,
    features_dataset: str | None = None,
    judge_enabled: bool | None = None,
    judge_base_url: str | None = None,
    judge_model: str | None = None,
    judge_store: str | Path | None = None,
    budget: SpaceBudget | None = None,
    max_upload_bytes: int | None = None,
    tabs: Sequence[TabSpec] = DEFAULT_TABS,
    extra_tabs: Sequence[TabSpec] = (),
    cwd: str | Path | None = None,
    home: str | Path | None = None,
) -> Any:
    """Build the Space (``gr.Blocks``, queued with the budget's concurrency limit).

    Args:
        results_dir: the main job's report folder (``uaes run``'s output). ``None``: env
            ``UAES_RESULTS_DIR``, else ``./report`` (of ``cwd``), else the newest finished
            run under ``$UAES_HOME`` (:func:`uaes_hf.experiments.layout.latest_results`),
            else ``$UAES_HOME/space/report``, computed on demand by the Convergence tab.
        poems: poems dataset: a local dataset folder, a Hub repo id, ``"embedded"`` (the
            packaged public-domain sample, unscored), or the data itself. ``None``: env
            ``UAES_POEMS``, else the annotated poems of the run behind the results.
        poems_revision: the poems config/branch (``main``, ``aligned_5`` ...).
        images: image-poem-text dataset (folder, Hub id or data); env ``UAES_IMAGES``, else
            the run's image-text pairs.
        features_root, features_dataset: a feature store (``uaes extract``'s output) and
            which dataset's features; env ``UAES_FEATURES``/``UAES_FEATURES_DATASET``, else
            the run's features of the poems.
        judge_enabled: turn the Judge tab on (env ``UAES_SPACE_JUDGE=1``); off by default.
        judge_base_url, judge_model, judge_store: the judge's endpoint (never shown), model
            and answer cache; the key is read from ``OPENAI_API_KEY`` only.
        budget: the Space's limits (:class:`~uaes_hf.space.budget.SpaceBudget`);
            ``max_upload_bytes`` overrides its byte cap.
        tabs, extra_tabs: the tabs to mount (see :mod:`uaes_hf.space.tabs`).
        cwd, home: where ``./report`` and ``$UAES_HOME`` are looked for (tests).
    """
    import gradio as gr

    budget = budget or SpaceBudget()
    if max_upload_bytes is not None:
        from dataclasses import replace

        budget = replace(budget, max_upload_bytes=int(max_upload_bytes))
    sources = SpaceSources.from_env(
        results_dir=results_dir, poems=poems, poems_revision=poems_revision, images=images,
        features_root=features_root, features_dataset=features_dataset,
        judge_enabled=judge_enabled, judge_base_url=judge_base_url, judge_model=judge_model,
        judge_store=judge_store, cwd=cwd,
    )  # fmt: skip
    data = SpaceData(sources, home=home)
    judge = SpaceJudge(
        enabled=sources.judge_enabled, model=sources.judge_model,
        base_url=sources.judge_base_url, store_path=sources.judge_store, budget=budget,
    )  # fmt: skip
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(INTRO)
        with gr.Tabs():
            for spec in [*tabs, *extra_tabs]:
                with gr.Tab(spec.title, id=spec.id) as tab:
                    spec.mount(
                        TabContext(demo=demo, tab=tab, data=data, budget=budget, judge=judge)
                    )
    demo.queue(default_concurrency_limit=budget.concurrency, max_size=budget.queue_size)
    demo.uaes_budget = budget  # what launch_demo and tests read
    return demo


def launch_demo(demo: Any, **launch: Any) -> Any:
    """Launch a built Space: uploads over the budget's byte cap are refused by the server
    itself (``max_file_size``); host and port from ``GRADIO_SERVER_NAME``/``_PORT``."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    budget = getattr(demo, "uaes_budget", None) or SpaceBudget()
    launch.setdefault("max_file_size", budget.max_upload_bytes)
    launch.setdefault("server_name", os.environ.get("GRADIO_SERVER_NAME"))
    allowed = sorted(getattr(demo, "uaes_allowed_paths", ()))  # e.g. the retrieval corpus
    if allowed:
        launch["allowed_paths"] = [*launch.get("allowed_paths", []), *allowed]
    return demo.launch(**launch)
