"""What the widgets do for frontends other than JupyterLab, without a browser: Colab (faked: a
``google.colab`` module in ``sys.modules``, as a Colab kernel has) and static renderers (the
``text/html`` snapshot every widget carries; a real kernel and real ``nbconvert --to html``).
The browser checks are in tests/test_widgets_browser.py and tests/test_browser_marimo.py."""

from __future__ import annotations

import _thread
import os
import re
import shutil
import sys
import types
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from seeds_nb import MockServer, OpenAIClient
from seeds_nb.core.ledger import Ledger
from seeds_nb.core.result import BatchResult
from seeds_nb.core.types import Response, Usage
from seeds_nb.widgets import BatchProgress, run_batch
from seeds_nb.widgets._frontend import COLAB_BACKGROUND_NOTICE

from _support import FakeClock
from browser import harness

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
HERE = Path(__file__).parent
REPO = HERE.parent
ARTIFACTS = REPO / "test-artifacts"



@pytest.fixture
def colab(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel that looks like Colab's: ``google.colab`` imported (anywidget looks for ``.output``)."""
    output = types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = lambda: None  # type: ignore[attr-defined]
    output._widgets = types.SimpleNamespace(_installed_url=None)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setitem(sys.modules, "google.colab.output", output)


# -- Colab ------------------------------------------------------------------------------------------------
def test_outside_colab_background_returns_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    slow = MockServer(latency_s=0.05).start()
    client = OpenAIClient("gpt-4.1-mini", base_url=slow.url, api_key="sk-test")
    try:
        handle = run_batch(client, [f"q{i}" for i in range(40)], max_concurrent=2, background=True, show=False)
        assert not handle.done()  # 40 prompts at 0.05 s, 2 at a time: about 1 s to go
        assert handle.result(timeout=30).successful_count == 40
    finally:
        client.close()
        slow.stop()
    assert COLAB_BACKGROUND_NOTICE not in capsys.readouterr().out


def test_in_colab_background_runs_in_the_foreground_with_a_notice(colab: None,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Colab shows a thread's widget updates only while their cell runs: the call waits for the batch."""
    slow = MockServer(latency_s=0.05).start()
    client = OpenAIClient("gpt-4.1-mini", base_url=slow.url, api_key="sk-test")
    try:
        handle = run_batch(client, [f"q{i}" for i in range(40)], max_concurrent=2, background=True, show=False)
        assert handle.done()  # the cell waited: every update was sent while it ran
        result = handle.result(timeout=0)
    finally:
        client.close()
        slow.stop()
    assert result.successful_count == 40 and handle.progress.state == "success" and handle.progress.bar_value == 40
    assert COLAB_BACKGROUND_NOTICE in capsys.readouterr().out


def test_in_colab_an_interrupt_stops_the_batch_and_keeps_what_finished(colab: None) -> None:
    """The cell waits with short joins, so an interrupt (here: a real SIGINT-style KeyboardInterrupt in the
    main thread, raised once 5 answers are in) cancels the batch and propagates; nothing is lost."""
    slow = MockServer(latency_s=0.05).start()
    client = OpenAIClient("gpt-4.1-mini", base_url=slow.url, api_key="sk-test")
    fired: list[int] = []

    def on_progress(done: int, _total: int | None, _item: Any) -> None:
        if done >= 5 and not fired:
            fired.append(done)
            _thread.interrupt_main()

    try:
        with pytest.raises(KeyboardInterrupt):
            run_batch(client, [f"q{i}" for i in range(200)], max_concurrent=2, background=True, show=False,
                      on_progress=on_progress)
        assert client.last_run is not None
        result = client.last_run.result
    finally:
        client.close()
        slow.stop()
    assert result.stop_reason == "cancelled" and 5 <= result.successful_count < 200
    assert result.successful_count + result.failed_count == 200  # every prompt: an answer or an error


# -- the static snapshot ------------------------------------------------------------------------------------
def test_every_panel_bundle_has_an_escaped_script_free_snapshot_of_its_state() -> None:
    clock = FakeClock()
    progress = BatchProgress(100, title="<script>alert(1)</script>", clock=clock)
    ledger = Ledger(total=100, completed=42, succeeded=40, failed=2, started=clock.now)
    progress.update(ledger, force=True)
    data, _metadata = progress._repr_mimebundle_()
    assert set(data) == {"text/plain", WIDGET_VIEW, "text/html"}
    html = data["text/html"]
    assert "42/100 done" in html and "✔ 40 ok" in html and "✘ 2 failed" in html and 'width:42.0%' in html
    assert "<script" not in html.lower() and "&lt;script&gt;" in html and len(html) < 50_000
    progress.finish(_finished(100))
    final = progress._repr_mimebundle_()[0]["text/html"]
    assert "100/100 done" in final and "✔ 100 ok" in final and "width:100.0%" in final and "#4caf50" in final


def _finished(n: int) -> BatchResult:
    result = BatchResult(model="gpt-4.1-mini", provider="openai")
    for i in range(n):
        result.prompts.append(f"p{i}")
        result.record(i, Response(content=f"a{i}", model="gpt-4.1-mini", usage=Usage(10, 20), latency_s=0.1))
    result.total_duration_seconds = 1.0
    return result


# -- nbconvert --to html -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str]:
    """A notebook run in a real kernel and saved without widget state (JupyterLab's default; GitHub never
    renders widgets anyway), and its ``nbconvert --to html`` export."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from seeds_nb import MockServer, OpenAIClient\nfrom seeds_nb.mock import Fault\n"
            "from seeds_nb.widgets import run_batch\n"
            "server = MockServer(latency_s=0.0).start()\n"
            "server.add_fault(Fault(kind='status', status=400, match='question 17 '))\n"
            "client = OpenAIClient('gpt-4.1-mini', base_url=server.url, api_key='sk-test')\n"
            "prompts = [f'question {i} ' for i in range(300)]"),
        nbformat.v4.new_code_cell("result = await run_batch(client, prompts, max_concurrent=8, title='<i>static</i>')"),
        nbformat.v4.new_code_cell("print(result.successful_count, result.failed_count, result.total_cost_usd)"),
    ]
    work = tmp_path_factory.mktemp("static")
    NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=False,
                   resources={"metadata": {"path": str(work)}}).execute()
    body, _resources = HTMLExporter().from_notebook_node(nb)
    return nb, body


def test_nbconvert_html_of_an_executed_notebook_shows_the_final_panel(exported: tuple[Any, str]) -> None:
    """The export shows the run's final numbers as plain markup."""
    nb, body = exported
    ok, failed, cost = nb.cells[2].outputs[0]["text"].split()
    assert (ok, failed) == ("299", "1")
    panel_output = next(o for o in nb.cells[1].outputs
                        if "seeds-batch-progress-snapshot" in o["data"].get("text/html", ""))
    assert WIDGET_VIEW in panel_output["data"]  # the live view is still there for frontends that render it
    snapshot = re.search(r'<div class="seeds-snapshot seeds-batch-progress-snapshot".*?</div></div>', body, re.S)
    assert snapshot is not None, "the panel's snapshot is not in the exported HTML"
    start = snapshot.start()
    text = re.sub(r"<[^>]+>", "", body[start:start + 5000])
    assert "300/300 done" in text and "✔ 299 ok" in text and "✘ 1 failed" in text and "partial" in text
    assert f"${float(cost):.4f}" in text  # the spend line, as the panel shows it
    assert "&lt;i&gt;static&lt;/i&gt;" in body[start:start + 5000]  # the title, escaped


@pytest.mark.slow
def test_the_export_shows_the_snapshot_in_a_browser_without_javascript(exported: tuple[Any, str],
                                                                       tmp_path: Path) -> None:
    """Rendered as GitHub renders a notebook (no script runs), the panel's final state is visible."""
    harness.require_chromium()
    _nb, body = exported
    ARTIFACTS.mkdir(exist_ok=True)
    page_file = ARTIFACTS / "widgets-static.html"
    page_file.write_text(body, encoding="utf-8")
    with harness.chromium_page(tmp_path / "profile", width=1100, height=700, javascript=False) as page:
        page.goto(page_file.as_uri())
        snapshot = page.locator(".seeds-batch-progress-snapshot")
        assert snapshot.is_visible()
        text = snapshot.inner_text()
        assert "300/300 done" in text and "✔ 299 ok" in text and "<i>static</i>" in text
        snapshot.screenshot(path=str(ARTIFACTS / "widgets-static.png"))
    if os.environ.get("SEEDS_UPDATE_DOCS_IMG") == "1":
        shutil.copy(ARTIFACTS / "widgets-static.png", REPO / "docs" / "img" / "widgets-static.png")


def test_the_confirm_gate_snapshot_shows_the_estimate_and_the_choice(shared_server: MockServer) -> None:
    client = OpenAIClient("gpt-4.1-mini", base_url=shared_server.url, api_key="sk-test")
    try:
        pending = run_batch(client, ["<b>one</b>", "two"], confirm=True, show=False)
    finally:
        client.close()
    gate = pending.confirm
    assert gate is not None
    data = gate._repr_mimebundle_()
    html = data["text/html"]
    assert "seeds-confirm-snapshot" in html and "nothing is sent until you click Run" in html
    assert "2 prompts to gpt-4.1-mini" in html and "cost ≈ $" in html
    gate.decide(False)
    html = gate._repr_mimebundle_()["text/html"]
    assert "not sent" in html and "<script" not in html.lower() and "&lt;b&gt;one" in html
