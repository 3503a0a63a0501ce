"""Every evaluate module's documented examples run and give what they say (as evaluate's own
test suite runs each module's examples), from the repository root, offline."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(p.parent for p in (ROOT / "metrics").glob("*/*.py") if p.stem == p.parent.name)


def test_every_module_folder_is_found() -> None:
    names = {folder.name for folder in MODULES}
    assert {"mutual_knn", "cka", "svcca", "hpir"} <= names and len(names) >= 9


@pytest.mark.parametrize("folder", MODULES, ids=lambda p: p.name)
def test_examples_run(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import evaluate

    monkeypatch.chdir(ROOT)
    described = evaluate.load(str(folder)).inputs_description
    test = doctest.DocTestParser().get_doctest(
        described, {"evaluate": evaluate}, folder.name, str(folder), 0
    )
    assert test.examples, f"{folder.name} documents no example"
    assert not any(ex.options.get(doctest.SKIP) for ex in test.examples), "no SKIP"
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(optionflags=flags)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
