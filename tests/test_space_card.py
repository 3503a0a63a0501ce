"""The Space's card header and requirements agree with what the app is built and tested with."""

from __future__ import annotations

from pathlib import Path

import gradio
import yaml

SPACE = Path(__file__).resolve().parents[1] / "spaces" / "demo"


def _front_matter() -> dict:
    text = (SPACE / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text[4 : text.index("\n---", 4)])


def test_card_header_is_a_valid_space_config() -> None:
    meta = _front_matter()
    for key in ("title", "emoji", "colorFrom", "colorTo", "sdk", "sdk_version", "app_file",
                "license", "datasets", "pinned"):  # fmt: skip
        assert key in meta, key
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == gradio.__version__  # the version the tests ran against
    assert (SPACE / meta["app_file"]).is_file()
    assert meta["pinned"] is False
    assert all("/" in repo for repo in meta["datasets"])
    assert len(meta.get("short_description", "")) <= 60  # the Hub's limit


def test_requirements_pin_the_tested_gradio() -> None:
    lines = [
        line.strip()
        for line in (SPACE / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert f"gradio=={gradio.__version__}" in lines
    assert any(line.startswith("uaes-hf") for line in lines)
    assert all("==" in line or "@" in line for line in lines), "every requirement is pinned"


def test_card_states_the_budget_the_space_enforces() -> None:
    from uaes_hf.space.budget import SpaceBudget

    card = (SPACE / "README.md").read_text(encoding="utf-8")
    budget = SpaceBudget()
    stated = [
        f"{budget.max_upload_bytes // 2**20} MiB, {budget.max_rows:,} rows and "
        f"{budget.max_cells:,} values each",
        f"k ≤ min({budget.max_k}, N − 1)",
        f"at most {budget.max_permutations:,}",
        f"w·N·k²·(permutations + 2) ≤ {budget.max_neighbour_work:,}",
        f"N²·permutations ≤ {budget.max_kernel_work:,}",
        f"N²·(D_A + D_B) ≤ {budget.max_gram_work:,}",
        f"N·D·min(N, D) ≤ {budget.max_svd_work:,}",
        f"{budget.concurrency} requests at a time, {budget.queue_size} waiting",
        f"{budget.judge_per_session} new ratings per {budget.judge_window_s / 60:.0f} minutes",
        f"up to {budget.judge_max_chars:,} characters",
        f"{budget.judge_deadline_s:.0f} s deadline",
        f"{budget.judge_max_requests} requests per Space process",
    ]
    assert [text for text in stated if text not in card] == []
    assert "12 minutes" not in card  # times come from the measured run, not from prose
