"""uaes-hf Gradio Space: do AI models agree on beautiful things?

Five tabs over the uaes-hf library (every number comes from the library; this file only
wires widgets to it):

- Explore: poems filtered by aesthetic score, form category and length; the image-poem-text
  gallery with captions, poems and image aesthetic scores.
- Convergence: model x model mutual-kNN heatmaps of the main job's results (computed on
  first use from the embedded default run when absent), with chance level and calibrated
  score beside each value.
- Your features: two uploaded feature files (.npy, .safetensors, .csv) or two models' stored
  features -> mutual kNN, the per-sample histogram and the calibrated score.
- Neighbours: one poem's k nearest poems under model A and model B, shared ones highlighted.
- Judge: rate a poem with the LLM judge (OpenAI-compatible endpoint; key from OPENAI_API_KEY).

Run locally with ``python spaces/demo/app.py``; on Hugging Face Spaces it runs as is.
Settings come from arguments of :func:`build_demo` or, for the Space, from environment
variables: ``UAES_RESULTS_DIR``, ``UAES_POEMS`` (+ ``UAES_POEMS_REVISION``), ``UAES_IMAGES``,
``UAES_FEATURES`` (+ ``UAES_FEATURES_DATASET``), ``OPENAI_BASE_URL``, ``UAES_JUDGE_MODEL``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gradio as gr

from uaes_hf import space

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
FORM_CATEGORIES = ["formatted", "free_verse", "ambiguous", "unknown"]


def _env_path(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def build_demo(
    results_dir: str | Path | None = None,
    *,
    poems: Any = None,
    poems_revision: str | None = None,
    images: Any = None,
    features_root: str | Path | None = None,
    features_dataset: str | None = None,
    judge_base_url: str | None = None,
    judge_model: str | None = None,
    max_upload_bytes: int = space.MAX_UPLOAD_BYTES,
) -> gr.Blocks:
    """Build the Space (nothing is loaded until a tab asks for it).

    Args:
        results_dir: the main job's report folder (``uaes run``'s output). ``None``: env
            ``UAES_RESULTS_DIR``, else the embedded default run's folder, computed on first
            use from the Convergence tab.
        poems: poems dataset: a local dataset folder, a Hub repo id, ``"embedded"`` (the
            packaged public-domain sample, unscored), or the data itself
            (``datasets.Dataset`` or ``pandas.DataFrame``). ``None``: env ``UAES_POEMS``,
            else the annotated poems of the run behind the results.
        poems_revision: the poems config/branch (``main``, ``aligned_5`` ...).
        images: image-poem-text dataset (folder, Hub id or data); env ``UAES_IMAGES``, else
            the run's image-text pairs.
        features_root: a feature store root (``uaes extract``'s output) for the stored
            features and the Neighbours tab; env ``UAES_FEATURES``, else the run's features.
        features_dataset: which dataset's features to use (name given at extraction; for
            the run's features ``poems``).
        judge_base_url, judge_model: the judge's OpenAI-compatible endpoint and model; the
            key is read from ``OPENAI_API_KEY`` only.
        max_upload_bytes: largest feature file accepted by "Your features".

    Example:
        >>> demo = build_demo("reports/embedded-default")  # doctest: +SKIP
        >>> demo.launch()  # doctest: +SKIP
    """
    sources = space.SpaceSources(
        results_dir=results_dir or _env_path("UAES_RESULTS_DIR"),
        poems=poems if poems is not None else _env_path("UAES_POEMS"),
        poems_revision=poems_revision or _env_path("UAES_POEMS_REVISION"),
        images=images if images is not None else _env_path("UAES_IMAGES"),
        features_root=features_root or _env_path("UAES_FEATURES"),
        features_dataset=features_dataset or _env_path("UAES_FEATURES_DATASET"),
        judge_base_url=judge_base_url or _env_path("OPENAI_BASE_URL"),
        judge_model=judge_model or _env_path("UAES_JUDGE_MODEL") or "gpt-4o",
        max_upload_bytes=max_upload_bytes,
    )
    data = space.SpaceData(sources)

    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(INTRO)
        with gr.Tabs():
            _explore_tab(data)
            _convergence_tab(data, demo)
            _features_tab(data)
            _neighbours_tab(data)
            _judge_tab(data)
    return demo


def _errors_to_gradio(fn: Any) -> Any:
    """Show a library ``ValueError`` (or missing data) as a message, not a traceback."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, FileNotFoundError, KeyError, OSError) as err:
            raise gr.Error(space.user_message(err), print_exception=False) from None

    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


# ---------------------------------------------------------------------------------------------
# Explore


def _explore_tab(data: space.SpaceData) -> None:
    with gr.Tab("Explore", id="explore"):
        gr.Markdown(
            "### Poems\nFilter the annotated poems by aesthetic score (1-5, from the "
            "LLM judge), form category and length."
        )
        with gr.Row():
            min_score = gr.Slider(1, 5, value=1, step=1, label="min aesthetic score")
            max_score = gr.Slider(1, 5, value=5, step=1, label="max aesthetic score")
            unscored = gr.Checkbox(value=True, label="include poems without a score")
        with gr.Row():
            categories = gr.CheckboxGroup(
                FORM_CATEGORIES, value=FORM_CATEGORIES, label="form category"
            )
            min_words = gr.Number(value=0, precision=0, minimum=0, label="min words")
            max_words = gr.Number(value=2000, precision=0, minimum=0, label="max words")
        filter_button = gr.Button("Filter poems", variant="primary")
        count = gr.Markdown()
        table = gr.Dataframe(label="poems", interactive=False, wrap=True, max_height=420)
        with gr.Row():
            poem_pick = gr.Dropdown(label="read a poem", choices=[], allow_custom_value=True)
        poem_text = gr.Markdown()

        @_errors_to_gradio
        def filter_poems(
            lo: float,
            hi: float,
            with_unscored: bool,
            cats: list[str],
            wmin: float | None,
            wmax: float | None,
        ) -> tuple[str, Any, Any]:
            """Poems within the score range, form categories and word-count range."""
            frame, n = space.filter_poems(
                data.poems(), min_score=int(lo), max_score=int(hi),
                include_unscored=bool(with_unscored), form_categories=cats or [],
                min_words=int(wmin or 0), max_words=None if wmax is None else int(wmax),
            )  # fmt: skip
            labels = [space.poem_label(row) for row in frame.to_dict("records")]
            shown = f" (showing the first {len(frame)})" if n > len(frame) else ""
            return (
                f"**{n} poem(s)** match{shown}.",
                frame.drop(columns=["id"]).rename(columns=space.POEM_TABLE_HEADERS),
                gr.update(choices=labels, value=labels[0] if labels else None),
            )

        filter_inputs = [min_score, max_score, unscored, categories, min_words, max_words]
        filter_button.click(
            filter_poems, filter_inputs, [count, table, poem_pick], api_name="filter_poems"
        )

        @_errors_to_gradio
        def show_poem(label: str | None) -> str:
            """The full text of one poem, with its metadata."""
            return space.poem_markdown(data.poems(), label) if label else ""

        poem_pick.change(show_poem, poem_pick, poem_text, api_name="show_poem")

        gr.Markdown(
            "### Image-poem-text gallery\nImages with their caption, a poem, and the "
            "image aesthetic score (level 1-5)."
        )
        with gr.Row():
            min_level = gr.Slider(1, 5, value=1, step=1, label="min aesthetic level")
            max_level = gr.Slider(1, 5, value=5, step=1, label="max aesthetic level")
            gallery_button = gr.Button("Show images", variant="primary")
        gallery = gr.Gallery(label="images", columns=4, height=420, object_fit="contain")
        gallery_table = gr.Dataframe(
            label="captions, poems and scores", interactive=False, wrap=True, max_height=420
        )

        @_errors_to_gradio
        def image_gallery(lo: float, hi: float) -> tuple[list[Any], Any]:
            """Images whose aesthetic level is in [lo, hi], with captions, poems and scores."""
            return space.gallery_items(data.images(), min_level=int(lo), max_level=int(hi))

        gallery_button.click(
            image_gallery,
            [min_level, max_level],
            [gallery, gallery_table],
            api_name="image_gallery",
        )


# ---------------------------------------------------------------------------------------------
# Convergence


def _convergence_tab(data: space.SpaceData, demo: gr.Blocks) -> None:
    with gr.Tab("Convergence", id="convergence"):
        status = gr.Markdown()
        compute_button = gr.Button("Compute the embedded default results now")
        with gr.Row():
            subset = gr.Dropdown(label="subset", choices=[], allow_custom_value=True)
            k = gr.Dropdown(label="k", choices=[], allow_custom_value=True)
            metric = gr.Dropdown(label="metric", choices=[], allow_custom_value=True)
            show_button = gr.Button("Show heatmap", variant="primary")
        heatmap = gr.Plot(label="model x model convergence", elem_id="convergence-heatmap")
        values = gr.Dataframe(
            label="values (score, chance level, calibrated score, p-value, CI)",
            interactive=False,
            max_height=360,
            elem_id="convergence-values",
        )

        def _choices_updates() -> tuple[str, Any, Any, Any]:
            if not data.has_results():
                return (
                    space.missing_results_message(data.sources),
                    gr.update(choices=[], value=None),
                    gr.update(choices=[], value=None),
                    gr.update(choices=[], value=None),
                )
            choices = space.convergence_choices(data.results())
            return (
                data.results_status(),
                gr.update(choices=choices["subset"], value=space.default_subset(choices["subset"])),
                gr.update(choices=choices["k"], value=choices["k"][0]),
                gr.update(choices=choices["metric"], value=choices["metric"][0]),
            )

        @_errors_to_gradio
        def convergence_options() -> tuple[str, Any, Any, Any]:
            """Status of the results and the subsets, k values and metrics they hold."""
            return _choices_updates()

        @_errors_to_gradio
        def compute_results(progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:  # noqa: B008
            """Run the embedded default experiment (minutes on a CPU) if no results exist."""
            progress(0, desc="starting the embedded default run")
            data.compute_results()
            return _choices_updates()

        @_errors_to_gradio
        def convergence(subset_name: str, k_value: Any, metric_name: str) -> tuple[Any, Any]:
            """Heatmap and values for one subset, k and metric."""
            if not data.has_results():
                raise gr.Error(space.missing_results_message(data.sources), print_exception=False)
            if not subset_name or k_value in (None, "") or not metric_name:
                raise gr.Error("choose a subset, k and metric first", print_exception=False)
            cells = space.convergence_cells(
                data.results(), subset=subset_name, k=int(k_value), metric=metric_name
            )
            title = f"{subset_name} · {metric_name} · k={int(k_value)}"
            return space.convergence_heatmap_figure(cells, title=title), cells

        outputs = [status, subset, k, metric]
        demo.load(convergence_options, None, outputs, api_name="convergence_options")
        compute_button.click(compute_results, None, outputs, api_name="compute_results")
        show_button.click(
            convergence, [subset, k, metric], [heatmap, values], api_name="convergence"
        )


# ---------------------------------------------------------------------------------------------
# Your features


def _features_tab(data: space.SpaceData) -> None:
    with gr.Tab("Your features", id="features"):
        gr.Markdown(
            "Compare two representations of the **same N samples, in the same order**: "
            "upload two feature matrices (N x D; `.npy`, `.safetensors` with one tensor, or "
            f"`.csv` of numbers; at most {data.sources.max_upload_bytes // 2**20} MiB and "
            f"{space.MAX_UPLOAD_ROWS} rows each), or pick two models' stored features."
        )
        with gr.Row():
            k = gr.Number(value=10, precision=0, minimum=1, label="k (neighbours)")
            n_permutations = gr.Number(
                value=200,
                precision=0,
                minimum=1,
                maximum=space.MAX_PERMUTATIONS,
                label="permutations (calibration)",
            )
        with gr.Tab("Upload two files"):
            with gr.Row():
                file_a = gr.File(
                    label="features A",
                    file_types=[".npy", ".safetensors", ".csv"],
                    elem_id="upload-a",
                )
                file_b = gr.File(
                    label="features B",
                    file_types=[".npy", ".safetensors", ".csv"],
                    elem_id="upload-b",
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
        summary = gr.Markdown()
        histogram = gr.Plot(label="per-sample mutual kNN", elem_id="features-histogram")
        numbers = gr.Dataframe(headers=["quantity", "value"], label="numbers", interactive=False)

        def _outputs(result: space.FeatureComparison) -> tuple[str, Any, list[list[Any]]]:
            return result.summary(), space.per_sample_histogram_figure(result), result.rows()

        @_errors_to_gradio
        def compare_uploads(
            path_a: str | None, path_b: str | None, k_value: float, perms: float
        ) -> tuple[str, Any, list[list[Any]]]:
            """Mutual kNN, per-sample histogram and calibrated score of two uploaded files."""
            if not path_a or not path_b:
                raise gr.Error("upload two feature files (A and B) first", print_exception=False)
            features_a = data.read_upload(path_a, "features A")
            features_b = data.read_upload(path_b, "features B")
            return _outputs(space.compare_features(
                features_a, features_b, k=int(k_value), n_permutations=int(perms)
            ))  # fmt: skip

        @_errors_to_gradio
        def compare_stored(
            name_a: str, index_a: float, name_b: str, index_b: float, k_value: float, perms: float
        ) -> tuple[str, Any, list[list[Any]]]:
            """The same for two models' stored features (one layer each)."""
            if not name_a or not name_b:
                raise gr.Error("pick two models with stored features", print_exception=False)
            store = data.feature_set()
            return _outputs(space.compare_features(
                store.layer(name_a, int(index_a)), store.layer(name_b, int(index_b)),
                k=int(k_value), n_permutations=int(perms),
            ))  # fmt: skip

        @_errors_to_gradio
        def stored_models() -> tuple[Any, Any]:
            """Models whose features are stored (for the dropdowns)."""
            models = data.stored_models()
            second = models[1] if len(models) > 1 else None
            return (
                gr.update(choices=models, value=models[0] if models else None),
                gr.update(choices=models, value=second),
            )

        upload_button.click(
            compare_uploads,
            [file_a, file_b, k, n_permutations],
            [summary, histogram, numbers],
            api_name="compare_uploads",
        )
        stored_button.click(
            compare_stored,
            [model_a, layer_a, model_b, layer_b, k, n_permutations],
            [summary, histogram, numbers],
            api_name="compare_stored",
        )
        refresh.click(stored_models, None, [model_a, model_b], api_name="stored_models")
        # Opening the sub-tab fills the dropdowns too (same callback, not a second endpoint).
        stored_tab.select(stored_models, None, [model_a, model_b], api_visibility="private")


# ---------------------------------------------------------------------------------------------
# Neighbours


def _neighbours_tab(data: space.SpaceData) -> None:
    with gr.Tab("Neighbours", id="neighbours") as tab:
        gr.Markdown(
            "The intuition behind the metric: pick a poem and see its k nearest poems under "
            "two models. **Highlighted** poems are neighbours under both; their share is this "
            "poem's term of the mutual kNN average."
        )
        with gr.Row():
            poem = gr.Dropdown(
                label="poem", choices=[], allow_custom_value=True, elem_id="neighbour-poem"
            )
            model_a = gr.Dropdown(label="model A", choices=[], allow_custom_value=True)
            model_b = gr.Dropdown(label="model B", choices=[], allow_custom_value=True)
            k = gr.Slider(1, 30, value=10, step=1, label="k")
        with gr.Row():
            load_button = gr.Button("Load poems and models", size="sm")
            show_button = gr.Button("Show neighbours", variant="primary")
        overlap = gr.Markdown()
        with gr.Row():
            left = gr.HTML()
            right = gr.HTML()

        @_errors_to_gradio
        def neighbour_options() -> tuple[Any, Any, Any]:
            """The poems and models with stored features (empty lists when none are stored)."""
            models = data.stored_models()
            labels = data.neighbour_poem_labels() if models else []
            return (
                gr.update(choices=labels, value=labels[0] if labels else None),
                gr.update(choices=models, value=models[0] if models else None),
                gr.update(choices=models, value=models[1] if len(models) > 1 else None),
            )

        @_errors_to_gradio
        def neighbours(label: str, name_a: str, name_b: str, k_value: float) -> tuple:
            """One poem's k nearest poems under model A and model B, shared ones marked."""
            if not label or not name_a or not name_b:
                raise gr.Error(
                    "pick a poem and two models first (press 'Load poems and models')",
                    print_exception=False,
                )
            view = data.neighbours(label, name_a, name_b, int(k_value))
            return view.summary, view.html_a, view.html_b

        load_button.click(
            neighbour_options, None, [poem, model_a, model_b], api_name="neighbour_options"
        )
        show_button.click(
            neighbours, [poem, model_a, model_b, k], [overlap, left, right], api_name="neighbours"
        )
        tab.select(neighbour_options, None, [poem, model_a, model_b], api_visibility="private")


# ---------------------------------------------------------------------------------------------
# Judge


def _judge_tab(data: space.SpaceData) -> None:
    with gr.Tab("Judge", id="judge") as tab:
        gr.Markdown(space.judge_status_markdown(data.sources))
        with gr.Row():
            poem = gr.Dropdown(label="a poem from the dataset", choices=[], allow_custom_value=True)
            load_button = gr.Button("Load poems", size="sm")
        text = gr.Textbox(label="...or paste a poem", lines=8)
        rate_button = gr.Button("Rate with the LLM judge", variant="primary")
        verdict = gr.Markdown()

        @_errors_to_gradio
        def judge_options() -> Any:
            """Poem labels for the dropdown."""
            labels = [space.poem_label(r) for r in space.as_frame(data.poems()).to_dict("records")]
            return gr.update(choices=labels, value=None)

        @_errors_to_gradio
        def judge(label: str | None, pasted: str | None) -> str:
            """Rate one poem (the pasted text wins over the dropdown) with the LLM judge."""
            poem_text = (pasted or "").strip()
            if not poem_text and label:
                poem_text = space.poem_row(data.poems(), label)["text"]
            if not poem_text:
                raise gr.Error("pick a poem or paste one first", print_exception=False)
            return space.judge_poem(poem_text, data.sources)

        load_button.click(judge_options, None, poem, api_name="judge_options")
        tab.select(judge_options, None, poem, api_visibility="private")
        rate_button.click(judge, [poem, text], verdict, api_name="judge")


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    build_demo().queue(default_concurrency_limit=2).launch(
        max_file_size=space.MAX_UPLOAD_BYTES,
        server_name=os.environ.get("GRADIO_SERVER_NAME"),
    )
