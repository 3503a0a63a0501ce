"""``uaes retrieval run``: the whole aesthetic-retrieval study, stage by stage, cached.

Stages: corpus -> features (frozen towers + aesthetic scores) -> encoder (LiT heads or the
Hub model's own, recall on held-out captions) -> rephrase (LLM, durable store) -> retrieve
(original and rephrased queries) -> preferences (semantic x aesthetic grid on training
queries) -> fine-tune (ranked DPO + contrastive, resumable) -> evaluate (aesthetics@k,
relevance@k, diversity@k on held-out queries) -> judge (order-swapped win rates) -> HPIR (on
human votes, when a vote file is given) -> report. Every costly result is content-addressed
under ``$UAES_HOME/retrieval``, so a rerun only redoes what changed.

Example:
    >>> from uaes_hf.retrieval.config import config_from_dict
    >>> summary = run_retrieval(config_from_dict({}), "retrieval_report")  # doctest: +SKIP
    >>> summary["systems"]  # doctest: +SKIP
    ['original', 'rephrased', 'finetuned', 'finetuned+rephrased']
"""

from __future__ import annotations

import copy
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from uaes_hf.retrieval.cache import ArtifactCache, code_fingerprint, stable_hash
from uaes_hf.retrieval.config import RetrievalConfig

SYSTEMS: tuple[str, ...] = ("original", "rephrased", "finetuned", "finetuned+rephrased")
BASELINE = "original"
_LIT_CODE = ("uaes_hf.retrieval.lit", "uaes_hf.retrieval.heads")
_FT_CODE = ("uaes_hf.retrieval.dpo", "uaes_hf.retrieval.finetune", "uaes_hf.retrieval.heads")


@dataclass
class StudyResults:
    """Everything the report needs (filled stage by stage)."""

    config: RetrievalConfig
    corpus: Any = None
    aesthetic: Any = None
    recall: dict[str, dict[str, float]] = field(default_factory=dict)
    lit_history: list[float] = field(default_factory=list)
    finetune_history: list[dict[str, float]] = field(default_factory=list)
    train_queries: list[str] = field(default_factory=list)
    eval_queries: list[str] = field(default_factory=list)
    rephrasings: list[Any] = field(default_factory=list)
    rows: dict[str, np.ndarray] = field(default_factory=dict)
    per_query: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    differences: dict[str, Any] = field(default_factory=dict)
    comparisons: dict[str, Any] = field(default_factory=dict)
    judge_records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    judge_label: str = ""
    n_pairs: int = 0
    hpir: dict[str, Any] | None = None
    timings: list[dict[str, Any]] = field(default_factory=list)
    heads: dict[str, Any] = field(default_factory=dict)
    image_features: Any = None
    encoder_name: str = ""


@contextmanager
def _stage(results: StudyResults, name: str, log: Any):
    print(f"uaes retrieval: {name} ...", file=log, flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    entry = {
        "stage": name,
        "wall_s": round(time.perf_counter() - wall, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
    }
    results.timings.append(entry)
    print(f"uaes retrieval: {name} done in {entry['wall_s']} s", file=log, flush=True)


def _embed(heads: Any, base: np.ndarray, side: str) -> np.ndarray:
    with torch.no_grad():
        tensor = torch.as_tensor(np.asarray(base), dtype=torch.float32)
        return (heads.image(tensor) if side == "image" else heads.text(tensor)).numpy()


def _recall(heads: Any, image: np.ndarray, texts: np.ndarray, index: np.ndarray) -> dict:
    from uaes_hf.retrieval.lit import recall_at_k

    found = recall_at_k(_embed(heads, texts[index], "text"), _embed(heads, image[index], "image"))
    return {f"recall@{k}": v for k, v in found.items()}


def _encoder_heads(
    cfg: RetrievalConfig,
    towers: Any,
    feats: Any,
    views: np.ndarray,
    view_key: str,
    train: np.ndarray,
    cache: ArtifactCache,
    progress: bool,
    results: StudyResults,
) -> Any:
    """The starting heads: trained LiT projections (cached) or the Hub model's own."""
    if cfg.encoder.kind == "hf":
        return towers.initial_heads()
    from uaes_hf.retrieval.heads import LinearProjections, heads_to_arrays, load_heads_arrays
    from uaes_hf.retrieval.lit import train_lit

    key = stable_hash(
        {
            "image": feats.image_key,
            "text": view_key,
            "lit": cfg.lit.to_dict(),
            "train": train,
            "code": code_fingerprint(_LIT_CODE),
        }
    )
    stored = cache.load_arrays("lit_heads", key)
    heads = LinearProjections(feats.image.shape[1], views.shape[2], cfg.lit.dim, cfg.lit.seed)
    if stored is None:
        heads, history = train_lit(feats.image, views, train, cfg.lit, progress=progress)
        cache.save_arrays("lit_heads", key, heads_to_arrays(heads), {"history": history})
    else:
        load_heads_arrays(heads, stored)
    results.lit_history = list((cache.load_meta("lit_heads", key) or {}).get("history", []))
    return heads.eval()


def _preference_data(
    cfg: RetrievalConfig,
    heads: Any,
    index: Any,
    q_train: np.ndarray,
    q_search: np.ndarray,
    relevance: np.ndarray,
    feats: Any,
    captions: np.ndarray,
    train: np.ndarray,
) -> Any:
    from uaes_hf.retrieval.finetune import PreferenceData
    from uaes_hf.retrieval.preference import query_preference_pairs

    pref = cfg.preference
    candidates = index.search(_embed(heads, q_search, "text"), pref.top_k).indices
    pairs, distances = [], []
    for q, cand in enumerate(candidates):
        found, dist = query_preference_pairs(
            cand, relevance[q, cand], feats.aesthetic[cand], u=pref.u, v=pref.v, stride=pref.stride
        )
        pairs.append(np.column_stack([np.full(len(found), q), found]))
        distances.append(dist)
    return PreferenceData(
        query_text=q_train,
        image=feats.image,
        pairs=np.concatenate(pairs),
        distance=np.concatenate(distances).astype(np.float64),
        caption_text=captions[train],
        caption_image=train,
    )


def _finetuned_heads(
    cfg: RetrievalConfig,
    heads: Any,
    data: Any,
    cache: ArtifactCache,
    progress: bool,
    log: Any,
    results: StudyResults,
) -> Any:
    from uaes_hf.retrieval.finetune import finetune
    from uaes_hf.retrieval.heads import heads_to_arrays, load_heads_arrays

    key = stable_hash(
        {
            "data": {k: v for k, v in vars(data).items()},
            "init": heads_to_arrays(heads),
            "config": cfg.finetune.key_dict(),
            "code": code_fingerprint(_FT_CODE),
        }
    )
    tuned = copy.deepcopy(heads)
    stored = cache.load_arrays("finetuned_heads", key)
    if stored is None:
        checkpoints = cache.root / "finetune_runs" / key
        tuned, history = finetune(
            tuned, data, cfg.finetune, checkpoints, progress=progress, log=log
        )
        cache.save_arrays("finetuned_heads", key, heads_to_arrays(tuned), {"history": history})
    else:
        load_heads_arrays(tuned, stored)
    results.finetune_history = list((cache.load_meta("finetuned_heads", key) or {})["history"])
    return tuned.cpu().eval()  # fine-tuning may have run on a GPU


def _proxy_judge(
    cfg: RetrievalConfig,
    aesthetic: np.ndarray,
    relevance: np.ndarray,
    position: dict[str, int],
    embeddings: np.ndarray,
) -> Any:
    from uaes_hf.retrieval.judge import ProxyJudge

    j = cfg.judge
    return ProxyJudge(
        aesthetic=aesthetic,
        relevance=lambda query: relevance[position[query]],
        image_embeddings=embeddings,
        margins={
            "accuracy": j.margin_accuracy,
            "aesthetics": j.margin_aesthetics,
            "diversity": j.margin_diversity,
            "overall": j.margin_overall,
        },
        scales={
            "accuracy": float(relevance.std()) or 1.0,
            "aesthetics": float(aesthetic.std()) or 1.0,
        },
    )


def run_retrieval(
    cfg: RetrievalConfig, out_dir: str | Path, *, progress: bool = True, log: Any = sys.stderr
) -> dict[str, Any]:
    """Run the study and write ``out_dir/index.html`` and ``out_dir/summary.json``."""
    from contextlib import nullcontext

    from uaes_hf.retrieval.heads import cpu_threads

    with cpu_threads(cfg.cpu_threads) if cfg.cpu_threads else nullcontext():
        return _run(cfg, Path(out_dir), progress, log)


def _run(cfg: RetrievalConfig, out: Path, progress: bool, log: Any) -> dict[str, Any]:
    from uaes_hf.annotate.store import ResultStore
    from uaes_hf.paths import uaes_home
    from uaes_hf.retrieval import evaluation, factories
    from uaes_hf.retrieval.corpus import build_corpus
    from uaes_hf.retrieval.encoders import PackagedTowers
    from uaes_hf.retrieval.features import cached_text_features, corpus_features
    from uaes_hf.retrieval.index import ImageIndex
    from uaes_hf.retrieval.lit import caption_views, split_held_out
    from uaes_hf.retrieval.queries import load_queries, split_queries
    from uaes_hf.retrieval.report import write_report
    from uaes_hf.retrieval.winrate import aspect_win_rates

    out.mkdir(parents=True, exist_ok=True)
    results = StudyResults(config=cfg)
    cache = ArtifactCache()
    store = ResultStore(cfg.store or uaes_home() / "retrieval" / "store.sqlite")
    k = cfg.eval.k
    boot = {"n_bootstrap": cfg.eval.n_bootstrap, "seed": cfg.eval.seed}
    try:
        with _stage(results, "corpus", log):
            corpus = build_corpus(
                cfg.corpus.sources,
                max_items=cfg.corpus.max_items,
                per_category=cfg.corpus.per_category,
                seed=cfg.corpus.seed,
                progress=progress,
            )
            results.corpus = corpus
        with _stage(results, "features", log):
            towers = factories.make_towers(cfg.encoder)
            scorer = factories.make_scorer(cfg.scorer, store)
            feats = corpus_features(corpus, towers, scorer, cache, progress=progress)
            results.aesthetic, results.image_features = feats.aesthetic, feats.image
            views = caption_views(corpus.captions, [item.title for item in corpus.items])
            view_feats = np.stack([cached_text_features(towers, v, cache) for v in views])
            text_judge = towers if isinstance(towers, PackagedTowers) else PackagedTowers()
            caption_minilm = (
                view_feats[0]
                if text_judge is towers
                else cached_text_features(text_judge, corpus.captions, cache)
            )
        with _stage(results, "encoder", log):
            train, held = split_held_out(len(corpus), cfg.lit.held_out, cfg.lit.seed)
            heads = _encoder_heads(
                cfg, towers, feats, view_feats, stable_hash(views), train, cache, progress, results
            )
            results.encoder_name = towers.name
            results.recall["original/caption"] = _recall(heads, feats.image, view_feats[0], held)
            results.recall["original/title"] = _recall(heads, feats.image, view_feats[1], held)
        with _stage(results, "rephrase", log):
            queries = load_queries(cfg.queries.file)[: cfg.queries.limit]
            results.train_queries, results.eval_queries = split_queries(
                queries, cfg.queries.held_out_fraction
            )
            backend = factories.make_rephrase_backend(cfg.rephrase)
            if backend is None:
                from uaes_hf.retrieval.rephrase import Rephrasing

                results.rephrasings = [
                    Rephrasing(q, q, "none", "", "", True, True) for q in queries
                ]
            else:
                from uaes_hf.retrieval.rephrase import rephrase_queries

                results.rephrasings = rephrase_queries(
                    queries, backend, store, batch_size=cfg.rephrase.batch_size, progress=progress
                )
            rephrased = {r.query: r.rephrased for r in results.rephrasings}
        with _stage(results, "retrieve", log):
            position = {q: i for i, q in enumerate(queries)}
            q_orig = cached_text_features(towers, queries, cache)
            q_reph = cached_text_features(towers, [rephrased[q] for q in queries], cache)
            q_minilm = (
                q_orig if text_judge is towers else cached_text_features(text_judge, queries, cache)
            )
            relevance = q_minilm @ caption_minilm.T  # both L2-normalised: cosine
            ev = np.array([position[q] for q in results.eval_queries])
            tr = np.array([position[q] for q in results.train_queries])
            index = ImageIndex(_embed(heads, feats.image, "image"))
            results.rows["original"] = index.search(_embed(heads, q_orig[ev], "text"), k).indices
            results.rows["rephrased"] = index.search(_embed(heads, q_reph[ev], "text"), k).indices
        with _stage(results, "preferences", log):
            search = q_reph if cfg.preference.query == "rephrased" else q_orig
            data = _preference_data(
                cfg,
                heads,
                index,
                q_orig[tr],
                search[tr],
                relevance[tr],
                feats,
                view_feats[0],
                train,
            )
            results.n_pairs = len(data.pairs)
        with _stage(results, "finetune", log):
            tuned = _finetuned_heads(cfg, heads, data, cache, progress, log, results)
            tuned_index = ImageIndex(_embed(tuned, feats.image, "image"))
            results.rows["finetuned"] = tuned_index.search(
                _embed(tuned, q_orig[ev], "text"), k
            ).indices
            results.rows["finetuned+rephrased"] = tuned_index.search(
                _embed(tuned, q_reph[ev], "text"), k
            ).indices
            results.recall["finetuned/caption"] = _recall(tuned, feats.image, view_feats[0], held)
            results.recall["finetuned/title"] = _recall(tuned, feats.image, view_feats[1], held)
            results.heads = {"original": heads, "finetuned": tuned}
        with _stage(results, "evaluate", log):
            diversity_emb = _embed(heads, feats.image, "image")
            for system in SYSTEMS:
                results.per_query[system] = evaluation.row_metrics(
                    results.rows[system], feats.aesthetic, relevance[ev], diversity_emb
                )
                results.metrics[system] = evaluation.summarize(results.per_query[system], **boot)
                if system != BASELINE:
                    results.differences[system] = {
                        m: evaluation.paired_difference(
                            results.per_query[system][m], results.per_query[BASELINE][m], **boot
                        )
                        for m in evaluation.METRICS
                    }
        with _stage(results, "judge", log):
            if cfg.judge.backend == "vlm":
                judge = factories.make_vlm_judge(cfg.judge, corpus.paths)
            else:
                judge = _proxy_judge(cfg, feats.aesthetic, relevance, position, diversity_emb)
            results.judge_label = judge.label
            for system in SYSTEMS[1:]:
                records = _judge_system(judge, results, system, store, cfg, progress)
                results.judge_records[system] = records
                rates = aspect_win_rates([r["outcome"] for r in records], **boot)
                results.comparisons[f"{system}_vs_{BASELINE}"] = {
                    "system": system,
                    "baseline": BASELINE,
                    "judge": judge.name,
                    "judge_label": judge.label,
                    "n_queries": len(records),
                    **rates["overall"].to_dict(),
                    "aspects": {a: r.to_dict() for a, r in rates.items()},
                }
        with _stage(results, "hpir", log):
            results.hpir = _hpir(cfg, results, towers, feats, cache)
        with _stage(results, "report", log):
            summary = write_report(results, out)
    finally:
        store.close()
    return summary


def _judge_system(
    judge: Any, results: StudyResults, system: str, store: Any, cfg: RetrievalConfig, progress: bool
) -> list[dict[str, Any]]:
    from uaes_hf.retrieval.judge import judge_pairwise

    return judge_pairwise(
        judge,
        results.eval_queries,
        [list(r) for r in results.rows[system]],
        [list(r) for r in results.rows[BASELINE]],
        store=store,
        concurrency=cfg.judge.concurrency,
        progress=progress,
        desc=f"judge {system} vs {BASELINE} ({judge.name})",
    )


def _hpir(
    cfg: RetrievalConfig, results: StudyResults, towers: Any, feats: Any, cache: ArtifactCache
) -> dict[str, Any] | None:
    """HPIR scores of the original and fine-tuned encoders on a vote file, if one is given."""
    if not cfg.votes:
        return None
    from uaes_hf.retrieval.features import cached_text_features
    from uaes_hf.retrieval.hpir import hpir_scores, predict_preferences
    from uaes_hf.retrieval.votes import VoteLog, aggregate_votes

    rows = aggregate_votes(VoteLog(cfg.votes).read())
    if not rows:
        return {"n_items": 0, "note": f"no votes in {cfg.votes}"}
    where = {path: i for i, path in enumerate(results.corpus.paths)}
    unknown = sorted({p for r in rows for p in r["group_a"] + r["group_b"] if p not in where})
    if unknown:
        raise ValueError(f"votes refer to images outside the corpus, e.g. {unknown[:3]}")
    text = cached_text_features(towers, [r["query"] for r in rows], cache)
    out: dict[str, Any] = {"n_items": len(rows)}
    for name, heads in results.heads.items():
        image = _embed(heads, feats.image, "image")
        predictions = predict_preferences(
            _embed(heads, text, "text"),
            [image[[where[p] for p in r["group_a"]]] for r in rows],
            [image[[where[p] for p in r["group_b"]]] for r in rows],
        )
        out[name] = hpir_scores(
            predictions, [[r["votes_a"], r["votes_b"]] for r in rows], [r["aspect"] for r in rows]
        )
    return out
