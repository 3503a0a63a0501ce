"""The Space's cost budget: every limit refuses before any work, says what the limit is, and
the Space keeps serving. Uploads over a cap are refused without being parsed (the parsers
are replaced by ones that fail, so a parse would show)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
import space_helpers as helpers
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from uaes_hf.space.budget import BudgetError, SessionRateLimiter, SpaceBudget
from uaes_hf.space.uploads import read_upload, upload_shape

BYTE_CAP = 200_000


def settings(metric="mutual_knn", k=10, permutations=30):
    return (metric, k, permutations, False, 0.95, False)


def forbid_parsing(monkeypatch):
    """Make every feature-file parser fail loudly: a refusal must come before them."""
    from uaes_hf.features import files

    def parsed(*args, **kwargs):
        raise AssertionError("the file was parsed")

    for name in ("_read_csv", "_read_npy", "_read_safetensors"):
        monkeypatch.setattr(files, name, parsed)


# ---------------------------------------------------------------------------------------------
# The limits themselves (arithmetic written here, not taken from the budget)


@pytest.mark.parametrize(
    ("metric", "n", "k", "allowed_p", "cost", "limit"),
    [
        ("mutual_knn", 2000, 50, 148, lambda p: 2000 * 50**2 * (p + 2), 750_000_000),
        ("cknna", 2000, 30, 206, lambda p: 2 * 2000 * 30**2 * (p + 2), 750_000_000),
        ("lcs_knn", 1000, 50, 35, lambda p: 8 * 1000 * 50**2 * (p + 2), 750_000_000),
        ("cycle_knn", 1000, 30, 67, lambda p: 12 * 1000 * 30**2 * (p + 2), 750_000_000),
        ("edit_distance_knn", 500, 100, 5, lambda p: 20 * 500 * 100**2 * (p + 2), 750_000_000),
        ("cka", 1000, 10, 25, lambda p: 1000**2 * p, 25_000_000),
        ("unbiased_cka", 2000, 10, 6, lambda p: 2000**2 * p, 25_000_000),
    ],
)
def test_work_limits_allow_up_to_the_limit_and_name_it(metric, n, k, allowed_p, cost, limit):
    budget = SpaceBudget()
    assert cost(allowed_p) <= limit < cost(allowed_p + 1)
    budget.check_compare(metric, n=n, dims=(16, 16), k=k, permutations=allowed_p)
    with pytest.raises(BudgetError, match=f"= {cost(allowed_p + 1):,}, above the Space's limit "
                       f"of {limit:,} for {metric}"):  # fmt: skip
        budget.check_compare(metric, n=n, dims=(16, 16), k=k, permutations=allowed_p + 1)


def test_k_and_permutations_and_svd_limits():
    budget = SpaceBudget()
    with pytest.raises(BudgetError, match=r"k=1999 is above the Space's limit of 100"):
        budget.check_compare("mutual_knn", n=2000, dims=(8, 8), k=1999, permutations=1000)
    with pytest.raises(BudgetError, match=r"k=60 is above the limit of min\(100, N - 1\) = 59"):
        budget.check_compare("mutual_knn", n=60, dims=(8, 8), k=60, permutations=10)
    with pytest.raises(BudgetError, match="permutations=1001 is outside .* 0 to 1000"):
        budget.check_compare("cka", n=60, dims=(8, 8), k=10, permutations=1001)
    budget.check_compare("svcca", n=5000, dims=(150, 100), k=10, permutations=1000)
    with pytest.raises(BudgetError, match=r"N \* D \* min\(N, D\) = 5000 \* 800 \* 800"):
        budget.check_compare("svcca", n=5000, dims=(800, 8), k=10, permutations=0)
    with pytest.raises(BudgetError, match="at most 2,000,000 per input"):
        budget.check_shape(5000, 401, "features A")
    # the kernel null's Gram matrices: N^2 * (D_A + D_B)
    budget.check_compare("cka", n=5000, dims=(400, 400), k=10, permutations=0)
    with pytest.raises(BudgetError, match=r"5000\^2 \* 800 = 20,000,000,000, above .* "
                       r"10,000,000,000"):  # fmt: skip
        budget.check_compare("cka", n=5000, dims=(400, 400), k=10, permutations=1)
    with pytest.raises(ValueError, match="max_k must be a positive number"):
        SpaceBudget(max_k=0)


def test_session_rate_limiter_is_a_sliding_window():
    now = [0.0]
    limiter = SessionRateLimiter(3, 10.0, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(3)] == [None, None, None]
    assert limiter.acquire("a") == 10.0 and limiter.acquire("b") is None
    now[0] = 9.9
    assert limiter.acquire("a") == pytest.approx(0.1)
    now[0] = 10.0
    assert limiter.acquire("a") is None


# ---------------------------------------------------------------------------------------------
# Uploads: refused before parsing


def test_over_cap_files_are_refused_from_their_size_or_header(tmp_path, monkeypatch):
    forbid_parsing(monkeypatch)
    budget = SpaceBudget(max_upload_bytes=BYTE_CAP, max_rows=1000)
    huge = tmp_path / "huge.csv"
    huge.write_text("1.0,2.0,3.0\n" * (10 * BYTE_CAP // 12 + 1))
    started = time.perf_counter()
    with pytest.raises(BudgetError, match=f"above the limit of {BYTE_CAP:,} bytes"):
        read_upload(huge, "features A", budget)
    assert time.perf_counter() - started < 0.5
    # within the byte cap but over the row cap: streaming stops at the cap, so a broken line
    # after it is never reached
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n" + "1,2\n" * 1001 + "\xff not a number\n")
    with pytest.raises(BudgetError, match="more than 1000 rows; the Space accepts at most 1000"):
        upload_shape(rows, "features A", budget)
    # .npy and .safetensors: the header alone is read (no data follows it here)
    npy = tmp_path / "header_only.npy"
    with npy.open("wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": (6000, 4)}
        )
    with pytest.raises(BudgetError, match="has 6000 rows; the Space accepts at most 1000"):
        read_upload(npy, "features B", budget)
    header = b'{"features":{"dtype":"F32","shape":[7000,4],"data_offsets":[0,112000]}}'
    tensors = tmp_path / "header_only.safetensors"
    tensors.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(BudgetError, match="has 7000 rows"):
        read_upload(tensors, "features B", budget)


# ---------------------------------------------------------------------------------------------
# Through a real Gradio server


@pytest.fixture(scope="module")
def app():
    demo = helpers.load_app_module().build_demo(
        "no-report", budget=SpaceBudget(max_upload_bytes=BYTE_CAP * 10, max_rows=5000)
    )
    url = helpers.launch(demo, max_file_size=64 * 2**20)
    yield Client(url, verbose=False)
    demo.close()


def _npy(path: Path, n: int, d: int, seed: int = 0) -> Path:
    np.save(path, np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32))
    return path


def _timed(client: Client, *args) -> tuple[float, Exception | None, object]:
    started = time.perf_counter()
    try:
        result, error = client.predict(*args, api_name="/compare_uploads"), None
    except AppError as err:
        result, error = None, err
    return time.perf_counter() - started, error, result


def test_large_requests_are_refused_within_a_second_and_the_space_still_serves(
    app, tmp_path, monkeypatch
):
    big_a = handle_file(str(_npy(tmp_path / "a.npy", 5000, 16, seed=1)))
    big_b = handle_file(str(_npy(tmp_path / "b.npy", 5000, 16, seed=2)))
    mid_a = handle_file(str(_npy(tmp_path / "c.npy", 2000, 16, seed=3)))
    mid_b = handle_file(str(_npy(tmp_path / "d.npy", 2000, 16, seed=4)))
    forbid_parsing(monkeypatch)  # refusals come before the files are read
    cases = {
        "k = N - 1": ((big_a, big_b, *settings(k=4999, permutations=1000)), r"k=4999.*100"),
        "issue 13": ((mid_a, mid_b, *settings(k=1999, permutations=1000)), r"k=1999.*100"),
        "work": (
            (big_a, big_b, *settings(k=100, permutations=1000)),
            r"1 \* N \* k\^2 \* \(permutations \+ 2\) = 1 \* 5000 \* 100\^2 \* 1002 = "
            r"50,100,000,000, above the Space's limit of 750,000,000",
        ),
        "cka": ((big_a, big_b, *settings("cka", permutations=100)), r"N\^2 \* permutations"),
    }
    app.predict(None, None, *settings(), api_name="/compare_uploads")  # a warm connection
    for name, (args, message) in cases.items():
        seconds, error, _ = _timed(app, *args)
        assert error is not None and re.search(message, str(error)), name
        assert seconds < 1.0, (name, seconds)
    monkeypatch.undo()
    small = data_pair(tmp_path)
    seconds, error, result = _timed(app, *small, *settings(k=5, permutations=20))
    assert error is None, error
    assert dict(map(tuple, result[2]["data"]))["N"] == 80


def data_pair(tmp_path: Path) -> tuple:
    a = np.random.default_rng(5).normal(size=(80, 6))
    np.save(tmp_path / "ok_a.npy", a)
    np.save(tmp_path / "ok_b.npy", a + 0.1)
    return handle_file(str(tmp_path / "ok_a.npy")), handle_file(str(tmp_path / "ok_b.npy"))


def test_a_csv_of_ten_times_the_byte_cap_is_refused_fast_without_parsing(tmp_path, monkeypatch):
    demo = helpers.load_app_module().build_demo(
        "no-report", budget=SpaceBudget(max_upload_bytes=BYTE_CAP)
    )
    try:
        client = Client(helpers.launch(demo, max_file_size=64 * 2**20), verbose=False)
        huge = tmp_path / "huge.csv"
        huge.write_text("0.5,1.5,2.5,3.5\n" * (10 * BYTE_CAP // 16 + 1))
        small_a, small_b = data_pair(tmp_path)
        forbid_parsing(monkeypatch)
        seconds, error, _ = _timed(client, small_a, handle_file(str(huge)), *settings())
        assert error is not None and f"above the limit of {BYTE_CAP:,} bytes" in str(error)
        assert "huge.csv" in str(error) and seconds < 2.0
        monkeypatch.undo()
        _, error, _ = _timed(client, small_a, small_b, *settings(k=5, permutations=10))
        assert error is None, error
    finally:
        demo.close()


def test_the_queue_has_a_concurrency_limit(tmp_path):
    """With one request at a time and one waiting, a third concurrent request is refused."""
    demo = helpers.load_app_module().build_demo(
        "no-report", budget=SpaceBudget(concurrency=1, queue_size=1)
    )
    try:
        client = Client(helpers.launch(demo), verbose=False)
        slow_a = handle_file(str(_npy(tmp_path / "a.npy", 2000, 32, seed=1)))
        slow_b = handle_file(str(_npy(tmp_path / "b.npy", 2000, 32, seed=2)))
        jobs = [
            client.submit(slow_a, slow_b, *settings(k=50, permutations=40),
                          api_name="/compare_uploads")
            for _ in range(3)
        ]  # fmt: skip
        outcomes = []
        for job in jobs:
            try:
                job.result(timeout=120)
                outcomes.append("done")
            except Exception as err:  # noqa: BLE001 - gradio_client's queue-full error
                outcomes.append(str(err))
        assert outcomes.count("done") == 2, outcomes
        assert any("queue is full" in outcome.lower() for outcome in outcomes), outcomes
    finally:
        demo.close()
