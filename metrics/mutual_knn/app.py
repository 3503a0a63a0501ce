"""Gradio app of the mutual_knn metric: upload two feature files, get the score.

Written with gr.Blocks because evaluate's launch_gradio_widget is broken on current Gradio.
Run: ``python metrics/mutual_knn/app.py`` (serves on http://127.0.0.1:7860).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gradio as gr

HERE = Path(__file__).resolve().parent
MAX_UPLOAD_BYTES = 512 * 1024**2


def _load_metric() -> Any:
    import evaluate

    return evaluate.load(str(HERE))


def compute_from_files(
    a_file: str | None, b_file: str | None, k: float, permutations: float
) -> tuple[str, str]:
    """Score two uploaded feature files; returns (summary markdown, JSON result)."""
    from uaes_hf.feature_files import read_features

    if not a_file or not b_file:
        return "Upload two feature files (N x D each, same N, same row order).", "{}"
    try:
        a = read_features(a_file, max_bytes=MAX_UPLOAD_BYTES)
        b = read_features(b_file, max_bytes=MAX_UPLOAD_BYTES)
        result = _load_metric().compute(
            predictions=a, references=b, k=int(k), permutations=int(permutations)
        )
    except ValueError as err:
        return f"**Error:** {err}", "{}"
    lines = [
        f"**mutual kNN** = {result['mutual_knn']:.4f} (N = {a.shape[0]}, k = {int(k)})",
        f"chance level k/(N-1) = {result['chance_level']:.4f}",
    ]
    if "calibrated_score" in result:
        lines.append(
            f"calibrated score = {result['calibrated_score']:.4f}, "
            f"p-value = {result['p_value']:.4g} ({int(permutations)} permutations)"
        )
    return "\n\n".join(lines), json.dumps(result, indent=2)


def build_demo() -> gr.Blocks:
    """The Blocks app (not launched)."""
    with gr.Blocks(title="Mutual kNN") as demo:
        gr.Markdown(
            "# Mutual kNN\nHow much do two models agree on which samples are neighbours? "
            "Upload the features both models give for the same N samples "
            "(.npy, .safetensors, .pt or numeric .csv; row i = sample i)."
        )
        with gr.Row():
            a_file = gr.File(label="Features of model A (N x D_a)", type="filepath")
            b_file = gr.File(label="Features of model B (N x D_b)", type="filepath")
        with gr.Row():
            k = gr.Slider(1, 100, value=10, step=1, label="k (neighbours)")
            permutations = gr.Slider(0, 2000, value=0, step=50, label="permutations (0 = none)")
        button = gr.Button("Compute", variant="primary")
        summary = gr.Markdown()
        raw = gr.Code(label="result", language="json")
        button.click(
            compute_from_files,
            inputs=[a_file, b_file, k, permutations],
            outputs=[summary, raw],
            api_name="compute",
        )
    return demo


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    build_demo().launch()
