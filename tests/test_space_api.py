"""Drive every tab of the Gradio Space through its API (gradio_client), against a real app on
127.0.0.1, and check the values against brute force or the library called independently."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import space_helpers as helpers
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

UPLOAD_LIMIT = 200_000  # bytes; small so that the size limit is testable
ALL_CATEGORIES = ["formatted", "free_verse", "ambiguous", "unknown"]


# ---------------------------------------------------------------------------------------------
# Brute force, written independently of the library


def brute_knn(x: np.ndarray, k: int) -> np.ndarray:
    """Top-k cosine neighbours of every row, self excluded (float64, full sort)."""
    x = np.asarray(x, dtype=np.float64)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


def brute_mutual_knn(a: np.ndarray, b: np.ndarray, k: int) -> float:
    na, nb = brute_knn(a, k), brute_knn(b, k)
    return float(np.mean([len(set(ra) & set(rb)) / k for ra, rb in zip(na, nb, strict=True)]))


def table_of(payload: dict) -> pd.DataFrame:
    return pd.DataFrame(payload["data"], columns=payload["headers"])


# ---------------------------------------------------------------------------------------------
# Fixtures: the data, a fake OpenAI-compatible judge endpoint, the app and a client


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> helpers.SpaceTestData:
    return helpers.build_space_data(tmp_path_factory.mktemp("space"))


@pytest.fixture(scope="module")
def judge_server():
    from openai_server import FakeOpenAIServer

    with FakeOpenAIServer(require_key="space-test-key") as server:
        yield server


@pytest.fixture(scope="module")
def client(data: helpers.SpaceTestData, judge_server) -> Client:
    """The Space as deployed by default: only the results folder of the main job's run; the
    poems, images and features come from that run."""
    demo = helpers.load_app_module().build_demo(
        data.results_dir,
        judge_base_url=judge_server.base_url,
        judge_model="gpt-4o",
        max_upload_bytes=UPLOAD_LIMIT,
    )
    yield Client(helpers.launch(demo), verbose=False)
    demo.close()


@pytest.fixture(scope="module")
def sources_client(data: helpers.SpaceTestData) -> Client:
    """The Space pointed at published datasets and a feature store (`uaes extract`)."""
    demo = helpers.load_app_module().build_demo(
        data.results_dir,
        poems=str(data.poems_repo),
        images=str(data.images_repo),
        features_root=data.features_root,
    )
    yield Client(helpers.launch(demo), verbose=False)
    demo.close()


@pytest.fixture(params=["run", "sources"])
def any_client(request: pytest.FixtureRequest) -> Client:
    return request.getfixturevalue("client" if request.param == "run" else "sources_client")


@pytest.fixture(scope="module")
def results(data: helpers.SpaceTestData) -> pd.DataFrame:
    return pd.read_csv(data.results_dir / "results" / "convergence.csv")


@pytest.fixture(scope="module")
def poems(data: helpers.SpaceTestData) -> pd.DataFrame:
    # Read the parquet directly with pandas: independent of the datasets loader the app uses.
    return pd.read_parquet(next((data.poems_repo / "data" / "main").glob("*.parquet")))


# ---------------------------------------------------------------------------------------------
# Explore


@pytest.mark.parametrize(
    ("lo", "hi", "unscored", "categories", "wmin", "wmax"),
    [
        (1, 5, True, ALL_CATEGORIES, 0, 2000),
        (4, 5, False, ALL_CATEGORIES, 0, 2000),
        (2, 3, True, ["free_verse"], 0, 2000),
        (1, 5, False, ["formatted", "ambiguous"], 10, 25),
    ],
)
def test_filter_poems_matches_pandas(any_client, poems, lo, hi, unscored, categories, wmin, wmax):
    count, table, dropdown = any_client.predict(
        lo, hi, unscored, categories, wmin, wmax, api_name="/filter_poems"
    )
    score = poems["aesthetic_score"]
    keep = score.between(lo, hi) | (score.isna() & unscored)
    keep &= poems["form_category"].isin(categories) & poems["n_words"].between(wmin, wmax)
    expected = poems[keep]
    assert f"**{len(expected)} poem(s)**" in count
    got = table_of(table)
    assert got["title"].tolist() == expected["title"].tolist()
    assert got["words"].tolist() == expected["n_words"].tolist()
    assert got["score"].fillna(0).tolist() == expected["aesthetic_score"].fillna(0).tolist()
    assert len(dropdown["choices"]) == len(expected)


def test_show_poem_gives_the_full_text(client, poems):
    row = poems.iloc[7]
    label = f"{row['title']} — {row['author']} [{row['id']}]"
    text = client.predict(label, api_name="/show_poem")
    assert row["title"] in text
    for line in row["text"].splitlines():
        assert html.escape(line) in text


def test_gallery_filters_by_level(any_client, data):
    gallery, table = any_client.predict(2, 4, api_name="/image_gallery")
    frame = pd.read_parquet(next((data.images_repo / "data" / "main").glob("*.parquet")))
    expected = frame[frame["image_aesthetic_level"].between(2, 4)]
    got = table_of(table)
    assert got["id"].tolist() == expected["id"].tolist()
    assert got["poem"].tolist() == expected["poem"].tolist()
    assert np.allclose(got["image_aesthetic_score"], expected["image_aesthetic_score"], atol=1e-3)
    assert len(gallery) == len(expected)
    for item, caption in zip(gallery, expected["caption"], strict=True):
        assert Path(item["image"]).is_file()
        assert caption in item["caption"]


# ---------------------------------------------------------------------------------------------
# Convergence


def test_convergence_options_list_the_results(client, results):
    table = results
    status, subset, k, metric = client.predict(api_name="/convergence_options")
    assert "Results from" in status
    assert sorted(v for _, v in subset["choices"]) == sorted(table["subset"].unique())
    assert sorted(v for _, v in k["choices"]) == sorted(table["k"].unique())
    assert [v for _, v in metric["choices"]] == ["mutual_knn"]
    assert subset["value"] == "poems"  # the headline subset is shown first
    # results exist, so "compute" only reloads them (the real run takes minutes)
    status_after, subset_after, _, _ = client.predict(api_name="/compute_results")
    assert status_after == status and subset_after["choices"] == subset["choices"]


@pytest.mark.parametrize(("subset", "k"), [("poems", 10), ("high", 5)])
def test_convergence_values_are_the_results(client, data, results, subset, k):
    table = results
    plot, values = client.predict(subset, k, "mutual_knn", api_name="/convergence")
    assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/")
    got = table_of(values).sort_values(["model_a", "model_b"]).reset_index(drop=True)
    expected = table[(table["subset"] == subset) & (table["k"] == k)]
    expected = expected.sort_values(["model_a", "model_b"]).reset_index(drop=True)
    for column in ("score", "chance", "calibrated", "p_value", "ci_low", "ci_high"):
        assert np.allclose(got[column], expected[column], rtol=0, atol=5e-7), column
    assert np.allclose(got["chance"], k / (expected["n"] - 1), rtol=0, atol=5e-7)
    # and the table's scores are the mutual kNN of the stored best layers (brute force)
    for row in expected.itertuples():
        rows = np.arange(helpers.N_POEMS)
        if subset == "high":
            scores = pd.read_parquet(next((data.poems_repo / "data" / "main").glob("*.parquet")))[
                "aesthetic_score"
            ].to_numpy(dtype=float)
            rows = np.flatnonzero(scores >= 3)
        a = data.stacks[row.model_a][rows, row.layer_a]
        b = data.stacks[row.model_b][rows, row.layer_b]
        assert brute_mutual_knn(a, b, k) == pytest.approx(row.score)


def test_convergence_unknown_choice_is_a_message(client):
    with pytest.raises(AppError, match="no results for subset='nope'"):
        client.predict("nope", 10, "mutual_knn", api_name="/convergence")
    with pytest.raises(AppError, match="no results for subset='poems', k=7"):
        client.predict("poems", 7, "mutual_knn", api_name="/convergence")


# ---------------------------------------------------------------------------------------------
# Your features


def _write(path: Path, matrix: np.ndarray) -> Path:
    if path.suffix == ".npy":
        np.save(path, matrix)
    elif path.suffix == ".csv":
        np.savetxt(path, matrix, delimiter=",")
    else:
        from safetensors.numpy import save_file

        save_file({"features": np.ascontiguousarray(matrix)}, str(path))
    return path


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".safetensors"])
def test_compare_uploads_matches_brute_force(client, data, tmp_path, suffix):
    from uaes_hf.alignment.calibration import permutation_test

    a = data.stacks["model-a"][:, 0].astype(np.float64)
    b = data.stacks["model-b"][:, 1].astype(np.float64)
    path_a = _write(tmp_path / f"a{suffix}", a)
    path_b = _write(tmp_path / f"b{suffix}", b)
    summary, plot, numbers = client.predict(
        handle_file(str(path_a)), handle_file(str(path_b)), 7, 60, api_name="/compare_uploads"
    )
    got = dict(table_of(numbers).itertuples(index=False, name=None))
    assert got["mutual_knn"] == pytest.approx(brute_mutual_knn(a, b, 7), abs=1e-6)
    assert got["chance_level"] == pytest.approx(7 / (helpers.N_POEMS - 1), abs=1e-6)
    reference = permutation_test(a, b, 7, n_permutations=60, seed=0)
    assert got["calibrated"] == pytest.approx(reference.calibrated, abs=1e-6)
    assert got["p_value"] == pytest.approx(reference.p_value, abs=1e-6)
    assert got["N"] == helpers.N_POEMS and got["k"] == 7
    assert f"mutual kNN = {got['mutual_knn']:.3f}" in summary
    assert plot["type"] == "matplotlib"


def test_bad_uploads_are_messages_and_the_app_keeps_serving(client, data, tmp_path):
    good_a = _write(tmp_path / "good_a.npy", data.stacks["model-a"][:, 0])
    good_b = _write(tmp_path / "good_b.npy", data.stacks["model-c"][:, 0])
    with_nan = data.stacks["model-b"][:, 0].copy()
    with_nan[3, 2] = np.nan
    bad = {
        "3-D": (_write(tmp_path / "cube.npy", np.ones((60, 3, 4))), r"2-D"),
        "N": (_write(tmp_path / "short.npy", data.stacks["model-b"][:50, 0]), r"60.*50|50.*60"),
        "NaN": (_write(tmp_path / "nan.npy", with_nan), r"NaN"),
        "unreadable": (tmp_path / "junk.npy", r"features B \(junk\.npy\): "),
        "csv text": (tmp_path / "words.csv", r"words\.csv.*non-numeric"),
        "too big": (_write(tmp_path / "big.npy", np.ones((60, 600))), r"above the limit"),
    }
    (tmp_path / "junk.npy").write_bytes(b"this is not a numpy file at all")
    (tmp_path / "words.csv").write_text("a,b\nc,d\n")
    for name, (path, message) in bad.items():
        with pytest.raises(AppError, match=message):
            client.predict(
                handle_file(str(good_a)), handle_file(str(path)), 5, 20,
                api_name="/compare_uploads",
            )  # fmt: skip
        assert name  # the loop names the case in a failure's traceback
    with pytest.raises(AppError, match=r"k=60"):
        client.predict(
            handle_file(str(good_a)), handle_file(str(good_b)), 60, 20, api_name="/compare_uploads"
        )
    # the app still serves a good request
    _, _, numbers = client.predict(
        handle_file(str(good_a)), handle_file(str(good_b)), 5, 20, api_name="/compare_uploads"
    )
    got = dict(table_of(numbers).itertuples(index=False, name=None))
    a, c = data.stacks["model-a"][:, 0], data.stacks["model-c"][:, 0]
    assert got["mutual_knn"] == pytest.approx(brute_mutual_knn(a, c, 5), abs=1e-6)


def test_compare_stored_features(any_client, data):
    models = any_client.predict(api_name="/stored_models")
    assert [v for _, v in models[0]["choices"]] == list(helpers.MODELS)
    _, _, numbers = any_client.predict(
        "model-a", -1, "model-b", 0, 10, 30, api_name="/compare_stored"
    )
    got = dict(table_of(numbers).itertuples(index=False, name=None))
    a, b = data.stacks["model-a"][:, -1], data.stacks["model-b"][:, 0]
    assert got["mutual_knn"] == pytest.approx(brute_mutual_knn(a, b, 10), abs=1e-6)
    with pytest.raises(AppError, match="layer 7 out of range"):
        any_client.predict("model-a", 7, "model-b", 0, 10, 30, api_name="/compare_stored")
    with pytest.raises(AppError, match="no stored features for model 'nope'"):
        any_client.predict("nope", 0, "model-b", 0, 10, 30, api_name="/compare_stored")


# ---------------------------------------------------------------------------------------------
# Neighbours


def _rows(fragment: str) -> list[tuple[int, bool]]:
    return [
        (int(row), shared == "true")
        for row, shared in re.findall(r'data-row="(\d+)" data-shared="(true|false)"', fragment)
    ]


@pytest.mark.parametrize(("poem_index", "k"), [(0, 10), (33, 4)])
def test_neighbours_side_by_side(any_client, data, poems, poem_index, k):
    poem_choices, model_a, model_b = any_client.predict(api_name="/neighbour_options")
    assert len(poem_choices["choices"]) == helpers.N_POEMS
    assert model_a["value"] == "model-a" and model_b["value"] == "model-b"
    row = poems.iloc[poem_index]
    label = f"{row['title']} — {row['author']} [{row['id']}]"
    summary, left, right = any_client.predict(
        label, "model-a", "model-c", k, api_name="/neighbours"
    )
    query = data.poem_ids.index(row["id"])
    expect_a = brute_knn(data.stacks["model-a"][:, -1], k)[query].tolist()
    expect_c = brute_knn(data.stacks["model-c"][:, -1], k)[query].tolist()
    shared = set(expect_a) & set(expect_c)
    assert _rows(left) == [(r, r in shared) for r in expect_a]
    assert _rows(right) == [(r, r in shared) for r in expect_c]
    assert f"{len(shared)} of its k={k} nearest poems are shared" in summary
    assert f"mutual kNN = {len(shared) / k:.2f}" in summary


# ---------------------------------------------------------------------------------------------
# Judge


def test_judge_without_key_says_how_to_configure(client, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    text = client.predict(None, "Roses are red\nviolets are blue", api_name="/judge")
    assert "not configured" in text and "OPENAI_API_KEY" in text


def test_judge_rates_through_the_endpoint(client, judge_server, poems, monkeypatch):
    from openai_server import expected_score, sha256_text

    monkeypatch.setenv("OPENAI_API_KEY", "space-test-key")
    row = poems.iloc[4]
    label = f"{row['title']} — {row['author']} [{row['id']}]"
    text = client.predict(label, "", api_name="/judge")
    assert f"Score: {expected_score(sha256_text(row['text']))} / 5" in text
    assert judge_server.chat_requests(), "the judge endpoint was never called"
    with pytest.raises(AppError, match="pick a poem or paste one"):
        client.predict(None, "  ", api_name="/judge")


# ---------------------------------------------------------------------------------------------
# A Space with no results yet, and a poems table with only the required columns


def test_space_without_results_explains_and_still_serves(tmp_path):
    minimal = pd.DataFrame(
        {
            "id": ["p1", "p2", "p3"],
            "text": ["Tyger Tyger\nburning bright", "one line", "a\nb\nc"],
            "aesthetic_score": [5, None, 2],
        }
    )
    demo = helpers.load_app_module().build_demo(tmp_path / "no-report", poems=minimal)
    try:
        client = Client(helpers.launch(demo), verbose=False)
        status, subset, _, _ = client.predict(api_name="/convergence_options")
        assert "No convergence results yet" in status and "Compute" in status
        assert subset["choices"] == []
        with pytest.raises(AppError, match="No convergence results yet"):
            client.predict("poems", 10, "mutual_knn", api_name="/convergence")
        with pytest.raises(AppError, match="no image-poem-text data"):
            client.predict(1, 5, api_name="/image_gallery")
        assert client.predict(api_name="/stored_models")[0]["choices"] == []
        count, table, _ = client.predict(
            4, 5, False, ALL_CATEGORIES, 0, 100, api_name="/filter_poems"
        )
        got = table_of(table)
        assert "**1 poem(s)**" in count
        assert got[["title", "category", "words", "lines"]].values.tolist() == [
            ["Tyger Tyger", "unknown", 4, 2]
        ]
    finally:
        demo.close()
