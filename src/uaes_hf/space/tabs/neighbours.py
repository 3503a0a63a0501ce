"""Neighbours: one poem's k nearest poems under model A and model B, shared ones marked.

Endpoints: ``/neighbour_options`` (the poems with stored features, in the poems' order,
and the models) and ``/neighbours``. Each model's rows are joined to the poems by id.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from uaes_hf.space.tabs import TabContext
from uaes_hf.space.ui import errors_to_messages, hint


def build(ctx: TabContext) -> None:
    """The Neighbours tab's widgets and events."""
    data, budget = ctx.data, ctx.budget
    gr.Markdown(
        "The intuition behind the metric: pick a poem and see its k nearest poems under two "
        "models. **Highlighted** poems are neighbours under both; their share is this poem's "
        "term of the mutual kNN average."
    )
    with gr.Row():
        poem = gr.Dropdown(
            label="poem", choices=[], allow_custom_value=True, elem_id="neighbour-poem"
        )
        model_a = gr.Dropdown(label="model A", choices=[], allow_custom_value=True)
        model_b = gr.Dropdown(label="model B", choices=[], allow_custom_value=True)
        k = gr.Slider(1, min(30, budget.max_k), value=10, step=1, label="k")
    with gr.Row():
        load_button = gr.Button("Load poems and models", size="sm")
        show_button = gr.Button("Show neighbours", variant="primary")
    overlap = gr.Markdown(elem_id="neighbours-summary")
    with gr.Row():
        left = gr.HTML()
        right = gr.HTML()

    @errors_to_messages
    def neighbour_options() -> tuple[Any, Any, Any]:
        """The poems and models with stored features (empty lists when none are stored)."""
        models = data.stored_models()
        labels = data.neighbour_poem_labels() if models else []
        return (
            gr.update(choices=labels, value=labels[0] if labels else None),
            gr.update(choices=models, value=models[0] if models else None),
            gr.update(choices=models, value=models[1] if len(models) > 1 else None),
        )

    @errors_to_messages
    def neighbours(
        label: str | None, name_a: str | None, name_b: str | None, k_value: float
    ) -> tuple:
        """One poem's k nearest poems under model A and model B, shared ones marked."""
        if not label or not name_a or not name_b:
            return hint("pick a poem and two models first ('Load poems and models')"), "", ""
        n = len(data.neighbour_poems())
        budget.check_neighbours(n, int(k_value))
        view = data.neighbours(label, name_a, name_b, int(k_value))
        return view.summary, view.html_a, view.html_b

    load_button.click(
        neighbour_options, None, [poem, model_a, model_b], api_name="neighbour_options"
    )
    show_button.click(
        neighbours, [poem, model_a, model_b, k], [overlap, left, right], api_name="neighbours"
    )
    ctx.tab.select(neighbour_options, None, [poem, model_a, model_b], api_visibility="private")
