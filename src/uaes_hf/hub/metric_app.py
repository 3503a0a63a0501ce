"""The Gradio app of a metric module's Space: upload two feature files, get the score.

Each ``metrics/<name>/app.py`` is three lines around :func:`build_metric_demo`. Written with
``gr.Blocks`` because evaluate's ``launch_gradio_widget`` is broken on current Gradio. A
public Space is a shared machine, so requests above :data:`MAX_WORK` (``N * k^2 *
permutations``: each permutation compares N pairs of k-lists) or :data:`MAX_UPLOAD_BYTES`
are refused with a message that names the limit.

Example:
    >>> from pathlib import Path
    >>> display_name(Path("metrics/cycle_knn"))
    'Cycle kNN'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_UPLOAD_BYTES = 512 * 1024**2
MAX_WORK = 200_000_000  # N * k^2 * permutations: seconds on 2 CPU cores
MAX_K = 100
DISPLAY_NAMES = {
    "mutual_knn": "Mutual kNN",
    "cycle_knn": "Cycle kNN",
    "lcs_knn": "LCS kNN",
    "edit_distance_knn": "Edit-distance kNN",
    "cknna": "CKNNA",
    "cka": "CKA",
    "unbiased_cka": "Unbiased CKA",
    "svcca": "SVCCA",
}


def display_name(module_dir: Path) -> str:
    """The metric's display name from its module folder's name."""
    return DISPLAY_NAMES.get(module_dir.name, module_dir.name)


def compute_from_files(
    module_dir: Path, a_file: str | None, b_file: str | None, k: float, permutations: float
) -> tuple[str, str]:
    """Score two uploaded feature files; returns (summary markdown, JSON result)."""
    import evaluate

    from uaes_hf.feature_files import read_features

    if not a_file or not b_file:
        return "Upload two feature files (N x D each, same N, same row order).", "{}"
    name = module_dir.name
    k, permutations = int(k), int(permutations)
    try:
        a = read_features(a_file, max_bytes=MAX_UPLOAD_BYTES)
        b = read_features(b_file, max_bytes=MAX_UPLOAD_BYTES)
        work = a.shape[0] * max(k, 1) ** 2 * permutations
        if work > MAX_WORK:
            raise ValueError(
                f"N x k^2 x permutations = {work:,} is above this Space's limit of "
                f"{MAX_WORK:,}; use fewer permutations or run the metric locally"
            )
        result = evaluate.load(str(module_dir)).compute(
            predictions=a, references=b, k=k, permutations=permutations
        )
    except ValueError as err:
        return f"**Error:** {err}", "{}"
    lines = [f"**{display_name(module_dir)}** = {result[name]:.4f} (N = {a.shape[0]}, k = {k})"]
    if result.get("chance_level") is not None:
        lines.append(f"chance level = {result['chance_level']:.4f}")
    if "calibrated_score" in result:
        lines.append(
            f"calibrated score = {result['calibrated_score']:.4f}, p-value = "
            f"{result['p_value']:.4g}, null mean = {result['null_mean']:.4f} "
            f"({permutations} permutations)"
        )
    return "\n\n".join(lines), json.dumps(result, indent=2)


def build_metric_demo(module_dir: Path) -> Any:
    """The Blocks app of the metric module in ``module_dir`` (not launched)."""
    import gradio as gr

    title = display_name(module_dir)
    with gr.Blocks(title=title) as demo:
        gr.Markdown(
            f"# {title}\nHow much do two models agree about these samples? Upload the "
            "features both models give for the same N samples (.npy, .safetensors, .pt or "
            "numeric .csv; row i = sample i)."
        )
        with gr.Row():
            a_file = gr.File(label="Features of model A (N x D_a)", type="filepath")
            b_file = gr.File(label="Features of model B (N x D_b)", type="filepath")
        with gr.Row():
            k = gr.Slider(1, MAX_K, value=10, step=1, label="k (neighbours)")
            permutations = gr.Slider(0, 2000, value=0, step=50, label="permutations (0 = none)")
        button = gr.Button("Compute", variant="primary")
        summary = gr.Markdown()
        raw = gr.Code(label="result", language="json")

        def compute(a: Any, b: Any, k_value: float, perms: float) -> tuple[str, str]:
            return compute_from_files(module_dir, a, b, k_value, perms)

        button.click(
            compute,
            inputs=[a_file, b_file, k, permutations],
            outputs=[summary, raw],
            api_name="compute",
            concurrency_limit=1,
        )
    return demo
