"""The run layout owns every file name of a run; `uaes report diff` finds any difference
between two runs' results (and ignores timings and paths)."""

from __future__ import annotations

import ast
import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from uaes_hf.cli import main as uaes_main
from uaes_hf.experiments.layout import (
    ReportLayout,
    RunLayout,
    latest_results,
    record_stage_dirs,
    stage_dirs_of,
)
from uaes_hf.experiments.report import diff_results, write_results

SRC = Path(__file__).resolve().parents[1] / "src" / "uaes_hf"
RUN_FILE_NAMES = (
    "poems.parquet",
    "plain_texts.parquet",
    "image_text.parquet",
    "poems_aligned.parquet",
    "perplexity.parquet",
    "convergence.csv",
    "subsets.json",
    "cluster_labels.npy",
    "summary.json",
    "figures.json",
    "timings.csv",
    "index.html",
    "_manifest.json",
    "space_run.json",
    "model_features",
)


def _path_strings(tree: ast.AST) -> list[str]:
    """String constants that can name a file: whole string literals and the literal parts
    of f-strings (messages and help texts that mention a name inside a sentence are fine)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            found += [
                part.value.lstrip("/.")
                for part in node.values
                if isinstance(part, ast.Constant) and isinstance(part.value, str)
            ]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append(node.value)
    return found


def test_only_the_layout_spells_the_file_names_of_a_run():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "layout.py":  # each study's run layout: experiments/, retrieval/
            continue
        for text in _path_strings(ast.parse(path.read_text())):
            offenders += [
                f"{path.relative_to(SRC)}: {text}" for name in RUN_FILE_NAMES if text == name
            ]
    assert offenders == []


def test_run_layout_names_each_stage_output_and_refuses_unknown_stages(tmp_path):
    layout = RunLayout({"prepare": tmp_path / "p", "extract": tmp_path / "e"})
    assert layout.poems == tmp_path / "p" / "poems.parquet"  # no annotate stage: prepared
    assert layout.feature_store == tmp_path / "e" / "features"
    with pytest.raises(ValueError, match="align stage folder is unknown"):
        _ = layout.convergence
    (tmp_path / "a").mkdir()
    annotated = RunLayout({"prepare": tmp_path / "p", "annotate": tmp_path / "a"})
    assert annotated.poems == tmp_path / "p" / "poems.parquet"  # not written yet
    annotated.annotated_poems.write_text("x")
    assert annotated.poems == tmp_path / "a" / "poems.parquet"
    assert RunLayout.stage_dir(tmp_path, "align", "ab" * 20) == tmp_path / "align" / ("ab" * 8)


def _report(root: Path, *, created: str = "x", stage: Path | None = None) -> ReportLayout:
    report = ReportLayout(root)
    write_results(
        report.results_dir,
        {"convergence": pd.DataFrame({"model": ["a", "b"], "score": [0.5, 0.25]})},
        {"k": 10, "headline": [{"p": 0.125}], "created": created},
    )
    if stage is not None:
        record_stage_dirs(root, {"extract": stage})
    return report


def test_latest_results_prefers_the_local_report_then_the_newest_run(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    assert latest_results(cwd, home) is None
    runs = []
    for key in ("old", "new"):
        folder = home / "runs" / "report" / key
        _report(folder)
        RunLayout.manifest(folder).write_text("{}")
        runs.append(folder)
        time.sleep(0.01)
    os.utime(RunLayout.manifest(runs[0]), (1, 1))  # the old one is older
    unfinished = home / "runs" / "report" / "unfinished"
    _report(unfinished)  # no manifest: not finished
    assert latest_results(cwd, home) == runs[1]
    _report(cwd / "report")
    assert latest_results(cwd, home) == cwd / "report"


def test_stage_dirs_are_recorded_and_found(tmp_path):
    stage = tmp_path / "runs" / "extract" / "k"
    stage.mkdir(parents=True)
    report = _report(tmp_path / "report", stage=stage)
    assert stage_dirs_of(report.root) == {"extract": stage.resolve()}
    stage.rmdir()
    with pytest.raises(FileNotFoundError, match="are unknown"):
        stage_dirs_of(report.root)


def test_diff_catches_a_tiny_numeric_change_and_a_changed_key(tmp_path):
    old = _report(tmp_path / "old", created="monday", stage=tmp_path)
    new = _report(tmp_path / "new", created="tuesday", stage=tmp_path / "old")
    new.results.timings.write_text("stage,seconds\ntotal,99\n")  # timings are ignored
    assert diff_results(old.root, new.root) == []  # creation time and stage folders too

    table = new.results.table("convergence")
    table.write_text(table.read_text().replace("0.25", "0.250000001"))  # + 1e-9
    found = diff_results(old.root, new.root)
    assert [(d.file, d.where) for d in found] == [("convergence.csv", "row 2, column score")]
    assert diff_results(old.root, new.root, tolerance=1e-6) == []
    summary = json.loads(new.summary.read_text())
    summary["headline"][0]["p_value"] = summary["headline"][0].pop("p")  # a renamed key
    new.summary.write_text(json.dumps(summary))
    where = {(d.file, d.where) for d in diff_results(old.root, new.root, tolerance=1e-6)}
    assert where == {
        ("summary.json", "key headline[0].p"),
        ("summary.json", "key headline[0].p_value"),
    }


def test_uaes_report_diff_exit_codes(tmp_path, capsys):
    old = _report(tmp_path / "old")
    same = _report(tmp_path / "same")
    assert uaes_main(["report", "diff", str(old.root), str(same.root)]) == 0
    assert "no difference above 1e-12" in capsys.readouterr().out
    (same.results_dir / "extra.csv").write_text("a\n1\n")
    assert uaes_main(["report", "diff", str(old.root), str(same.results_dir)]) == 1
    out = capsys.readouterr().out
    assert "extra.csv: file: missing != present" in out and "1 difference(s)" in out
    assert uaes_main(["report", "diff", str(old.root), str(tmp_path / "nothing")]) == 2
    assert "is not a uaes report" in capsys.readouterr().err
