"""Drive every tab of the Gradio Space through its API (gradio_client), against a real app on
127.0.0.1, and check the values against brute force written here (the budget and the judge
have their own test files)."""

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
def client(data: helpers.SpaceTestData) -> Client:
    """The Space as deployed by default: only the results folder of the main job's run; the
    poems, images and features come from that run."""
    demo = helpers.load_app_module().build_demo(data.results_dir, max_upload_bytes=UPLOAD_LIMIT)
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
    note, gallery, table = any_client.predict(2, 4, api_name="/image_gallery")
    assert note == ""
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
    # the time shown is the run's measured compute time (space_helpers.RUN_SECONDS)
    assert "took about 6 minutes of compute (measured" in status
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
    note, plot, values = client.predict(subset, k, "mutual_knn", api_name="/convergence")
    assert note == ""
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


def brute_null(a: np.ndarray, b: np.ndarray, k: int, n_permutations: int, seed: int = 0):
    """Mutual kNN of A and B's rows shuffled, for the seeded permutations the Space documents
    (the j-th ``default_rng(seed).permutation(N)``): the permutation null, by brute force."""
    rng = np.random.default_rng(seed)
    return np.array(
        [brute_mutual_knn(a, b[rng.permutation(len(b))], k) for _ in range(n_permutations)]
    )


def settings(metric="mutual_knn", k=10, permutations=30, clamp=False, q=0.95, exact=False):
    """The settings inputs of the compare endpoints, in order."""
    return (metric, k, permutations, clamp, q, exact)


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".safetensors"])
def test_compare_uploads_matches_brute_force(client, data, tmp_path, suffix):
    a = data.stacks["model-a"][:, 0].astype(np.float64)
    b = data.stacks["model-b"][:, 1].astype(np.float64)
    path_a = _write(tmp_path / f"a{suffix}", a)
    path_b = _write(tmp_path / f"b{suffix}", b)
    summary, plot, numbers = client.predict(
        handle_file(str(path_a)), handle_file(str(path_b)), *settings(k=7, permutations=60),
        api_name="/compare_uploads",
    )  # fmt: skip
    got = dict(table_of(numbers).itertuples(index=False, name=None))
    score = brute_mutual_knn(a, b, 7)
    null = brute_null(a, b, 7, 60)
    tau = float(np.quantile(null, 0.95))
    assert got["mutual_knn"] == pytest.approx(score, abs=1e-6)
    assert got["chance_level"] == pytest.approx(7 / (helpers.N_POEMS - 1), abs=1e-6)
    assert got["null_mean"] == pytest.approx(null.mean(), abs=1e-6)
    assert got["calibrated"] == pytest.approx((score - tau) / (1 - tau), abs=1e-6)
    assert got["p_value"] == pytest.approx((1 + np.sum(null >= score - 1e-12)) / 61, abs=1e-6)
    assert got["N"] == helpers.N_POEMS and got["k"] == 7 and got["outlier_clamp"] == "none"
    assert f"mutual_knn = {got['mutual_knn']:.3f}" in summary
    assert plot["type"] == "matplotlib"


def clamp_exact(x: np.ndarray, q: float) -> np.ndarray:
    """The study's exact clamp: the element at int(q * numel) of the sorted |x|."""
    v = np.sort(np.abs(x).ravel())[int(q * x.size)]
    return np.clip(x, -v, v)


def clamp_rows(x: np.ndarray, q: float) -> np.ndarray:
    """The study's default clamp: the mean over rows of each row's q-quantile of |x|."""
    v = np.mean([np.quantile(np.abs(row), q) for row in x])
    return np.clip(x, -v, v)


@pytest.mark.parametrize("exact", [False, True])
def test_outlier_clamp_option_is_the_studys_clamp(client, tmp_path, exact):
    # Massive-activation columns dominate the cosine until they are clamped.
    rng = np.random.default_rng(3)
    shared = rng.normal(size=(80, 24))
    a = shared + 0.3 * rng.normal(size=shared.shape)
    b = shared @ np.linalg.qr(rng.normal(size=(24, 24)))[0] + 0.3 * rng.normal(size=shared.shape)
    a[:, 0] += 30 * rng.normal(size=80)
    b[:, 5] += 30 * rng.normal(size=80)
    path_a, path_b = _write(tmp_path / "a.npy", a), _write(tmp_path / "b.npy", b)
    clamp = clamp_exact if exact else clamp_rows
    expected = brute_mutual_knn(clamp(a, 0.95), clamp(b, 0.95), 10)
    unclamped = brute_mutual_knn(a, b, 10)
    assert expected - unclamped > 0.1  # the clamp matters on these features
    _, _, numbers = client.predict(
        handle_file(str(path_a)), handle_file(str(path_b)),
        *settings(k=10, permutations=0, clamp=True, q=0.95, exact=exact),
        api_name="/compare_uploads",
    )  # fmt: skip
    got = dict(table_of(numbers).itertuples(index=False, name=None))
    assert got["mutual_knn"] == pytest.approx(expected, abs=1e-6)
    assert got["outlier_clamp"] == ("q=0.95 exact" if exact else "q=0.95")
    _, _, numbers = client.predict(
        handle_file(str(path_a)), handle_file(str(path_b)), *settings(k=10, permutations=0),
        api_name="/compare_uploads",
    )  # fmt: skip
    got = dict(table_of(numbers).itertuples(index=False, name=None))
    assert got["mutual_knn"] == pytest.approx(unclamped, abs=1e-6)


def brute_linear_cka(a: np.ndarray, b: np.ndarray) -> float:
    """Linear CKA with the biased HSIC on L2-normalised rows (Kornblith et al.)."""

    def centred_gram(x):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        gram = x @ x.T
        h = np.eye(len(x)) - 1.0 / len(x)
        return h @ gram @ h

    k, l_ = centred_gram(a), centred_gram(b)
    return float(np.sum(k * l_) / np.sqrt(np.sum(k * k) * np.sum(l_ * l_)))


def test_metric_choice_scores_with_that_metric(client, data, tmp_path):
    a = data.stacks["model-a"][:, 0].astype(np.float64)
    b = data.stacks["model-b"][:, 2].astype(np.float64)
    path_a, path_b = _write(tmp_path / "a.npy", a), _write(tmp_path / "b.npy", b)
    summary, plot, numbers = client.predict(
        handle_file(str(path_a)), handle_file(str(path_b)), *settings("cka", permutations=10),
        api_name="/compare_uploads",
    )  # fmt: skip
    got = dict(table_of(numbers).itertuples(index=False, name=None))
    assert got["cka"] == pytest.approx(brute_linear_cka(a, b), abs=1e-6)
    assert "cka = " in summary and plot is None  # cka has no per-sample scores
    with pytest.raises(AppError, match="nope is not in the list of choices.*mutual_knn"):
        client.predict(
            handle_file(str(path_a)), handle_file(str(path_b)), *settings("nope"),
            api_name="/compare_uploads",
        )  # fmt: skip


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
        "type": (tmp_path / "notes.txt", r"Invalid file type.*\.npy"),  # Gradio's check
    }
    (tmp_path / "junk.npy").write_bytes(b"this is not a numpy file at all")
    (tmp_path / "words.csv").write_text("a,b\nc,d\n")
    (tmp_path / "notes.txt").write_text("1,2\n")
    for name, (path, message) in bad.items():
        with pytest.raises(AppError, match=message):
            client.predict(
                handle_file(str(good_a)), handle_file(str(path)), *settings(k=5, permutations=20),
                api_name="/compare_uploads",
            )  # fmt: skip
        assert name  # the loop names the case in a failure's traceback
    with pytest.raises(AppError, match=r"k=60"):
        client.predict(
            handle_file(str(good_a)), handle_file(str(good_b)), *settings(k=60),
            api_name="/compare_uploads",
        )  # fmt: skip
    # the app still serves a good request
    _, _, numbers = client.predict(
        handle_file(str(good_a)), handle_file(str(good_b)), *settings(k=5, permutations=20),
        api_name="/compare_uploads",
    )  # fmt: skip
    got = dict(table_of(numbers).itertuples(index=False, name=None))
    a, c = data.stacks["model-a"][:, 0], data.stacks["model-c"][:, 0]
    assert got["mutual_knn"] == pytest.approx(brute_mutual_knn(a, c, 5), abs=1e-6)


def test_compare_stored_features_joins_rows_by_id(any_client, data):
    # Every model's stored rows are in another order (space_helpers.shuffled): only a join
    # by id gives the scores of the poem-ordered stacks.
    models = any_client.predict(api_name="/stored_models")
    assert [v for _, v in models[0]["choices"]] == list(helpers.MODELS)
    _, _, numbers = any_client.predict(
        "model-a", -1, "model-b", 0, *settings(k=10), api_name="/compare_stored"
    )
    got = dict(table_of(numbers).itertuples(index=False, name=None))
    a, b = data.stacks["model-a"][:, -1], data.stacks["model-b"][:, 0]
    assert got["mutual_knn"] == pytest.approx(brute_mutual_knn(a, b, 10), abs=1e-6)
    assert got["mutual_knn"] > 0.3  # rows joined by position would score about chance
    with pytest.raises(AppError, match="layer 7 out of range"):
        any_client.predict("model-a", 7, "model-b", 0, *settings(), api_name="/compare_stored")
    with pytest.raises(AppError, match="no stored features for model 'nope'"):
        any_client.predict("nope", 0, "model-b", 0, *settings(), api_name="/compare_stored")


# ---------------------------------------------------------------------------------------------
# Neighbours


def _rows(fragment: str) -> list[tuple[int, bool]]:
    return [
        (int(row), shared == "true")
        for row, shared in re.findall(r'data-row="(\d+)" data-shared="(true|false)"', fragment)
    ]


@pytest.mark.parametrize(("poem_index", "k"), [(0, 10), (33, 4)])
def test_neighbours_side_by_side(any_client, data, poems, poem_index, k):
    # Rows are numbered in the poems' order, although every model stores its rows in
    # another order: each model's rows are joined to the poems by id.
    poem_choices, model_a, model_b = any_client.predict(api_name="/neighbour_options")
    labels = [f"{r['title']} — {r['author']} [{r['id']}]" for _, r in poems.iterrows()]
    assert [v for _, v in poem_choices["choices"]] == labels
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
# A Space with no results yet, and a poems table with only the required columns


def test_space_without_results_explains_and_still_serves(tmp_path):
    minimal = pd.DataFrame(
        {
            "id": ["p1", "p2", "p3"],
            "text": ["Tyger Tyger\nburning bright", "one line", "a\nb\nc"],
            "aesthetic_score": [5, None, 2],
        }
    )
    demo = helpers.load_app_module().build_demo(
        tmp_path / "no-report", poems=minimal, cwd=tmp_path, home=tmp_path
    )
    try:
        client = Client(helpers.launch(demo), verbose=False)
        status, subset, _, _ = client.predict(api_name="/convergence_options")
        assert "No convergence results yet" in status and "Compute" in status
        assert subset["choices"] == []
        note, plot, _ = client.predict("poems", 10, "mutual_knn", api_name="/convergence")
        assert note.startswith("*Hint: no convergence results yet") and plot is None
        assert "12 minutes" not in status and "no run has been timed here yet" in status
        note, gallery, _ = client.predict(1, 5, api_name="/image_gallery")
        assert note.startswith("*Hint: no image-poem-text data") and gallery == []
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


# ---------------------------------------------------------------------------------------------
# Buttons pressed before anything is chosen: a one-line hint, never an error


def test_every_button_before_a_selection_gives_a_hint(client):
    hints = {
        "/convergence": client.predict(None, None, None, api_name="/convergence")[0],
        "/compare_uploads": client.predict(None, None, *settings(), api_name="/compare_uploads")[0],
        "/compare_stored": client.predict(
            None, -1, None, -1, *settings(), api_name="/compare_stored"
        )[0],
        "/neighbours": client.predict(None, None, None, 10, api_name="/neighbours")[0],
        "/judge": client.predict(None, "", api_name="/judge"),
    }
    for endpoint, text in hints.items():
        assert text.startswith("*Hint: ") and "\n" not in text, endpoint
