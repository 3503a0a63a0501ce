"""The Space's Retrieval tab: where it finds a run, and its hint when there is none (the tab
with a real run is exercised in tests/test_retrieval_pipeline.py, which builds one)."""

from __future__ import annotations

from pathlib import Path

from uaes_hf.space.tabs.retrieval import HINT, retrieval_run_dir


def test_a_run_is_found_from_the_environment_or_the_default_folder(tmp_path: Path) -> None:
    assert retrieval_run_dir(cwd=tmp_path, environ={}) is None
    default = tmp_path / "retrieval_report"
    default.mkdir()
    assert retrieval_run_dir(cwd=tmp_path, environ={}) is None  # no summary.json: no run
    (default / "summary.json").write_text("{}")
    assert retrieval_run_dir(cwd=tmp_path, environ={}) == default
    named = tmp_path / "elsewhere"
    named.mkdir()
    (named / "summary.json").write_text("{}")
    assert retrieval_run_dir(cwd=tmp_path, environ={"UAES_RETRIEVAL_DIR": str(named)}) == named


def test_without_a_run_the_tab_says_how_to_make_one(tmp_path: Path, monkeypatch) -> None:
    import gradio as gr

    from uaes_hf.space.app import build_demo
    from uaes_hf.space.tabs import DEFAULT_TABS

    monkeypatch.delenv("UAES_RETRIEVAL_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    tabs = [tab for tab in DEFAULT_TABS if tab.id == "retrieval"]
    demo = build_demo(tabs=tabs, cwd=tmp_path, home=tmp_path / "home")
    texts = [b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown)]
    assert HINT in texts
    assert not getattr(demo, "uaes_allowed_paths", set())
