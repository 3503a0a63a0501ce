"""A real browser (Debian's Chromium through Playwright) clicks through every tab of the Space.

Screenshots go to ``test-artifacts/space_*.png``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
import space_helpers as helpers

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def space_url(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module) -> str:
    monkeypatch_module.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch_module.delenv("UAES_SPACE_JUDGE", raising=False)
    data = helpers.build_space_data(tmp_path_factory.mktemp("space_browser"))
    demo = helpers.load_app_module().build_demo(data.results_dir)
    url = helpers.launch(demo)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def empty_space_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Space with no results anywhere (no ./report, an empty $UAES_HOME)."""
    empty = tmp_path_factory.mktemp("space_browser_empty")
    demo = helpers.load_app_module().build_demo(cwd=empty, home=empty)
    url = helpers.launch(demo)
    yield url
    demo.close()


def _no_error_shown(page) -> None:
    """No error toast and no "Error" status badge anywhere on the page."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("toast-body")).to_have_count(0)
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@contextlib.contextmanager
def opened(url: str):
    """A page of headless Chromium at ``url`` (the browser closed afterwards)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            yield page
        finally:
            browser.close()


def _image_loaded(locator) -> bool:
    return bool(locator.evaluate("img => img.complete && img.naturalWidth > 100"))


@pytest.mark.browser
def test_click_through_every_tab(space_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    rng = np.random.default_rng(1)
    base = rng.normal(size=(80, 12))
    np.save(tmp_path / "mine_a.npy", base)
    np.savetxt(tmp_path / "mine_b.csv", base + 0.5 * rng.normal(size=base.shape), delimiter=",")
    np.save(tmp_path / "short.npy", base[:50])

    with opened(space_url) as page:
        expect(page.get_by_text("Do AI models agree on beautiful things?").first).to_be_visible()

        # Explore: filter the poems, read one, show the gallery
        page.get_by_role("button", name="Filter poems").click()
        expect(page.get_by_text("poem(s)").first).to_be_visible()
        expect(page.get_by_text("Poem 0", exact=True).first).to_be_visible()
        page.get_by_role("button", name="Show images").click()
        expect(page.locator("img[src*='image']").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "space_explore.png"), full_page=True)

        # Convergence: the options load with the page; the heatmap is an image
        page.get_by_role("tab", name="Convergence").click()
        expect(page.get_by_text("Results from").first).to_be_visible()
        page.get_by_role("button", name="Show heatmap").click()
        heatmap = page.locator("#convergence-heatmap img")
        expect(heatmap).to_be_visible()
        page.wait_for_function(
            "() => { const i = document.querySelector('#convergence-heatmap img');"
            " return i && i.complete && i.naturalWidth > 100; }"
        )
        assert _image_loaded(heatmap)
        expect(page.locator("#convergence-values")).to_contain_text("model-a")
        page.screenshot(path=str(ARTIFACTS / "space_convergence.png"), full_page=True)

        # Your features: pressing Compare before uploading gives a hint, not an error
        page.get_by_role("tab", name="Your features").click()
        page.get_by_role("button", name="Compare uploaded features").click()
        expect(page.locator("#features-summary")).to_contain_text(
            "Hint: upload two feature files (A and B) first"
        )
        _no_error_shown(page)
        # upload two files, get the score and the histogram
        page.locator("#upload-a input[type=file]").set_input_files(str(tmp_path / "mine_a.npy"))
        page.locator("#upload-b input[type=file]").set_input_files(str(tmp_path / "mine_b.csv"))
        expect(page.locator("#upload-b")).to_contain_text("mine_b")
        page.get_by_role("button", name="Compare uploaded features").click()
        expect(page.get_by_text("mutual_knn =").first).to_be_visible()
        expect(page.locator("#features-histogram img")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "space_features.png"), full_page=True)
        # a bad upload shows a message, and the page keeps working
        page.locator("#upload-b button[aria-label='Clear']").click()
        page.locator("#upload-b input[type=file]").set_input_files(str(tmp_path / "short.npy"))
        expect(page.locator("#upload-b")).to_contain_text("short")
        page.get_by_role("button", name="Compare uploaded features").click()
        expect(page.get_by_text("80 rows but").first).to_be_visible()
        # (the check of _no_error_shown can fail: a real error shows the badge)
        expect(page.get_by_text("Error", exact=True).first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "space_features_error.png"), full_page=True)
        page.get_by_test_id("toast-close").first.click()
        expect(page.get_by_test_id("toast-body")).to_have_count(0)

        # Neighbours: side by side, shared ones highlighted
        page.get_by_role("tab", name="Neighbours").click()  # fills the dropdowns
        expect(page.locator("#neighbour-poem input")).not_to_have_value("")
        page.get_by_role("button", name="Show neighbours").click()
        expect(page.get_by_text("nearest poems are shared").first).to_be_visible()
        rows = page.locator(".uaes-neighbours tr[data-row]")
        expect(rows.first).to_be_visible()
        assert rows.count() == 20  # k = 10 under each model
        page.screenshot(path=str(ARTIFACTS / "space_neighbours.png"), full_page=True)

        # Judge: off (the owner's flag is not set); Rate with nothing chosen: a hint
        page.get_by_role("tab", name="Judge").click()
        expect(page.get_by_text("The LLM judge is off in this Space").first).to_be_visible()
        page.get_by_role("button", name="Rate with the LLM judge").click()
        expect(page.locator("#judge-verdict")).to_contain_text("Hint: pick a poem")
        page.screenshot(path=str(ARTIFACTS / "space_judge.png"), full_page=True)


@pytest.mark.browser
def test_show_heatmap_without_results_gives_a_hint_not_an_error(empty_space_url: str) -> None:
    """Issue 12: "Show heatmap" before any selection (no results) showed two red badges."""
    from playwright.sync_api import expect

    with opened(empty_space_url) as page:
        page.get_by_role("tab", name="Convergence").click()
        expect(page.get_by_text("No convergence results yet").first).to_be_visible()
        page.get_by_role("button", name="Show heatmap").click()
        expect(page.locator("#convergence-hint")).to_contain_text(
            "Hint: no convergence results yet"
        )
        _no_error_shown(page)
        page.get_by_role("tab", name="Neighbours").click()
        page.get_by_role("button", name="Show neighbours").click()
        expect(page.locator("#neighbours-summary")).to_contain_text("Hint: pick a poem")
        _no_error_shown(page)
        page.screenshot(path=str(ARTIFACTS / "space_no_results_hint.png"), full_page=True)
