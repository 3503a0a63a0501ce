"""Every package the setup installs by name has a license row in model_cards/licenses.md."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "model_cards" / "licenses.md"


def _pinned_python_packages() -> dict[str, str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    blocks = [
        cfg["options"]["install_requires"],
        *(cfg["options.extras_require"][name] for name in cfg["options.extras_require"]),
    ]
    no_deps = re.search(
        r"ASSET_PACKAGES_NO_DEPS := (.*?)\n#", (ROOT / "Makefile").read_text(), re.S
    )
    assert no_deps, "Makefile lost its ASSET_PACKAGES_NO_DEPS list"
    blocks.append("\n".join(no_deps.group(1).replace("\\", " ").split()))
    pins = {}
    for block in blocks:
        for line in block.split("\n"):
            if line.strip():
                name, version = line.strip().split("==")
                pins[name] = version
    return pins


def _card_rows() -> dict[str, list[str]]:
    rows = {}
    for line in CARD.read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_every_pinned_package_has_its_version_and_a_license() -> None:
    rows = _card_rows()
    pins = _pinned_python_packages()
    assert len(pins) > 30
    for name, version in pins.items():
        assert name in rows, f"{name} is installed by the setup but has no row in {CARD.name}"
        assert rows[name][0] == version, f"{name}: card says {rows[name][0]}, setup pins {version}"
        assert rows[name][-1] not in ("", "?"), f"{name}: no license recorded"


def test_every_debian_package_has_a_license() -> None:
    match = re.search(r"DEBIAN_PACKAGES := (.*)\n", (ROOT / "Makefile").read_text())
    assert match, "Makefile lost its DEBIAN_PACKAGES list"
    rows = _card_rows()
    for name in match.group(1).split():
        assert name in rows and rows[name][-1], f"Debian package {name} has no license row"
