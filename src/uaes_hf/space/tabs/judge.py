"""Judge: rate a poem with the LLM judge, the study's verbatim prompt (poem-aesthetic-v2).

Off unless the owner sets ``UAES_SPACE_JUDGE=1`` (then it makes no request at all); on, it
is rate-limited per visitor, caps the poem's length, answers repeated poems from the
judge's store, and never shows the endpoint (see :mod:`uaes_hf.space.judge`). Endpoints:
``/judge_options``, ``/judge``.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from uaes_hf.space import poems as poem_views
from uaes_hf.space.tabs import TabContext
from uaes_hf.space.ui import errors_to_messages, hint


def build(ctx: TabContext) -> None:
    """The Judge tab's widgets and events."""
    data, judge = ctx.data, ctx.judge
    status = gr.Markdown(elem_id="judge-status")
    with gr.Row():
        poem = gr.Dropdown(label="a poem from the dataset", choices=[], allow_custom_value=True)
        load_button = gr.Button("Load poems", size="sm")
    text = gr.Textbox(
        label=f"...or paste a poem (at most {ctx.budget.judge_max_chars:,} characters)", lines=8
    )
    rate_button = gr.Button("Rate with the LLM judge", variant="primary")
    verdict = gr.Markdown(elem_id="judge-verdict")

    @errors_to_messages
    def judge_options() -> Any:
        """Poem labels for the dropdown."""
        return gr.update(choices=poem_views.poem_labels(data.poems()), value=None)

    @errors_to_messages
    def rate(label: str | None, pasted: str | None, request: gr.Request) -> str:
        """Rate one poem (the pasted text wins over the dropdown) with the LLM judge."""
        poem_text = (pasted or "").strip()
        if not poem_text and label:
            poem_text = poem_views.poem_row(data.poems(), label)["text"]
        if not poem_text:
            return hint("pick a poem or paste one first")
        return judge.rate(poem_text, session=_session(request))

    # Read on every page load: the owner may set the key after the Space started.
    ctx.demo.load(judge.status_markdown, None, status, api_name="judge_status")
    load_button.click(judge_options, None, poem, api_name="judge_options")
    ctx.tab.select(judge_options, None, poem, api_visibility="private")
    rate_button.click(rate, [poem, text], verdict, api_name="judge", concurrency_limit=1)


def _session(request: gr.Request | None) -> str:
    """The visitor's session (the rate limit's key)."""
    if request is None:
        return "anonymous"
    session = getattr(request, "session_hash", None)
    if session:
        return str(session)
    client = getattr(request, "client", None)
    return str(getattr(client, "host", "anonymous"))
