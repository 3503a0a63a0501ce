"""Issue 13 on the pipeline side: `--force` recomputes checkpoints too, a damaged checkpoint
or stage file is recomputed, an annotate stage with failed judge calls is retried by the next
run (those items only), and runs on one store at once take turns instead of deleting each
other's results (real subprocesses)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openai_server import FakeOpenAIServer, FaultSchedule, sha256_text

from uaes_hf.experiments.config import load_config
from uaes_hf.experiments.pipeline import INCOMPLETE, MANIFEST, Stage, run_stages
from uaes_hf.experiments.stages import default_stages
from uaes_hf.features.store import FEATURES_FILE, FeatureStore

MODEL = "all-minilm-l6-v2"  # packaged, the fastest real text model
POEMS = ["the moon is a rose of light", "stone and river, wind at night", "a quiet sea"]
PLAIN = ["a table made of wood", "the engine uses wire and metal"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("UAES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "home"


def prepared_stage(folder: Path) -> Stage:
    """A prepare stage that copies a fixed folder of poems and plain texts (no images)."""
    folder.mkdir(exist_ok=True)
    pd.DataFrame({"id": ["p0", "p1", "p2"], "text": POEMS}).to_parquet(folder / "poems.parquet")
    pd.DataFrame({"id": ["t0", "t1"], "text": PLAIN}).to_parquet(folder / "plain_texts.parquet")
    pd.DataFrame().to_parquet(folder / "image_text.parquet")

    def prepare(ctx):
        for path in folder.iterdir():
            shutil.copy(path, ctx.out_dir / path.name)
        return {}

    return Stage("prepare", ("data",), (), prepare)


def extract_config():
    return load_config(
        overrides={
            "extract": {
                "text_models": [MODEL],
                "vision_models": [],
                "perplexity_model": None,
                "max_tokens": 32,
                "device": "cpu",
            },
            "analyse": {"cluster_model": MODEL, "reference_model": None},
        }
    )


def extract_pipeline(tmp_path: Path) -> list[Stage]:
    (extract,) = [s for s in default_stages() if s.name == "extract"]
    return [prepared_stage(tmp_path / "prepared"), extract]


def poem_features(result) -> np.ndarray:
    return FeatureStore(result.directory / "features").load("poems", MODEL).features


@pytest.mark.slow
def test_force_extract_recomputes_the_checkpoints_too(tmp_path, home, monkeypatch):
    """A monkeypatched pooling (code the key cannot see) plus `--force extract` gives the new
    features; without --force the cached stage is reused."""
    import uaes_hf.extract.text as text

    cfg, stages = extract_config(), extract_pipeline(tmp_path)
    first = run_stages(stages, cfg, tmp_path / "work", show_progress=False)
    before = poem_features(first[1])
    original = text.masked_mean
    monkeypatch.setattr(text, "masked_mean", lambda hidden, mask: 2 * original(hidden, mask))
    cached = run_stages(stages, cfg, tmp_path / "work", show_progress=False)
    assert cached[1].cached and np.array_equal(poem_features(cached[1]), before)
    forced = run_stages(stages, cfg, tmp_path / "work", show_progress=False, force=["extract"])
    assert not forced[1].cached and forced[1].summary["reused_checkpoints"] == []
    after = poem_features(forced[1])
    np.testing.assert_allclose(after, 2 * before, rtol=1e-6)  # the new pooling, every layer
    # the checkpoint was replaced too: another stage key (the batch size is not part of the
    # checkpoint's) reuses the new checkpoint
    other = extract_config().to_dict()
    other["extract"]["batch_size"] = 4
    second = run_stages(
        stages, load_config(overrides=other), tmp_path / "work", show_progress=False
    )
    assert not second[1].cached
    assert second[1].summary["reused_checkpoints"] == [MODEL]
    np.testing.assert_array_equal(poem_features(second[1]), after)


@pytest.mark.slow
def test_a_truncated_checkpoint_is_recomputed_with_a_warning(tmp_path, home, capsys):
    cfg, stages = extract_config(), extract_pipeline(tmp_path)
    fresh = poem_features(run_stages(stages, cfg, tmp_path / "work", show_progress=False)[1])
    (checkpoint,) = FeatureStore(home / "runs" / "model_features").entries()
    path = Path(checkpoint["path"]) / FEATURES_FILE
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(size // 2)
    capsys.readouterr()
    again = run_stages(stages, cfg, tmp_path / "work2", show_progress=False)  # a new folder
    err = capsys.readouterr().err
    assert f"is damaged (the file has {size // 2} bytes, {size} were written)" in err
    assert again[1].summary["reused_checkpoints"] == []
    np.testing.assert_array_equal(poem_features(again[1]), fresh)
    assert path.stat().st_size == size
    third = run_stages(stages, cfg, tmp_path / "work3", show_progress=False)
    assert third[1].summary["reused_checkpoints"] == [MODEL]  # whole again: reused, quietly
    assert "damaged" not in capsys.readouterr().err


def test_a_damaged_stage_file_or_an_incomplete_stage_is_computed_again(tmp_path, capsys):
    calls: Counter = Counter()
    state = {"incomplete": True}

    def make(ctx):
        calls["make"] += 1
        (ctx.out_dir / "table.csv").write_text("a,b\n1,2\n")
        return {INCOMPLETE: "2 items failed"} if state["incomplete"] else {}

    def use(ctx):
        calls["use"] += 1
        (ctx.out_dir / "out.txt").write_text((ctx.inputs["make"] / "table.csv").read_text())
        return {}

    stages = [Stage("make", ("data",), (), make), Stage("use", ("align",), ("make",), use)]
    first = run_stages(stages, load_config(), tmp_path, show_progress=False)
    assert [r.complete for r in first] == [False, True] and dict(calls) == {"make": 1, "use": 1}
    assert "make is incomplete (2 items failed)" in capsys.readouterr().err
    state["incomplete"] = False
    second = run_stages(stages, load_config(), tmp_path, show_progress=False)
    assert [r.cached for r in second] == [False, True]  # same bytes: `use` stays cached
    assert calls["make"] == 2 and "its last run was incomplete" in capsys.readouterr().err
    third = run_stages(stages, load_config(), tmp_path, show_progress=False)
    assert all(r.cached for r in third) and calls["make"] == 2
    # a finished stage's file loses bytes: computed again, with a warning
    (third[0].directory / "table.csv").write_text("a,b\n")
    fourth = run_stages(stages, load_config(), tmp_path, show_progress=False)
    assert [r.cached for r in fourth] == [False, True] and calls["make"] == 3
    assert "table.csv" in capsys.readouterr().err
    assert json.loads((fourth[0].directory / MANIFEST).read_text())["files"] == {"table.csv": 8}


def test_annotate_with_failed_judge_calls_is_retried_by_the_next_run(tmp_path, monkeypatch):
    """A faulty local server fails some of 12 poems (out-of-range scores, every attempt): the
    stage is published but not cached, and the next run asks for those only."""
    monkeypatch.setenv("UAES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    texts = [f"poem number {i}: the moon over the water, line {i}" for i in range(12)]
    folder = tmp_path / "prepared"
    folder.mkdir()
    pd.DataFrame({"id": [f"p{i}" for i in range(12)], "text": texts}).to_parquet(
        folder / "poems.parquet"
    )

    def prepare(ctx):
        shutil.copy(folder / "poems.parquet", ctx.out_dir / "poems.parquet")
        return {}

    (annotate,) = [s for s in default_stages() if s.name == "annotate"]
    stages = [Stage("prepare", ("data",), (), prepare), annotate]
    schedule = FaultSchedule(seed=3, always_fail_rate=0.3, always_fail_kind="score_7")
    with FakeOpenAIServer(schedule) as server:
        failing = {sha256_text(t) for t in texts if schedule.always_fails(sha256_text(t))}
        n_fail = len(failing)
        assert 0 < n_fail < 12  # the seeded schedule fails some poems, not all
        cfg = load_config(
            overrides={
                "annotate": {
                    "backend": "openai",
                    "model": "judge-test",
                    "base_url": server.base_url,
                    "max_concurrency": 2,
                }
            }
        )

        def scores(result) -> pd.Series:
            return pd.read_parquet(result.directory / "poems.parquet")["aesthetic_score"]

        first = run_stages(stages, cfg, tmp_path / "work", show_progress=False)
        n_first = len(server.chat_requests())
        assert not first[1].complete and scores(first[1]).isna().sum() == n_fail
        assert f"{n_fail} poem(s) without a rating" in first[1].summary[INCOMPLETE]

        server.schedule = FaultSchedule()  # the endpoint recovers
        second = run_stages(stages, cfg, tmp_path / "work", show_progress=False)
        retried = server.chat_requests()[n_first:]
        assert {r["item_key"] for r in retried} == failing and len(retried) == n_fail
        assert second[1].complete and not second[1].cached
        assert scores(second[1]).notna().all()

        third = run_stages(stages, cfg, tmp_path / "work", show_progress=False)
        assert third[1].cached and len(server.chat_requests()) == n_first + n_fail


PIPELINE_SCRIPT = """
import json, os, sys, time
from pathlib import Path
from uaes_hf.experiments.config import load_config
from uaes_hf.experiments.pipeline import Stage, run_stages

work, log, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
make_sleep = float(os.environ.get("MAKE_SLEEP", "0"))
read_sleep = float(os.environ.get("READ_SLEEP", "0"))

def note(what):
    with log.open("a") as handle:
        handle.write(f"{what} {os.getpid()}\\n")

def make(ctx):
    note("make")
    time.sleep(make_sleep)
    for i in range(20):
        (ctx.out_dir / f"part{i:02d}.txt").write_text(f"part {i}\\n" * 2000)
    note("made")
    return {}

def read(ctx):
    note("read")
    parts = []
    for i in range(20):
        parts.append((ctx.inputs["make"] / f"part{i:02d}.txt").read_text())
        time.sleep(read_sleep)
    (ctx.out_dir / "all.txt").write_text("".join(parts))
    note("read-done")
    return {}

stages = [Stage("make", ("data",), (), make), Stage("read", ("align",), ("make",), read)]
force = ["make"] if mode == "force" else []
results = run_stages(stages, load_config(), work, force=force, show_progress=False)
text = (results[1].directory / "all.txt").read_text()
print(json.dumps({"hashes": [r.output_hash for r in results], "cached": [r.cached for r in results],
                  "ok": text == "".join(f"part {i}\\n" * 2000 for i in range(20))}))
"""


def start_pipeline(tmp_path: Path, mode: str, **env: str) -> subprocess.Popen:
    script = tmp_path / "pipeline_script.py"
    script.write_text(PIPELINE_SCRIPT)
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "work"), str(tmp_path / "log.txt"), mode],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_two_processes_on_one_work_dir_compute_each_stage_once(tmp_path):
    """Started together, the second waits for the first's lock and reuses its result."""
    first = start_pipeline(tmp_path, "normal", MAKE_SLEEP="1.5")
    second = start_pipeline(tmp_path, "normal", MAKE_SLEEP="1.5")
    a, b = finish(first), finish(second)
    log = (tmp_path / "log.txt").read_text().split()
    assert log.count("make") == 1 and log.count("read") == 1
    assert a["ok"] and b["ok"] and a["hashes"] == b["hashes"]
    # each stage computed by one of them, reused by the other (either may win either lock)
    assert all(sorted(pair) == [False, True] for pair in zip(a["cached"], b["cached"], strict=True))


def test_a_forced_stage_is_swapped_in_while_another_run_reads_it(tmp_path):
    """Run A reads the `make` folder slowly; run B recomputes it (--force) meanwhile and
    swaps it in. A never finds a file missing and reads the right content."""
    reader = start_pipeline(tmp_path, "normal", READ_SLEEP="0.4")  # 8 s of reading
    log_path = tmp_path / "log.txt"
    deadline = time.monotonic() + 60
    while not log_path.exists() or "read" not in log_path.read_text().split():
        assert time.monotonic() < deadline, "run A never reached its read stage"
        time.sleep(0.05)
    forcer = start_pipeline(tmp_path, "force")
    b = finish(forcer)
    a = finish(reader)
    events = [line.split() for line in log_path.read_text().splitlines()]
    reader_pid = events[0][1]  # A made the folder first
    order = [(what, "A" if pid == reader_pid else "B") for what, pid in events]
    # B recomputed `make` (and swapped it in) while A was still reading it
    assert order.index(("made", "B")) < order.index(("read-done", "A"))
    assert [what for what, _ in order].count("read") == 1  # B waited for A's read, reused it
    assert a["ok"] and b["ok"] and a["hashes"] == b["hashes"]
    assert b["cached"] == [False, True]


TINY_RUN = {
    "name": "tiny-concurrent",
    "data": {"n_poems": 30, "n_plain_texts": 30, "n_images": 0},
    "annotate": {"backend": "existing"},
    "extract": {
        "text_models": [MODEL, "all-mpnet-base-v2"],
        "vision_models": [],
        "perplexity_model": None,
        "max_tokens": 32,
    },
    "align": {
        "k": 3,
        "n_permutations": 10,
        "n_bootstrap": 10,
        "min_subset_size": 6,
        "max_layers_per_model": 2,
    },
    "analyse": {
        "cluster_model": MODEL,
        "reference_model": None,
        "comparisons": ["poems_vs_plain"],
        "n_sign_flips": 100,
    },
    "report": {"tsne": False, "wordclouds": False, "dpi": 40},
}


@pytest.mark.slow
def test_two_uaes_runs_at_once_on_one_home_both_finish_with_the_right_results(tmp_path):
    """Two real `uaes run` processes on one fresh $UAES_HOME at once, against a reference run
    in another home: both finish, every stage is computed by one of them only, and both
    reports hold the reference's numbers."""
    import yaml

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_RUN))
    shared_models = Path(os.environ.get("UAES_HOME") or Path.home() / ".cache" / "uaes_hf")
    (shared_models / "models").mkdir(parents=True, exist_ok=True)

    def uaes_run(home: Path, out: Path) -> subprocess.Popen:
        home.mkdir(exist_ok=True)
        if not (home / "models").exists():  # packaged models: unpacked once, shared
            (home / "models").symlink_to(shared_models / "models")
        env = {**os.environ, "UAES_HOME": str(home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "uaes_hf.cli", "run", "--config", str(config)]
        return subprocess.Popen(
            [*command, "--out", str(out), "--no-progress"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    reference = uaes_run(tmp_path / "home_ref", tmp_path / "ref")
    out, _ = reference.communicate(timeout=900)
    assert reference.returncode == 0, out[-3000:]
    first = uaes_run(tmp_path / "home", tmp_path / "a")
    second = uaes_run(tmp_path / "home", tmp_path / "b")
    outs = []
    for process in (first, second):
        out, _ = process.communicate(timeout=900)
        assert process.returncode == 0, out[-3000:]
        outs.append(out)
    for stage in ("prepare", "annotate", "extract", "align", "analyse", "report"):
        states = [
            line.split()[1]
            for out in outs
            for line in out.splitlines()
            if line.split()[:1] == [stage]
        ]
        assert sorted(states) == ["cached", "ran"], (stage, states)
    for name in ("a", "b"):
        diff = subprocess.run(
            [
                sys.executable,
                "-m",
                "uaes_hf.cli",
                "report",
                "diff",
                str(tmp_path / "ref"),
                str(tmp_path / name),
                "--tolerance",
                "1e-9",
            ],
            capture_output=True,
            text=True,
        )
        assert diff.returncode == 0, diff.stdout + diff.stderr
    leftovers = [p for p in (tmp_path / "home" / "runs").rglob(".*") if p.is_dir()]
    assert leftovers == []  # no temp folder left behind
