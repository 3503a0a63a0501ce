"""The eight evaluate metric modules (``metrics/<name>/``), their Space files and
``uaes publish metric`` (dry run, and a push to a real local HTTP server speaking the Hub's
upload API)."""

from __future__ import annotations

import base64
import configparser
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from alignment_references import REFERENCES, related_pair

import uaes_hf
from uaes_hf.alignment import METRICS

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = {"svcca": {"cca_dim": 3}}

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="module")
def modules():
    import evaluate

    return {name: evaluate.load(str(ROOT / "metrics" / name)) for name in METRICS}


@pytest.mark.parametrize("name", METRICS)
def test_each_module_matches_the_brute_force_reference(modules, name):
    a, b = related_pair(20)
    a, b = a.astype(np.float32), b.astype(np.float32)  # the modules store float32 rows
    k = 4
    result = modules[name].compute(predictions=a, references=b, k=k, **OPTIONS.get(name, {}))
    assert set(result) == {name, "chance_level"}
    assert result[name] == pytest.approx(REFERENCES[name][0](a, b, k), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", METRICS)
def test_each_module_names_bad_input(modules, name):
    a, b = related_pair(21)
    with pytest.raises(ValueError, match="k must be an integer >= 1, got '10'"):
        modules[name].compute(predictions=a, references=b, k="10")
    bad = a.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="predictions contains 1 NaN"):
        modules[name].compute(predictions=bad, references=b, k=4)
    with pytest.raises(ValueError, match=r"predictions \(45\) and references \(30\)"):
        modules[name].compute(predictions=a, references=b[:30], k=4)


def test_calibration_options_and_combine(modules):
    import evaluate

    rng = np.random.default_rng(22)
    a = rng.normal(size=(120, 6))
    related = modules["cycle_knn"].compute(
        predictions=a, references=3 * a, k=5, permutations=49, bootstrap=50, per_sample=True
    )
    assert related["p_value"] == 1 / 50 and related["calibrated_score"] > 0.5
    assert related["ci_low"] <= related["cycle_knn"] <= related["ci_high"]
    assert len(related["per_sample"]) == 120
    unrelated = modules["cka"].compute(
        predictions=a, references=rng.normal(size=(120, 6)), permutations=99,
        calibration="order-statistic",
    )  # fmt: skip
    assert 0.0 <= unrelated["calibrated_score"] <= 1.0
    assert unrelated["null_mean"] == pytest.approx(unrelated["chance_level"], abs=0.03)
    both = evaluate.combine([str(ROOT / "metrics" / "mutual_knn"), str(ROOT / "metrics" / "cka")])
    combined = both.compute(predictions=a, references=3 * a, k=5, kernel="rbf")
    assert combined["mutual_knn"] == 1.0 and combined["cka"] == pytest.approx(1.0)


@pytest.mark.parametrize("name", METRICS)
def test_space_files_are_complete_and_pinned(name):
    folder = ROOT / "metrics" / name
    for required in (f"{name}.py", "README.md", "app.py", "requirements.txt"):
        assert (folder / required).is_file(), required
    pins = (folder / "requirements.txt").read_text().split()
    assert f"uaes-hf=={uaes_hf.__version__}" in pins
    card = (folder / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert f"gradio=={meta['sdk_version']}" in config["options"]["install_requires"].split()
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    for section in ("Range, chance level", "Cost", "Why one module per metric", "outlier clamp"):
        assert section in card, section


# ---------------------------------------------------------------- uaes publish metric


def run_publish(*argv, env=None, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "uaes_hf.cli", "publish", "metric", *map(str, argv)],
        cwd=cwd,
        env=env or os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_dry_run_writes_the_exact_file_set(tmp_path):
    out = tmp_path / "space"
    done = run_publish("--repo", "my-org/mutual_knn", "--dry-run", out)
    assert done.returncode == 0, done.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["README.md", "app.py", "mutual_knn.py", "requirements.txt"]  # no tests
    for name in written:
        assert (out / name).read_bytes() == (ROOT / "metrics" / "mutual_knn" / name).read_bytes()
    assert "4 files" in done.stdout


def test_publish_refuses_a_module_pinned_to_another_version(tmp_path):
    module = tmp_path / "cka"
    shutil.copytree(ROOT / "metrics" / "cka", module)
    (module / "requirements.txt").write_text("uaes-hf==0.0.1\n")
    done = run_publish("--repo", "org/cka", "--module", module, "--dry-run", tmp_path / "out")
    assert done.returncode == 2
    assert f"must pin uaes-hf=={uaes_hf.__version__}" in done.stderr
    assert "Traceback" not in done.stderr
    missing = run_publish(
        "--repo", "org/cka", "--module", tmp_path / "nowhere", "--dry-run", tmp_path / "o"
    )
    assert missing.returncode == 2 and "no such metric module folder" in missing.stderr
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    no_token = run_publish("--repo", "org/cka", env=env)
    assert no_token.returncode == 2 and "set HF_TOKEN" in no_token.stderr


class FakeHub(BaseHTTPRequestHandler):
    """The three Hub API calls an upload makes, answered on 127.0.0.1; requests logged."""

    requests: list = []

    def _reply(self, payload):
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.requests.append((self.path, self.headers.get("Authorization"), body))
        base = f"http://127.0.0.1:{self.server.server_port}"
        if self.path == "/api/repos/create":
            return self._reply({"url": f"{base}/spaces/org/cknna", "name": "org/cknna"})
        if self.path == "/api/validate-yaml":
            return self._reply({"errors": [], "warnings": []})
        if "/preupload/" in self.path:
            files = json.loads(body)["files"]
            return self._reply(
                {
                    "files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                        for f in files
                    ]
                }
            )
        if "/commit/" in self.path:
            return self._reply(
                {"commitUrl": f"{base}/spaces/org/cknna/commit/1", "commitOid": "1" * 40}
            )
        self.send_error(404)

    def do_GET(self):
        self.send_error(404)

    def log_message(self, *args):
        pass


def test_push_uploads_exactly_the_dry_run_files_and_never_prints_the_token(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = "hf_test_token_do_not_print_81234"
    env = {
        **os.environ,
        "HF_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
        "HF_TOKEN": token,
        "HF_HUB_OFFLINE": "0",
        "HF_HOME": str(tmp_path / "hf_home"),
    }
    try:
        done = run_publish("--repo", "org/cknna", env=env)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    assert token not in done.stdout + done.stderr
    paths = [path for path, _, _ in FakeHub.requests]
    assert "/api/repos/create" in paths
    assert all(auth == f"Bearer {token}" for _, auth, _ in FakeHub.requests)
    commit = next(body for path, _, body in FakeHub.requests if "/commit/" in path)
    lines = [json.loads(line) for line in commit.decode().splitlines() if line.strip()]
    uploaded = {
        entry["value"]["path"]: base64.b64decode(entry["value"]["content"])
        for entry in lines
        if entry["key"] == "file"
    }
    run_publish("--repo", "org/cknna", "--dry-run", tmp_path / "dry")
    expected = {p.name: p.read_bytes() for p in (tmp_path / "dry").iterdir()}
    assert uploaded == expected
    create = json.loads(
        next(body for path, _, body in FakeHub.requests if path == "/api/repos/create")
    )
    assert create["type"] == "space" and create["sdk"] == "gradio"


def test_the_space_app_refuses_work_above_its_budget(tmp_path):
    from uaes_hf.hub.metric_app import MAX_WORK, build_metric_demo, compute_from_files

    rng = np.random.default_rng(23)
    np.save(tmp_path / "a.npy", rng.normal(size=(400, 5)))
    np.save(tmp_path / "b.npy", rng.normal(size=(400, 5)))
    module = ROOT / "metrics" / "lcs_knn"
    summary, raw = compute_from_files(
        module, str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), 100, 2000
    )
    assert f"{MAX_WORK:,}" in summary and raw == "{}"
    summary, raw = compute_from_files(
        module, str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), 5, 0
    )
    assert summary.startswith("**LCS kNN** = ") and json.loads(raw)["lcs_knn"] >= 0
    assert build_metric_demo(module) is not None
