"""The corpus from installed packages, the exact index and the artifact cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from uaes_hf.retrieval.cache import ArtifactCache, atomic_write_bytes, stable_hash
from uaes_hf.retrieval.corpus import (
    EXCLUDED_FOLDERS,
    OPENCLIPART_ROOT,
    build_corpus,
    load_image,
    make_caption,
    openclipart_items,
    parse_svg_metadata,
)
from uaes_hf.retrieval.index import ImageIndex

needs_openclipart = pytest.mark.skipif(
    not (OPENCLIPART_ROOT / "png").is_dir(), reason="apt-get install openclipart-png/-svg"
)


def test_svg_metadata_and_caption() -> None:
    svg = (
        '<svg><metadata><rdf:RDF><cc:Work rdf:about=""><dc:title>Sailing &amp; Boat</dc:title>'
        "<dc:description>HASH(0x862bbb8)</dc:description><dc:subject><rdf:Bag>"
        "<rdf:li>boat</rdf:li><rdf:li></rdf:li><rdf:li>sea</rdf:li><rdf:li>hash</rdf:li>"
        '</rdf:Bag></dc:subject><cc:license rdf:resource="http://web.resource.org/cc/PublicDomain"'
        "/></cc:Work></rdf:RDF></metadata></svg>"
    )
    meta = parse_svg_metadata(svg)
    assert meta.title == "Sailing & Boat" and meta.keywords == ("boat", "", "sea", "hash")
    assert "PublicDomain" in meta.license
    caption = make_caption(meta.title, meta.description, meta.keywords, "transportation/boating")
    assert caption == "Sailing & Boat. Keywords: boat, sea. Category: transportation, boating."


@needs_openclipart
def test_openclipart_items_are_public_domain_drawings_with_captions() -> None:
    items = openclipart_items()
    assert len(items) > 2000
    assert all(item.category and not item.category.startswith(EXCLUDED_FOLDERS) for item in items)
    assert all(
        Path(item.path).is_file() and item.caption.startswith(item.title.strip(" .")[:5])
        for item in items[:200]
    )
    assert {item.license for item in items} == {
        "Public domain (Open Clip Art Library 0.18, Debian openclipart-png)"
    }
    copyright_text = Path("/usr/share/doc/openclipart-png/copyright").read_text()
    assert "Public Domain" in copyright_text
    titles = [item.title.lower() for item in items]
    assert max(titles.count(t) for t in set(titles)) <= 3  # generic titles were dropped


@needs_openclipart
def test_corpus_is_deterministic_and_fingerprinted() -> None:
    a = build_corpus(["openclipart"], max_items=50, per_category=2, seed=3)
    b = build_corpus(["openclipart"], max_items=50, per_category=2, seed=3)
    c = build_corpus(["openclipart"], max_items=50, per_category=2, seed=4)
    assert len(a) == 50 and a.fingerprint() == b.fingerprint() != c.fingerprint()
    with pytest.raises(ValueError, match="unknown corpus source"):
        build_corpus(["flickr"])


def test_transparent_images_are_composited_over_white(tmp_path) -> None:
    from PIL import Image

    image = Image.new("RGBA", (600, 300), (0, 0, 0, 0))
    image.paste((200, 0, 0, 255), (0, 0, 100, 100))
    image.save(tmp_path / "t.png")
    loaded = load_image(tmp_path / "t.png", max_side=60)
    assert loaded.size == (60, 30) and loaded.mode == "RGB"
    assert loaded.getpixel((50, 25)) == (255, 255, 255)
    assert loaded.getpixel((2, 2))[0] > 150


@settings(max_examples=40, deadline=None)
@given(
    gallery=arrays(
        np.float64,
        st.tuples(st.integers(2, 30), st.just(5)),
        elements=st.floats(-3, 3, allow_nan=False),
    ),
    queries=arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.just(5)),
        elements=st.floats(-3, 3, allow_nan=False),
    ),
    k=st.integers(1, 30),
)
def test_index_matches_brute_force(gallery, queries, k) -> None:
    gallery = gallery + np.eye(5)[np.arange(len(gallery)) % 5] * 0.01  # no zero rows
    queries = queries + 0.01
    k = min(k, len(gallery))
    result = ImageIndex(gallery, dtype="float64").search(queries, k)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    sims = q @ g.T
    for row in range(len(queries)):
        expected = sorted(range(len(gallery)), key=lambda j: (-round(sims[row, j], 9), j))[:k]
        assert np.allclose(sims[row, result.indices[row]], sims[row, expected], atol=1e-9)
        np.testing.assert_allclose(result.similarities[row], sims[row, expected], atol=1e-6)


def test_index_ties_go_to_the_lower_row_and_errors_are_clear() -> None:
    index = ImageIndex(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    assert index.search(np.array([[1.0, 0.0]]), k=2).indices.tolist() == [[0, 1]]
    with pytest.raises(ValueError, match="k must be an integer in \\[1, 3\\]"):
        index.search(np.array([[1.0, 0.0]]), k=4)
    with pytest.raises(ValueError, match="dimension 3"):
        index.search(np.ones((1, 3)), k=1)
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.array([[np.nan, 1.0]]), k=1)


def test_cache_keys_and_atomic_artifacts(tmp_path) -> None:
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": (1, 2), "a": 1})
    assert stable_hash({"x": np.arange(3)}) != stable_hash({"x": np.arange(4)})
    cache = ArtifactCache(tmp_path)
    cache.save_arrays("k", "key1", {"x": np.ones(3)}, {"n": 3})
    cache.save_arrays("k", "key1", {"x": np.ones(3)}, {"n": 3})  # a concurrent twin
    assert cache.load_meta("k", "key1") == {"n": 3}
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["key1"]
    with pytest.raises(ValueError, match="plain non-empty name"):
        cache.path("k", "../escape")


def test_a_write_killed_midway_leaves_the_old_file(tmp_path) -> None:
    target = tmp_path / "state.bin"
    atomic_write_bytes(target, b"old")
    script = (
        "import os, uaes_hf.retrieval.cache as c\n"
        "os.replace = lambda *a: os.kill(os.getpid(), 9)\n"  # die just before the rename
        f"c.atomic_write_bytes({str(target)!r}, b'new' * 1000)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", script], env=env, timeout=60)
    assert result.returncode == -9
    assert target.read_bytes() == b"old"
