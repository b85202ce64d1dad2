"""The widgets in a real browser, in both Jupyter frontends: JupyterLab 4 and Notebook 7 (``jupyter
notebook``), each with Debian chromium. Every test runs once per frontend (``app``: "lab", "notebook"),
with one server and one browser per frontend for the module.

Run All on tests/browser/widgets_demo.ipynb, then, as a user would: a 10,000-prompt run must end
showing exactly 10000/10000 (no update lost to the server's iopub rate limit); a real click on Cancel
stops a slower run early (its panel also shows the client's lifetime line); in the fast run's grid,
scroll to the end, click row 9,999 and read its full response, move with the arrow keys, sort by
cost, search a word, filter the failed rows, and "re-run failed" turns them ok (the panel's counts
follow). The tests run in this order: the finished grid is scrolled and clicked first while the slow
cell still awaits its run (the answers must come before that run ends), the other grid tests come
after the slow cell was cancelled. Last, a ``compare_batch`` of 2,000 prompts through two clients:
its grid ends with every client's line at 2,000/2,000 and every column filled, and a click on a row
shows each client's answer in full (and the one error with its type).

Screenshots go to ``test-artifacts/`` (gitignored). ``SEEDS_UPDATE_DOCS_IMG=1`` also copies them to
``docs/img/`` (JupyterLab: widgets-panel.png, widgets-grid.png, widgets-grid-failed.png,
widgets-compare.png; Notebook 7: widgets-notebook7.png).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import harness

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).parent / "browser" / "widgets_demo.ipynb"

SHOTS = {
    "lab": {"grid": "widgets-grid.png", "failed": "widgets-grid-failed.png", "panel": "widgets-panel.png",
            "compare": "widgets-compare.png", "page": "widgets-page.png"},
    "notebook": {"grid": "widgets-notebook7.png", "page": "widgets-notebook7-page.png"},
}
"""The screenshots each frontend leaves (the docs show all but the whole pages, kept for failures)."""


@pytest.fixture(scope="module", params=sorted(harness.APPS))
def app(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def page(app: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The frontend with the demo notebook run to its end: one server and one browser for every test here."""
    harness.require_chromium()
    tmp = tmp_path_factory.mktemp(f"browser-{app}")
    with harness.jupyterlab(tmp / app, app=harness.APPS[app]) as server, \
            harness.chromium_page(tmp / "profile") as browser_page:
        shutil.copy(NOTEBOOK, server.root / NOTEBOOK.name)
        harness.open_notebook(browser_page, server, NOTEBOOK.name)
        harness.run_all_cells(browser_page)
        try:
            yield browser_page
        finally:
            harness.screenshot(browser_page, SHOTS[app]["page"], full_page=True, docs=False)


@pytest.fixture(scope="module")
def fast_counts(page: Any) -> tuple[int, int]:
    """(ok, failed) of the 10,000-prompt run, as the kernel printed them."""
    line = harness.wait_for_output(page, "FAST-DONE", 240_000)
    ok, failed = (int(n) for n in re.findall(r"FAST-DONE (\d+) (\d+)", line)[0])
    assert ok + failed == 10_000
    return ok, failed


def _shot(app: str, what: str, target: Any) -> None:
    if what in SHOTS[app]:
        harness.screenshot(target, SHOTS[app][what])


def _grid(page: Any) -> Any:
    return page.locator(".seeds-results-grid").nth(0)


def test_a_10k_run_ends_at_10000_of_10000(page: Any, fast_counts: tuple[int, int]) -> None:
    ok, failed = fast_counts
    fast_panel = page.locator(".seeds-batch-progress").nth(0)
    fast_text = fast_panel.inner_text()
    assert "10000/10000 done" in fast_text
    assert f"{ok:,} ok" in fast_text and f"{failed:,} failed" in fast_text
    assert fast_panel.locator(".seeds-bar-warning" if failed else ".seeds-bar-success").count() == 1
    grid = _grid(page)
    grid.get_by_text(re.compile(r"^10,000 rows")).wait_for(timeout=30_000)
    assert grid.locator(".sv-row").count() <= 20  # the DOM holds the visible rows only (10 + a margin)


def test_the_finished_grid_answers_while_a_later_cell_awaits(page: Any, fast_counts: tuple[int, int]) -> None:
    """While the slow cell awaits its run: scroll the fast run's grid to its middle and click a row; the
    window and the detail arrive before that run ends. The browser's requests are custom messages,
    which ipykernel 7.4 handles while a cell awaits; as trait updates they waited for the cell (the
    widget manager sends the next update of a model only once the kernel reported the last one idle,
    and it reports no status for a comm message handled during an awaiting cell: see _grid.py)."""
    harness.wait_for_panel(page, 1, 400, 1, timeout_ms=120_000)  # the slow run has begun
    slow_panel = page.locator(".seeds-batch-progress").nth(1)
    grid = _grid(page)
    grid.locator(".sv-scroll").evaluate("el => { el.scrollTop = el.scrollHeight / 2; }")  # row 5,000 on top
    row = grid.locator('.sv-row[data-index="5000"]')
    row.wait_for(timeout=30_000)
    assert "Click a row" in grid.locator(".sg-detail .sv-hint").inner_text()  # nothing chosen yet
    row.click()
    detail = grid.locator(".sg-detail")
    detail.get_by_text("#5000", exact=True).wait_for(timeout=30_000)
    assert "Summarise abstract #5000 in one sentence." in detail.locator(".sg-prompt").inner_text()
    assert detail.locator(".sg-answer").inner_text().startswith("Mock answer")
    slow_text = slow_panel.inner_text()  # the slow run was still going when the answer came
    assert int(re.findall(r"(\d+)/400 done", slow_text)[0]) < 400 and "running" in slow_text
    assert slow_panel.get_by_role("button", name="Cancel").is_enabled()


def test_cancel_stops_a_run_in_the_browser(page: Any, fast_counts: tuple[int, int]) -> None:
    harness.wait_for_panel(page, 1, 400, 20, timeout_ms=120_000)
    slow_panel = page.locator(".seeds-batch-progress").nth(1)
    slow_panel.get_by_role("button", name="Cancel").click()
    slow_line = harness.wait_for_output(page, "SLOW-DONE", 60_000)
    assert "SLOW-DONE cancelled" in slow_line
    slow_text = slow_panel.inner_text()
    done = int(re.findall(r"(\d+)/400 done", slow_text)[0])
    assert 20 <= done < 400 and "cancelled" in slow_text
    answered = int(slow_line.split()[2])  # SLOW-DONE <stop reason> <successful> <cancelled>
    assert f"client so far: {answered:,} answers ({answered:,} API, 0% from cache)" in slow_text  # lifetime
    assert slow_panel.locator(".seeds-bar-danger").count() == 1


def test_scroll_to_the_end_and_click_row_9999(app: str, page: Any, fast_counts: tuple[int, int]) -> None:
    grid = _grid(page)
    scroller = grid.locator(".sv-scroll")
    scroller.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    last = grid.locator('.sv-row[data-index="9999"]')
    last.wait_for(timeout=30_000)
    assert grid.locator(".sv-row").count() <= 20
    excerpt = last.locator(".sv-cell").nth(3).inner_text()
    last.click()
    detail = grid.locator(".sg-detail")
    detail.get_by_text("#9999", exact=True).wait_for(timeout=30_000)
    answer = detail.locator(".sg-answer").inner_text()
    assert answer and answer.startswith(excerpt.rstrip("…"))
    assert "Summarise abstract #9999 in one sentence." in detail.locator(".sg-prompt").inner_text()
    assert "model gpt-4.1-mini" in detail.inner_text() and "attempts" in detail.inner_text()
    # keyboard: up moves the selection to the row above
    scroller.press("ArrowUp")
    detail.get_by_text("#9998", exact=True).wait_for(timeout=30_000)
    assert grid.locator(".sv-row.sv-selected").get_attribute("data-index") == "9998"
    _shot(app, "grid", page.locator(".jp-CodeCell", has=grid).first)


def _scroll_and_select(grid: Any, index: int) -> int:
    """Scroll the grid (in index order) so that row ``index`` is near the top, part of a row hidden
    above, click that row, mark this view of the grid, and return the list's scrollTop."""
    scroller = grid.locator(".sv-scroll")
    row_height = int(grid.locator(".sv-row").first.evaluate("el => el.offsetHeight"))
    scroller.evaluate("(el, top) => { el.scrollTop = top; }", (index - 2) * row_height + row_height // 3)
    row = grid.locator(f'.sv-row[data-index="{index}"]')
    row.click()
    grid.locator(".sg-detail").get_by_text(f"#{index}", exact=True).wait_for(timeout=30_000)
    return int(scroller.evaluate("el => { el.closest('.seeds-results-grid').dataset.drawnBefore = '1'; "
                                 "return el.scrollTop; }"))


def _costs(grid: Any) -> list[float]:
    return [float(text.lstrip("$")) for text in grid.locator(".sv-row .sv-cell:nth-child(7)").all_inner_texts()
            if text.startswith("$")]


def test_sort_by_cost_and_search_a_word(page: Any, fast_counts: tuple[int, int]) -> None:
    grid = _grid(page)
    cost = grid.locator('.sg-hcell[data-key="cost"]')
    cost.click()
    grid.get_by_text("cost ▲").wait_for(timeout=30_000)
    cost.click()
    grid.get_by_text("cost ▼").wait_for(timeout=30_000)
    page.wait_for_function("""() => {
        const grid = document.querySelectorAll('.seeds-results-grid')[0];
        const rows = grid.querySelectorAll('.sv-row[data-index]');
        return rows.length > 0 && rows[0].dataset.pos === '0';
    }""", timeout=30_000)
    costs = _costs(grid)
    assert len(costs) >= 5 and costs == sorted(costs, reverse=True)

    search = grid.locator(".sg-search")
    search.fill("#4242 ")
    grid.get_by_text(re.compile(r"showing 1 \(")).wait_for(timeout=30_000)
    rows = grid.locator(".sv-row[data-index]")
    assert rows.count() == 1 and rows.first.get_attribute("data-index") == "4242"
    search.fill("")
    grid.locator('.sv-row[data-pos="0"]').wait_for(timeout=30_000)
    grid.get_by_text(re.compile(r"showing")).wait_for(state="detached", timeout=30_000)


def test_filter_failed_then_rerun_failed_turns_them_ok(app: str, page: Any, fast_counts: tuple[int, int]) -> None:
    ok, failed = fast_counts
    assert failed > 0, "the demo's fault makes a few requests fail for good"
    grid = _grid(page)
    grid.locator(".sg-filter").select_option("failed")
    grid.get_by_text(f"showing {failed:,} (failed)").wait_for(timeout=30_000)
    statuses = grid.locator(".sv-row .sv-cell:nth-child(2)").all_inner_texts()
    assert statuses and set(statuses) == {"failed"} and len(statuses) == min(failed, grid.locator(".sv-row").count())
    first = grid.locator(".sv-row[data-index]").first
    first.click()
    grid.locator(".sg-detail").get_by_text(re.compile(r"^Error: ")).wait_for(timeout=30_000)
    _shot(app, "failed", page.locator(".jp-CodeCell", has=grid).first)

    rerun = grid.get_by_role("button", name=re.compile(r"re-run failed"))
    assert rerun.inner_text() == f"re-run failed ({failed})"
    grid.locator(".sg-filter").select_option("all")
    index_head = grid.locator('.sg-hcell[data-key="index"]')  # in index order a row keeps its place as it turns ok
    if index_head.inner_text() != "# ▲":  # one click: from any other order to index ascending
        index_head.click()
    grid.get_by_text("# ▲").wait_for(timeout=30_000)
    grid.get_by_text(re.compile(r"showing")).wait_for(state="detached", timeout=30_000)  # every row in the view
    grid.locator('.sv-row[data-pos="0"][data-index="0"]').wait_for(timeout=30_000)
    top = _scroll_and_select(grid, 5002)
    rerun.click()
    grid.get_by_text(f"re-ran {failed:,} failed rows: {failed:,} ok").wait_for(timeout=60_000)
    # Its end updates the grid's output (the saved snapshot now says 0 failed), which the frontend draws
    # again as a new view: that view opens where the user was, row 5,002 still selected.
    page.wait_for_function("""() => {
        const grid = document.querySelectorAll('.seeds-results-grid')[0];
        return !!grid && !grid.dataset.drawnBefore && !!grid.querySelector('.sv-row[data-index="5002"]');
    }""", timeout=60_000)
    grid = _grid(page)
    assert grid.locator(".sv-scroll").evaluate("el => el.scrollTop") == top
    assert grid.locator(".sv-row.sv-selected").get_attribute("data-index") == "5002"
    grid.locator(".sg-detail").get_by_text("#5002", exact=True).wait_for(timeout=30_000)
    grid.locator(".sg-filter").select_option("failed")
    grid.get_by_text("showing 0 (failed)").wait_for(timeout=30_000)
    assert grid.locator(".sv-row[data-index]").count() == 0
    assert grid.get_by_role("button", name=re.compile(r"re-run failed")).is_disabled()
    panel = page.locator(".seeds-batch-progress").nth(0)
    panel.get_by_text("✘ 0 failed").wait_for(timeout=30_000)
    assert f"{ok + failed:,} ok" in panel.inner_text() and "10000/10000 done" in panel.inner_text()
    grid.locator(".sg-filter").select_option("all")
    _shot(app, "panel", page.locator(".jp-CodeCell", has=page.locator(".seeds-batch-progress").nth(0)).first)


def test_compare_batch_fills_every_column_and_a_row_click_shows_the_answers(app: str, page: Any,
                                                                          fast_counts: tuple[int, int]) -> None:
    line = harness.wait_for_output(page, "COMPARE-DONE", 240_000)
    gpt_ok, claude_ok, gpt_failed, claude_failed, length = (int(n) for n in line.split()[1:6])
    assert (gpt_ok, gpt_failed, claude_ok, claude_failed) == (2000, 0, 1999, 1)
    grid = page.locator(".seeds-compare").nth(0)
    lines = grid.locator(".sc-line")
    lines.nth(1).get_by_text("partial").wait_for(timeout=30_000)  # the final push
    gpt_line, claude_line = lines.nth(0).inner_text(), lines.nth(1).inner_text()
    assert "2,000/2,000" in gpt_line and "success" in gpt_line and "✔ 2,000 ok" in gpt_line
    assert "2,000/2,000" in claude_line and "✔ 1,999 ok" in claude_line and "✘ 1 failed" in claude_line
    assert "gCO2eq" in gpt_line and "s mean" in gpt_line and "$" in gpt_line
    sums = grid.locator(".sc-sum")
    assert sums.count() == 2 and "✘ 1 failed" in sums.nth(1).inner_text()
    assert grid.locator(".sv-row").count() <= 16  # the DOM holds the visible rows only (8 + a margin)

    scroller = grid.locator(".sv-scroll")
    scroller.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    last = grid.locator('.sv-row[data-index="1999"]')
    last.wait_for(timeout=30_000)
    cells = last.locator(".sc-answer-cell")
    assert cells.count() == 2 and all(cells.nth(i).inner_text().strip() for i in range(2))
    assert grid.locator('.sc-answer-cell[data-status="waiting"]').count() == 0  # every column filled
    excerpt = cells.nth(0).inner_text()
    assert "Click a row" in grid.locator(".sc-detail .sv-hint").inner_text()  # nothing chosen yet
    last.click()
    detail = grid.locator(".sc-detail")
    detail.get_by_text("#1999", exact=True).wait_for(timeout=30_000)
    assert "Explain topic 1999 in two sentences." in detail.locator(".sc-full-prompt").inner_text()
    answers = detail.locator(".sc-answer")
    assert answers.count() == 2
    full = answers.nth(0).locator(".sc-text").inner_text()
    assert abs(len(full) - length) <= 1 and " ".join(full.split()).startswith(excerpt.rstrip("…").strip())
    facts = answers.nth(0).inner_text()
    assert "model gpt-4.1-mini" in facts and "cost $" in facts and "gCO2eq" in facts and "latency" in facts
    assert "model claude-haiku-4-5" in answers.nth(1).inner_text()

    scroller.evaluate("el => { el.scrollTop = 0; }")
    row = grid.locator('.sv-row[data-index="7"]')
    row.wait_for(timeout=30_000)
    assert row.locator(".sc-answer-cell").nth(1).get_attribute("data-status") == "failed"
    row.click()
    detail.get_by_text("#7", exact=True).wait_for(timeout=30_000)
    detail.get_by_text("Error: BadRequestError").wait_for(timeout=30_000)
    assert answers.nth(0).locator(".sc-text").inner_text().strip()  # gpt answered prompt 7
    _shot(app, "compare", page.locator(".jp-CodeCell", has=grid).first)
