"""The wheel works without the checkout: build it, install it into a fresh virtual
environment, and ``evaluate.load`` a metric module copied out of the repository.

The fresh environment (``python -m venv``, no system site-packages) reuses the
already-installed pinned dependencies through a ``.pth`` line that points at a *filtered
view* of this environment's site-packages: a folder of symlinks to every installed
package except uaes-hf itself (its dist-info, its editable-install ``.pth`` and finder are
left out, and ``.pth`` files in a path entry are never executed anyway). The wheel is then
installed into the fresh environment with pip, and a subprocess whose working directory is
a temporary folder and whose ``sys.path`` holds no part of the checkout runs the module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
from pathlib import Path
checkout, venv, module = sys.argv[1:4]
import numpy as np, evaluate, uaes_hf
from uaes_hf.data.repo import card_template
leaks = [p for p in sys.path if p and (p.startswith(checkout) or p.startswith("/work/main/src"))]
metric = evaluate.load(module)
x = np.random.default_rng(0).normal(size=(80, 6))
print(json.dumps({
    "uaes_hf": uaes_hf.__file__,
    "version": uaes_hf.__version__,
    "leaks": leaks,
    "template": card_template("poems.md").is_file(),
    "result": metric.compute(predictions=x, references=2 * x, k=5, permutations=19),
}))
"""


def _filtered_site_packages(target: Path) -> Path:
    """Symlinks to every entry of this environment's site-packages except uaes-hf's."""
    site = Path(sysconfig.get_paths()["purelib"])
    target.mkdir()
    for entry in site.iterdir():
        name = entry.name
        if (
            name.startswith(("uaes_hf", "uaes-hf", "__editable__"))
            or name.endswith(".pth")
            or name == "__pycache__"
        ):
            continue
        (target / name).symlink_to(entry)
    return target


@pytest.mark.slow
def test_wheel_in_a_fresh_environment_loads_a_module_copied_out_of_the_repo(tmp_path):
    started = time.perf_counter()
    # 1. build the wheel from a copy of the sources (no build/ or egg-info in the checkout)
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(wheels), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("uaes_hf-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for data in (
        "uaes_hf/data/card_templates/poems.md",
        "uaes_hf/data/card_templates/image_poem_text.md",
        "uaes_hf/experiments/default.yaml",
        "uaes_hf/py.typed",
    ):
        assert data in names, f"{data} is missing from the wheel"

    # 2. a fresh environment that sees the pinned dependencies but not uaes-hf
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    deps = _filtered_site_packages(tmp_path / "deps")
    (site / "_pinned_dependencies.pth").write_text(f"{deps}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), PIP_NO_INPUT="1")
    before = subprocess.run(
        [str(python), "-c", "import uaes_hf"], capture_output=True, text=True, env=env
    )
    assert before.returncode != 0  # the fresh environment really lacks the package

    # 3. install the wheel with pip, into the fresh environment only
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]

    # 4. a module folder taken out of the repo, run from a folder outside the repo
    module = tmp_path / "outside" / "mutual_knn"
    shutil.copytree(
        ROOT / "metrics" / "mutual_knn", module, ignore=shutil.ignore_patterns("__pycache__")
    )
    done = subprocess.run(
        [str(python), "-c", SCRIPT, str(ROOT), str(venv), str(module)],
        cwd=tmp_path / "outside", capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["uaes_hf"].startswith(str(site)), report["uaes_hf"]
    assert report["leaks"] == []
    assert report["template"] is True
    assert report["result"]["mutual_knn"] == 1.0
    assert report["result"]["chance_level"] == pytest.approx(5 / 79)
    assert report["result"]["p_value"] == 0.05
    print(f"wheel build + fresh environment + evaluate.load: {time.perf_counter() - started:.1f} s")
