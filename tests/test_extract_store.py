"""Feature store: round trip, float16, fingerprints, atomic merge, resume without recompute."""

from __future__ import annotations

import json

import extract_helpers
import numpy as np
import pytest
from extract_helpers import TEXTS
from safetensors.numpy import load_file

from uaes_hf.extract.run import ExtractOptions, extract_to_store
from uaes_hf.extract.text import TextFeatureExtractor
from uaes_hf.features.fingerprint import dataset_fingerprint
from uaes_hf.features.safetensors_io import merge_shards_streaming, read_safetensors_header
from uaes_hf.features.store import (
    FEATURES_FILE,
    META_FILE,
    FeaturesNotFoundError,
    FeatureStore,
    FingerprintMismatchError,
    StoreEntry,
    shard_ranges,
    slugify,
)

tiny_gpt2_dir = extract_helpers.tiny_gpt2_dir  # shared fixture


def random_layers(rng, n, n_layers=3, dim=5):
    return [rng.normal(size=(n, dim)).astype(np.float32) for _ in range(n_layers)]


def write_entry(
    entry, layers_all, shard_size, dtype="float32", pooling="mean", name=("poems", "m")
):
    n = layers_all[0].shape[0]
    ranges = shard_ranges(n, shard_size)
    for start, end in ranges:
        entry.write_shard(start, end, [layer[start:end] for layer in layers_all], dtype, {"n": 1})
    return entry.merge(
        ranges,
        {
            "dataset": name[0],
            "dataset_fingerprint": "ab" * 12,
            "model": name[1],
            "model_id": "org/m",
            "pooling": pooling,
        },
    )


def test_shard_ranges_cover_every_item_once():
    for n in (0, 1, 7, 10):
        ranges = shard_ranges(n, 3)
        covered = [i for start, end in ranges for i in range(start, end)]
        assert covered == list(range(n))
    with pytest.raises(ValueError, match="shard_size"):
        shard_ranges(3, 0)


def test_round_trip_float32_and_float16(tmp_path):
    rng = np.random.default_rng(0)
    layers = random_layers(rng, 7)
    expected = np.stack(layers, axis=1)
    store = FeatureStore(tmp_path)
    for dtype, tol in (("float32", 0), ("float16", 2e-3)):
        entry = store.entry("poems", "ab" * 12, "m", f"mean-{dtype}")
        meta = write_entry(entry, layers, shard_size=3, dtype=dtype, pooling=f"mean-{dtype}")
        assert (meta["n_items"], meta["n_layers"], meta["dim"]) == (7, 3, 5)
        assert meta["totals"]["n"] == 3  # three shards' infos summed
        loaded = store.load("poems", "m", f"mean-{dtype}")
        assert loaded.features.dtype == np.dtype(dtype)
        np.testing.assert_allclose(loaded.features.astype(np.float32), expected, atol=tol)
        # the file is plain safetensors: the reference library reads it too
        reference = load_file(str(entry.path / FEATURES_FILE))["features"]
        np.testing.assert_array_equal(reference, loaded.features)
        assert not entry.shard_dir.exists()  # merged shards are removed
    sizes = {}
    for dtype in ("float32", "float16"):
        path = store.entry("poems", "ab" * 12, "m", f"mean-{dtype}").path / FEATURES_FILE
        _, data_start = read_safetensors_header(path)
        sizes[dtype] = path.stat().st_size - data_start
    assert sizes == {"float32": 7 * 3 * 5 * 4, "float16": 7 * 3 * 5 * 2}


def test_memory_mapped_load_and_layer_access(tmp_path):
    rng = np.random.default_rng(1)
    layers = random_layers(rng, 4)
    store = FeatureStore(tmp_path)
    write_entry(store.entry("poems", "ab" * 12, "m", "mean"), layers, shard_size=4)
    loaded = store.load("poems", "m", mmap=True)
    assert isinstance(loaded.features, np.memmap)
    np.testing.assert_array_equal(loaded.layer(-1), layers[-1])
    with pytest.raises(IndexError):
        loaded.layer(3)


def test_ragged_layers_are_stored_per_layer(tmp_path):
    rng = np.random.default_rng(2)
    layers = [rng.normal(size=(5, d)).astype(np.float32) for d in (4, 8, 16)]
    store = FeatureStore(tmp_path)
    entry = store.entry("imgs", "cd" * 12, "cnn", "mean")
    meta = write_entry(entry, layers, shard_size=2, name=("imgs", "cnn"))
    assert meta["dim"] is None and meta["dims"] == [4, 8, 16]
    loaded = store.load("imgs", "cnn")
    for index, layer in enumerate(layers):
        np.testing.assert_array_equal(loaded.layer(index), layer)
    with pytest.raises(ValueError, match="different widths"):
        _ = loaded.features


def test_fingerprint_is_stable_and_order_sensitive(tmp_path):
    assert dataset_fingerprint(TEXTS) == dataset_fingerprint(list(TEXTS))
    assert dataset_fingerprint(TEXTS) != dataset_fingerprint(TEXTS[::-1])
    assert dataset_fingerprint(TEXTS) != dataset_fingerprint([*TEXTS[:-1], TEXTS[-1] + "!"])
    image = tmp_path / "x.bin"
    image.write_bytes(b"\x00\x01")
    before = dataset_fingerprint([image])
    image.write_bytes(b"\x00\x02")
    assert dataset_fingerprint([image]) != before
    with pytest.raises(ValueError, match="cannot fingerprint"):
        dataset_fingerprint([object()])


def test_dataset_fingerprint_follows_content_not_cache_identity():
    from datasets import Dataset

    first = Dataset.from_dict({"text": TEXTS})
    same = Dataset.from_dict({"text": list(TEXTS)})
    assert dataset_fingerprint(first) == dataset_fingerprint(same)
    assert dataset_fingerprint(first) != dataset_fingerprint(first.select(range(3)))
    edited = Dataset.from_dict({"text": [*TEXTS[:-1], "edited"]})
    assert dataset_fingerprint(first) != dataset_fingerprint(edited)


def test_changed_dataset_and_missing_entry_raise_clear_errors(tmp_path):
    rng = np.random.default_rng(3)
    store = FeatureStore(tmp_path)
    old_fp = dataset_fingerprint(TEXTS)
    entry = store.entry("poems", old_fp, "m", "mean")
    layers = random_layers(rng, len(TEXTS))
    for start, end in shard_ranges(len(TEXTS), 4):
        entry.write_shard(start, end, [layer[start:end] for layer in layers])
    entry.merge(
        shard_ranges(len(TEXTS), 4),
        {"dataset": "poems", "dataset_fingerprint": old_fp, "model": "m", "pooling": "mean"},
    )
    assert store.load(TEXTS, "m").features.shape == (len(TEXTS), 3, 5)  # data -> fingerprint
    changed = [*TEXTS[:-1], "a different poem"]
    with pytest.raises(FingerprintMismatchError, match="changed since extraction"):
        store.load("poems", "m", fingerprint=dataset_fingerprint(changed))
    with pytest.raises(FeaturesNotFoundError, match="no features stored"):
        store.load("poems", "other-model")
    with pytest.raises(FingerprintMismatchError):
        store.load(changed, "m")  # the data itself, changed


def test_merge_is_atomic_and_refuses_missing_shards(tmp_path):
    rng = np.random.default_rng(4)
    entry = StoreEntry(tmp_path / "e")
    layers = random_layers(rng, 6)
    entry.write_shard(0, 3, [layer[:3] for layer in layers])
    with pytest.raises(FileNotFoundError, match="missing"):
        entry.merge(shard_ranges(6, 3), {"model": "m"})
    assert not (entry.path / FEATURES_FILE).exists() and not (entry.path / META_FILE).exists()
    entry.write_shard(3, 6, [layer[3:] for layer in layers])
    # a stale temp file from a crashed merge must not be mistaken for the result
    (entry.path / f".{FEATURES_FILE}.crashed.tmp").write_bytes(b"garbage")
    entry.merge(shard_ranges(6, 3), {"model": "m"})
    leftovers = [p.name for p in entry.path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [f".{FEATURES_FILE}.crashed.tmp"]  # only the old one; ours was renamed
    np.testing.assert_array_equal(
        load_file(str(entry.path / FEATURES_FILE))["features"], np.stack(layers, axis=1)
    )


def test_streaming_merge_rejects_mismatched_shards(tmp_path):
    entry = StoreEntry(tmp_path / "e")
    entry.write_shard(0, 2, [np.zeros((2, 4), np.float32)])
    entry.write_shard(2, 4, [np.zeros((2, 5), np.float32)])
    with pytest.raises(ValueError, match="shape"):
        merge_shards_streaming(
            [entry.shard_path(0, 2), entry.shard_path(2, 4)], tmp_path / "out.safetensors"
        )


def test_write_shard_validates(tmp_path):
    entry = StoreEntry(tmp_path / "e")
    with pytest.raises(ValueError, match="rows"):
        entry.write_shard(0, 3, [np.zeros((2, 4), np.float32)])
    with pytest.raises(ValueError, match="NaN"):
        entry.write_shard(0, 1, [np.full((1, 4), np.nan, np.float32)])
    with pytest.raises(ValueError, match="storage dtype"):
        entry.write_shard(0, 1, [np.zeros((1, 4), np.float32)], "int8")


def test_slugify_names():
    assert slugify("google/gemma-2b") == "google--gemma-2b"
    assert "/" not in slugify("../../etc/passwd")
    with pytest.raises(ValueError):
        slugify("")


class CountingExtractor:
    """A real extractor whose calls are counted (and that can be made to crash)."""

    def __init__(self, inner, crash_on_call=None):
        self.inner, self.pooling = inner, inner.pooling
        self.calls: list[int] = []
        self.crash_on_call = crash_on_call

    def __call__(self, items):
        self.calls.append(len(items))
        if self.crash_on_call == len(self.calls):
            raise KeyboardInterrupt("simulated interruption")
        return self.inner(items)

    def describe(self):
        return self.inner.describe()


def test_resume_skips_finished_shards_and_matches_an_uninterrupted_run(tmp_path, tiny_gpt2_dir):
    inner = TextFeatureExtractor(str(tiny_gpt2_dir), batch_size=2, progress=False)
    options = ExtractOptions(shard_size=3)
    model = str(tiny_gpt2_dir)

    reference = CountingExtractor(inner)
    entry = extract_to_store(
        TEXTS, model, tmp_path / "a", dataset="poems", options=options, extractor=reference
    )
    assert reference.calls == [3, 3, 1]
    expected = FeatureStore(tmp_path / "a").load("poems", model).features

    crashing = CountingExtractor(inner, crash_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        extract_to_store(
            TEXTS, model, tmp_path / "b", dataset="poems", options=options, extractor=crashing
        )
    store_b = FeatureStore(tmp_path / "b")
    partial = StoreEntry(tmp_path / "b" / entry.path.relative_to(tmp_path / "a"))
    assert [partial.has_shard(*r) for r in shard_ranges(7, 3)] == [True, True, False]
    assert not partial.is_complete()

    resumed = CountingExtractor(inner)
    extract_to_store(
        TEXTS, model, tmp_path / "b", dataset="poems", options=options, extractor=resumed
    )
    assert resumed.calls == [1]  # only the missing shard (items 6..7) was computed
    np.testing.assert_array_equal(store_b.load("poems", model).features, expected)

    again = CountingExtractor(inner)
    extract_to_store(
        TEXTS, model, tmp_path / "b", dataset="poems", options=options, extractor=again
    )
    assert again.calls == []  # complete entries are not recomputed at all
    meta = json.loads((partial.path / META_FILE).read_text())
    assert meta["n_items"] == 7 and meta["model_class"] == "GPT2Model"
    assert meta["layer_names"][0] == "embeddings" and meta["package_version"]
    # no record ids were given: the rows are numbered, and flagged as such
    assert meta["ids"] == [str(i) for i in range(7)] and meta["ids_are_positions"] is True
    assert store_b.load("poems", model).ids_are_positions
