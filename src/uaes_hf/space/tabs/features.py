"""Your features: two uploaded feature files, or two models' stored features, compared with
:func:`uaes_hf.alignment.compare` (any of its metrics, the study's outlier clamp).

Endpoints: ``/compare_uploads``, ``/compare_stored``, ``/stored_models``. Every request is
checked against the Space's budget before a file is parsed or a score computed.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from uaes_hf.space import comparison
from uaes_hf.space.tabs import TabContext
from uaes_hf.space.ui import errors_to_messages, hint
from uaes_hf.space.uploads import UPLOAD_SUFFIXES, read_upload, upload_shape


def limits_markdown(budget: Any) -> str:
    """The budget as the tab states it."""
    return (
        f"Limits of this Space: files up to {budget.max_upload_bytes / 2**20:.0f} MiB, "
        f"{budget.max_rows:,} rows and {budget.max_cells:,} values; k ≤ min({budget.max_k}, "
        f"N − 1); up to {budget.max_permutations} permutations, with w·N·k²·(permutations + 2) "
        f"≤ {budget.max_neighbour_work:,} for the neighbour metrics (w = 1 mutual_knn, 2 "
        f"cknna, 8 lcs_knn, 12 cycle_knn, 20 edit_distance_knn), N²·permutations ≤ "
        f"{budget.max_kernel_work:,} and N²·(D_A + D_B) ≤ {budget.max_gram_work:,} for cka "
        f"and unbiased_cka, N·D·min(N, D) ≤ {budget.max_svd_work:,} for svcca. Larger "
        "requests: the library or `uaes align`."
    )


def build(ctx: TabContext) -> None:
    """The Your features tab's widgets and events."""
    from uaes_hf.alignment import METRICS

    data, budget = ctx.data, ctx.budget
    gr.Markdown(
        "Compare two representations of the **same N samples, in the same order**: upload "
        "two feature matrices (N x D; `.npy`, `.safetensors` with one tensor, or `.csv` of "
        "numbers), or pick two models' stored features (joined by row id). "
        + limits_markdown(budget)
    )
    with gr.Row():
        metric = gr.Dropdown(list(METRICS), value="mutual_knn", label="metric")
        k = gr.Number(value=10, precision=0, label=f"k (neighbours; at most {budget.max_k})")
        permutations = gr.Number(
            value=200, precision=0,
            label=f"permutations (calibration; at most {budget.max_permutations})",
        )  # fmt: skip
    with gr.Row():
        clamp = gr.Checkbox(value=False, label="clamp outliers first (the study's remove_outliers)")
        quantile = gr.Number(value=0.95, minimum=0.0, maximum=1.0, label="outlier quantile q")
        exact = gr.Checkbox(value=False, label="exact order statistic (whole array)")
    settings_inputs = [metric, k, permutations, clamp, quantile, exact]
    with gr.Tab("Upload two files"):
        with gr.Row():
            file_a = gr.File(
                label="features A", file_types=list(UPLOAD_SUFFIXES), elem_id="upload-a"
            )
            file_b = gr.File(
                label="features B", file_types=list(UPLOAD_SUFFIXES), elem_id="upload-b"
            )
        upload_button = gr.Button("Compare uploaded features", variant="primary")
    with gr.Tab("Stored features") as stored_tab:
        with gr.Row():
            model_a = gr.Dropdown(label="model A", choices=[], allow_custom_value=True)
            layer_a = gr.Number(value=-1, precision=0, label="layer A (-1 = last)")
            model_b = gr.Dropdown(label="model B", choices=[], allow_custom_value=True)
            layer_b = gr.Number(value=-1, precision=0, label="layer B (-1 = last)")
        with gr.Row():
            refresh = gr.Button("Refresh stored models", size="sm")
            stored_button = gr.Button("Compare stored features", variant="primary")
    summary = gr.Markdown(elem_id="features-summary")
    histogram = gr.Plot(label="per-sample scores", elem_id="features-histogram")
    numbers = gr.Dataframe(headers=["quantity", "value"], label="numbers", interactive=False)

    def outputs(result: Any) -> tuple[str, Any, list[list[Any]]]:
        return (
            comparison.summary_markdown(result),
            comparison.per_sample_figure(result),
            comparison.numbers_rows(result),
        )

    def checked(*values: Any) -> comparison.CompareSettings:
        """The visitor's settings, checked against what needs no file (metric, k, perms)."""
        settings = comparison.CompareSettings.from_inputs(*values)
        budget.check_settings(settings.metric, settings.k, settings.permutations)
        return settings

    @errors_to_messages
    def compare_uploads(
        path_a: str | None,
        path_b: str | None,
        metric_name: str,
        k_value: Any,
        n_permutations: Any,
        clamp_outliers: bool,
        outlier_quantile: Any,
        outlier_exact: bool,
    ) -> tuple[str, Any, Any]:
        """Score, chance, calibration and per-sample scores of two uploaded files."""
        if not path_a or not path_b:
            return hint("upload two feature files (A and B) first"), None, None
        settings = checked(
            metric_name, k_value, n_permutations, clamp_outliers, outlier_quantile, outlier_exact
        )
        (n_a, d_a), (n_b, d_b) = (
            upload_shape(path_a, "features A", budget),
            upload_shape(path_b, "features B", budget),
        )
        # The budget of the larger side, before parsing; N mismatch is told after reading,
        # where a malformed file gets its own message.
        budget.check_compare(
            settings.metric, n=max(n_a, n_b), dims=(d_a, d_b), k=settings.k,
            permutations=settings.permutations,
        )  # fmt: skip
        result = comparison.compare_request(
            read_upload(path_a, "features A", budget),
            read_upload(path_b, "features B", budget),
            settings,
            budget,
        )
        return outputs(result)

    @errors_to_messages
    def compare_stored(
        name_a: str | None,
        index_a: Any,
        name_b: str | None,
        index_b: Any,
        metric_name: str,
        k_value: Any,
        n_permutations: Any,
        clamp_outliers: bool,
        outlier_quantile: Any,
        outlier_exact: bool,
    ) -> tuple[str, Any, Any]:
        """The same for two models' stored features (one layer each, rows joined by id)."""
        if not name_a or not name_b:
            return hint("pick two models with stored features first"), None, None
        settings = checked(
            metric_name, k_value, n_permutations, clamp_outliers, outlier_quantile, outlier_exact
        )
        layer_a = -1 if index_a is None else int(index_a)
        layer_b = -1 if index_b is None else int(index_b)
        store = data.feature_set()
        shape_a, shape_b = store.shape(name_a, layer_a), store.shape(name_b, layer_b)
        budget.check_shape(*shape_a, name_a)
        budget.check_shape(*shape_b, name_b)
        comparison.check_request(shape_a, shape_b, settings, budget)
        a, b = store.pair(name_a, layer_a, name_b, layer_b)
        return outputs(comparison.compare_request(a, b, settings, budget))

    @errors_to_messages
    def stored_models() -> tuple[Any, Any]:
        """Models whose features are stored (for the dropdowns)."""
        models = data.stored_models()
        second = models[1] if len(models) > 1 else None
        return (
            gr.update(choices=models, value=models[0] if models else None),
            gr.update(choices=models, value=second),
        )

    upload_button.click(
        compare_uploads, [file_a, file_b, *settings_inputs], [summary, histogram, numbers],
        api_name="compare_uploads",
    )  # fmt: skip
    stored_button.click(
        compare_stored, [model_a, layer_a, model_b, layer_b, *settings_inputs],
        [summary, histogram, numbers], api_name="compare_stored",
    )  # fmt: skip
    refresh.click(stored_models, None, [model_a, model_b], api_name="stored_models")
    # Opening the sub-tab fills the dropdowns too (same callback, not a second endpoint).
    stored_tab.select(stored_models, None, [model_a, model_b], api_visibility="private")
