"""The six stages of an experiment, wired to the library's data, judge, extraction and
alignment modules. Each stage reads its inputs' folders and writes its own (see
:mod:`uaes_hf.experiments.pipeline` for caching).

=========  ====================================================  ==========================
stage      writes                                                reads
=========  ====================================================  ==========================
prepare    poems.parquet, plain_texts.parquet, image_text.parquet  data (embedded or Hub)
annotate   poems.parquet (with aesthetic_score)                  prepare
extract    features/<dataset>__<model>.npz, perplexity.parquet   prepare
align      convergence.csv, subsets.json, cluster_labels.npy     annotate, extract
analyse    results/*.csv, results/summary.json                   annotate, extract, align
report     figures/*.png, results/ (copied), index.html          analyse
=========  ====================================================  ==========================

Example:
    >>> from uaes_hf.experiments.stages import default_stages
    >>> [s.name for s in default_stages()]
    ['prepare', 'annotate', 'extract', 'align', 'analyse', 'report']
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.experiments.config import ExperimentConfig, ExtractConfig
from uaes_hf.experiments.pipeline import Stage, StageContext

TEXT_DATASETS = ("poems", "plain_texts")
ALIGNED_POEMS = "poems_aligned"  # the length-aligned poems, when the config names a set
IMAGE_TEXT_DATASETS = ("image_captions", "image_poems")


def _log(message: str) -> None:
    print(f"uaes: {message}", file=sys.stderr, flush=True)


def _sample_rows(n_total: int, n_wanted: int, seed: int) -> np.ndarray:
    """Sorted seeded sample of row numbers (all rows when ``n_wanted`` is 0 or too big)."""
    if n_wanted <= 0 or n_wanted >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n_wanted, replace=False))


# ---------------------------------------------------------------------------------------------
# prepare


def _local_fingerprint(cfg: ExperimentConfig) -> str:
    """Sizes and mtimes of local data folders named in the config (Hub ids: their name)."""
    parts = []
    for source in (cfg.data.poems, cfg.data.plain_texts, cfg.data.image_text):
        path = Path(source)
        if source != "embedded" and path.exists():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                stat = f.stat()
                parts.append(f"{f}:{stat.st_size}:{int(stat.st_mtime)}")
    # hashlib, not hash(): str hashes are salted per process, which would defeat the cache
    return hashlib.sha256("\n".join(parts).encode()).hexdigest() if parts else ""


def _poems_frame(cfg: ExperimentConfig, embedded: Any, revision: str | None = None) -> Any:
    """The poems (``revision``: another branch/config of the same repo, e.g. aligned_s)."""
    import pandas as pd

    from uaes_hf.data.repo import load_poems

    source = embedded().poems_repo if cfg.data.poems == "embedded" else cfg.data.poems
    revision = revision or cfg.data.poems_revision
    dataset = load_poems(
        source,
        revision=revision,
        config=None if revision else cfg.data.poems_config,
        split="train",
    )
    frame = dataset.to_pandas() if hasattr(dataset, "to_pandas") else pd.DataFrame(dataset)
    return frame


def _plain_frame(cfg: ExperimentConfig, embedded: Any) -> Any:
    import pandas as pd

    from uaes_hf.data import plain_texts as pt

    if cfg.data.plain_texts == "embedded":
        records = pt.load_plain_text_records(embedded().plain_texts_dir)
    elif Path(cfg.data.plain_texts).exists():
        records = pt.load_plain_text_records(cfg.data.plain_texts)
    else:
        # The study's plain texts: minhuh/prh at revision wit_1024 (first caption per row).
        records = pt.load_prh_captions(
            revision=cfg.data.plain_texts_revision or cfg.data.plain_texts_config or "wit_1024",
            repo_id=cfg.data.plain_texts,
        )
    return pd.DataFrame([vars(r) if hasattr(r, "__dict__") else dict(r) for r in records])


def _image_text_frame(cfg: ExperimentConfig, n_images: int, seed: int) -> Any:
    """Image-caption-poem records with an image aesthetic level (H5's dataset, or built)."""
    import pandas as pd

    if n_images == 0:
        return pd.DataFrame()
    from uaes_hf.data.image_ingest import read_image_captions

    if cfg.data.image_text == "embedded":
        from uaes_hf.data.embedded_images import build_embedded_imagefolder

        source = build_embedded_imagefolder(progress=False).folder
    else:
        source = cfg.data.image_text
    hub = {"revision": cfg.data.image_text_revision} if cfg.data.image_text_revision else {}
    ingest = read_image_captions(source, **hub)
    items = list(ingest.items)
    keep = _sample_rows(len(items), n_images, seed)
    items = [items[i] for i in keep]
    images = [item.open_image() for item in items]
    captions = [item.caption for item in items]
    rows = pd.DataFrame(
        {
            "id": [item.id for item in items],
            "caption": captions,
            "image": [item.image_bytes() for item in items],
        }
    )
    extras = [getattr(item, "extra", {}) or {} for item in items]
    if all("poem" in e for e in extras) and all("image_aesthetic_level" in e for e in extras):
        rows["poem"] = [e["poem"] for e in extras]
        rows["image_aesthetic_level"] = [int(e["image_aesthetic_level"]) for e in extras]
        rows["image_aesthetic_score"] = [
            float(e.get("image_aesthetic_score", np.nan)) for e in extras
        ]
        return rows
    from uaes_hf.annotate.image_scorers import ClassicalAestheticScorer
    from uaes_hf.annotate.image_to_poem import RetrievalPoemBaseline

    poems = RetrievalPoemBaseline().generate(images, captions)
    rows["poem"] = [p.text if p is not None else "" for p in poems]
    rows["poem_source"] = [p.source if p is not None else "" for p in poems]
    scorer = ClassicalAestheticScorer()
    scores = scorer.score(images)
    scorer = scorer.with_quantile_cuts(scores)
    rows["image_aesthetic_score"] = scores
    rows["image_aesthetic_level"] = [scorer.level(s) for s in scores]
    rows["scorer"] = scorer.name
    return rows


def run_prepare(ctx: StageContext) -> dict[str, Any]:
    """Load the poems, plain texts and image-text pairs; sample the configured sizes."""
    from tqdm.auto import tqdm

    from uaes_hf.data.lengths import count_words

    cfg = ctx.config
    built: list[Any] = []

    def embedded() -> Any:
        """The packaged poems repo and plain texts, built once per run."""
        if not built:
            from uaes_hf.data.pipeline import prepare_embedded_data

            built.append(prepare_embedded_data(progress=ctx.show_progress))
        return built[0]

    bar = tqdm(total=3, desc="prepare", unit="dataset", disable=not ctx.show_progress)
    poems = _poems_frame(cfg, embedded)
    poems = poems.iloc[_sample_rows(len(poems), cfg.data.n_poems, cfg.seed)].reset_index(drop=True)
    bar.update(1)
    plain = _plain_frame(cfg, embedded)
    if "n_words" not in plain:
        plain["n_words"] = [count_words(t) for t in plain["text"]]
    plain = plain.iloc[_sample_rows(len(plain), cfg.data.n_plain_texts, cfg.seed + 1)]
    plain = plain.reset_index(drop=True)
    bar.update(1)
    images = _image_text_frame(cfg, cfg.data.n_images, cfg.seed + 2)
    bar.update(1)
    bar.close()
    poems.to_parquet(ctx.out_dir / "poems.parquet", index=False)
    plain.to_parquet(ctx.out_dir / "plain_texts.parquet", index=False)
    images.to_parquet(ctx.out_dir / "image_text.parquet", index=False)
    summary = {"n_poems": len(poems), "n_plain_texts": len(plain), "n_images": len(images)}
    if cfg.data.aligned_poems:
        aligned = _poems_frame(cfg, embedded, revision=cfg.data.aligned_poems)
        if "n_words" not in aligned:
            aligned["n_words"] = [count_words(t) for t in aligned["text"]]
        keep = ["id", "text", "n_words", "aesthetic_score", "form_category"]
        aligned = aligned[[c for c in keep if c in aligned]].reset_index(drop=True)
        aligned.to_parquet(ctx.out_dir / f"{ALIGNED_POEMS}.parquet", index=False)
        summary[f"n_{ALIGNED_POEMS}"] = len(aligned)
    return summary


# ---------------------------------------------------------------------------------------------
# annotate


def run_annotate(ctx: StageContext) -> dict[str, Any]:
    """Give every poem an aesthetic score (existing scores kept unless told otherwise).

    Ratings go through :func:`uaes_hf.annotate.judge.judge_poems` into the same durable
    store as ``uaes annotate poems`` (``$UAES_HOME/annotations/results.sqlite``), so a poem
    rated once, by either command, is never rated (or billed) again. With
    ``annotate.rescale: quantile`` the local judge's expected score is turned into levels
    1-5 by quintile (a ranking within the set: the 135M judge's argmax is nearly constant).
    """
    import pandas as pd

    cfg = ctx.config.annotate
    poems = pd.read_parquet(ctx.inputs["prepare"] / "poems.parquet")
    if "aesthetic_score" not in poems:
        poems["aesthetic_score"] = np.nan
    scores = pd.to_numeric(poems["aesthetic_score"], errors="coerce")
    todo = scores.isna() if cfg.keep_existing else pd.Series(True, index=poems.index)
    summary: dict[str, Any] = {"backend": cfg.backend, "n_existing": int(scores.notna().sum())}
    if cfg.backend != "existing" and todo.any():
        from uaes_hf.annotate.judge import PoemItem, judge_poems, stored_ratings
        from uaes_hf.annotate.store import ResultStore
        from uaes_hf.paths import cache_dir

        backend = _judge_backend(cfg)
        ids = [str(i) for i in poems.loc[todo, "id"]]
        items = [PoemItem(i, t) for i, t in zip(ids, poems.loc[todo, "text"], strict=True)]
        with ResultStore(cache_dir("annotations") / "results.sqlite") as store:
            result = judge_poems(
                items,
                store,
                backend,
                progress=ctx.show_progress,
                run_params={"command": "uaes run (annotate stage)"},
            )
            rows = {
                key: row.payload
                for key, row in stored_ratings(items, store, backend).items()
                if row.ok and row.payload
            }
        _log(result.format().splitlines()[1].strip())
        for column in ("aesthetic_rationale", "annotator"):  # all-null columns load as float
            if column in poems:
                poems[column] = poems[column].astype(object)
            else:
                poems[column] = pd.Series(None, index=poems.index, dtype=object)
        expected = poems.get("expected_score", np.nan)
        poems["expected_score"] = pd.to_numeric(expected, errors="coerce")
        poems["aesthetic_score"] = pd.to_numeric(poems["aesthetic_score"], errors="coerce")
        for column, field in (("aesthetic_score", "score"), ("expected_score", "expected_score")):
            values = [rows.get(i, {}).get(field) for i in ids]  # None: failed or not given
            poems.loc[todo, column] = np.array([np.nan if v is None else v for v in values], float)
        poems.loc[todo, "aesthetic_rationale"] = [rows.get(i, {}).get("thinking") for i in ids]
        poems.loc[todo, "annotator"] = f"{backend.name}:{backend.model}"
        summary.update(
            n_rated=len(rows),
            done_now=result.done,
            cached=result.cached,
            failed=dict(result.failed),
            annotator=f"{backend.name}:{backend.model}",
        )
        if cfg.rescale == "quantile":
            expected = pd.to_numeric(poems["expected_score"], errors="coerce")
            if expected.notna().sum() >= 5:
                poems["judge_score"] = poems["aesthetic_score"]
                ranks = expected.rank(method="first", pct=True)
                poems.loc[expected.notna(), "aesthetic_score"] = np.ceil(
                    ranks[expected.notna()] * 5
                ).clip(1, 5)
                summary["rescaled"] = "expected score -> quintile levels 1-5"
    poems["aesthetic_score"] = pd.to_numeric(poems["aesthetic_score"], errors="coerce")
    poems.to_parquet(ctx.out_dir / "poems.parquet", index=False)
    counts = poems["aesthetic_score"].value_counts(dropna=False).sort_index()
    summary["score_counts"] = {str(k): int(v) for k, v in counts.items()}
    return summary


def _judge_backend(cfg: Any) -> Any:
    """The configured rating backend (local packaged LM or an OpenAI-compatible endpoint)."""
    if cfg.backend == "local":
        from uaes_hf.annotate.local_backend import LocalRatingBackend

        return LocalRatingBackend(cfg.model, max_prompt_tokens=cfg.max_prompt_tokens)
    from uaes_hf.annotate.client import ChatClient, ChatConfig
    from uaes_hf.annotate.judge import OpenAIRatingBackend

    chat = ChatConfig(model=cfg.model, base_url=cfg.base_url, concurrency=cfg.max_concurrency)
    return OpenAIRatingBackend(ChatClient(chat))


# ---------------------------------------------------------------------------------------------
# extract


def save_stack(path: Path, layers: list[np.ndarray]) -> None:
    """One ``.npz`` per (dataset, model): ``layer_000`` ... (widths may differ).

    Written with fixed zip timestamps, so equal features give byte-identical files (a
    recomputed stage with unchanged outputs then leaves every later stage cached).
    """
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i, layer in enumerate(layers):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(layer, np.float32), allow_pickle=False)
            info = zipfile.ZipInfo(f"layer_{i:03d}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, buffer.getvalue())


def load_stack(extract_dir: Path, dataset: str, model: str) -> list[np.ndarray]:
    """The per-layer ``N x D_l`` features saved by the extract stage."""
    path = Path(extract_dir) / "features" / f"{dataset}__{_slug(model)}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"no features for {model!r} on {dataset!r} ({path})")
    with np.load(path) as data:
        return [data[name] for name in sorted(data.files)]


def _slug(name: str) -> str:
    return name.replace("/", "--")


def model_checkpoint(kind: str, model: str, settings: dict[str, Any], items: list[Any]) -> Path:
    """Content-addressed file of one model's features on exactly these items.

    The extract stage is one cache entry; inside it every (model, items, settings) result
    is also kept under ``$UAES_HOME/runs/model_features``, so an interrupted extraction
    resumes at the next model, and adding a model to a config computes only that model.

    Example:
        >>> model_checkpoint("text", "smollm2-135m", {}, ["a poem"]).suffix  # doctest: +SKIP
        '.npz'
    """

    from uaes_hf import __version__
    from uaes_hf.paths import cache_dir

    digest = hashlib.sha256()
    head = {"kind": kind, "model": model, "settings": settings, "version": __version__}
    digest.update(json.dumps(head, sort_keys=True, default=str).encode())
    for item in items:
        data = item if isinstance(item, bytes) else str(item).encode()
        digest.update(hashlib.sha256(data).digest())
    suffix = ".parquet" if kind == "perplexity" else ".npz"
    name = f"{kind}-{_slug(model).replace('/', '_')}-{digest.hexdigest()[:24]}{suffix}"
    return cache_dir("runs", "model_features") / name


def _checkpointed_layers(path: Path, compute: Any) -> tuple[list[np.ndarray], bool]:
    """Layers from ``path`` if a finished checkpoint is there, else computed and saved."""
    import os

    if path.is_file():
        with np.load(path) as data:
            return [data[name] for name in sorted(data.files)], True
    layers = compute()
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    save_stack(tmp, layers)
    os.replace(tmp, path)  # a file that exists is always complete
    return [np.asarray(x, np.float32) for x in layers], False


def _free_port() -> int:
    """A TCP port free right now, so concurrent launches do not collide on 29500."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accelerate_launch_command(
    model: str,
    dataset_dir: Path,
    store_dir: Path,
    *,
    num_processes: int,
    pooling: str,
    batch_size: int,
    max_tokens: int,
    device: str = "auto",
    n_items: int,
    show_progress: bool = False,
) -> tuple[list[str], dict[str, str]]:
    """The ``accelerate launch ... -m uaes_hf.extract`` command (and its environment).

    CUDA GPUs get one process each (``device`` ``auto`` or ``cuda``); without CUDA, or with
    ``device: cpu``, the processes run on the CPU (gloo, ``ACCELERATE_USE_CPU=true``). The
    items are cut into ``num_processes`` shards (at most 1024 items each), so every process
    has work.

    Raises:
        ValueError: ``num_processes`` < 2, more processes than visible GPUs, or a device
            that cannot be split across processes.

    Example:
        >>> cmd, env = accelerate_launch_command(
        ...     "all-minilm-l6-v2", Path("d"), Path("s"), num_processes=2, pooling="mean",
        ...     batch_size=8, max_tokens=128, device="cpu", n_items=10)
        >>> cmd[cmd.index("--num_processes") + 1], env["ACCELERATE_USE_CPU"]
        ('2', 'true')
    """
    import os

    if num_processes < 2:
        raise ValueError(f"num_processes must be >= 2 for accelerate launch, got {num_processes}")
    if device == "cpu":
        use_cuda = False
    elif device == "auto" or device.startswith("cuda"):
        import torch

        use_cuda = torch.cuda.is_available()
        if device != "auto" and not use_cuda:
            raise ValueError(f"extract.device is {device!r} but CUDA is not available")
        n_gpus = torch.cuda.device_count() if use_cuda else 0
        if use_cuda and n_gpus < num_processes:
            raise ValueError(
                f"extract.num_processes is {num_processes} but only {n_gpus} CUDA GPU(s) are "
                f"visible; set it to at most {n_gpus} (one process per GPU)"
            )
    else:
        raise ValueError(
            f"extract.num_processes > 1 needs extract.device auto, cuda or cpu, got {device!r}"
        )
    shard_size = max(1, min(1024, -(-n_items // num_processes)))
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        # --multi_gpu picks the torch.distributed launcher; with ACCELERATE_USE_CPU the
        # processes use the CPU and gloo (--cpu alone would start a single process).
        "--multi_gpu",
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        "-m",
        "uaes_hf.extract",
        "--dataset",
        str(dataset_dir),
        "--column",
        "text",
        "--id-column",
        "id",
        "--models",
        model,
        "--out",
        str(store_dir),
        "--pooling",
        pooling,
        "--batch-size",
        str(batch_size),
        "--max-length",
        str(max_tokens),
        "--shard-size",
        str(shard_size),
        *([] if show_progress else ["--no-progress"]),
    ]
    env = dict(os.environ)
    if not use_cuda:
        env["ACCELERATE_USE_CPU"] = "true"
    return command, env


def _run_streaming(command: list[str], env: dict[str, str], echo: bool) -> tuple[int, str]:
    """Run ``command``; echo its output when ``echo``; return (exit code, output tail)."""
    import os
    import subprocess

    tail = bytearray()
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as process:
        assert process.stdout is not None
        while chunk := os.read(process.stdout.fileno(), 65536):
            if echo:
                sys.stderr.buffer.write(chunk)
                sys.stderr.flush()
            tail = (tail + chunk)[-20000:]
        code = process.wait()
    return code, tail.decode("utf-8", "replace")


def _error_lines(output: str) -> list[str]:
    """The exception lines of the ranks' output (the launcher's own summary left out).

    Example:
        >>> _error_lines("x\\n[rank1]: OSError: no model\\nuaes extract: error: bad\\n")
        ['OSError: no model', 'uaes extract: error: bad']
    """
    import re

    pattern = re.compile(
        r"^(?:\[rank\d+\]:\s*)?((?:[\w.]*(?:Error|Exception)|uaes \w+: error):.*)$"
    )
    found: list[str] = []
    for line in output.splitlines():
        match = pattern.match(line.strip())
        if match and "ChildFailedError" not in line and match.group(1) not in found:
            found.append(match.group(1))
    return found[-5:] or ["(none recognised; see the output below)"]


def extract_text_group_accelerate(
    model: str,
    texts: list[str],
    work_dir: Path,
    *,
    num_processes: int,
    pooling: str = "mean",
    batch_size: int = 8,
    max_tokens: int = 128,
    device: str = "auto",
    show_progress: bool = False,
) -> list[np.ndarray]:
    """All-layer pooled features of ``texts`` (``N x D_l`` per layer), sharded over processes.

    Writes the texts as a parquet dataset (columns ``id``, ``text``) under ``work_dir``, runs
    :func:`accelerate_launch_command` into a feature store there and reads it back, checking
    that the rows come back in the texts' order. ``work_dir`` is kept if the launch fails
    (a rerun resumes at the next unfinished shard) and removed after a success.

    Raises:
        RuntimeError: the launch failed (the message names the command and shows the end
            of its output).

    Example:
        >>> layers = extract_text_group_accelerate(
        ...     "all-minilm-l6-v2", ["a poem", "a text"], Path("tmp"), num_processes=2
        ... )  # doctest: +SKIP
        >>> layers[-1].shape  # doctest: +SKIP
        (2, 384)
    """
    import os
    import shlex
    import shutil

    import pandas as pd

    from uaes_hf.extract.registry import expand_models
    from uaes_hf.extract.store import FeatureStore

    if not texts:
        raise ValueError("no texts to extract")
    work_dir = Path(work_dir)
    dataset_dir = work_dir / "dataset"
    dataset_dir.mkdir(parents=True, exist_ok=True)
    # Integer ids 0..N-1: the order check below does not depend on the texts being unique.
    frame = pd.DataFrame({"id": np.arange(len(texts), dtype=np.int64), "text": list(texts)})
    tmp = dataset_dir / ".train.parquet.tmp"
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, dataset_dir / "train.parquet")
    command, env = accelerate_launch_command(
        model,
        dataset_dir,
        work_dir / "store",
        num_processes=num_processes,
        pooling=pooling,
        batch_size=batch_size,
        max_tokens=max_tokens,
        device=device,
        n_items=len(texts),
        show_progress=show_progress,
    )
    _log(f"extract: {model} on {len(texts)} texts with {num_processes} processes")
    code, output = _run_streaming(command, env, echo=show_progress)
    if code != 0:
        raise RuntimeError(
            f"feature extraction of {model!r} under accelerate failed (exit code {code}); "
            f"command: {shlex.join(command)}\nerrors: {' | '.join(_error_lines(output))}"
            f"\n--- end of its output ---\n{output[-3000:]}"
        )
    key = expand_models([model])[0].key
    stored = FeatureStore(work_dir / "store").load(str(dataset_dir), key, pooling)
    if stored.ids != list(range(len(texts))):
        raise RuntimeError(
            f"features of {model!r} from accelerate came back for ids {stored.ids[:5]}..., "
            f"not the {len(texts)} texts in order"
        )
    layers = [np.asarray(stored.layer(i), np.float32) for i in range(stored.n_layers)]
    shutil.rmtree(work_dir, ignore_errors=True)
    return layers


def run_extract(ctx: StageContext) -> dict[str, Any]:
    """All-layer pooled features of every model on every dataset, and perplexity.

    Each model's result is checkpointed (:func:`model_checkpoint`) the moment it is done.
    With ``extract.num_processes`` > 1 the text models run under ``accelerate launch``
    (:func:`extract_text_group_accelerate`); vision models and perplexity stay in this
    process.
    """
    import os
    import time

    import pandas as pd

    from uaes_hf.extract.perplexity import PerplexityScorer, perplexity_table
    from uaes_hf.extract.text import TextFeatureExtractor
    from uaes_hf.extract.vision import VisionFeatureExtractor

    cfg = ctx.config
    ex = cfg.extract
    prep = ctx.inputs["prepare"]
    poems = pd.read_parquet(prep / "poems.parquet")
    plain = pd.read_parquet(prep / "plain_texts.parquet")
    images = pd.read_parquet(prep / "image_text.parquet")
    (ctx.out_dir / "features").mkdir()
    device = None if ex.device == "auto" else ex.device
    texts = {"poems": list(poems["text"]), "plain_texts": list(plain["text"])}
    if len(images):
        texts["image_captions"] = list(images["caption"])
        texts["image_poems"] = list(images["poem"])
    aligned_path = prep / f"{ALIGNED_POEMS}.parquet"
    aligned = list(pd.read_parquet(aligned_path)["text"]) if aligned_path.is_file() else []
    text_models = list(ex.text_models)
    cluster_model = cfg.analyse.cluster_model
    timings: dict[str, float] = {}
    reused: list[str] = []
    settings = {"pooling": ex.pooling, "max_tokens": ex.max_tokens}

    for model in [*text_models, *([cluster_model] if cluster_model not in text_models else [])]:
        started = time.perf_counter()
        wanted = texts if model in text_models else {d: texts[d] for d in TEXT_DATASETS}
        # The length-aligned poems are their own group (own checkpoint), so adding them never
        # invalidates the features of the other datasets.
        groups = [wanted, *([{ALIGNED_POEMS: aligned}] if aligned else [])]
        built: list[Any] = []

        def embed_texts(items: list[str], model: str = model, built: list[Any] = built) -> Any:
            if ex.num_processes > 1:
                # A work folder next to the checkpoint: a failed launch leaves its finished
                # shards there, and the rerun of this model resumes from them.
                work = model_checkpoint("text", model, settings, items)
                return extract_text_group_accelerate(
                    model,
                    items,
                    work.with_name(f".{work.stem}.accelerate"),
                    num_processes=ex.num_processes,
                    pooling=ex.pooling,
                    batch_size=ex.batch_size,
                    max_tokens=ex.max_tokens,
                    device=ex.device,
                    show_progress=ctx.show_progress,
                )
            if not built:
                built.append(
                    TextFeatureExtractor(
                        model,
                        pooling=ex.pooling,
                        batch_size=ex.batch_size,
                        max_length=ex.max_tokens,
                        device=device,
                        progress=ctx.show_progress,
                    )
                )
            return built[0](items)[0]

        hits = []
        for group in groups:
            everything = [t for values in group.values() for t in values]
            path = model_checkpoint("text", model, settings, everything)
            layers, hit = _checkpointed_layers(path, lambda e=everything: embed_texts(e))
            hits.append(hit)
            start = 0
            for dataset, values in group.items():
                save_stack(
                    ctx.out_dir / "features" / f"{dataset}__{_slug(model)}.npz",
                    [layer[start : start + len(values)] for layer in layers],
                )
                start += len(values)
        built.clear()
        timings[model] = time.perf_counter() - started
        reused += [model] if all(hits) else []
    if len(images):
        from uaes_hf.extract.vision import load_image

        blobs = [bytes(b) for b in images["image"]]
        for model in ex.vision_models:
            started = time.perf_counter()

            def embed_images(model: str = model) -> Any:
                pil = [load_image({"bytes": b}) for b in blobs]
                extractor = VisionFeatureExtractor(
                    model,
                    pooling=ex.vision_pooling,
                    batch_size=ex.batch_size * 2,
                    device=device,
                    progress=ctx.show_progress,
                )
                return extractor(pil)[0]

            path = model_checkpoint("vision", model, {"pooling": ex.vision_pooling}, blobs)
            layers, hit = _checkpointed_layers(path, embed_images)
            save_stack(ctx.out_dir / "features" / f"images__{_slug(model)}.npz", layers)
            timings[model] = time.perf_counter() - started
            reused += [model] if hit else []
    if ex.perplexity_model:
        started = time.perf_counter()
        items = [f"{d}\0{t}" for d in TEXT_DATASETS for t in texts[d]]
        max_length = max(ex.max_tokens, 16)
        path = model_checkpoint(
            "perplexity", ex.perplexity_model, {"max_tokens": max_length}, items
        )
        if path.is_file():
            table = pd.read_parquet(path)
            reused.append(f"perplexity:{ex.perplexity_model}")
        else:
            scorer = PerplexityScorer(
                ex.perplexity_model,
                batch_size=ex.batch_size,
                max_length=max_length,
                device=device,
                progress=ctx.show_progress,
            )
            frames = []
            for dataset in TEXT_DATASETS:
                columns, _ = scorer(texts[dataset])
                part = perplexity_table(columns)
                part.insert(0, "dataset", dataset)
                part.insert(1, "row", np.arange(len(part)))
                frames.append(part)
            table = pd.concat(frames, ignore_index=True)
            tmp = path.with_name(f".{path.stem}.tmp.parquet")
            table.to_parquet(tmp, index=False)
            os.replace(tmp, path)
        table.to_parquet(ctx.out_dir / "perplexity.parquet", index=False)
        timings[f"perplexity:{ex.perplexity_model}"] = time.perf_counter() - started
    # Timings go to the manifest (the summary), not into the hashed outputs.
    if reused:
        _log(f"extract: reused finished features of {', '.join(reused)}")
    return {
        "seconds_per_model": {k: round(v, 1) for k, v in timings.items()},
        "reused_checkpoints": reused,
    }


# ---------------------------------------------------------------------------------------------
# align


def _stacks(extract_dir: Path, dataset: str, models: list[str]) -> dict[str, list[np.ndarray]]:
    return {m: load_stack(extract_dir, dataset, m) for m in models}


def run_align(ctx: StageContext) -> dict[str, Any]:
    """Every comparison's matched subsets and the model x model tables (text and cross-modal)."""
    import pandas as pd
    from tqdm.auto import tqdm

    from uaes_hf.experiments.clusters import semantic_clusters
    from uaes_hf.experiments.comparisons import build_subsets
    from uaes_hf.experiments.convergence import model_pairs
    from uaes_hf.experiments.crossmodal import crossmodal_rows

    cfg = ctx.config
    al = cfg.align
    ext = ctx.inputs["extract"]
    poems = pd.read_parquet(ctx.inputs["annotate"] / "poems.parquet")
    plain = pd.read_parquet(ctx.inputs["prepare"] / "plain_texts.parquet")
    text_models = list(cfg.extract.text_models)
    stacks = {d: _stacks(ext, d, text_models) for d in TEXT_DATASETS}
    cluster_poems = load_stack(ext, "poems", cfg.analyse.cluster_model)[-1]
    cluster_plain = load_stack(ext, "plain_texts", cfg.analyse.cluster_model)[-1]
    labels = semantic_clusters(cluster_poems, cfg.analyse.n_clusters, cfg.seed)
    np.save(ctx.out_dir / "cluster_labels.npy", labels)
    aligned_path = ctx.inputs["prepare"] / f"{ALIGNED_POEMS}.parquet"
    aligned, aligned_features = None, None
    if aligned_path.is_file():
        aligned = pd.read_parquet(aligned_path)
        stacks[ALIGNED_POEMS] = _stacks(ext, ALIGNED_POEMS, text_models)
        aligned_features = load_stack(ext, ALIGNED_POEMS, cfg.analyse.cluster_model)[-1]
    plan = build_subsets(
        poems,
        plain,
        cfg.analyse.comparisons,
        min_size=al.min_subset_size,
        seed=cfg.seed,
        plain_features=cluster_plain,
        poem_features=cluster_poems,
        cluster_labels=labels,
        aligned_poems=aligned,
        aligned_features=aligned_features,
    )
    settings = dict(
        k=al.k,
        layer_selection=al.layers,
        max_layers=al.max_layers_per_model,
        fixed_layers=al.fixed_layers,
        n_permutations=al.n_permutations,
        n_bootstrap=al.n_bootstrap,
        ci_level=al.ci_level,
        seed=cfg.seed,
    )
    images = pd.read_parquet(ctx.inputs["prepare"] / "image_text.parquet")
    vision = list(cfg.extract.vision_models) if len(images) > al.k + 1 else []
    n_cells = len(plan.subsets) * len(model_pairs(text_models)) + 2 * len(text_models) * len(vision)
    bar = tqdm(total=n_cells, desc="align (model pairs)", disable=not ctx.show_progress)
    rows: list[dict[str, Any]] = []
    for subset in plan.subsets:
        bar.set_postfix_str(subset.name)
        rows += _convergence(stacks[subset.dataset], subset, settings, bar)
    if vision:
        vision_stacks = _stacks(ext, "images", vision)
        for dataset, side in (("image_captions", "image_caption"), ("image_poems", "image_poem")):
            bar.set_postfix_str(f"crossmodal/{side}")
            text_stacks = _stacks(ext, dataset, text_models)
            vis_settings = {**settings}
            if al.layers == "fixed":  # vision models without a fixed layer use their last one
                vis_settings["fixed_layers"] = {**{v: -1 for v in vision}, **dict(al.fixed_layers)}
            rows += crossmodal_rows(
                text_stacks,
                vision_stacks,
                subset=f"crossmodal/{side}",
                progress=bar,
                **vis_settings,
            )
    bar.close()
    table = pd.DataFrame(rows)
    table.to_csv(ctx.out_dir / "convergence.csv", index=False)
    (ctx.out_dir / "subsets.json").write_text(
        json.dumps(
            {
                "subsets": [
                    {
                        "comparison": s.comparison,
                        "side": s.side,
                        "dataset": s.dataset,
                        "rows": s.indices.tolist(),
                    }
                    for s in plan.subsets
                ],
                "skipped": [vars(s) for s in plan.skipped],
                "notes": plan.notes,
            },
            indent=2,
            default=float,
        )
    )
    return {
        "n_rows": len(table),
        "n_subsets": len(plan.subsets),
        "skipped": [s.comparison for s in plan.skipped],
    }


def _convergence(
    stacks: dict[str, list[np.ndarray]], subset: Any, settings: dict[str, Any], bar: Any
) -> list[dict[str, Any]]:
    from uaes_hf.experiments.convergence import convergence_rows

    return convergence_rows(
        stacks,
        subset.indices,
        subset=subset.name,
        comparison=subset.comparison,
        side=subset.side,
        progress=bar,
        **settings,
    )


# ---------------------------------------------------------------------------------------------
# analyse


def run_analyse(ctx: StageContext) -> dict[str, Any]:
    """Differences and paired tests, per-sample slopes, clusters, capability, t-SNE, etc."""
    from uaes_hf.experiments.analysis import analyse

    return analyse(ctx)


# ---------------------------------------------------------------------------------------------
# report


def run_report(ctx: StageContext) -> dict[str, Any]:
    """Draw every figure and write the report folder from the analysed results."""
    from uaes_hf.experiments.report import publish_report

    index = publish_report(
        ctx.inputs["analyse"],
        ctx.out_dir,
        dpi=ctx.config.report.dpi,
        show_progress=ctx.show_progress,
    )
    return {"index": index.name}


# The config keys each stage's cache key covers (a dotted key is one value of a section).
# extract.num_processes is left out: how many processes compute the features does not
# change them, so switching to accelerate (or back) reuses a finished extract stage.
EXTRACT_KEYS = (
    *(f"extract.{f.name}" for f in dataclasses.fields(ExtractConfig) if f.name != "num_processes"),
    "analyse.cluster_model",
)
ALIGN_KEYS = (
    "align",
    "extract.text_models",
    "extract.vision_models",
    "analyse.comparisons",
    "analyse.cluster_model",
    "analyse.n_clusters",
)
ANALYSE_KEYS = (
    "align",
    "analyse",
    "extract.text_models",
    "extract.vision_models",
    "extract.perplexity_model",
    "report.title",
    "report.tsne",
    "report.wordclouds",
)


def default_stages() -> list[Stage]:
    """prepare -> annotate -> extract -> align -> analyse -> report, with their cache keys."""
    return [
        Stage("prepare", ("data",), (), run_prepare, _local_fingerprint),
        Stage("annotate", ("annotate",), ("prepare",), run_annotate),
        Stage("extract", EXTRACT_KEYS, ("prepare",), run_extract),
        Stage("align", ALIGN_KEYS, ("prepare", "annotate", "extract"), run_align),
        Stage("analyse", ANALYSE_KEYS, ("prepare", "annotate", "extract", "align"), run_analyse),
        Stage("report", ("report.dpi",), ("analyse",), run_report),
    ]


def default_work_dir() -> Path:
    """Where stage folders live: ``$UAES_HOME/runs``."""
    from uaes_hf.paths import cache_dir

    return cache_dir("runs")


def plan_lines(cfg: ExperimentConfig, work_dir: Path | None = None) -> list[str]:
    """What a run would do: models, sizes, and each stage with the config keys it hashes."""
    lines = [
        f"experiment {cfg.name!r} (seed {cfg.seed})",
        f"  data: poems={cfg.data.poems} (config {cfg.data.poems_config}, revision "
        f"{cfg.data.poems_revision}), plain texts={cfg.data.plain_texts} "
        f"(revision {cfg.data.plain_texts_revision}), image-text={cfg.data.image_text}",
        f"  sizes: {cfg.data.n_poems or 'all'} poems, {cfg.data.n_plain_texts or 'all'} plain "
        f"texts, {cfg.data.n_images or 'no'} images",
        f"  judge: {cfg.annotate.backend} ({cfg.annotate.model})",
        f"  text models ({len(cfg.extract.text_models)}): {', '.join(cfg.extract.text_models)}",
        f"  vision models ({len(cfg.extract.vision_models)}): "
        f"{', '.join(cfg.extract.vision_models) or 'none'}",
        f"  perplexity: {cfg.extract.perplexity_model}; device {cfg.extract.device}; "
        f"{cfg.extract.num_processes} extraction process(es)",
        f"  mutual kNN k={cfg.align.k}, layers={cfg.align.layers} "
        f"(<= {cfg.align.max_layers_per_model or 'all'} candidates/model), "
        f"{cfg.align.n_permutations} permutations, {cfg.align.n_bootstrap} bootstrap",
        f"  comparisons: {', '.join(cfg.analyse.comparisons)}",
        f"  per-sample layers: {cfg.analyse.per_sample_layers}; reference model: "
        f"{cfg.analyse.reference_model}",
        "  stages:",
    ]
    for stage in default_stages():
        lines.append(
            f"    {stage.name:<9} keys: {', '.join(stage.sections)}; after: "
            f"{', '.join(stage.depends_on) or '-'}"
        )
    if work_dir is not None:
        lines.append(f"  stage cache: {work_dir}")
    return lines


def record_stage_dirs(report_dir: Path, stage_dirs: dict[str, Path]) -> None:
    """Add ``"stage_dirs"`` (stage -> output folder) to a published report's summary.json.

    Only the published copy gets them: they are paths on this machine, so they stay out of
    the analyse stage's content (and its cache key). The Space reads them to find the run's
    poems, images and features (``uaes_hf.space.run_stage_dirs``).

    Example:
        >>> record_stage_dirs(Path("report"), {"extract": Path("/x")})  # doctest: +SKIP
    """
    path = Path(report_dir) / "results" / "summary.json"
    summary = json.loads(path.read_text("utf-8"))
    summary["stage_dirs"] = {name: str(Path(d).resolve()) for name, d in stage_dirs.items()}
    path.write_text(json.dumps(summary, indent=2, sort_keys=True), "utf-8")


def run_experiment(
    cfg: ExperimentConfig,
    out_dir: str | Path = "report",
    *,
    force: tuple[str, ...] | list[str] = (),
    work_dir: str | Path | None = None,
    show_progress: bool = True,
    stages: list[Stage] | None = None,
) -> tuple[Path, list[Any]]:
    """Run (or reuse) every stage and write the report folder ``out_dir``.

    Returns:
        ``(index.html path, stage results)``. The report's timings table is this run's.

    Example:
        >>> from uaes_hf.experiments.config import load_config  # doctest: +SKIP
        >>> index, results = run_experiment(load_config(), "report")  # doctest: +SKIP
    """
    import time

    from uaes_hf.experiments.pipeline import run_stages
    from uaes_hf.experiments.report import publish_report, stored_figures

    started = time.perf_counter()
    work = Path(work_dir) if work_dir is not None else default_work_dir()
    results = run_stages(
        stages or default_stages(), cfg, work, force=force, show_progress=show_progress
    )
    report_dir = results[-1].directory
    publish_started = time.perf_counter()
    timings = [r.as_row() for r in results]
    timings.append(
        {"stage": "publish", "cached": False, "seconds": 0.0, "compute_seconds": 0.0, "key": ""}
    )
    index = publish_report(
        report_dir,
        out_dir,
        timings=timings,
        figures=stored_figures(report_dir),
        figures_from=report_dir,
    )
    record_stage_dirs(Path(out_dir), {r.name: r.directory for r in results})
    timings[-1]["seconds"] = round(time.perf_counter() - publish_started, 3)
    timings.append(
        {
            "stage": "total",
            "cached": all(r.cached for r in results),
            "seconds": round(time.perf_counter() - started, 3),
            "compute_seconds": round(sum(r.compute_seconds for r in results), 3),
            "key": "",
        }
    )
    index = publish_report(
        Path(out_dir),
        out_dir,
        timings=timings,
        figures=stored_figures(Path(out_dir)),
        figures_from=Path(out_dir),
    )
    return index, results
