"""`uaes retrieval run` end to end on small real parts: a synthetic imagefolder, a tiny
RANDOM-WEIGHT CLIP loaded through from_pretrained (mechanics only), rephrasing and the
row judge through a local fake OpenAI-compatible server (the Hub-CLIP + VLM config path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from retrieval_helpers import RowJudgeServer, tiny_dual_encoder_dir, write_imagefolder

from uaes_hf.retrieval.config import load_config
from uaes_hf.retrieval.searcher import RunSearcher, load_vote_tasks

QUERIES = [
    "a red dog",
    "a blue boat",
    "a happy cat",
    "an old house",
    "a bright star",
    "a small bird",
    "a green tree",
    "a big train",
    "a dark moon",
    "a new car",
]
PAIR_KEYS = {
    "win_rate",
    "similar_rate",
    "win_or_similar_rate",
    "position_consistency",
    "ci_low",
    "ci_high",
    "judge",
}


def _config(tmp_path: Path, base_url: str) -> Path:
    (tmp_path / "queries.txt").write_text("\n".join(QUERIES) + "\n")
    config = {
        "corpus": {"sources": [f"imagefolder:{write_imagefolder(tmp_path / 'images', 60)}"]},
        "encoder": {"kind": "hf", "model": str(tiny_dual_encoder_dir(tmp_path / "clip"))},
        "lit": {"held_out": 10},
        "queries": {"file": str(tmp_path / "queries.txt"), "held_out_fraction": 0.5},
        "rephrase": {"backend": "openai", "model": "fake-llm", "base_url": base_url},
        "preference": {"top_k": 12, "u": 2, "v": 2, "stride": 2},
        "finetune": {
            "steps": 6,
            "checkpoint_every": 3,
            "pairs_per_step": 16,
            "captions_per_step": 8,
        },
        "judge": {"backend": "vlm", "model": "fake-vlm", "base_url": base_url},
        "eval": {"k": 3, "n_bootstrap": 100, "examples": 2},
        "store": str(tmp_path / "store.sqlite"),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_cli_run_writes_the_report_and_reuses_its_store(tmp_path) -> None:
    with RowJudgeServer("brighter") as server:
        # The same fake server rephrases: its responder sees no image rows there.
        server.server.responder = _rephrase_or_judge(server)
        config = _config(tmp_path, server.base_url)
        env = {
            **os.environ,
            "OPENAI_API_KEY": "test-key",
            "UAES_HOME": str(tmp_path / "home"),
            "PYTHONPATH": os.pathsep.join(sys.path),
            "OMP_NUM_THREADS": "1",
        }
        cmd = [
            sys.executable,
            "-m",
            "uaes_hf.cli",
            "retrieval",
            "run",
            "--config",
            str(config),
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]
        first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert first.returncode == 0, first.stderr[-3000:]
        n_calls = len(server.calls)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stderr[-3000:]
        assert len(server.calls) == n_calls  # every answer came from the durable store
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_queries"] >= 2 and summary["n_train_queries"] >= 2
    assert summary["n_queries"] + summary["n_train_queries"] == len(QUERIES)
    assert summary["systems"] == ["original", "rephrased", "finetuned", "finetuned+rephrased"]
    for comparison in summary["comparisons"].values():
        assert set(comparison) >= PAIR_KEYS and comparison["judge"] == "vlm"
        assert comparison["ci_low"] <= comparison["win_rate"] <= comparison["ci_high"]
    rephrased = {r["query"]: r["rephrased"] for r in summary["rephrasings"]}
    assert rephrased["a red dog"] == "a beautiful red dog in soft light"
    html = (tmp_path / "out" / "index.html").read_text()
    assert html.count("<figcaption>") == 4 and "figures/tradeoff.png" in html
    assert all(
        (tmp_path / "out" / "figures" / f).is_file()
        for f in ("tradeoff.png", "win_rates.png", "training.png", "examples.png")
    )
    assert len(load_vote_tasks(tmp_path / "out")) == summary["n_queries"]
    searcher = RunSearcher(tmp_path / "out")
    assert len(searcher.search("a red dog", "finetuned", 4)) == 4
    _check_app(tmp_path / "out", tmp_path / "votes.jsonl", summary)
    _check_space_tab(tmp_path / "out", tmp_path)


def _check_app(run_dir: Path, votes: Path, summary: dict) -> None:
    """`uaes retrieval app`'s Blocks on a real server: search, then vote on a run's task."""
    from gradio_client import Client
    from retrieval_helpers import free_port

    from uaes_hf.retrieval.tabs import build_run_app
    from uaes_hf.retrieval.votes import VoteLog

    demo, allowed = build_run_app(run_dir, votes)
    demo.queue().launch(
        server_name="127.0.0.1",
        server_port=free_port(),
        quiet=True,
        prevent_thread_lock=True,
        allowed_paths=allowed,
    )
    try:
        client = Client(demo.local_url, verbose=False)
        gallery, _ = client.predict("a red dog", "original", 3, api_name="/retrieval_search")
        assert len(gallery) == 3
        query, row1, row2 = client.predict(1, api_name="/vote_load")
        assert len(row1) == len(row2) == summary["k"]
        client.predict(1, "aesthetics", "Row 2", "tester", api_name="/vote_submit")
    finally:
        demo.close()
    assert len(VoteLog(votes).read()) == 1


def _check_space_tab(run_dir: Path, cwd: Path) -> None:
    """The Space's Retrieval tab mounts the same tabs for the run named by the environment."""
    import os

    from gradio_client import Client
    from retrieval_helpers import free_port

    from uaes_hf.retrieval.votes import VoteLog
    from uaes_hf.space.app import build_demo, launch_demo
    from uaes_hf.space.tabs import DEFAULT_TABS

    tabs = [tab for tab in DEFAULT_TABS if tab.id == "retrieval"]
    os.environ["UAES_RETRIEVAL_DIR"] = str(run_dir)
    try:
        demo = build_demo(tabs=tabs, cwd=cwd, home=cwd / "home")
    finally:
        del os.environ["UAES_RETRIEVAL_DIR"]
    launch_demo(demo, server_name="127.0.0.1", server_port=free_port(), quiet=True,
                prevent_thread_lock=True)  # fmt: skip
    try:
        client = Client(demo.local_url, verbose=False)
        gallery, _ = client.predict("a red dog", "finetuned", 2, api_name="/retrieval_search")
        assert len(gallery) == 2  # the corpus images are served (allowed paths)
        client.predict(2, "accuracy", "Row 1", "space-tester", api_name="/vote_submit")
    finally:
        demo.close()
    assert [v["annotator"] for v in VoteLog(run_dir / "votes.jsonl").read()] == ["space-tester"]


def _rephrase_or_judge(server: RowJudgeServer):
    judge = server._respond

    def respond(request):
        user = [m for m in request.body["messages"] if m["role"] == "user"][-1]["content"]
        if isinstance(user, str):  # a rephrasing request
            query = user.removeprefix("Query: ")
            return f'Rephrased query: "{query.replace("a ", "a beautiful ", 1)} in soft light"'
        return judge(request)

    return respond


def test_bad_config_keys_and_values_are_value_errors(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("judge:\n  backend: gpt\n")
    with pytest.raises(ValueError, match="'judge.backend' must be one of"):
        load_config(path)
    path.write_text("encoder:\n  kind: hf\n")
    with pytest.raises(ValueError, match="encoder.model must name"):
        load_config(path)
    path.write_text("lit:\n  epochs: 0\n")
    with pytest.raises(ValueError, match="lit.epochs must be a positive integer"):
        load_config(path)


def test_the_packaged_hub_example_is_a_valid_config(tmp_path) -> None:
    from uaes_hf.retrieval.config import hub_example_text

    path = tmp_path / "hub.yaml"
    path.write_text(hub_example_text())
    cfg = load_config(path)
    assert (cfg.encoder.kind, cfg.judge.backend, cfg.rephrase.backend) == ("hf", "vlm", "openai")
    assert cfg.encoder.model == "openai/clip-vit-base-patch32"
