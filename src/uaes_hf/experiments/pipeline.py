"""Content-addressed stage orchestration: a rerun does only what changed.

A stage's cache key hashes its config sections, the package version, any extra input
fingerprint and the *output hashes* of the stages it reads. A stage whose key already has a
finished folder (``_manifest.json`` written last, atomically) is not run again; a stage that
reruns but produces byte-identical outputs leaves every later stage cached.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from uaes_hf.experiments.config import load_config
    >>> def prepare(ctx):
    ...     (ctx.out_dir / "items.txt").write_text("a poem")
    ...     return {"n": 1}
    >>> stages, work = [Stage("prepare", ("data",), (), prepare)], Path(tempfile.mkdtemp())
    >>> first = run_stages(stages, load_config(), work, show_progress=False)
    >>> again = run_stages(stages, load_config(), work, show_progress=False)
    >>> first[0].cached, again[0].cached, again[0].summary
    (False, True, {'n': 1})
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uaes_hf.experiments.config import ExperimentConfig
from uaes_hf.experiments.layout import MANIFEST, RunLayout


@dataclass(frozen=True)
class StageContext:
    """What a stage function gets: its config, its (empty) output folder, its inputs."""

    name: str
    config: ExperimentConfig
    out_dir: Path
    inputs: Mapping[str, Path]
    show_progress: bool = True


@dataclass(frozen=True)
class Stage:
    """One pipeline step.

    Attributes:
        name: stage name (``prepare`` ...).
        sections: config sections whose values enter the cache key.
        depends_on: earlier stages whose output folders this stage reads.
        run: ``run(ctx) -> summary`` writes files into ``ctx.out_dir`` and returns a small
            JSON-serialisable summary.
        fingerprint: optional ``fingerprint(config) -> str`` of inputs outside the config
            (e.g. a local data folder's file sizes and mtimes).
        revision: the format of the stage's outputs; bumping it gives the stage a new key
            (empty: not part of the key, so existing keys stay valid).
    """

    name: str
    sections: tuple[str, ...]
    depends_on: tuple[str, ...]
    run: Callable[[StageContext], dict[str, Any]]
    fingerprint: Callable[[ExperimentConfig], str] | None = None
    revision: str = ""


@dataclass
class StageResult:
    """How one stage went in this run."""

    name: str
    key: str
    directory: Path
    cached: bool
    seconds: float  # wall time in this run (near 0 when cached)
    compute_seconds: float  # wall time of the run that produced the outputs
    output_hash: str
    summary: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        """A row of the timings table."""
        return {
            "stage": self.name,
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
            "compute_seconds": round(self.compute_seconds, 3),
            "key": self.key[:16],
        }


def hash_tree(directory: Path, exclude: Iterable[str] = (MANIFEST,)) -> str:
    """sha256 over the relative paths and contents of every file under ``directory``."""
    skip = set(exclude)
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if rel in skip:
            continue
        digest.update(rel.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def stage_key(
    stage: Stage, config: ExperimentConfig, upstream_hashes: Mapping[str, str], version: str
) -> str:
    """The content hash that names a stage's output folder."""
    payload = {
        "stage": stage.name,
        "version": version,
        "config": config.section_hash(*stage.sections),
        "upstream": dict(sorted(upstream_hashes.items())),
        "fingerprint": stage.fingerprint(config) if stage.fingerprint else "",
    }
    if stage.revision:
        payload["revision"] = stage.revision
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    path = RunLayout.manifest(directory)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        return None  # a damaged manifest means the stage is not finished


def _check_stages(stages: list[Stage], force: Iterable[str]) -> set[str]:
    names = [stage.name for stage in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be unique, got {names}")
    seen: set[str] = set()
    for stage in stages:
        for dep in stage.depends_on:
            if dep not in seen:
                raise ValueError(
                    f"stage {stage.name!r} depends on {dep!r}, which does not run before it"
                )
        seen.add(stage.name)
    forced = set(force)
    unknown = forced - seen
    if unknown:
        raise ValueError(f"--force names unknown stage(s) {sorted(unknown)}; stages are {names}")
    return forced


def run_stages(
    stages: list[Stage],
    config: ExperimentConfig,
    work_dir: str | Path,
    *,
    force: Iterable[str] = (),
    show_progress: bool = True,
    version: str | None = None,
) -> list[StageResult]:
    """Run ``stages`` in order, reusing every stage whose content key is already finished.

    Args:
        stages: in dependency order.
        config: the experiment config.
        work_dir: root of the stage folders (:meth:`RunLayout.stage_dir`).
        force: stage names to recompute even when cached (later stages rerun only if the
            recomputed outputs differ).
        show_progress: tqdm bar over the stages (stages show their own inner bars).
        version: code version in the keys (default: the package version).

    Returns:
        One :class:`StageResult` per stage, in order.
    """
    from tqdm.auto import tqdm

    if version is None:
        from uaes_hf import __version__ as version
    forced = _check_stages(stages, force)
    work_dir = Path(work_dir)
    results: dict[str, StageResult] = {}
    bar = tqdm(stages, desc="pipeline", unit="stage", disable=not show_progress, file=sys.stderr)
    for stage in bar:
        bar.set_postfix_str(stage.name)
        upstream = {dep: results[dep].output_hash for dep in stage.depends_on}
        key = stage_key(stage, config, upstream, version)
        directory = RunLayout.stage_dir(work_dir, stage.name, key)
        start = time.perf_counter()
        manifest = None if stage.name in forced else _read_manifest(directory)
        if manifest is not None and manifest.get("key") == key:
            results[stage.name] = StageResult(
                stage.name,
                key,
                directory,
                cached=True,
                seconds=time.perf_counter() - start,
                compute_seconds=float(manifest.get("compute_seconds", 0.0)),
                output_hash=manifest["output_hash"],
                summary=manifest.get("summary", {}),
            )
            continue
        results[stage.name] = _compute(stage, config, directory, key, results, show_progress)
        results[stage.name].seconds = time.perf_counter() - start
    return [results[stage.name] for stage in stages]


def _compute(
    stage: Stage,
    config: ExperimentConfig,
    directory: Path,
    key: str,
    done: Mapping[str, StageResult],
    show_progress: bool,
) -> StageResult:
    """Run one stage into a temporary folder, then rename it into place."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    start = time.perf_counter()
    try:
        ctx = StageContext(
            name=stage.name,
            config=config,
            out_dir=tmp,
            inputs={dep: done[dep].directory for dep in stage.depends_on},
            show_progress=show_progress,
        )
        summary = stage.run(ctx) or {}
        seconds = time.perf_counter() - start
        output_hash = hash_tree(tmp)
        manifest = {
            "stage": stage.name,
            "key": key,
            "output_hash": output_hash,
            "compute_seconds": seconds,
            "summary": summary,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        RunLayout.manifest(tmp).write_text(json.dumps(manifest, indent=2, default=str), "utf-8")
        if directory.exists():  # an unfinished folder from an interrupted run
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return StageResult(stage.name, key, directory, False, seconds, seconds, output_hash, summary)
