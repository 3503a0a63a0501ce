"""Convergence: model x model heatmaps of the main job's results, per subset, k and metric.

Endpoints: ``/convergence_options`` (on page load), ``/compute_results`` (runs the
embedded default experiment once when there are no results; one at a time), and
``/convergence`` (the heatmap and its values; a hint, not an error, before a choice).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from uaes_hf.space import convergence as views
from uaes_hf.space.tabs import TabContext
from uaes_hf.space.ui import errors_to_messages, hint

NO_RESULTS_HINT = (
    "no convergence results yet: run `uaes run` where the Space starts, or press "
    "'Compute the embedded default results now'"
)


def build(ctx: TabContext) -> None:
    """The Convergence tab's widgets and events."""
    data = ctx.data
    status = gr.Markdown()
    compute_button = gr.Button("Compute the embedded default results now")
    with gr.Row():
        subset = gr.Dropdown(label="subset", choices=[], allow_custom_value=True)
        k = gr.Dropdown(label="k", choices=[], allow_custom_value=True)
        metric = gr.Dropdown(label="metric", choices=[], allow_custom_value=True)
        show_button = gr.Button("Show heatmap", variant="primary")
    note = gr.Markdown(elem_id="convergence-hint")
    heatmap = gr.Plot(label="model x model convergence", elem_id="convergence-heatmap")
    values = gr.Dataframe(
        label="values (score, chance level, calibrated score, p-value, CI)",
        interactive=False,
        max_height=360,
        elem_id="convergence-values",
    )

    def choices_updates() -> tuple[str, Any, Any, Any]:
        if not data.has_results():
            empty = gr.update(choices=[], value=None)
            return data.missing_results_message(), empty, empty, empty
        choices = views.convergence_choices(data.results())
        return (
            data.results_status(),
            gr.update(choices=choices["subset"], value=views.default_subset(choices["subset"])),
            gr.update(choices=choices["k"], value=choices["k"][0]),
            gr.update(choices=choices["metric"], value=choices["metric"][0]),
        )

    @errors_to_messages
    def convergence_options() -> tuple[str, Any, Any, Any]:
        """Status of the results and the subsets, k values and metrics they hold."""
        return choices_updates()

    @errors_to_messages
    def compute_results(progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:  # noqa: B008
        """Run the embedded default experiment (minutes on a CPU) if no results exist."""
        progress(0, desc="starting the embedded default run")
        data.compute_results()
        return choices_updates()

    @errors_to_messages
    def convergence(subset_name: str | None, k_value: Any, metric_name: str | None) -> tuple:
        """Heatmap and values for one subset, k and metric (a hint before a choice)."""
        if not data.has_results():
            return hint(NO_RESULTS_HINT), None, None
        if not subset_name or k_value in (None, "") or not metric_name:
            return hint("choose a subset, k and metric first"), None, None
        cells = views.convergence_cells(
            data.results(), subset=subset_name, k=int(k_value), metric=metric_name
        )
        figure = views.convergence_figure(
            cells, subset=subset_name, k=int(k_value), metric=metric_name
        )
        return "", figure, views.values_table(cells)

    outputs = [status, subset, k, metric]
    ctx.demo.load(convergence_options, None, outputs, api_name="convergence_options")
    compute_button.click(
        compute_results, None, outputs, api_name="compute_results", concurrency_limit=1,
        concurrency_id="compute_results",
    )  # fmt: skip
    show_button.click(
        convergence, [subset, k, metric], [note, heatmap, values], api_name="convergence"
    )
