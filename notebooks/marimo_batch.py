# /// script
# requires-python = ">=3.11"
# dependencies = ["seeds_nb[notebook]", "marimo"]
# ///
"""A batch in marimo: the same panel and results grid as in Jupyter, through ``mo.ui.anywidget``.

Run it with ``marimo edit notebooks/marimo_batch.py`` (or ``marimo run``). Offline: every request goes to
the embedded mock server. tests/test_browser_marimo.py runs it in Chromium.
"""

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell
def _():
    import marimo as mo

    from seeds_nb import MockServer, OpenAIClient
    from seeds_nb.mock import Fault
    from seeds_nb.widgets import run_batch
    return Fault, MockServer, OpenAIClient, mo, run_batch


@app.cell
def _(mo):
    mo.md(
        """
        # seeds_nb in marimo

        marimo renders anywidgets (not stock ipywidgets), and the seeds_nb panel and results grid are
        anywidgets: wrap each in `mo.ui.anywidget`. `run_batch(..., show=False)` creates the widgets
        without displaying them; a cell shows them, the next one awaits the batch while they update
        live. Once it ended, scroll the grid, click a row for its full prompt and answer, sort by a
        column, filter by status or search the text.
        """
    )
    return


@app.cell
def _(Fault, MockServer, OpenAIClient):
    server = MockServer(latency_s=0.0).start()
    server.add_fault(Fault(kind="status", status=400, rate=0.002))  # a few prompts fail for good
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key="sk-test")
    prompts = [f"Summarise abstract #{i} in one sentence." for i in range(3_000)]
    return client, prompts


@app.cell
def _(client, mo, prompts, run_batch):
    batch = run_batch(client, prompts, max_concurrent=32, show=False)
    mo.vstack([mo.ui.anywidget(batch.progress), mo.ui.anywidget(batch.grid)])
    return (batch,)


@app.cell
async def _(batch, mo):
    result = await batch
    mo.md(f"BATCH-DONE {result.successful_count} ok, {result.failed_count} failed")
    return


@app.cell
def _(mo):
    mo.md(
        """
        ## In the background, with Cancel

        marimo handles a click on a widget between cells, not while a cell runs: to stop a long batch
        with **Cancel**, run it with `background=True` (the cell returns at once and the panel keeps
        moving). A foreground batch is stopped with marimo's own interrupt button.
        """
    )
    return


@app.cell
def _(MockServer, OpenAIClient, mo, run_batch):
    slow_server = MockServer(latency_s=0.1).start()
    slow_client = OpenAIClient("gpt-4.1-mini", base_url=slow_server.url, api_key="sk-test")
    handle = run_batch(slow_client, [f"Question {i}" for i in range(400)], max_concurrent=4, grid=False,
                       background=True, show=False, title="background")
    mo.ui.anywidget(handle.progress)
    return (handle,)


if __name__ == "__main__":
    app.run()
