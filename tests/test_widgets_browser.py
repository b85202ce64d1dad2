"""The widgets in a real JupyterLab + Debian chromium: a 10,000-prompt run must end showing exactly
10000/10000 (no update lost to the server's iopub rate limit), the grid shows rows and reacts to its
controls, and a real click on Cancel stops a slower run early (its panel also shows the client's lifetime line).

Screenshots go to ``test-artifacts/`` (gitignored). ``SEEDS_UPDATE_DOCS_IMG=1`` also copies the panel
screenshot to ``docs/img/widgets-panel.png``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
REPO = HERE.parent
ARTIFACTS = REPO / "test-artifacts"
DOCS_IMG = REPO / "docs" / "img" / "widgets-panel.png"
NOTEBOOK = HERE / "browser" / "widgets_demo.ipynb"

_spec = importlib.util.spec_from_file_location("seeds_browser_harness", HERE / "browser" / "harness.py")
assert _spec is not None and _spec.loader is not None
harness = sys.modules.setdefault(_spec.name, importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(harness)

PANEL_PROGRESS = """([index, total, least]) => {
    const panel = document.querySelectorAll('.seeds-batch-progress')[index];
    const match = panel && panel.innerText.match(new RegExp('(\\\\d+)/' + total + ' done'));
    return !!match && Number(match[1]) >= least;
}"""

NOTEBOOK_SETTINGS = '{"windowingMode": "none"}'  # keep every cell in the DOM, so locators see all panels


def show_detail(grid: Any, index: str | None, heading: str) -> None:
    """Type a prompt index into the grid's input, as a user would, and wait for its detail."""
    number = grid.locator("input[type='number']")
    number.fill(str(index))
    number.press("Enter")
    detail = grid.locator(".seeds-grid-detail", has_text=f"#{index}")
    detail.wait_for(timeout=30_000)
    assert heading in detail.inner_text() and "Prompt" in detail.inner_text()


def test_widgets_in_jupyterlab(tmp_path: Path) -> None:
    """Run All in JupyterLab: exact final count for 10k prompts, grid rows, filter + detail, real Cancel."""
    harness.require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    work = tmp_path / "lab"
    settings = work / "config" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(NOTEBOOK_SETTINGS)
    with harness.jupyterlab(work) as server, harness.chromium_page(tmp_path / "profile") as page:
        shutil.copy(NOTEBOOK, server.root / NOTEBOOK.name)
        harness.open_notebook(page, server, NOTEBOOK.name)
        harness.run_all_cells(page)
        try:
            fast_line = harness.wait_for_output(page, "FAST-DONE", 240_000)
            ok, failed = (int(n) for n in re.findall(r"FAST-DONE (\d+) (\d+)", fast_line)[0])
            panels = page.locator(".seeds-batch-progress")
            fast_panel = panels.nth(0)
            fast_text = fast_panel.inner_text()
            assert "10000/10000 done" in fast_text
            assert f"{ok:,} ok" in fast_text and f"{failed:,} failed" in fast_text
            assert fast_panel.locator(".seeds-bar-warning" if failed else ".seeds-bar-success").count() == 1

            # The second, slower run: click Cancel for real once it is under way.
            page.wait_for_function(PANEL_PROGRESS, arg=[1, 400, 20], timeout=120_000)
            slow_panel = panels.nth(1)
            slow_panel.get_by_role("button", name="Cancel").click()
            slow_line = harness.wait_for_output(page, "SLOW-DONE", 60_000)
            assert "SLOW-DONE cancelled" in slow_line
            slow_text = slow_panel.inner_text()
            done = int(re.findall(r"(\d+)/400 done", slow_text)[0])
            assert 20 <= done < 400 and "cancelled" in slow_text
            answered = int(slow_line.split()[2])  # SLOW-DONE <stop reason> <successful> <cancelled>
            assert f"client so far: {answered:,} answers ({answered:,} API, 0% from cache)" in slow_text  # lifetime
            assert slow_panel.locator(".seeds-bar-danger").count() == 1

            # The grid of the fast run: rows drawn, a row's detail, the failed filter.
            grid = page.locator(".seeds-results-grid").nth(0)
            assert grid.locator("tr[data-index]").count() == 10
            assert "rows 9,991–10,000 of 10,000" in grid.inner_text()
            show_detail(grid, grid.locator("tr[data-index]").last.get_attribute("data-index"), "Response")
            cell = page.locator(".jp-CodeCell", has=grid).first
            cell.screenshot(path=str(ARTIFACTS / "widgets-panel.png"))
            if os.environ.get("SEEDS_UPDATE_DOCS_IMG") == "1":
                DOCS_IMG.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ARTIFACTS / "widgets-panel.png", DOCS_IMG)
            if failed:
                grid.locator("select").select_option("failed")
                first_row = max(failed - 10, 0) + 1  # the window follows the newest rows
                grid.get_by_text(f"rows {first_row}–{failed} of {failed} (failed; newest)").wait_for(timeout=30_000)
                statuses = grid.locator("tr[data-index] td:nth-child(2)").all_inner_texts()
                assert statuses == ["failed"] * min(failed, 10)
                show_detail(grid, grid.locator("tr[data-index]").first.get_attribute("data-index"), "Error")
                cell.screenshot(path=str(ARTIFACTS / "widgets-grid-failed.png"))
        finally:
            page.screenshot(path=str(ARTIFACTS / "widgets-page.png"), full_page=True)
