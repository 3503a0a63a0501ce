"""Gradio app of the HPIR metric: paste predictions and votes, get the scores.

Written with gr.Blocks because evaluate's launch_gradio_widget is broken on current Gradio.
Run: ``python metrics/hpir/app.py`` (serves on http://127.0.0.1:7860).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gradio as gr

HERE = Path(__file__).resolve().parent
EXAMPLE = '{"predictions": [0, 1, 0, 1], "references": [[3, 1], [0, 4], [2, 2], [3, 1]]}'


def _load_metric() -> Any:
    import evaluate

    return evaluate.load(str(HERE))


def compute_from_json(text: str) -> tuple[str, str]:
    """Score a JSON object with ``predictions``, ``references`` and optional ``aspects``."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("give one JSON object with predictions and references")
        result = _load_metric().compute(
            predictions=data.get("predictions"),
            references=data.get("references"),
            aspects=data.get("aspects"),
        )
    except (ValueError, TypeError) as err:
        return f"**Error:** {err}", "{}"
    summary = (
        f"**soft accuracy** = {result['soft_accuracy']:.4f} "
        f"(oracle {result['oracle_soft_accuracy']:.4f}, normalised "
        f"{result['normalized_score']:.4f}); **hard accuracy** = {result['hard_accuracy']:.4f} "
        f"on {result['n_hard_items']} items ({result['n_ties']} ties skipped)"
    )
    return summary, json.dumps(result, indent=2)


def build_demo() -> gr.Blocks:
    """The Blocks app (not launched)."""
    with gr.Blocks(title="HPIR") as demo:
        gr.Markdown(
            "# HPIR-style preference accuracy\nPer item: the model's choice (0 = group_a, "
            "1 = group_b) and the human votes [votes_a, votes_b]."
        )
        text = gr.Code(value=EXAMPLE, language="json", label="input")
        button = gr.Button("Compute", variant="primary")
        summary = gr.Markdown()
        raw = gr.Code(label="result", language="json")
        button.click(compute_from_json, inputs=[text], outputs=[summary, raw], api_name="compute")
    return demo


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    build_demo().launch()
