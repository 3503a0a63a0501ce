"""The demo finds the main job's results by itself: ``python spaces/demo/app.py`` started (a real
subprocess) where ``uaes run`` wrote ``report/`` shows them with no environment variable,
and a Space started elsewhere finds the newest finished run under ``$UAES_HOME``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import space_helpers as helpers
from gradio_client import Client

REPO = Path(__file__).resolve().parents[1]
SETTINGS = (
    "UAES_RESULTS_DIR",
    "UAES_POEMS",
    "UAES_POEMS_REVISION",
    "UAES_IMAGES",
    "UAES_FEATURES",
    "UAES_FEATURES_DATASET",
    "UAES_SPACE_JUDGE",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)


def wait_for(url: str, process: subprocess.Popen, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the demo exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the demo did not answer at {url} within {timeout_s} s")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> helpers.SpaceTestData:
    return helpers.build_space_data(tmp_path_factory.mktemp("space_demo"))


def test_demo_script_shows_the_report_in_its_working_directory(data, tmp_path):
    workdir = data.results_dir.parent  # holds report/, as after `make run`
    port = helpers.free_port()
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS}
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]),
        UAES_HOME=str(tmp_path / "empty-home"),
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
    )
    log = (tmp_path / "demo.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(REPO / "spaces" / "demo" / "app.py")],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for(url, process)
        client = Client(url, verbose=False)
        status, subset, _, _ = client.predict(api_name="/convergence_options")
        assert f"Results from `{data.results_dir}`" in status, status
        assert subset["value"] == "poems"
        assert "about 6 minutes of compute (measured" in status
        poems, model_a, _ = client.predict(api_name="/neighbour_options")
        assert len(poems["choices"]) == helpers.N_POEMS and model_a["value"] == "model-a"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_space_elsewhere_finds_the_newest_finished_run_under_uaes_home(data, tmp_path):
    from uaes_hf.experiments.layout import RunLayout

    home = tmp_path / "home"
    old, new = home / "runs" / "report" / "old", home / "runs" / "report" / "new"
    for folder in (old, new):
        shutil.copytree(data.results_dir, folder)
        RunLayout.manifest(folder).write_text("{}")
        time.sleep(0.05)  # distinct manifest times
    unfinished = home / "runs" / "report" / "unfinished"  # no manifest: never chosen
    shutil.copytree(data.results_dir, unfinished)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    demo = helpers.load_app_module().build_demo(cwd=elsewhere, home=home)
    try:
        client = Client(helpers.launch(demo), verbose=False)
        status, _, _, _ = client.predict(api_name="/convergence_options")
        assert f"Results from `{new}`" in status, status
    finally:
        demo.close()
