"""Keys that cannot go stale: the code fingerprint of a stage is its module's import closure
inside uaes_hf, so editing one part of the package changes the keys of exactly the stages
(and checkpoints) whose code it is, in a real copy of the package run in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from uaes_hf.experiments.code_fingerprint import (
    code_files,
    code_fingerprint,
    import_closure,
    library_versions,
)

SRC = Path(__file__).resolve().parents[1] / "src"


def planted_package(root: Path) -> Path:
    """uaes_hf with: a lazy package ``lib`` (two modules), ``user`` importing one lazy name,
    ``other`` importing nothing, a data file next to ``lib``, and a nested package."""
    pkg = root / "uaes_hf"
    (pkg / "lib" / "templates").mkdir(parents=True)
    (pkg / "lib" / "inner").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "lib" / "__init__.py").write_text(
        "from uaes_hf._lazy import lazy_exports\n"
        "_LAZY = {'quick': 'uaes_hf.lib.fast', 'crawl': 'uaes_hf.lib.slow'}\n"
    )
    (pkg / "_lazy.py").write_text("def lazy_exports(p, t):\n    return None\n")
    (pkg / "lib" / "fast.py").write_text("def fast():\n    return 1\n")
    (pkg / "lib" / "slow.py").write_text("def slow():\n    from . import fast\n")
    (pkg / "lib" / "table.csv").write_text("a,b\n")
    (pkg / "lib" / "templates" / "card.md").write_text("# card\n")
    (pkg / "lib" / "inner" / "__init__.py").write_text("")
    (pkg / "lib" / "inner" / "data.json").write_text("{}")
    (pkg / "user.py").write_text("def run():\n    from uaes_hf.lib import quick\n")
    (pkg / "direct.py").write_text("from .lib import fast\n")
    (pkg / "other.py").write_text("import json\n")
    return pkg


def test_closure_follows_lazy_names_and_function_level_imports(tmp_path):
    pkg = planted_package(tmp_path)
    # ``from uaes_hf.lib import quick`` needs lib/__init__ and the module that defines quick,
    # not lib.slow (another lazy name of the same package)
    assert import_closure(["uaes_hf.user"], pkg) == {
        "uaes_hf.user",
        "uaes_hf.lib",
        "uaes_hf.lib.fast",
        "uaes_hf._lazy",
    }
    assert import_closure(["uaes_hf.lib.slow"], pkg) == {"uaes_hf.lib.slow", "uaes_hf.lib.fast"}
    # a module imported by name: that module (a parent __init__ counts only when used)
    assert import_closure(["uaes_hf.direct"], pkg) == {"uaes_hf.direct", "uaes_hf.lib.fast"}
    assert import_closure(["uaes_hf.other"], pkg) == {"uaes_hf.other"}
    with pytest.raises(ValueError, match=r"not modules of uaes_hf.*'uaes_hf.nope'"):
        import_closure(["uaes_hf.nope"], pkg)
    # data files of the folders of the closure, not of nested packages
    names = {p.relative_to(pkg).as_posix() for p in code_files(["uaes_hf.user"], pkg)}
    assert "lib/table.csv" in names and "lib/templates/card.md" in names
    assert "lib/inner/data.json" not in names and "lib/slow.py" not in names


def test_fingerprint_changes_with_the_code_it_covers_and_only_that(tmp_path):
    pkg = planted_package(tmp_path)
    before = {m: code_fingerprint([m], pkg) for m in ("uaes_hf.user", "uaes_hf.other")}
    (pkg / "lib" / "slow.py").write_text("def slow():\n    return 2\n")  # outside user's closure
    assert code_fingerprint(["uaes_hf.user"], pkg) == before["uaes_hf.user"]
    (pkg / "lib" / "fast.py").write_text("def fast():\n    return 2  # edited\n")
    assert code_fingerprint(["uaes_hf.user"], pkg) != before["uaes_hf.user"]
    (pkg / "lib" / "table.csv").write_text("a,b\n1,2\n")  # package data counts too
    edited = code_fingerprint(["uaes_hf.user"], pkg)
    assert edited != before["uaes_hf.user"]
    assert code_fingerprint(["uaes_hf.other"], pkg) == before["uaes_hf.other"]
    # the same content in another place gives the same fingerprint (relative paths only)
    copy = shutil.copytree(tmp_path / "uaes_hf", tmp_path / "copy" / "uaes_hf")
    assert code_fingerprint(["uaes_hf.user"], copy) == edited


def test_library_versions_never_import(monkeypatch):
    versions = library_versions(["numpy", "torch", "no-such-dist-uaes"])
    assert versions["no-such-dist-uaes"] == "absent"
    import numpy

    assert versions["numpy"] == numpy.__version__


KEYS_SCRIPT = """
import json
from uaes_hf.experiments.config import load_config
from uaes_hf.experiments.pipeline import stage_code, stage_key
from uaes_hf.experiments.stages import default_stages
from uaes_hf.experiments.stages.extract import model_checkpoint

cfg = load_config(overrides={"extract": {"device": "cpu"}})
keys = {}
for stage in default_stages():
    upstream = {dep: "0" * 64 for dep in stage.depends_on}  # fixed: only the code may differ
    keys[stage.name] = stage_key(stage, cfg, upstream, "v", stage_code(stage))
target = {"device_kind": "cpu", "compute_dtype": "float32"}
keys["checkpoint"] = str(model_checkpoint("text", "m", {"pooling": "mean"}, ["x"], target).path)
print(json.dumps(keys))
"""


def keys_of(package_parent: Path, home: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(package_parent), "UAES_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", KEYS_SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_editing_the_package_invalidates_exactly_what_it_changed(tmp_path):
    """A real copy of src/uaes_hf, imported by a subprocess: edit the report code, then the
    extraction code, and compare every stage key and the checkpoint key."""
    copy = tmp_path / "src"
    shutil.copytree(SRC / "uaes_hf", copy / "uaes_hf", ignore=shutil.ignore_patterns("*.pyc"))
    home = tmp_path / "home"
    first = keys_of(copy, home)  # each call is a new process: unchanged keys are stable

    stage = copy / "uaes_hf" / "experiments" / "stages" / "report.py"
    stage.write_text(stage.read_text() + "\n# an edit of the report stage\n")
    after_stage = keys_of(copy, home)
    assert {name for name in first if first[name] != after_stage[name]} == {"report"}

    # the HTML renderer: the report stage, and the analyse stage, which imports the report
    # package (experiments/report/__init__.py imports html.py), but no earlier stage
    html = copy / "uaes_hf" / "experiments" / "report" / "html.py"
    html.write_text(html.read_text() + "\n# an edit of the report code\n")
    after_report = keys_of(copy, home)
    changed = {name for name in first if after_stage[name] != after_report[name]}
    assert changed == {"report", "analyse"}

    text = copy / "uaes_hf" / "extract" / "text.py"
    text.write_text(text.read_text() + "\n# an edit of the extraction code\n")
    after_text = keys_of(copy, home)
    changed = {name for name in first if after_report[name] != after_text[name]}
    assert changed == {"extract", "checkpoint"}

    judge = copy / "uaes_hf" / "annotate" / "judge.py"
    judge.write_text(judge.read_text() + "\n# an edit of the judge\n")
    after_judge = keys_of(copy, home)
    assert {name for name in first if after_text[name] != after_judge[name]} == {"annotate"}
