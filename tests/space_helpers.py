"""Small real data for the Space tests: a poems repo, an image-poem-text repo, a feature
store and a results folder, all written with the library's own writers, plus a launcher.

Everything is tiny (60 poems, 3 models x 3 layers x 16 dims, 8 images) so the app starts in
about a second. Texts are generated from a word list (no copyrighted text).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

N_POEMS = 60
MODELS = ("model-a", "model-b", "model-c")
N_LAYERS = 3
DIM = 16
POEMS_DATASET = "space-test-poems"
RUN_SECONDS = 350.4  # the fixture run's measured compute time ("about 6 minutes")
WORDS = tuple(
    [
        "moon",
        "river",
        "stone",
        "light",
        "night",
        "rose",
        "wind",
        "sea",
        "autumn",
        "bird",
        "silver",
        "field",
        "dream",
        "fire",
        "snow",
        "shadow",
        "morning",
        "garden",
        "song",
        "heart",
    ]
)
FORMS = (("sonnet", "formatted"), ("free", "free_verse"), ("ode", "ambiguous"))


@dataclass(frozen=True)
class SpaceTestData:
    """Paths of the test data and the arrays behind the stored features."""

    poems_repo: Path
    images_repo: Path
    features_root: Path
    results_dir: Path
    stacks: dict[str, np.ndarray]  # model -> N x L x D, the stored features
    poem_ids: list[str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _poem_rows(rng: np.random.Generator) -> list[dict[str, Any]]:
    from uaes_hf.data.records import PoemRecord, content_id

    rows = []
    for i in range(N_POEMS):
        n_lines = int(rng.integers(2, 9))
        lines = [
            " ".join(rng.choice(WORDS, size=int(rng.integers(3, 7)))) + f" {i}"
            for _ in range(n_lines)
        ]
        text = "\n".join(lines)
        form, category = FORMS[i % len(FORMS)]
        score = None if i % 10 == 9 else int(1 + i % 5)
        record = PoemRecord(
            id=content_id(text),
            title=f"Poem {i}",
            author=f"Author {i % 4}",
            form=form,
            form_category=category,
            text=text,
            n_words=len(text.split()),
            n_lines=n_lines,
            english_ratio=1.0,
            aesthetic_score=score,
            aesthetic_rationale=None if score is None else f"rationale {i}",
            annotator=None if score is None else "test",
            source="space-test",
        )
        rows.append(record.as_row())
    return rows


def _image_rows(folder: Path) -> list[dict[str, Any]]:
    from PIL import Image

    rows = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(8):
        path = folder / f"img{i}.png"
        colour = (30 * i % 255, 200 - 20 * i, 90 + 15 * i)
        Image.new("RGB", (64, 48), colour).save(path)
        rows.append(
            {
                "id": f"img{i}",
                "image": str(path),
                "caption": f"a flat colour field number {i}",
                "poem": f"colour {i} / quiet as a field",
                "poem_source": "retrieval",
                "image_aesthetic_score": 2.0 + 0.5 * i,
                "image_aesthetic_level": 1 + i % 5,
                "scorer": "test",
                "license": "CC0-1.0",
                "source": "space-test",
            }
        )
    return rows


def _stacks(rng: np.random.Generator) -> dict[str, np.ndarray]:
    base = rng.normal(size=(N_POEMS, DIM)).astype(np.float32)
    stacks = {}
    for m, model in enumerate(MODELS):
        noise = [0.3, 0.8, 5.0][m]  # a and b share structure; c is mostly noise
        layers = [
            base + noise * rng.normal(size=base.shape).astype(np.float32) * (1 + layer)
            for layer in range(N_LAYERS)
        ]
        stacks[model] = np.stack(layers, axis=1).astype(np.float32)
    return stacks


def shuffled(stack: np.ndarray, ids: list[str], seed: int) -> tuple[np.ndarray, list[str]]:
    """A model's rows in their own order (as another extraction could store them)."""
    order = np.random.default_rng(seed).permutation(len(ids))
    return stack[order], [ids[i] for i in order]


def _write_store(root: Path, stacks: dict[str, np.ndarray], ids: list[str]) -> None:
    """A `uaes extract`-style store; every model's entry has its rows in another order."""
    from uaes_hf.features.fingerprint import dataset_fingerprint
    from uaes_hf.features.store import FeatureStore

    fingerprint = dataset_fingerprint([f"poem {i}" for i in ids])
    store = FeatureStore(root)
    for m, (model, stack) in enumerate(stacks.items()):
        rows, row_ids = shuffled(stack, ids, seed=100 + m)
        entry = store.entry(POEMS_DATASET, fingerprint, model, "mean")
        n = rows.shape[0]
        entry.write_shard(0, n, [rows[:, layer] for layer in range(rows.shape[1])])
        entry.merge(
            [(0, n)],
            {
                "model": model,
                "model_id": model,
                "pooling": "mean",
                "dataset": POEMS_DATASET,
                "dataset_fingerprint": fingerprint,
                "ids": row_ids,
            },
        )


def results_table(stacks: dict[str, np.ndarray], poems: Any) -> Any:
    """The tidy table the main job writes, computed here by the library on the test stacks."""
    import pandas as pd

    from uaes_hf.experiments.convergence import convergence_rows

    scores = poems["aesthetic_score"].to_numpy(dtype=float)
    subsets = {
        "poems": np.arange(N_POEMS),
        "high": np.flatnonzero(scores >= 3),
        "low": np.flatnonzero(scores <= 2),
    }
    rows = []
    for name, rows_of in subsets.items():
        for k in (5, 10):
            rows += convergence_rows(
                stacks, rows_of, subset=name, comparison="test", side=name, k=k,
                n_permutations=30, n_bootstrap=30,
            )  # fmt: skip
    return pd.DataFrame(rows)


def write_run(
    root: Path, table: Any, poems: Any, images: Any, stacks: dict[str, np.ndarray]
) -> Path:
    """A finished run as the Space sees it: stage folders laid out as ``uaes run``'s stages
    write them (the extract stage's feature store, rows with the poems' ids), and a report
    whose results come from the experiments' own writer."""
    import pandas as pd

    from uaes_hf.experiments.layout import ReportLayout, RunLayout
    from uaes_hf.experiments.report import write_results
    from uaes_hf.features.fingerprint import table_fingerprint
    from uaes_hf.features.store import FeatureStore

    stages = {
        name: root / "runs" / name / "0123456789abcdef"
        for name in ("prepare", "annotate", "extract")
    }
    for directory in stages.values():
        directory.mkdir(parents=True)
    layout = RunLayout(stages)
    poems.to_parquet(layout.prepared_poems, index=False)
    poems.to_parquet(layout.annotated_poems, index=False)
    images.to_parquet(layout.image_text, index=False)
    ids = [str(i) for i in poems["id"]]
    for m, (model, stack) in enumerate(stacks.items()):
        rows, row_ids = shuffled(stack, ids, seed=200 + m)
        FeatureStore(layout.feature_store).write(
            dataset="poems",
            fingerprint=table_fingerprint({"text": list(poems["text"])}, ids),
            model=model,
            pooling="mean",
            layers=[rows[:, layer] for layer in range(rows.shape[1])],
            ids=row_ids,
            options={"column": "text"},
        )
    report = ReportLayout(root / "report")
    summary = {"models": list(stacks), "stage_dirs": {k: str(v) for k, v in stages.items()}}
    write_results(report.results_dir, {"convergence": table}, summary)
    timings = pd.DataFrame(
        {
            "stage": ["prepare", "extract", "total"],
            "cached": [False, False, False],
            "seconds": [40.0, 310.4, RUN_SECONDS],
            "compute_seconds": [40.0, 310.4, RUN_SECONDS],
            "key": ["a", "b", ""],
        }
    )
    timings.to_csv(report.results.timings, index=False)
    return report.root


def build_space_data(root: Path) -> SpaceTestData:
    """Write all test data under ``root`` (about 2 s)."""
    from uaes_hf.data.image_poem_text import image_poem_text_features
    from uaes_hf.data.records import poem_features
    from uaes_hf.data.repo import ConfigData, write_dataset_repo

    rng = np.random.default_rng(0)
    poem_rows = _poem_rows(rng)
    poems_repo = write_dataset_repo(
        root / "poems", [ConfigData("main", poem_rows, features=poem_features(), default=True)]
    )
    image_features = image_poem_text_features()
    images_repo = write_dataset_repo(
        root / "images",
        [
            ConfigData(
                "main", _image_rows(root / "raw_images"), features=image_features, default=True
            )
        ],
    )
    stacks = _stacks(rng)
    ids = [row["id"] for row in poem_rows]
    _write_store(root / "features", stacks, ids)
    import pandas as pd

    poems = pd.read_parquet(next((poems_repo / "data" / "main").glob("*.parquet")))
    images = pd.read_parquet(next((images_repo / "data" / "main").glob("*.parquet")))
    images["image"] = [cell["bytes"] for cell in images["image"]]  # as the prepare stage has it
    table = results_table(stacks, poems)
    report = write_run(root, table, poems, images, stacks)
    return SpaceTestData(
        poems_repo=poems_repo,
        images_repo=images_repo,
        features_root=root / "features",
        results_dir=report,
        stacks=stacks,
        poem_ids=ids,
    )


def load_app_module() -> Any:
    """Import ``spaces/demo/app.py`` as a module (it is a script, not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "spaces" / "demo" / "app.py"
    spec = importlib.util.spec_from_file_location("uaes_space_app", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def launch(demo: Any, max_file_size: int = 8 * 1024 * 1024) -> str:
    """Launch ``demo`` (queued by the app, with its concurrency limit) on 127.0.0.1 at a
    free port without blocking; returns its URL. The server's own upload limit is above the
    app's byte cap, so that the app's refusal is what is tested."""
    from uaes_hf.space.app import launch_demo

    launch_demo(
        demo,
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
        max_file_size=max_file_size,
    )
    return demo.local_url
