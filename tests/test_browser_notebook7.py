"""The widgets in Notebook 7 (``jupyter notebook``) and Debian chromium: Run All on the demo notebook; a
10,000-prompt run must end showing exactly 10000/10000 (no update lost to the server's iopub rate
limit), the grid scrolls to its last row and a click shows row 9,999's full prompt and answer, and a
real click on Cancel stops a slower run early (the click reaches the kernel while the cell awaits).

Screenshots go to ``test-artifacts/``; ``SEEDS_UPDATE_DOCS_IMG=1`` also copies them to ``docs/img/``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
REPO = HERE.parent
ARTIFACTS = REPO / "test-artifacts"
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


def test_widgets_in_notebook7(tmp_path: Path) -> None:
    harness.require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    work = tmp_path / "nb7"
    settings = work / "config" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')  # every cell in the DOM
    with harness.jupyterlab(work, app="notebook") as server, harness.chromium_page(tmp_path / "profile") as page:
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
            assert f"{ok:,} ok" in fast_text and f"{failed:,} failed" in fast_text and ok + failed == 10_000
            assert fast_panel.locator(".seeds-bar-warning" if failed else ".seeds-bar-success").count() == 1
            page.wait_for_function(PANEL_PROGRESS, arg=[1, 400, 20], timeout=120_000)
            slow_panel = panels.nth(1)
            slow_panel.get_by_role("button", name="Cancel").click()
            slow_line = harness.wait_for_output(page, "SLOW-DONE", 60_000)
            assert "SLOW-DONE cancelled" in slow_line
            slow_text = slow_panel.inner_text()
            done = int(re.findall(r"(\d+)/400 done", slow_text)[0])
            assert 20 <= done < 400 and "cancelled" in slow_text
            assert slow_panel.locator(".seeds-bar-danger").count() == 1

            grid = page.locator(".seeds-results-grid").nth(0)  # scroll to the end, click row 9,999
            # (after the slow cell: a click asks the kernel for the row, which waits while a cell runs)
            grid.locator(".sg-scroll").evaluate("el => { el.scrollTop = el.scrollHeight; }")
            last = grid.locator('.sg-row[data-index="9999"]')
            last.wait_for(timeout=30_000)
            assert grid.locator(".sg-row").count() <= 20  # the DOM holds the visible rows only
            last.click()
            detail = grid.locator(".sg-detail")
            detail.get_by_text("#9999", exact=True).wait_for(timeout=30_000)
            assert "Summarise abstract #9999 in one sentence." in detail.locator(".sg-prompt").inner_text()
            assert detail.locator(".sg-answer").inner_text().startswith("Mock answer")
            page.locator(".jp-CodeCell", has=fast_panel).first.screenshot(path=str(ARTIFACTS / "widgets-notebook7.png"))
        finally:
            page.screenshot(path=str(ARTIFACTS / "widgets-notebook7-page.png"), full_page=True)
    if os.environ.get("SEEDS_UPDATE_DOCS_IMG") == "1":
        shutil.copy(ARTIFACTS / "widgets-notebook7.png", REPO / "docs" / "img" / "widgets-notebook7.png")
