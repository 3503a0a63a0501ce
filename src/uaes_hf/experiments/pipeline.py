"""Content-addressed stage orchestration: a rerun does only what changed.

A stage's cache key hashes its config sections, the package version, the fingerprint of the
code it runs (:func:`~uaes_hf.experiments.code_fingerprint.code_fingerprint` of the stage's
module: every ``uaes_hf`` module it imports, transitively), any extra input fingerprint and
the *output hashes* of the stages it reads. A stage whose key already has a finished folder
(``_manifest.json`` written last, atomically) is not run again; a stage that reruns but
produces byte-identical outputs leaves every later stage cached.

Concurrency: a stage is computed under an exclusive lock on its key (``flock``, released by
the kernel if the process dies), in a unique temp folder that is moved into place whole; a
folder already there is replaced by an atomic exchange, never deleted first. A second run
that waited for the lock finds the first run's result and reuses it. A cached folder is
reused only if every file still has the size its manifest recorded. A stage that returns
``{"incomplete": "why"}`` in its summary is published (later stages use it) but not cached:
the next run computes it again.

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
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uaes_hf.experiments.config import ExperimentConfig
from uaes_hf.experiments.layout import MANIFEST, RunLayout
from uaes_hf.features.atomic import (
    file_lock,
    remove_leftovers,
    replace_directory,
    unique_temp_dir,
)

# A stage's summary key: why its outputs are not final (e.g. judge calls that failed).
INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class StageContext:
    """What a stage function gets: its config, its (empty) output folder, its inputs."""

    name: str
    config: ExperimentConfig
    out_dir: Path
    inputs: Mapping[str, Path]
    show_progress: bool = True
    force: bool = False  # ``--force``: recompute everything, the stage's own checkpoints too


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
        code: the modules whose code (with everything they import from ``uaes_hf``) enters
            the key; default: the module of ``run`` when it is part of ``uaes_hf``.
    """

    name: str
    sections: tuple[str, ...]
    depends_on: tuple[str, ...]
    run: Callable[[StageContext], dict[str, Any]]
    fingerprint: Callable[[ExperimentConfig], str] | None = None
    revision: str = ""
    code: tuple[str, ...] = ()

    def code_modules(self) -> tuple[str, ...]:
        """The modules whose code fingerprint is part of this stage's key."""
        if self.code:
            return self.code
        module = getattr(self.run, "__module__", "") or ""
        return (module,) if module.startswith("uaes_hf.") else ()


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
    complete: bool = True  # False: published for this run, computed again by the next

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


def stage_code(stage: Stage) -> str:
    """The fingerprint of the code ``stage`` runs ("" for a stage outside ``uaes_hf``)."""
    from uaes_hf.experiments.code_fingerprint import code_fingerprint

    modules = stage.code_modules()
    return code_fingerprint(modules) if modules else ""


def stage_key(
    stage: Stage,
    config: ExperimentConfig,
    upstream_hashes: Mapping[str, str],
    version: str,
    code: str = "",
) -> str:
    """The content hash that names a stage's output folder (``code``: :func:`stage_code`)."""
    payload = {
        "stage": stage.name,
        "version": version,
        "config": config.section_hash(*stage.sections),
        "upstream": dict(sorted(upstream_hashes.items())),
        "fingerprint": stage.fingerprint(config) if stage.fingerprint else "",
    }
    if stage.revision:
        payload["revision"] = stage.revision
    if code:
        payload["code"] = code
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    path = RunLayout.manifest(directory)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None  # a damaged manifest means the stage is not finished
    return manifest if isinstance(manifest, dict) else None


def file_sizes(directory: Path, exclude: Iterable[str] = (MANIFEST,)) -> dict[str, int]:
    """Relative path -> size of every file under ``directory`` (recorded in the manifest)."""
    skip = set(exclude)
    return {
        path.relative_to(directory).as_posix(): path.stat().st_size
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.relative_to(directory).as_posix() not in skip
    }


def _changed_files(directory: Path, recorded: Mapping[str, int]) -> list[str]:
    """Recorded files that are missing or have another size now (cheap: one stat each)."""
    changed = []
    for rel, size in recorded.items():
        path = directory / rel
        try:
            if path.stat().st_size != size:
                changed.append(rel)
        except OSError:
            changed.append(rel)
    return changed


def _finished(
    stage: Stage, directory: Path, key: str, start: float, say_why: bool = False
) -> StageResult | None:
    """The finished, complete, undamaged result of ``key`` in ``directory``, if there is one
    (``say_why``: log why a finished folder is not reused)."""
    manifest = _read_manifest(directory)
    if manifest is None or manifest.get("key") != key or "output_hash" not in manifest:
        return None
    if not manifest.get("complete", True):
        if say_why:
            why = (manifest.get("summary") or {}).get(INCOMPLETE)
            _log(f"{stage.name}: its last run was incomplete ({why}); running it again")
        return None
    changed = _changed_files(directory, manifest.get("files") or {})
    if changed:
        if say_why:
            _log(
                f"warning: {stage.name}: {len(changed)} file(s) of {directory} are missing or "
                f"changed size since it finished ({', '.join(changed[:3])}); computing it again"
            )
        return None
    return StageResult(
        stage.name,
        key,
        directory,
        cached=True,
        seconds=time.perf_counter() - start,
        compute_seconds=float(manifest.get("compute_seconds", 0.0)),
        output_hash=manifest["output_hash"],
        summary=manifest.get("summary", {}),
    )


def _log(message: str) -> None:
    print(f"uaes: {message}", file=sys.stderr, flush=True)


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
        force: stage names to recompute even when cached, their own checkpoints included
            (:attr:`StageContext.force`); later stages rerun only if the recomputed outputs
            differ.
        show_progress: tqdm bar over the stages (stages show their own inner bars).
        version: code version in the keys (default: the package version).

    Returns:
        One :class:`StageResult` per stage, in order.
    """
    from tqdm.auto import tqdm

    if version is None:
        from uaes_hf import __version__ as version
    forced_names = _check_stages(stages, force)
    work_dir = Path(work_dir)
    results: dict[str, StageResult] = {}
    bar = tqdm(stages, desc="pipeline", unit="stage", disable=not show_progress, file=sys.stderr)
    for stage in bar:
        bar.set_postfix_str(stage.name)
        upstream = {dep: results[dep].output_hash for dep in stage.depends_on}
        key = stage_key(stage, config, upstream, version, stage_code(stage))
        directory = RunLayout.stage_dir(work_dir, stage.name, key)
        start = time.perf_counter()
        forced = stage.name in forced_names
        result = None if forced else _finished(stage, directory, key, start)
        if result is None:
            # One process computes a key at a time; the next finds its result.
            with file_lock(directory):
                result = None if forced else _finished(stage, directory, key, start, True)
                if result is None:
                    remove_leftovers(directory)  # temp folders of killed runs
                    result = _compute(stage, config, directory, key, results, show_progress, forced)
        result.seconds = time.perf_counter() - start
        results[stage.name] = result
    return [results[stage.name] for stage in stages]


def _compute(
    stage: Stage,
    config: ExperimentConfig,
    directory: Path,
    key: str,
    done: Mapping[str, StageResult],
    show_progress: bool,
    forced: bool = False,
) -> StageResult:
    """Run one stage into a unique temporary folder, then move it into place whole."""
    tmp = unique_temp_dir(directory)
    start = time.perf_counter()
    try:
        ctx = StageContext(
            name=stage.name,
            config=config,
            out_dir=tmp,
            inputs={dep: done[dep].directory for dep in stage.depends_on},
            show_progress=show_progress,
            force=forced,
        )
        summary = stage.run(ctx) or {}
        seconds = time.perf_counter() - start
        output_hash = hash_tree(tmp)
        incomplete = summary.get(INCOMPLETE)
        manifest = {
            "stage": stage.name,
            "key": key,
            "output_hash": output_hash,
            "compute_seconds": seconds,
            "summary": summary,
            "files": file_sizes(tmp),
            "complete": not incomplete,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        RunLayout.manifest(tmp).write_text(json.dumps(manifest, indent=2, default=str), "utf-8")
        replace_directory(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if incomplete:
        _log(f"warning: {stage.name} is incomplete ({incomplete}); the next run computes it again")
    return StageResult(
        stage.name,
        key,
        directory,
        False,
        seconds,
        seconds,
        output_hash,
        summary,
        complete=not incomplete,
    )
