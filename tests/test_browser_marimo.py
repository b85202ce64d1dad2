"""The panel and the results grid in marimo, in Debian chromium: ``marimo run notebooks/marimo_batch.py``
headless on 127.0.0.1.

marimo renders anywidgets (``mo.ui.anywidget``) and no stock ipywidgets. Checked: the panel and the grid
render and move while the batch runs (a state between 0 and the total is drawn in each), both end on
the exact total with the same counts; the grid scrolled to its end shows the last row with only the
visible rows in the DOM, a click on it shows its full prompt and answer, search and the status filter
narrow the view; a real click on Cancel stops a background batch (marimo handles widget messages
between cells, so a foreground batch is stopped with marimo's interrupt instead: see docs/widgets.md).

Screenshots go to ``test-artifacts/``; ``SEEDS_UPDATE_DOCS_IMG=1`` also copies them to ``docs/img/``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from browser import harness

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
NOTEBOOK = HERE.parent / "notebooks" / "marimo_batch.py"

SEEN_MID_RUN = r"""() => {
    // marimo draws widgets in shadow roots: walk them (playwright's locators pierce them, this must too)
    const find = (root, cls, out) => {
        for (const el of root.querySelectorAll('*')) {
            if (el.classList.contains(cls)) out.push(el);
            if (el.shadowRoot) find(el.shadowRoot, cls, out);
        }
        return out;
    };
    const panel = find(document, 'seeds-batch-progress', [])[0];
    const grid = find(document, 'seeds-results-grid', [])[0];
    const seen = (window.__seedsMidRun = window.__seedsMidRun || {});
    const between = (text, re) => { const m = text && text.match(re); return !!m && +m[1] > 0 && +m[1] < 3000; };
    if (panel && between(panel.innerText, /(\d+)\/3000 done/)) seen.panel = true;
    const summary = grid && grid.querySelector('.sg-summary');
    if (summary && between(summary.textContent.replace(/,/g, ''), /^(\d+) rows/)) seen.grid = true;
    return !!(seen.panel && seen.grid);
}"""
"""True once both the panel and the grid were seen between 1 and 2,999 of 3,000 (drawn while the cell runs)."""


def test_panel_and_grid_in_marimo(tmp_path: Path) -> None:
    harness.require_chromium()
    copy = tmp_path / "nb" / NOTEBOOK.name  # marimo may write next to the notebook
    copy.parent.mkdir()
    shutil.copy(NOTEBOOK, copy)
    with harness.marimo_app(copy, tmp_path / "marimo") as server, harness.chromium_page(tmp_path / "profile") as page:
        page.goto(server.url, timeout=90_000)
        try:
            page.wait_for_function(SEEN_MID_RUN, timeout=120_000, polling="raf")
            page.get_by_text("BATCH-DONE").wait_for(timeout=120_000)
            done = page.get_by_text("BATCH-DONE").inner_text()
            ok, failed = (int(n) for n in re.findall(r"BATCH-DONE (\d+) ok, (\d+) failed", done)[0])
            assert ok + failed == 3000
            panel = page.locator(".seeds-batch-progress", has_text="3000/3000 done")
            text = panel.inner_text()
            assert f"{ok:,} ok" in text and f"{failed:,} failed" in text
            assert panel.locator(".seeds-bar-warning" if failed else ".seeds-bar-success").count() == 1
            assert panel.get_by_role("button", name="Done").is_disabled()

            # the grid's counts: the panel's, exactly (its final push comes before the panel's)
            grid = page.locator(".seeds-results-grid").first
            counts = f"3,000 rows · {ok:,} ok" + (f" · {failed:,} failed" if failed else "")
            expect(grid.locator(".sg-summary")).to_have_text(counts, timeout=30_000)

            # scrolled to its end: the last row, and only the visible rows in the DOM
            grid.locator(".sv-scroll").evaluate("el => { el.scrollTop = el.scrollHeight; }")
            last = grid.locator('.sv-row[data-index="2999"]')
            last.wait_for(timeout=30_000)
            assert grid.locator(".sv-row").count() <= 24  # 20 rows in view and 2 drawn above and below it

            last.click()  # the detail: the full prompt and answer
            detail = grid.locator(".sg-detail")
            detail.get_by_text("#2999", exact=True).wait_for(timeout=30_000)
            assert detail.locator(".sg-prompt").inner_text() == "Summarise abstract #2999 in one sentence."
            assert detail.locator(".sg-answer").inner_text().startswith(
                "Mock answer to 'Summarise abstract #2999 in one sentence.'")
            expect(last).to_have_class(re.compile(r"\bsv-selected\b"))
            harness.screenshot(grid, "widgets-marimo-grid.png")

            grid.locator(".sg-search").fill("abstract #1234 ")  # search: one row is left
            expect(grid.locator(".sg-summary")).to_contain_text("showing 1 (“abstract #1234 ”)", timeout=30_000)
            expect(grid.locator(".sv-row[data-index]")).to_have_count(1)
            assert grid.locator(".sv-row[data-index]").get_attribute("data-index") == "1234"
            grid.locator(".sg-search").fill("")
            grid.locator(".sg-filter").select_option("failed")  # the status filter: the failed rows
            expect(grid.locator(".sg-summary")).to_contain_text(f"showing {failed:,} (failed)", timeout=30_000)
            expect(grid.locator(".sv-row[data-index]")).to_have_count(failed)
            for cell in grid.locator(".sv-row .sv-cell:nth-child(2)").all():
                assert cell.inner_text() == "failed"

            background = page.locator(".seeds-batch-progress", has_text="background")
            background.get_by_role("button", name="Cancel").click()
            background.get_by_role("button", name="Cancelled").wait_for(timeout=30_000)
            stopped = int(re.findall(r"(\d+)/400 done", background.inner_text())[0])
            assert stopped < 400 and "cancelled" in background.inner_text()
            page.locator(".seeds-batch-progress").first.evaluate("el => el.scrollIntoView()")
            harness.screenshot(page, "widgets-marimo.png")  # the run's panel and grid, on the failed rows
        finally:
            harness.screenshot(page, "widgets-marimo-page.png", full_page=True, docs=False)  # for a failure
