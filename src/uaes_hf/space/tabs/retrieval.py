"""The Retrieval tab: the aesthetic-retrieval study's search results and its vote collector.

It mounts :mod:`uaes_hf.retrieval.tabs` for a finished ``uaes retrieval run`` folder: env
``UAES_RETRIEVAL_DIR``, else ``./retrieval_report`` (the README's example) when it holds a
run. Votes are appended to ``votes.jsonl`` in that folder (``metrics/hpir`` scores them).
Without a run the tab says how to make one.

Example:
    >>> import tempfile
    >>> retrieval_run_dir(cwd=tempfile.mkdtemp(), environ={}) is None
    True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from uaes_hf.retrieval.layout import RetrievalLayout

DEFAULT_RUN = "retrieval_report"
HINT = (
    "No retrieval run found. Run `uaes retrieval run --out retrieval_report` (about 10 "
    "minutes on 2 CPU cores), then restart the Space, or set `UAES_RETRIEVAL_DIR`."
)


def retrieval_run_dir(
    cwd: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The retrieval run the tab shows (``UAES_RETRIEVAL_DIR`` or ``./retrieval_report``)."""
    env = os.environ if environ is None else environ
    candidates = [env.get("UAES_RETRIEVAL_DIR"), str(Path(cwd or ".") / DEFAULT_RUN)]
    for candidate in candidates:
        if candidate and RetrievalLayout(candidate).is_finished():
            return Path(candidate)
    return None


def build(context: Any) -> None:
    """Search and Vote sub-tabs for the run, or a one-line hint when there is none."""
    import gradio as gr

    from uaes_hf.retrieval.searcher import RunSearcher, load_vote_tasks
    from uaes_hf.retrieval.tabs import add_results_tab, add_vote_tab
    from uaes_hf.retrieval.votes import VoteLog

    run = retrieval_run_dir()
    if run is None:
        gr.Markdown(HINT)
        return
    try:
        searcher = RunSearcher(run)
        tasks = load_vote_tasks(run)
    except ValueError as err:
        gr.Markdown(f"The retrieval run in `{run}` cannot be shown: {err}")
        return
    with gr.Tabs():
        add_results_tab(context.demo, searcher, label="Search")
        add_vote_tab(context.demo, tasks, VoteLog(RetrievalLayout(run).votes), label="Vote")
    # The corpus images live outside the app's folder: launch_demo lets Gradio serve them.
    allowed = getattr(context.demo, "uaes_allowed_paths", set())
    context.demo.uaes_allowed_paths = allowed | searcher.image_roots()
