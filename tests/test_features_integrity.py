"""The store side of issue 13: fingerprints that cannot collide, values that cannot be stored
are refused at storage time, every entry carries a checksum, a damaged entry is noticed (and
re-extracted by `uaes extract`), and entries are replaced whole."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import extract_helpers
import numpy as np
import pytest
from extract_helpers import TEXTS, write_parquet_repo
from hypothesis import given, settings
from hypothesis import strategies as st

from uaes_hf.cli import main as uaes_main
from uaes_hf.features.atomic import file_lock, remove_leftovers, replace_directory, unique_temp_dir
from uaes_hf.features.fingerprint import dataset_fingerprint, table_fingerprint
from uaes_hf.features.integrity import file_damage
from uaes_hf.features.store import (
    CHECKSUM_KEY,
    FEATURES_FILE,
    META_FILE,
    FeatureStore,
    FingerprintMismatchError,
    open_entry,
    shard_ranges,
)

tiny_gpt2_dir = extract_helpers.tiny_gpt2_dir  # shared fixture
FP = "ab" * 12


def write(store, layers, **kw):
    return store.write(dataset="d", fingerprint=FP, model="m", pooling="mean", layers=layers, **kw)


# ---- fingerprints -------------------------------------------------------------------------


def test_separator_bytes_inside_items_do_not_collide():
    assert dataset_fingerprint(["a\x00tb"]) != dataset_fingerprint(["a", "b"])
    assert dataset_fingerprint(["ab"]) != dataset_fingerprint(["a", "b"])
    assert dataset_fingerprint(["a"], ids=["1\x012"]) != dataset_fingerprint(["a"], ids=["1", "2"])
    assert dataset_fingerprint([b"x", b"y"]) != dataset_fingerprint([b"xy"])
    assert table_fingerprint({"t": ["a\x00tb"]}, ["1"]) != table_fingerprint(
        {"t": ["a", "b"]}, ["1", "2"]
    ) and table_fingerprint({"t\x00": ["x"]}, ["1"]) != table_fingerprint({"t": ["\x00x"]}, ["1"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet="ab\x00\x01t", max_size=4), max_size=4),
    st.lists(st.text(alphabet="ab\x00\x01t", max_size=4), max_size=4),
)
def test_different_item_lists_have_different_fingerprints(a, b):
    """Short strings over the separator bytes of the old scheme: any two different lists."""
    assert (dataset_fingerprint(a) == dataset_fingerprint(b)) == (a == b)
    assert (dataset_fingerprint(a, ids=[]) == dataset_fingerprint(a)) is False


# ---- what may be stored ------------------------------------------------------------------


def test_values_above_float16_are_refused_at_storage_time_naming_entry_and_layer(tmp_path):
    store = FeatureStore(tmp_path)
    ok, big = np.ones((2, 3)), np.array([[1.0, 2.0, 70000.0], [0.0, -1.0, 5.0]])
    with pytest.raises(ValueError) as caught:
        write(store, [ok, big], storage_dtype="float16")
    message = str(caught.value)
    assert "layer 1" in message and "70000" in message and "float16" in message
    assert "/d/" + FP + "/m/mean/" in message  # the entry's path
    assert not list(tmp_path.rglob(META_FILE))  # nothing was stored
    # float32 holds them, exactly
    write(store, [ok, big], storage_dtype="float32")
    assert store.load("d", "m").layer(1).tolist() == big.tolist()
    # the same check for a shard, before its file is written
    entry = store.entry("d2", FP, "m", "mean")
    with pytest.raises(ValueError, match=r"items 0\.\.2 of .*, layer 0: values up to 70000 are"):
        entry.write_shard(0, 2, [-big], "float16")
    assert not entry.shard_dir.exists() or not list(entry.shard_dir.iterdir())


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([], "no layers to store"),
        ([np.ones(3)], r"layer 0: must be a 2-D \(rows x dim\) array, got shape \(3,\)"),
        ([np.ones((2, 2)), np.ones((2, 2, 2))], r"layer 1: must be a 2-D"),
        ([np.array([["a", "b"]])], "layer 0: must hold numbers, got dtype <U1"),
        ([np.array([[1.0, np.nan], [np.inf, 0.0]])], r"layer 0: 2 NaN or infinite value\(s\)"),
        ([np.ones((2, 2)), np.ones((3, 2))], r"different numbers of rows \[2, 3\]"),
    ],
)
def test_bad_layers_are_a_value_error_naming_them(tmp_path, layers, message):
    with pytest.raises(ValueError, match=message):
        write(FeatureStore(tmp_path), layers)


def test_unknown_storage_dtype_and_bad_fingerprint_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"storage dtype must be one of .*got 'bfloat16'"):
        write(FeatureStore(tmp_path), [np.ones((1, 1))], storage_dtype="bfloat16")
    with pytest.raises(ValueError, match="fingerprint must be lowercase hex, got 'XYZ'"):
        FeatureStore(tmp_path).entry("d", "XYZ", "m", "mean")


# ---- checksums and damage ----------------------------------------------------------------


def test_written_and_merged_entries_record_a_checksum_that_damage_checks(tmp_path):
    import hashlib

    rng = np.random.default_rng(0)
    layers = [rng.normal(size=(7, 4)).astype(np.float32) for _ in range(3)]
    written = write(FeatureStore(tmp_path / "a"), layers)
    entry = FeatureStore(tmp_path / "b").entry("d", FP, "m", "mean", {"o": 1})
    ranges = shard_ranges(7, 3)
    for start, end in ranges:
        entry.write_shard(start, end, [layer[start:end] for layer in layers])
    entry.merge(ranges, {})
    for folder in (written.path, entry.path):
        meta = json.loads((folder / META_FILE).read_text())
        data = (folder / FEATURES_FILE).read_bytes()
        assert meta[CHECKSUM_KEY] == hashlib.sha256(data).hexdigest()
        assert meta["features_bytes"] == len(data)
    assert written.damage() is None and entry.damage() is None

    # one flipped byte in the data: same size, other sha256 (only the full check sees it)
    path = entry.path / FEATURES_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert entry.damage(full=False) is None
    assert "sha256 differs" in entry.damage()
    # truncated: the cheap check sees it, and reading the entry is a ValueError naming it
    with path.open("r+b") as handle:
        handle.truncate(len(data) // 2)
    assert f"the file has {len(data) // 2} bytes, {len(data)} were written" == entry.damage(
        full=False
    )
    with pytest.raises(ValueError, match=r"features.safetensors is damaged: the file has"):
        open_entry(entry.path)
    (entry.path / META_FILE).write_text("{not json")
    assert "meta.json cannot be read" in entry.damage()
    assert file_damage(tmp_path / "missing.safetensors") == "the features file is missing"


def test_entries_from_an_older_fingerprint_scheme_say_so(tmp_path):
    store = FeatureStore(tmp_path)
    old = write(store, [np.ones((1, 2))])
    meta = json.loads((old.path / META_FILE).read_text())
    del meta["fingerprint_scheme"]  # as written before scheme 2
    (old.path / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(FingerprintMismatchError, match="before fingerprint scheme 2"):
        store.load("d", "m", fingerprint="cd" * 12)


@pytest.mark.slow
def test_uaes_extract_re_extracts_a_damaged_entry_instead_of_skipping_it(
    tmp_path, tiny_gpt2_dir, capsys
):
    repo = write_parquet_repo(tmp_path / "repo", TEXTS)
    args = [
        "extract",
        "--dataset",
        str(repo),
        "--config",
        "aligned_5",
        "--models",
        str(tiny_gpt2_dir),
        "--out",
        str(tmp_path / "store"),
        "--shard-size",
        "3",
        "--no-accelerate",
        "--no-progress",
    ]
    assert uaes_main(args) == 0
    (meta_path,) = (tmp_path / "store").rglob(META_FILE)
    fresh = open_entry(meta_path.parent).features.copy()
    features = meta_path.parent / FEATURES_FILE
    with features.open("r+b") as handle:
        handle.truncate(features.stat().st_size - 7)
    capsys.readouterr()
    assert uaes_main(args) == 0
    err = capsys.readouterr().err
    assert "is damaged (the file has" in err and "extracting it again" in err
    assert "already stored" not in err
    np.testing.assert_array_equal(open_entry(meta_path.parent).features, fresh)
    assert uaes_main(args) == 0  # and now it is whole: skipped
    assert "already stored" in capsys.readouterr().err


# ---- whole-folder replacement and locks ---------------------------------------------------


def test_replacing_a_folder_never_leaves_its_path_empty(tmp_path):
    """A reader polling a file of the folder while it is replaced 200 times always finds it
    (rmtree-then-rename, the old way, leaves a moment without it)."""
    target = tmp_path / "stage"
    missing: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                (target / "value.txt").read_text()
            except FileNotFoundError:
                missing.append(1)

    first = unique_temp_dir(target)
    (first / "value.txt").write_text("0")
    replace_directory(first, target)
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for index in range(1, 201):
            tmp = unique_temp_dir(target)
            (tmp / "value.txt").write_text(str(index))
            (tmp / "more.bin").write_bytes(b"x" * 10000)
            replace_directory(tmp, target)
    finally:
        stop.set()
        thread.join()
    assert missing == []
    assert (target / "value.txt").read_text() == "200"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage"]  # old folders are gone


def test_lock_makes_a_second_process_wait_and_leftovers_are_removed(tmp_path):
    target = tmp_path / "entry"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from uaes_hf.features.atomic import file_lock\n"
        "with file_lock(Path(sys.argv[1])):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(1.5)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    import time

    started = time.monotonic()
    with file_lock(target) as held:
        waited = time.monotonic() - started
        assert held
    holder.wait(timeout=30)
    assert waited > 0.5  # it waited for the other process
    left = unique_temp_dir(target)  # as a killed process leaves it
    assert remove_leftovers(target) == [left] and not left.exists()
    assert Path(f"{tmp_path}/.entry.lock").is_file()
