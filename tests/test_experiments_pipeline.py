"""Stage caching: a rerun computes nothing; a changed key reruns its stage and later ones."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest

from uaes_hf.experiments.config import load_config
from uaes_hf.experiments.pipeline import MANIFEST, Stage, hash_tree, run_stages


def counting_stages(calls: Counter, fail: set[str] | None = None) -> list[Stage]:
    """prepare -> annotate -> extract -> align -> analyse -> report; each writes a file
    derived from its config keys and inputs, and counts its calls."""

    def make(name: str, section: str):
        def run(ctx):
            calls[name] += 1
            if fail and name in fail:
                raise RuntimeError(f"{name} failed")
            upstream = "".join(
                (path / "out.txt").read_text() for _, path in sorted(ctx.inputs.items())
            )
            value = json.dumps(ctx.config.to_dict()[section.split(".")[0]], sort_keys=True)
            digest = hashlib.sha256(upstream.encode()).hexdigest()[:12]
            (ctx.out_dir / "out.txt").write_text(f"{name}:{digest}:{value}\n")
            return {"name": name}

        return run

    return [
        Stage("prepare", ("data",), (), make("prepare", "data")),
        Stage("annotate", ("annotate",), ("prepare",), make("annotate", "annotate")),
        Stage("extract", ("extract",), ("prepare",), make("extract", "extract")),
        Stage("align", ("align",), ("annotate", "extract"), make("align", "align")),
        Stage("analyse", ("analyse",), ("align",), make("analyse", "analyse")),
        Stage("report", ("report",), ("analyse",), make("report", "report")),
    ]


def run(cfg, work, calls, **kw):
    return run_stages(
        counting_stages(calls, kw.pop("fail", None)), cfg, work, show_progress=False, **kw
    )


def test_rerun_with_same_config_recomputes_nothing(tmp_path):
    cfg = load_config()
    calls: Counter = Counter()
    first = run(cfg, tmp_path, calls)
    assert all(
        calls[s] == 1 for s in ("prepare", "annotate", "extract", "align", "analyse", "report")
    )
    assert not any(r.cached for r in first)
    second = run(cfg, tmp_path, calls)
    assert sum(calls.values()) == 6  # no new call
    assert all(r.cached for r in second)
    assert [r.output_hash for r in first] == [r.output_hash for r in second]
    assert all(
        r.compute_seconds == pytest.approx(f.compute_seconds)
        for r, f in zip(second, first, strict=True)
    )


def test_changed_key_reruns_only_its_stage_and_later_ones(tmp_path):
    calls: Counter = Counter()
    run(load_config(), tmp_path, calls)
    calls.clear()
    results = run(load_config(overrides={"align": {"k": 5}}), tmp_path, calls)
    assert dict(calls) == {"align": 1, "analyse": 1, "report": 1}
    assert [r.cached for r in results] == [True, True, True, False, False, False]
    calls.clear()
    # annotate changes: extract does not depend on it and stays cached
    run(
        load_config(overrides={"align": {"k": 5}, "annotate": {"backend": "existing"}}),
        tmp_path,
        calls,
    )
    assert dict(calls) == {"annotate": 1, "align": 1, "analyse": 1, "report": 1}
    calls.clear()
    run(
        load_config(
            overrides={
                "report": {"dpi": 80},
                "align": {"k": 5},
                "annotate": {"backend": "existing"},
            }
        ),
        tmp_path,
        calls,
    )
    assert dict(calls) == {"report": 1}


def test_force_reruns_a_stage_and_identical_output_keeps_later_stages_cached(tmp_path):
    cfg = load_config()
    calls: Counter = Counter()
    run(cfg, tmp_path, calls)
    calls.clear()
    results = run(cfg, tmp_path, calls, force=["extract"])
    assert dict(calls) == {"extract": 1}  # same bytes out -> align and later are cached
    assert [r.cached for r in results] == [True, True, False, True, True, True]
    with pytest.raises(ValueError, match="unknown stage"):
        run(cfg, tmp_path, calls, force=["nope"])


def test_failed_stage_leaves_no_finished_folder_and_resumes(tmp_path):
    cfg = load_config()
    calls: Counter = Counter()
    with pytest.raises(RuntimeError, match="align failed"):
        run(cfg, tmp_path, calls, fail={"align"})
    assert not list((tmp_path / "align").glob(f"*/{MANIFEST}"))
    assert not [p for p in (tmp_path / "align").iterdir() if p.name.startswith(".")]
    calls.clear()
    run(cfg, tmp_path, calls)
    assert dict(calls) == {"align": 1, "analyse": 1, "report": 1}


def test_stage_order_is_checked(tmp_path):
    stages = counting_stages(Counter())
    with pytest.raises(ValueError, match="does not run before it"):
        run_stages(stages[::-1], load_config(), tmp_path, show_progress=False)


def test_hash_tree_sees_content_and_names(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    first = hash_tree(tmp_path)
    (tmp_path / MANIFEST).write_text("ignored")
    assert hash_tree(tmp_path) == first
    (tmp_path / "a.txt").write_text("y")
    assert hash_tree(tmp_path) != first
