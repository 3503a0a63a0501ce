"""Explore: the poems filtered by aesthetic score, form category and length; one poem's
text; the image-poem-text gallery. Endpoints: ``/filter_poems``, ``/show_poem``,
``/image_gallery`` (at most ``max_shown_poems`` rows and ``max_gallery_images`` images).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from uaes_hf.space import poems as poem_views
from uaes_hf.space.tabs import TabContext
from uaes_hf.space.ui import errors_to_messages, hint

FORM_CATEGORIES = ["formatted", "free_verse", "ambiguous", "unknown"]


def build(ctx: TabContext) -> None:
    """The Explore tab's widgets and events."""
    data, budget = ctx.data, ctx.budget
    gr.Markdown(
        "### Poems\nFilter the annotated poems by aesthetic score (1-5, from the LLM judge), "
        f"form category and length (the first {budget.max_shown_poems} matches are listed)."
    )
    with gr.Row():
        min_score = gr.Slider(1, 5, value=1, step=1, label="min aesthetic score")
        max_score = gr.Slider(1, 5, value=5, step=1, label="max aesthetic score")
        unscored = gr.Checkbox(value=True, label="include poems without a score")
    with gr.Row():
        categories = gr.CheckboxGroup(FORM_CATEGORIES, value=FORM_CATEGORIES, label="form category")
        min_words = gr.Number(value=0, precision=0, minimum=0, label="min words")
        max_words = gr.Number(value=2000, precision=0, minimum=0, label="max words")
    filter_button = gr.Button("Filter poems", variant="primary")
    count = gr.Markdown()
    table = gr.Dataframe(label="poems", interactive=False, wrap=True, max_height=420)
    poem_pick = gr.Dropdown(label="read a poem", choices=[], allow_custom_value=True)
    poem_text = gr.Markdown()

    @errors_to_messages
    def filter_poems(
        lo: float,
        hi: float,
        with_unscored: bool,
        cats: list[str],
        wmin: float | None,
        wmax: float | None,
    ) -> tuple[str, Any, Any]:
        """Poems within the score range, form categories and word-count range."""
        frame, n = poem_views.filter_poems(
            data.poems(), min_score=int(lo), max_score=int(hi),
            include_unscored=bool(with_unscored), form_categories=cats or [],
            min_words=int(wmin or 0), max_words=None if wmax is None else int(wmax),
            limit=budget.max_shown_poems,
        )  # fmt: skip
        labels = poem_views.poem_labels(frame)
        shown = f" (showing the first {len(frame)})" if n > len(frame) else ""
        return (
            f"**{n} poem(s)** match{shown}.",
            frame.drop(columns=["id"]).rename(columns=poem_views.POEM_TABLE_HEADERS),
            gr.update(choices=labels, value=labels[0] if labels else None),
        )

    filter_inputs = [min_score, max_score, unscored, categories, min_words, max_words]
    filter_button.click(
        filter_poems, filter_inputs, [count, table, poem_pick], api_name="filter_poems"
    )

    @errors_to_messages
    def show_poem(label: str | None) -> str:
        """The full text of one poem, with its metadata."""
        return poem_views.poem_markdown(data.poems(), label) if label else ""

    poem_pick.change(show_poem, poem_pick, poem_text, api_name="show_poem")

    gr.Markdown(
        "### Image-poem-text gallery\nImages with their caption, a poem, and the image "
        "aesthetic score (level 1-5)."
    )
    with gr.Row():
        min_level = gr.Slider(1, 5, value=1, step=1, label="min aesthetic level")
        max_level = gr.Slider(1, 5, value=5, step=1, label="max aesthetic level")
        gallery_button = gr.Button("Show images", variant="primary")
    gallery_note = gr.Markdown(elem_id="gallery-hint")
    gallery = gr.Gallery(label="images", columns=4, height=420, object_fit="contain")
    gallery_table = gr.Dataframe(
        label="captions, poems and scores", interactive=False, wrap=True, max_height=420
    )

    @errors_to_messages
    def image_gallery(lo: float, hi: float) -> tuple[str, list[Any], Any]:
        """Images whose aesthetic level is in [lo, hi], with captions, poems and scores (a
        hint when the Space has no image data)."""
        try:
            records = data.images()
        except FileNotFoundError as err:
            return hint(str(err)), [], None
        images, table = poem_views.gallery_items(
            records, min_level=int(lo), max_level=int(hi), limit=budget.max_gallery_images
        )
        return "", images, table

    gallery_button.click(
        image_gallery,
        [min_level, max_level],
        [gallery_note, gallery, gallery_table],
        api_name="image_gallery",
    )
