"""The retrieval report: ``summary.json``, captioned figures in ``index.html``, and the
trained model files the Space's results tab loads (``model/``).

``summary.json`` holds ``n_queries`` (held-out queries evaluated), ``systems``, per-system
metrics with CIs, and ``comparisons``: for each system against the original one, the
overall ``win_rate``, ``similar_rate``, ``win_or_similar_rate``, ``position_consistency``,
``ci_low``/``ci_high`` (the win rate's 95% bootstrap interval) and ``judge``, plus the
same per aspect.

Example:
    >>> print(fmt_ci({"mean": 0.5, "ci_low": 0.25, "ci_high": 0.75}))
    0.500 [0.250, 0.750]
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.retrieval.cache import atomic_write_bytes
from uaes_hf.retrieval.layout import FIGURES, RetrievalLayout


def fmt_ci(value: dict[str, float], digits: int = 3) -> str:
    """``mean [low, high]``."""
    return (
        f"{value['mean']:.{digits}f} [{value['ci_low']:.{digits}f}, {value['ci_high']:.{digits}f}]"
    )


def _json(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def build_summary(results: Any) -> dict[str, Any]:
    """The ``summary.json`` content (see the module doc)."""
    cfg = results.config
    total_wall = sum(t["wall_s"] for t in results.timings)
    total_cpu = sum(t["cpu_s"] for t in results.timings)
    return {
        "n_queries": len(results.eval_queries),
        "n_train_queries": len(results.train_queries),
        "k": cfg.eval.k,
        "systems": list(results.metrics),
        "n_images": len(results.corpus),
        "encoder": {
            "towers": results.encoder_name,
            "kind": cfg.encoder.kind,
            "recall_held_out": results.recall,
            "n_held_out": cfg.lit.held_out,
        },
        "judge": results.judge_label,
        "metrics": results.metrics,
        "differences_vs_original": results.differences,
        "comparisons": results.comparisons,
        "n_preference_pairs": results.n_pairs,
        "rephrasings": [r.to_dict() for r in results.rephrasings],
        "hpir": results.hpir,
        "timings": results.timings,
        "total_wall_s": round(total_wall, 1),
        "total_cpu_s": round(total_cpu, 1),
        "config": cfg.to_dict(),
        "notes": [
            "Offline defaults use real but small parts: a frozen EfficientNet-Lite0 + "
            "all-MiniLM-L6-v2 with trained linear projections, SmolLM2-135M rephrasings, the "
            "classical aesthetic HEURISTIC (not a human-aligned score) and a PROXY judge.",
            "The study's prompts are not public; the rephrasing and judge prompts are ours.",
        ],
    }


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(name: str, caption: str) -> str:
    return (
        f'<figure><img src="figures/{name}" alt="{html.escape(caption[:80])}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def render_html(results: Any, summary: dict[str, Any], figures: dict[str, str]) -> str:
    """The report page: headline tables, captioned figures, rephrasings, timings."""
    k = summary["k"]
    metric_rows = [
        [system, fmt_ci(m["aesthetics"]), fmt_ci(m["relevance"]), fmt_ci(m["diversity"])]
        for system, m in summary["metrics"].items()
    ]
    diff_rows = [
        [system, *(fmt_ci(d[m]) for m in ("aesthetics", "relevance", "diversity"))]
        for system, d in summary["differences_vs_original"].items()
    ]
    win_rows = [
        [
            name.replace("_vs_", " vs "),
            aspect,
            f"{r['win_rate']:.3f}",
            f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]",
            f"{r['similar_rate']:.3f}",
            f"{r['win_or_similar_rate']:.3f}",
            f"{r['position_consistency']:.3f}",
            r["n"],
        ]
        for name, c in summary["comparisons"].items()
        for aspect, r in c["aspects"].items()
    ]
    recall_rows = [
        [name, *(f"{v:.3f}" for v in values.values())]
        for name, values in summary["encoder"]["recall_held_out"].items()
    ]
    rephrase_rows = [
        [r["query"], r["rephrased"], "yes" if r["fallback"] else ""]
        for r in summary["rephrasings"]
        if r["query"] in set(results.eval_queries)
    ]
    timing_rows = [[t["stage"], t["wall_s"], t["cpu_s"]] for t in summary["timings"]]
    hpir = summary["hpir"]
    hpir_text = (
        "No human votes were given (<code>votes:</code> in the config), so no HPIR score is "
        "reported: the repository ships no invented labels. Collect votes with the vote tab "
        "(tasks in <code>vote_tasks.jsonl</code>) and rerun with the vote file."
        if not hpir
        else f"<pre>{html.escape(json.dumps(hpir, indent=2, default=_json))}</pre>"
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Aesthetic retrieval</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "font-size:13px}figure{margin:1.5em 0}img{max-width:100%}figcaption{font-size:13px;"
        "color:#333}</style></head><body>",
        "<h1>Aesthetic retrieval: rephrasing, preference fine-tuning and a judged win rate</h1>",
        f"<p>{summary['n_images']} images; {summary['n_queries']} held-out queries evaluated "
        f"(top {k}); {summary['n_train_queries']} training queries gave "
        f"{summary['n_preference_pairs']} preference pairs. Encoder: "
        f"{html.escape(summary['encoder']['towers'])}. Judge: "
        f"<b>{html.escape(summary['judge'])}</b>.</p>",
        "<p><b>Read with care:</b> " + " ".join(html.escape(n) for n in summary["notes"]) + "</p>",
        "<h2>Systems (held-out queries, 95% bootstrap CIs over queries)</h2>",
        _table(["system", f"aesthetics@{k}", f"relevance@{k}", f"diversity@{k}"], metric_rows),
        "<p>Paired differences from the original system (same queries; 95% bootstrap CI):</p>",
        _table(
            ["system", f"aesthetics@{k} gain", f"relevance@{k} gain", f"diversity@{k} gain"],
            diff_rows,
        ),
        _figure(
            figures["tradeoff"],
            f"Aesthetics@{k} against relevance@{k} for each system "
            "(mean over held-out queries, 95% bootstrap CIs). Relevance is the cosine "
            "between the ORIGINAL query and each image's caption (all-MiniLM-L6-v2); "
            "aesthetics is the configured image scorer.",
        ),
        "<h2>Win rates against the original system</h2>",
        _table(
            [
                "comparison",
                "aspect",
                "win rate",
                "95% CI",
                "similar",
                "win or similar",
                "position consistency",
                "n",
            ],
            win_rows,
        ),
        _figure(
            figures["win_rates"],
            "Share of held-out queries won, similar (the two "
            "order-swapped calls disagree) and lost, per aspect; black ticks: 95% CI of "
            f"the win rate. Judge: {summary['judge']}.",
        ),
        "<h2>Encoder: held-out caption retrieval</h2>",
        _table(["model / text", "recall@1", "recall@5", "recall@10"], recall_rows),
        f"<p>Text-to-image recall among the {summary['encoder']['n_held_out']} held-out "
        "images, with their full captions and with their titles only; 'finetuned' shows "
        "how much semantics the preference fine-tuning kept.</p>",
        _figure(
            figures["training"],
            "Left: LiT training loss of the offline encoder's "
            "projections. Right: preference fine-tuning (ranked DPO + weighted "
            "contrastive term) and the share of training pairs ranked the preferred way.",
        ),
        _figure(
            figures["examples"],
            "Top results of each system for a few held-out queries; "
            "the number under each image is its aesthetic score.",
        ),
        "<h2>Rephrased held-out queries</h2>",
        _table(["original query", "rephrased query", "fallback"], rephrase_rows),
        "<h2>HPIR (human votes)</h2>",
        f"<p>{hpir_text}</p>",
        "<h2>Run time</h2>",
        _table(["stage", "wall s", "CPU s"], timing_rows),
        f"<p>Total: {summary['total_wall_s']} s wall, {summary['total_cpu_s']} s CPU.</p>",
        "<p>Files: <code>summary.json</code>, <code>per_query.csv</code>, "
        "<code>judgements.jsonl</code>, <code>vote_tasks.jsonl</code>, <code>model/</code>.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_model_files(results: Any, out: Path) -> None:
    """What the results tab needs: heads, image base features, the corpus table."""
    from uaes_hf.retrieval.heads import heads_to_arrays

    layout = RetrievalLayout(out)
    layout.model_dir.mkdir(parents=True, exist_ok=True)
    for name, heads in results.heads.items():
        buffer = io.BytesIO()
        np.savez(buffer, **heads_to_arrays(heads))
        atomic_write_bytes(layout.heads(name), buffer.getvalue())
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(results.image_features, dtype=np.float32))
    atomic_write_bytes(layout.image_features, buffer.getvalue())
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["item_id", "path", "caption", "aesthetic", "license", "source"])
    for item, score in zip(results.corpus.items, results.aesthetic, strict=True):
        writer.writerow(
            [item.item_id, item.path, item.caption, f"{score:.4f}", item.license, item.source]
        )
    atomic_write_bytes(layout.corpus, text.getvalue().encode("utf-8"))
    meta = {"encoder": results.config.encoder.__dict__, "towers": results.encoder_name}
    atomic_write_bytes(layout.model_meta, json.dumps(meta, indent=2).encode())


def write_report(results: Any, out: Path) -> dict[str, Any]:
    """Write figures, ``index.html``, ``summary.json`` and the side files; returns the summary."""
    from uaes_hf.retrieval import plots

    out = Path(out)
    layout = RetrievalLayout(out)
    cfg = results.config
    summary = build_summary(results)
    paths = results.corpus.paths
    plots.tradeoff_plot(summary["metrics"], layout.figure("tradeoff"), k=cfg.eval.k)
    plots.win_rate_plot(summary["comparisons"], layout.figure("win_rates"), judge=summary["judge"])
    plots.training_plot(results.lit_history, results.finetune_history, layout.figure("training"))
    n = min(cfg.eval.examples, len(results.eval_queries))
    plots.example_rows_plot(
        results.eval_queries[:n],
        {s: r[:n] for s, r in results.rows.items()},
        paths,
        results.aesthetic,
        layout.figure("examples"),
    )
    figures = {name: layout.figure(name).name for name in FIGURES}
    rows = []
    for system, per_query in results.per_query.items():
        for i, query in enumerate(results.eval_queries):
            rows.append(
                {
                    "system": system,
                    "query": query,
                    **{m: float(v[i]) for m, v in per_query.items()},
                    "images": " ".join(
                        results.corpus.items[j].item_id for j in results.rows[system][i]
                    ),
                }
            )
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(layout.per_query, text.getvalue().encode("utf-8"))
    judged = [
        json.dumps({"system": s, **r}) for s, recs in results.judge_records.items() for r in recs
    ]
    atomic_write_bytes(layout.judgements, ("\n".join(judged) + "\n").encode())
    tasks = [
        json.dumps(
            {
                "query": q,
                "group_a": [paths[j] for j in results.rows["original"][i]],
                "group_b": [paths[j] for j in results.rows["finetuned"][i]],
                "system_a": "original",
                "system_b": "finetuned",
            }
        )
        for i, q in enumerate(results.eval_queries)
    ]
    atomic_write_bytes(layout.vote_tasks, ("\n".join(tasks) + "\n").encode())
    write_model_files(results, out)
    atomic_write_bytes(layout.summary, json.dumps(summary, indent=2, default=_json).encode("utf-8"))
    atomic_write_bytes(layout.index, render_html(results, summary, figures).encode())
    return summary
