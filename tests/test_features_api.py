"""The one feature format and reader: rows joined by id (never by position), entries of
different datasets or versions refused, the options that change the numbers in the key."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uaes_hf.features import (
    ArrayFeatures,
    FeatureStore,
    StoreEntry,
    layers_for,
    match_rows,
    open_features,
    read_layers,
)
from uaes_hf.features.fingerprint import table_fingerprint
from uaes_hf.features.store import FEATURES_FILE, META_FILE, options_hash, shard_ranges

N = 12
POEMS = pd.DataFrame(
    {"id": [f"poem-{i:02d}" for i in range(N)], "text": [f"verse number {i}" for i in range(N)]}
)
FINGERPRINT = table_fingerprint({"text": list(POEMS["text"])}, list(POEMS["id"]))


def poem_features(n_layers: int = 3, dim: int = 4) -> list[np.ndarray]:
    """Row i of every layer encodes poem i (so a wrong join is visible)."""
    base = np.arange(N, dtype=np.float32)[:, None]
    return [base * (layer + 1) + np.arange(dim, dtype=np.float32) for layer in range(n_layers)]


def write_shuffled(store, order, model="m", dataset="poems", fingerprint=FINGERPRINT):
    layers = poem_features()
    ids = POEMS["id"].tolist()
    return store.write(
        dataset=dataset,
        fingerprint=fingerprint,
        model=model,
        pooling="mean",
        layers=[layer[order] for layer in layers],
        ids=[ids[i] for i in order],
    )


@settings(max_examples=25, deadline=None)
@given(order=st.permutations(list(range(N))), records=st.permutations(list(range(N))))
def test_shuffled_rows_still_join_the_right_poems(tmp_path_factory, order, records):
    store = FeatureStore(tmp_path_factory.mktemp("store"))
    write_shuffled(store, np.array(order))
    stored = store.load("poems", "m")
    assert stored.ids == [POEMS["id"][i] for i in order]  # stored in the shuffled order
    table = POEMS.iloc[list(records)]  # the poems in any order
    joined = layers_for(table, stored)
    for got, want in zip(joined, poem_features(), strict=True):
        np.testing.assert_array_equal(got, want[list(records)])
    # two entries stored in different orders pair row by row through their ids
    other = FeatureStore(tmp_path_factory.mktemp("other"))
    write_shuffled(other, np.arange(N)[::-1])
    match = match_rows(stored, other.load("poems", "m"))
    np.testing.assert_array_equal(
        stored.layer(-1)[match.left], other.load("poems", "m").layer(-1)[match.right]
    )


def test_entries_of_different_datasets_or_versions_are_refused(tmp_path):
    store = FeatureStore(tmp_path)
    write_shuffled(store, np.arange(N), model="a")
    write_shuffled(store, np.arange(N), model="b", dataset="plain_texts")
    changed = table_fingerprint({"text": ["changed", *POEMS["text"][1:]]}, list(POEMS["id"]))
    write_shuffled(store, np.arange(N), model="c", fingerprint=changed)
    poems_a = store.load("poems", "a")
    with pytest.raises(ValueError, match="different datasets") as caught:
        match_rows(poems_a, store.load("plain_texts", "b"))
    assert "a on poems" in str(caught.value) and "b on plain_texts" in str(caught.value)
    with pytest.raises(ValueError, match="fingerprints differ") as caught:
        match_rows(poems_a, store.load("poems", "c"))
    assert FINGERPRINT in str(caught.value) and changed in str(caught.value)


def test_plain_files_get_positional_ids_and_are_not_joined_to_records(tmp_path):
    path = tmp_path / "stack.npy"
    np.save(path, np.stack(poem_features(), axis=1))
    plain = open_features(path)
    assert plain.ids == [str(i) for i in range(N)] and plain.ids_are_positions
    assert plain.dataset is None and plain.n_layers == 3
    with pytest.raises(ValueError, match="has no row ids"):
        layers_for(POEMS, plain)
    # two plain files pair by position, and only when N agrees
    same = match_rows(plain, ArrayFeatures([np.zeros((N, 2))]))
    np.testing.assert_array_equal(same.left, same.right)
    with pytest.raises(ValueError, match="has 12 rows but"):
        match_rows(plain, ArrayFeatures([np.zeros((N - 1, 2))]))


def test_bad_joins_name_the_problem():
    features = ArrayFeatures(poem_features(), ids=POEMS["id"])
    with pytest.raises(ValueError, match="no 'id' column"):
        match_rows(POEMS[["text"]], features)
    with pytest.raises(ValueError, match="appears more than once"):
        match_rows(pd.concat([POEMS, POEMS.head(1)]), features)
    extra = pd.DataFrame({"id": ["poem-00", "not-extracted"]})
    with pytest.raises(ValueError, match="1 of 2 ids of records have no row"):
        match_rows(extra, features)
    partial = match_rows(extra, features, allow_missing=True)
    assert partial.ids == ["poem-00"] and partial.missing == ["not-extracted"]
    with pytest.raises(ValueError, match="2 ids for 12 feature rows"):
        ArrayFeatures(poem_features(), ids=["a", "b"])


def test_changed_options_give_another_entry_and_shards_are_never_mixed(tmp_path):
    store = FeatureStore(tmp_path)
    short = store.entry("poems", FINGERPRINT, "m", "mean", {"max_length": 8})
    long = store.entry("poems", FINGERPRINT, "m", "mean", {"max_length": 64})
    assert short.path != long.path and short.path.parent == long.path.parent
    assert short.path.name == options_hash({"max_length": 8})
    layers = poem_features()
    ranges = shard_ranges(N, 5)
    for start, end in ranges:
        short.write_shard(start, end, [layer[start:end] for layer in layers])
    # a shard computed under other options, copied into this entry, is refused at merge
    (long.shard_dir).mkdir(parents=True)
    for start, end in ranges:
        short.shard_path(start, end).rename(long.shard_path(start, end))
    with pytest.raises(ValueError, match="never merged"):
        long.merge(ranges, {})
    assert not long.is_complete()
    for start, end in ranges:
        long.shard_path(start, end).rename(short.shard_path(start, end))
    meta = short.merge(ranges, {})
    assert meta["options"] == {"max_length": 8} and meta["model"] == "m"
    assert meta["ids_are_positions"] is True  # merged without record ids
    assert store.load("poems", "m", options={"max_length": 8}).n_rows == N
    with pytest.raises(FileNotFoundError, match="max_length"):
        store.load("poems", "m", options={"max_length": 64})


def test_merge_sums_shard_totals_and_shifts_row_positions(tmp_path):
    entry = FeatureStore(tmp_path).entry("poems", FINGERPRINT, "m", "mean", {})
    layers = poem_features()
    ranges = shard_ranges(N, 5)  # 0..5, 5..10, 10..12
    cut = {0: [1, 4], 5: [], 10: [0]}  # truncated rows, counted within each shard
    for start, end in ranges:
        info = {"n_truncated": len(cut[start]), "truncated_rows": cut[start], "batch_size": 4}
        entry.write_shard(start, end, [layer[start:end] for layer in layers], info=info)
    meta = entry.merge(ranges, {})
    assert meta["truncated_rows"] == [1, 4, 10]  # positions in the whole entry
    assert meta["totals"] == {"n_truncated": 3}  # batch sizes are not summed


def test_entries_written_twice_are_byte_identical_and_float16_reads_as_float32(tmp_path):
    store = FeatureStore(tmp_path)
    entry = write_shuffled(store, np.arange(N))
    first = {p.name: p.read_bytes() for p in entry.path.iterdir()}
    write_shuffled(store, np.arange(N))
    assert {p.name: p.read_bytes() for p in entry.path.iterdir()} == first
    half = store.write(
        dataset="poems", fingerprint=FINGERPRINT, model="h", pooling="mean",
        layers=poem_features(), ids=POEMS["id"], storage_dtype="float16",
    )  # fmt: skip
    layers = read_layers(half.path)
    assert all(layer.dtype == np.float32 for layer in layers)
    np.testing.assert_allclose(layers[-1], poem_features()[-1], rtol=1e-3)


def test_an_entry_folder_without_ids_reads_with_positional_ids(tmp_path):
    """A folder written by an older version (or by hand): features.safetensors and a
    meta.json without ids. The layout comes from the file, not from meta.json."""
    from safetensors.numpy import save_file

    folder = tmp_path / "entry"
    folder.mkdir()
    save_file({"features": np.stack(poem_features(), axis=1)}, str(folder / FEATURES_FILE))
    (folder / META_FILE).write_text(json.dumps({"dim": None}))
    features = open_features(folder)
    assert features.ids_are_positions and features.n_layers == 3
    np.testing.assert_array_equal(features.layer(1), poem_features()[1])
    assert StoreEntry(folder).is_complete()
    (folder / META_FILE).unlink()
    with pytest.raises(ValueError, match="incomplete"):
        open_features(folder)
