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
    # no temp folder is left (the key's empty lock file stays: locks are never deleted)
    left = [p.name for p in (tmp_path / "align").iterdir() if p.name.startswith(".")]
    assert all(name.endswith(".lock") for name in left) and len(left) == 1
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


class _JudgeHandler:
    """Factory of an OpenAI-compatible handler: a poem containing ``SCORE=n`` gets score n."""

    @staticmethod
    def make(counter: Counter):
        import http.server
        import re

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _send(self, payload):
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._send({"object": "list", "data": []})

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                counter["chat"] += 1
                prompt = request["messages"][-1]["content"]
                score = int(re.search(r"SCORE=(\d)", prompt).group(1))
                answer = json.dumps({"thinking": f"rated {score} by the test", "score": score})
                self._send(
                    {
                        "id": "c1",
                        "object": "chat.completion",
                        "created": 0,
                        "model": request["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": answer},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59},
                    }
                )

        return Handler


def test_annotate_stage_rates_unscored_poems_through_the_judge_and_its_store(tmp_path, monkeypatch):
    """The real annotate stage against a real OpenAI-compatible HTTP server on 127.0.0.1."""
    import http.server
    import threading

    import numpy as np
    import pandas as pd

    from uaes_hf.experiments.pipeline import StageContext
    from uaes_hf.experiments.stages.annotate import run_annotate

    counter: Counter = Counter()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _JudgeHandler.make(counter))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("UAES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    try:
        prepare = tmp_path / "prepare"
        prepare.mkdir()
        wanted = [3, 5, 1, 4, 2, 5]
        poems = pd.DataFrame(
            {
                "id": [f"p{i}" for i in range(6)],
                "text": [f"line one of poem {i}\nSCORE={s}" for i, s in enumerate(wanted)],
                "aesthetic_score": [2.0, np.nan, np.nan, 4.0, np.nan, np.nan],
            }
        )
        poems.to_parquet(prepare / "poems.parquet")
        cfg = load_config(
            overrides={
                "annotate": {
                    "backend": "openai",
                    "model": "judge-test",
                    "base_url": f"http://127.0.0.1:{server.server_address[1]}/v1",
                    "max_concurrency": 2,
                }
            }
        )

        def annotate(out):
            out.mkdir()
            ctx = StageContext("annotate", cfg, out, {"prepare": prepare}, show_progress=False)
            return run_annotate(ctx), pd.read_parquet(out / "poems.parquet")

        summary, rated = annotate(tmp_path / "a1")
        # existing scores are kept (keep_existing), the four unscored poems get the judge's
        assert rated["aesthetic_score"].tolist() == [2, 5, 1, 4, 2, 5]
        assert counter["chat"] == 4
        assert rated["annotator"].tolist()[1] == "openai:judge-test"
        assert rated["aesthetic_rationale"].tolist()[2] == "rated 1 by the test"
        assert pd.isna(rated["annotator"].iloc[0])
        assert summary["done_now"] == 4 and summary["score_counts"] == {
            "1.0": 1,
            "2.0": 2,
            "4.0": 1,
            "5.0": 2,
        }
        # a second run (another stage folder) reads the durable store: no new call
        summary, again = annotate(tmp_path / "a2")
        assert counter["chat"] == 4 and summary["cached"] == 4
        pd.testing.assert_frame_equal(rated, again)
    finally:
        server.shutdown()


@pytest.mark.slow
def test_extract_stage_checkpoints_each_model_and_writes_identical_bytes(tmp_path, monkeypatch):
    """The real extract stage with a real packaged model: a second run (a new stage folder,
    e.g. after a crash or a config change elsewhere) reuses the model checkpoint and writes
    byte-identical feature files, so the stages after it stay cached."""
    import pandas as pd

    from uaes_hf.experiments.layout import RunLayout
    from uaes_hf.experiments.pipeline import StageContext
    from uaes_hf.experiments.run_features import run_layers
    from uaes_hf.experiments.stages.extract import model_checkpoint, run_extract

    monkeypatch.setenv("UAES_HOME", str(tmp_path / "home"))
    prepare = tmp_path / "prepare"
    prepare.mkdir()
    poems = ["the moon is a rose of light", "stone and river, wind at night", "a quiet sea"]
    plain = ["a table made of wood", "the engine uses wire and metal"]
    pd.DataFrame({"id": ["p0", "p1", "p2"], "text": poems}).to_parquet(prepare / "poems.parquet")
    pd.DataFrame({"id": ["t0", "t1"], "text": plain}).to_parquet(prepare / "plain_texts.parquet")
    pd.DataFrame().to_parquet(prepare / "image_text.parquet")
    cfg = load_config(
        overrides={
            "extract": {
                "text_models": ["all-minilm-l6-v2"],
                "vision_models": [],
                "perplexity_model": None,
                "max_tokens": 32,
            },
            "analyse": {"cluster_model": "all-minilm-l6-v2", "reference_model": None},
        }
    )

    def extract(name):
        out = tmp_path / name
        out.mkdir()
        ctx = StageContext("extract", cfg, out, {"prepare": prepare}, show_progress=False)
        return run_extract(ctx), out

    first, out1 = extract("e1")
    assert first["reused_checkpoints"] == []
    layout = RunLayout({"prepare": prepare, "extract": out1})
    poem_table = pd.read_parquet(layout.prepared_poems)
    layers = run_layers(layout, "poems", "all-minilm-l6-v2", poem_table)
    assert len(layers) == 7 and layers[-1].shape == (3, 384)  # embeddings + 6 blocks
    plain_table = pd.read_parquet(layout.plain_texts)
    assert run_layers(layout, "plain_texts", "all-minilm-l6-v2", plain_table)[-1].shape == (2, 384)
    checkpoint = model_checkpoint(
        "text", "all-minilm-l6-v2", {"pooling": "mean", "max_tokens": 32}, poems + plain
    )
    assert checkpoint.is_complete()  # the checkpoint is a store entry
    second, out2 = extract("e2")
    assert second["reused_checkpoints"] == ["all-minilm-l6-v2"]
    files = sorted(p.relative_to(out1) for p in (out1 / "features").rglob("*") if p.is_file())
    assert len(files) == 4  # two entries: features.safetensors + meta.json each
    for name in files:
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes()
    # other texts are another checkpoint
    assert model_checkpoint("text", "all-minilm-l6-v2", {}, poems).path != checkpoint.path


def test_local_data_fingerprint_is_stable_across_processes(tmp_path):
    """A local data folder's fingerprint must not change between runs (str hash() is salted
    per process), or the prepare stage, and all after it, would never be cached."""
    import os
    import subprocess
    import sys

    (tmp_path / "poems").mkdir()
    (tmp_path / "poems" / "a.txt").write_text("a poem")
    code = (
        "from uaes_hf.experiments.config import load_config\n"
        "from uaes_hf.experiments.stages.prepare import local_fingerprint\n"
        f"print(local_fingerprint(load_config(overrides={{'data': {{'poems': {str(tmp_path / 'poems')!r}}}}})))"
    )
    outs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        outs.add(out.stdout.strip())
    assert len(outs) == 1 and len(outs.pop()) == 64
