"""The panel in marimo, in Debian chromium: ``marimo run notebooks/marimo_batch.py`` headless on 127.0.0.1.

marimo renders anywidgets (``mo.ui.anywidget``) and no stock ipywidgets. Checked: the panel renders,
moves while the batch runs (a state between 0 and the total is drawn), ends on the exact total, and a
real click on Cancel stops a background batch (marimo handles widget messages between cells, so a
foreground batch is stopped with marimo's interrupt instead: see docs/widgets.md).

Screenshots go to ``test-artifacts/``; ``SEEDS_UPDATE_DOCS_IMG=1`` also copies them to ``docs/img/``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from browser import harness

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
REPO = HERE.parent
ARTIFACTS = REPO / "test-artifacts"
NOTEBOOK = REPO / "notebooks" / "marimo_batch.py"


MID_RUN = re.compile(r"(?<!\d)(?:[1-9]\d{0,2}|[12]\d{3})/3000 done")
"""The panel between 1/3000 and 2999/3000: drawn while the cell runs."""


def test_panel_in_marimo(tmp_path: Path) -> None:
    harness.require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    copy = tmp_path / "nb" / NOTEBOOK.name  # marimo may write next to the notebook
    copy.parent.mkdir()
    shutil.copy(NOTEBOOK, copy)
    with harness.marimo_app(copy, tmp_path / "marimo") as server, harness.chromium_page(tmp_path / "profile") as page:
        page.goto(server.url, timeout=90_000)
        try:
            # marimo draws widgets in shadow roots: playwright's locators pierce them, querySelector does not
            expect(page.locator(".seeds-batch-progress").first).to_contain_text(MID_RUN, timeout=120_000)
            page.get_by_text("BATCH-DONE").wait_for(timeout=120_000)
            done = page.get_by_text("BATCH-DONE").inner_text()
            ok, failed = (int(n) for n in re.findall(r"BATCH-DONE (\d+) ok, (\d+) failed", done)[0])
            panel = page.locator(".seeds-batch-progress", has_text="3000/3000 done")
            text = panel.inner_text()
            assert f"{ok:,} ok" in text and f"{failed:,} failed" in text and ok + failed == 3000
            assert panel.locator(".seeds-bar-warning" if failed else ".seeds-bar-success").count() == 1
            assert panel.get_by_role("button", name="Done").is_disabled()

            background = page.locator(".seeds-batch-progress", has_text="background")
            background.get_by_role("button", name="Cancel").click()
            background.get_by_role("button", name="Cancelled").wait_for(timeout=30_000)
            stopped = int(re.findall(r"(\d+)/400 done", background.inner_text())[0])
            assert stopped < 400 and "cancelled" in background.inner_text()
        finally:
            page.screenshot(path=str(ARTIFACTS / "widgets-marimo.png"), full_page=True)
    if os.environ.get("SEEDS_UPDATE_DOCS_IMG") == "1":
        shutil.copy(ARTIFACTS / "widgets-marimo.png", REPO / "docs" / "img" / "widgets-marimo.png")
