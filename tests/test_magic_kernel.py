"""``%%seeds_batch`` in real ipykernel kernels: notebooks run with nbclient, and a jupyter_client
session for what a notebook runner cannot do (a kernel interrupt, a Cancel click mid-cell).

Every kernel gets an environment without OPENAI_*/ANTHROPIC_* variables, so the magic picks the
embedded mock server exactly as it does for a new user without a key.
"""

from __future__ import annotations

import os
import queue
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel
from nbclient import NotebookClient

from seeds_nb import MockServer

pytestmark = pytest.mark.slow

FAST = "%load_ext seeds_nb\n%config SeedsBatch.mock_latency_s = 0.02"


def kernel_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}


def execute_notebook(cells: list[str], cwd: Path, *, allow_errors: bool = False,
                     env: dict[str, str] | None = None) -> Any:
    """Execute a notebook of code cells in a fresh kernel; return the executed notebook."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute(env={**kernel_env(), **(env or {})})
    return nb


def run_notebook(cells: list[str], cwd: Path, *, allow_errors: bool = False,
                 env: dict[str, str] | None = None) -> list[Any]:
    """Execute a notebook of code cells in a fresh kernel; return its executed cells."""
    return list(execute_notebook(cells, cwd, allow_errors=allow_errors, env=env).cells)


def text_of(cell: Any, *names: str) -> str:
    """The cell's stream output (stdout/stderr), text/plain displays and error lines, joined."""
    parts: list[str] = []
    for out in cell.outputs:
        if out.output_type == "stream" and (not names or out.name in names):
            parts.append(out.text)
        elif out.output_type in ("display_data", "execute_result") and not names:
            parts.append(out.data.get("text/plain", ""))
        elif out.output_type == "error" and not names:
            parts.extend(out.traceback)
    return "".join(parts)


def _basics_cells() -> list[str]:
    return [
        "%load_ext seeds_nb",
        # 1: what a new user types, no setup, no key
        "%%seeds_batch\nWhat is a seed?\nName three trees.\nWhy do leaves fall?\n",
        "assert seeds_result.successful_count == 3, seeds_result\nprint('first run ok')",
        "%config SeedsBatch.mock_latency_s = 0.02\n"
        "import pandas as pd\ntopic = 'rivers'\ncities = ['Paris', 'Oslo']\n"
        "people = pd.DataFrame({'name': ['Ada', 'Linus'], 'field': ['maths', 'kernels']})",
        # 4: multi-line prompts and {names}; --over a list and a DataFrame; --system with names
        "%%seeds_batch --out multi\nWrite a haiku\nabout {topic}.\n---\nList two\nprime numbers.\n",
        "%%seeds_batch --out by_city --over cities\nDescribe {item}, city of {topic}.\n",
        '%%seeds_batch --out by_person --over people --system "You know {topic}."\n{name} worked on {field}.\n',
        "assert multi.prompts == ['Write a haiku\\nabout rivers.', 'List two\\nprime numbers.'], multi.prompts\n"
        "assert by_city.prompts == ['Describe Paris, city of rivers.', 'Describe Oslo, city of rivers.']\n"
        "assert by_person.prompts == ['Ada worked on maths.', 'Linus worked on kernels.'], by_person.prompts\n"
        "assert len(by_person.to_pandas()) == 2 and by_person.failed_count == 0\nprint('rendering ok')",
        # 8: dry run
        "%%seeds_batch --dry-run --max-tokens 100 --over cities --out never\nDescribe {item}.\n",
        "assert 'never' not in globals()\nprint('dry run bound nothing')",
        # 10: the cache is on by default; --no-cache ignores it
        "%%seeds_batch --out cold\nalpha\nbeta\ngamma\ndelta\n",
        "%%seeds_batch\nalpha\nbeta\ngamma\ndelta\n",
        "%%seeds_batch --no-cache --out fresh\nalpha\nbeta\ngamma\ndelta\n",
        "assert cold.cached_count == 0 and seeds_result.cached_count == 4 and fresh.cached_count == 0\n"
        "print('cache ok', seeds_result.cached_count)",
        # 14: background, then waiting on the handle in later cells (blocking, then await)
        "%%seeds_batch --background --out bg --max-concurrent 2 --no-cache\none\ntwo\nthree\nfour\nfive\nsix\n",
        "r = bg_run.result(timeout=30)\nassert bg is r and bg.successful_count == 6 and bg_run.done()\n"
        "print('background ok')",
        "%%seeds_batch --background --out bg2 --no-cache\nseven\neight\n",
        "r2 = await bg2_run\nassert bg2 is r2 and r2.successful_count == 2\nprint('awaited background ok')",
        # 18: --plot
        "%%seeds_batch --plot --no-grid --out plotted\nplot me\n",
    ]


def test_magic_notebook_basics(tmp_path: Path) -> None:
    cells = run_notebook(_basics_cells(), tmp_path)  # any error output fails the run
    first = cells[1]
    assert "using the offline mock server at http://127.0.0.1:" in text_of(first, "stdout")
    widget_views = [o for o in first.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widget_views) == 2  # the live panel and the results grid
    assert not [o for o in first.outputs if o.output_type == "execute_result"]  # nothing echoed
    assert "first run ok" in text_of(cells[2])
    assert "using the offline mock server" not in text_of(cells[4])  # the notice is shown once per kernel
    assert "rendering ok" in text_of(cells[7])
    dry = text_of(cells[8])
    assert "dry run - nothing sent: 2 prompts" in dry and "Describe Oslo." in dry
    assert "output 10–100 tokens per prompt" in dry
    assert "dry run bound nothing" in text_of(cells[9])
    assert "cache ok 4" in text_of(cells[13])
    assert "background ok" in text_of(cells[15]) and "awaited background ok" in text_of(cells[17])
    plot_outputs = [o for o in cells[18].outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(plot_outputs) == 1
    assert (tmp_path / ".seeds_cache").is_dir()  # the default cache directory, relative to the notebook


def test_bad_input_gives_one_clean_line(tmp_path: Path) -> None:
    cases = [
        ("%%seeds_batch --frobnicate\nhi\n", "unrecognized arguments: --frobnicate"),
        ("%%seeds_batch\nhi {nobody_defined_this}\n", "unknown name {nobody_defined_this}"),
        ("%%seeds_batch\n\n\n", "the cell has no prompts"),
        ("%%seeds_batch --max-concurrent 0\nhi\n", "--max-concurrent must be at least 1; got 0"),
        ("%%seeds_batch --temperature -0.5\nhi\n", "--temperature must be >= 0"),
        ("%%seeds_batch --provider anthropic\nhi\n", "ANTHROPIC_API_KEY"),
        ("%%seeds_batch --submit --budget-usd 1\nhi\n", "--budget-usd does not apply to --submit"),
        ("%%seeds_batch --provider openai\nhi\n", "OPENAI_API_KEY"),
        ("%%seeds_batch --over missing_list\n{item}\n", "no variable named 'missing_list'"),
    ]
    cells = run_notebook([FAST, *(cell for cell, _ in cases), "print('still alive')"], tmp_path,
                         allow_errors=True)
    for cell, (_, needle) in zip(cells[1:-1], cases, strict=True):
        assert [o.output_type for o in cell.outputs] == ["stream"], cell.outputs  # no traceback output
        err = text_of(cell, "stderr")
        assert err.startswith("UsageError: ") and needle in err and err.count("\n") == 1, err
        for noise in ("Traceback", "argparse", "site-packages", "SystemExit", "KeyError"):
            assert noise not in err
    assert "still alive" in text_of(cells[-1])


def test_submit_and_anthropic_in_a_notebook(tmp_path: Path) -> None:
    """``--submit`` on the embedded mock, then ``--provider anthropic`` (direct and ``--submit``) against a
    mock set through ANTHROPIC_BASE_URL; the saved widget state holds the monitor's final state."""
    nb = execute_notebook([
        "%load_ext seeds_nb\n%config SeedsBatch.mock_batch_duration_s = 0.3",
        "%%seeds_batch --submit --poll-interval 0.05 --out sub\nWhat is a seed?\nName a tree.\n",
        "assert sub.successful_count == 2 and sub_job.status == 'completed', (sub, sub_job)\n"
        "print('submit ok', type(sub_job).__name__)",
        "import os\nfrom seeds_nb import MockServer\nclaude_server = MockServer(batch_duration_s=0.3).start()\n"
        "os.environ['ANTHROPIC_BASE_URL'] = claude_server.anthropic_url",
        "%%seeds_batch --provider anthropic --no-cache --out claude\nHello Claude.\nName a river.\n",
        "assert (claude.provider, claude.model, claude.successful_count) == ('anthropic', 'claude-haiku-4-5', 2)\n"
        "assert {r['path'] for r in claude_server.requests} == {'/v1/messages'}\nprint('anthropic ok')",
        "%%seeds_batch --provider anthropic --submit --poll-interval 0.05 --out by_job\nSummarise a river.\n",
        "assert by_job.successful_count == 1 and by_job_job.raw_status == 'ended' and by_job.provider == 'anthropic'\n"
        "print('anthropic submit ok')",
    ], tmp_path)
    cells = nb.cells
    assert "using the offline mock server" in text_of(cells[1], "stdout")
    displayed = [o.data["text/plain"] for o in cells[1].outputs if o.output_type == "display_data"]
    # The saved text/plain is the final state (updated through the display id), not the first draw.
    assert displayed[0].startswith("BatchJobMonitor: completed · 2/2 done · 2 ok · 0 failed")
    assert displayed[1] == "ResultsGrid: 2 rows (2 ok)"
    assert "submit ok BatchJob" in text_of(cells[2])
    assert "anthropic ok" in text_of(cells[5]) and "anthropic submit ok" in text_of(cells[7])
    assert "BatchJobMonitor: completed · 1/1 done" in text_of(cells[6])  # Anthropic counts at the end
    models = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"].values()
    monitors = [m["state"]["stats"] for m in models if m["state"].get("kind") == "seeds-job-monitor"]
    assert len(monitors) == 2 and all(">completed</b>" in value for value in monitors)


def test_nest_asyncio_applied_first_still_works(tmp_path: Path) -> None:
    pytest.importorskip("nest_asyncio")
    cells = run_notebook([
        "import asyncio\nimport nest_asyncio\nnest_asyncio.apply()\n"
        "asyncio.get_event_loop().run_until_complete(asyncio.sleep(0))  # it is really applied",
        FAST,
        "%%seeds_batch\none\ntwo\nthree\n",
        "assert seeds_result.successful_count == 3, seeds_result\nprint('await path ok')",
        "get_ipython().run_cell_magic('seeds_batch', '--out sync_r --no-cache', 'a\\nb\\n')\n"
        "assert sync_r.successful_count == 2\nprint('sync path ok')",
        "%%seeds_batch --background --out bgn --no-cache\nx\ny\n",
        "assert bgn_run.result(timeout=30).successful_count == 2 and bgn.successful_count == 2\n"
        "print('background ok')",
    ], tmp_path)
    assert "await path ok" in text_of(cells[3])
    assert "sync path ok" in text_of(cells[4])
    assert "background ok" in text_of(cells[6])


# -- interrupt and Cancel, mid-cell ---------------------------------------------------------------
class Session:
    """A kernel driven message by message, to interrupt it or click a widget while a cell runs."""

    def __init__(self, km: KernelManager, kc: BlockingKernelClient) -> None:
        self.km, self.kc = km, kc

    def execute(self, code: str, *, interrupt_at: int | None = None, cancel_at: int | None = None,
                timeout: float = 30.0) -> tuple[list[dict[str, Any]], str]:
        """Run ``code``; returns (outputs, reply status).

        ``interrupt_at`` / ``cancel_at``: interrupt the kernel / click Cancel once the cell's panel is
        on screen (its panel was opened) and its bar shows at least that many finished
        requests: acting on events the frontend would see, never after a delay.
        """
        msg_id = self.kc.execute(code)
        started, outputs, acted = time.monotonic(), [], False
        cancel: str | None = None
        bars: set[str] = set()
        finished = 0
        while True:
            assert time.monotonic() - started < timeout, f"cell did not finish: {code[:60]!r}"
            if not acted and cancel is not None and interrupt_at is not None and finished >= interrupt_at:
                self.km.interrupt_kernel()
                acted = True
            if not acted and cancel is not None and cancel_at is not None and finished >= cancel_at:
                content = {"comm_id": cancel, "data": {"method": "custom", "content": {"event": "cancel"}}}
                self.kc.session.send(self.kc.shell_channel.socket, self.kc.session.msg("comm_msg", content))
                acted = True
            try:
                msg = self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "comm_msg" and content["comm_id"] in bars:  # updates may come from a worker thread
                finished = max(finished, content["data"].get("state", {}).get("bar_value", 0))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if kind == "comm_open":
                state = content["data"]["state"]
                if state.get("kind") in ("seeds-batch-progress", "seeds-job-monitor"):  # a panel (anywidget)
                    cancel = cancel or content["comm_id"]
                    bars.add(content["comm_id"])
                    finished = max(finished, state.get("bar_value", 0))
            elif kind in ("stream", "error", "display_data", "execute_result"):
                outputs.append({"type": kind, **content})
            elif kind == "status" and content["execution_state"] == "idle":
                break
        reply = self.kc.get_shell_msg(timeout=10)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=10)
        return outputs, reply["content"]["status"]

    def value(self, expression: str) -> str:
        outputs, status = self.execute(f"print({expression})")
        assert status == "ok", outputs
        return "".join(o.get("text", "") for o in outputs).strip()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    cwd = tmp_path_factory.mktemp("kernel")
    km, kc = start_new_kernel(kernel_name="python3", env=kernel_env(), cwd=str(cwd))
    try:
        s = Session(km, kc)
        _, status = s.execute("%load_ext seeds_nb\n%config SeedsBatch.mock_latency_s = 0.2")
        assert status == "ok"
        yield s
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


SLOW_BATCH = "%%seeds_batch --no-cache --max-concurrent 2 --out {out}\n" + "\n".join(f"p{i}" for i in range(20))


def test_kernel_interrupt_stops_the_cell_and_binds_the_partial_result(session: Session) -> None:
    outputs, status = session.execute(SLOW_BATCH.format(out="r_int"), interrupt_at=3)
    assert status == "error"  # so "Run all" stops here
    errors = [o for o in outputs if o["type"] == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "BatchInterrupted"
    assert errors[0]["traceback"] == [f"BatchInterrupted: {errors[0]['evalue']}"]  # one line, no plumbing
    assert "partial result is in r_int" in errors[0]["evalue"]
    ok, failed, reason = session.value("r_int.successful_count, r_int.failed_count, r_int.stop_reason").split()
    assert 0 < int(ok) < 20 and int(ok) + int(failed) == 20 and reason == "cancelled"
    assert session.value("[t.get_name() for t in __import__('asyncio').all_tasks() if 'seeds' in t.get_name()]") \
        == "[]"


def test_cancel_button_stops_only_the_batch(session: Session) -> None:
    outputs, status = session.execute(SLOW_BATCH.format(out="r_cancel"), cancel_at=3)
    assert status == "ok" and not [o for o in outputs if o["type"] == "error"]
    ok, failed, reason = session.value("r_cancel.successful_count, r_cancel.failed_count, "
                                       "r_cancel.stop_reason").split()
    assert 0 < int(ok) < 20 and int(ok) + int(failed) == 20 and reason == "cancelled"


def test_interrupting_run_cell_magic_cancels_cleanly(session: Session) -> None:
    code = ("get_ipython().run_cell_magic('seeds_batch', '--no-cache --max-concurrent 2 --out r_sync', "
            "'\\n'.join(f'q{i}' for i in range(20)))")
    outputs, status = session.execute(code, interrupt_at=3)
    assert status == "error"
    assert [o["ename"] for o in outputs if o["type"] == "error"] == ["KeyboardInterrupt"]
    assert "partial result is in r_sync" in "".join(o.get("text", "") for o in outputs)
    ok, failed = session.value("r_sync.successful_count, r_sync.failed_count").split()
    assert 0 < int(ok) < 20 and int(ok) + int(failed) == 20
    assert session.value("[t.name for t in __import__('threading').enumerate() if t.name == 'seeds_nb-sync']") \
        == "[]"


def test_submit_interrupt_stops_only_the_watching_then_cancel_ends_the_job(session: Session) -> None:
    """An interrupt while a --submit job is watched ends the cell (one line), binds the job, leaves it
    running; watching it again and clicking Cancel ends it cancelled, the cell normally."""
    assert session.execute("%config SeedsBatch.mock_batch_duration_s = 60")[1] == "ok"
    try:
        outputs, status = session.execute("%%seeds_batch --submit --poll-interval 0.05 --out r_job\njob one\n"
                                          "job two\n", interrupt_at=0)
        assert status == "error"
        errors = [o for o in outputs if o["type"] == "error"]
        assert len(errors) == 1 and errors[0]["ename"] == "BatchInterrupted"
        assert errors[0]["traceback"] == [f"BatchInterrupted: {errors[0]['evalue']}"]
        assert "r_job_job" in errors[0]["evalue"] and "goes on at the provider" in errors[0]["evalue"]
        assert session.value("r_job_job.done, 'r_job' in globals()") == "False False"
        outputs, status = session.execute("from seeds_nb.widgets import watch_job\n"
                                          "r_job = await watch_job(r_job_job, poll_interval=0.05)",
                                          cancel_at=0)
        assert status == "ok" and not [o for o in outputs if o["type"] == "error"]
        assert session.value("r_job_job.status, r_job.stop_reason, r_job.cancelled_count") == \
            "cancelled cancelled 2"
    finally:
        session.execute("%config SeedsBatch.mock_batch_duration_s = 2.0")


# -- docs/magic.md, run as notebook cells -------------------------------------------------------------
MAGIC_PAGE = Path(__file__).resolve().parent.parent / "docs" / "magic.md"
def magic_page_cells() -> list[str]:
    """The page's cells in order: ```python blocks, and unlabeled blocks that are cells (start with %);
    the other unlabeled blocks are sample output (a notice, a UsageError line)."""
    cells = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", MAGIC_PAGE.read_text(encoding="utf-8"), re.S):
        if lang == "python" or (not lang and body.startswith("%")):
            cells.append(body)
    return cells


def test_docs_magic_page_runs_as_notebook_cells(tmp_path: Path) -> None:
    """Every cell of docs/magic.md runs, in order, in one fresh kernel without keys and with no prelude of
    names (test_docs skips the page).

    As written, except: the two example servers (Ollama's port, a local Anthropic proxy) are this
    test's mock server, and ``--poll-interval 60`` polls every 0.05 s (the mock's job takes 0.2 s).
    """
    cells = magic_page_cells()
    assert len(cells) >= 25
    with MockServer() as server:
        edited = [cell.replace("http://localhost:11434/v1", server.url)
                  .replace("http://127.0.0.1:8765", server.anthropic_url)
                  .replace("--poll-interval 60", "--poll-interval 0.05") for cell in cells]
        assert sum(a != b for a, b in zip(cells, edited, strict=True)) == 3
        assert edited[0].strip() == "%load_ext seeds_nb"  # the page loads the magic itself
        # Only speed: the page defines every name it uses (no prelude); the environment points
        # `--provider anthropic` (no --base-url) at the mock, as ANTHROPIC_BASE_URL would a proxy.
        speed = "%config SeedsBatch.mock_latency_s = 0.0\n%config SeedsBatch.mock_batch_duration_s = 0.2"
        check = ("print(summaries.successful_count, bios.successful_count, overnight_run.result(timeout=60).provider,"
                 " seeds_result.model, verdicts.successful_count, len(pd.read_parquet(papers_file)))")
        (tmp_path / "work").mkdir()
        executed = run_notebook([edited[0], speed, *edited[1:], check], tmp_path / "work",
                                env={"HOME": str(tmp_path / "home"), "ANTHROPIC_BASE_URL": server.anthropic_url})
        assert {r["path"] for r in server.requests} >= {"/v1/chat/completions", "/v1/messages"}
    # A magic's UsageError is a line on stderr, not an error output: look for it in every cell.
    assert [c.source[:60] for c in executed if "UsageError" in text_of(c, "stderr")] == []
    assert text_of(executed[-1], "stdout").split() == ["3", "2", "anthropic", "gpt-4.1-mini", "2", "3"]
    assert (tmp_path / "home" / "llm-cache").is_dir()  # --cache-dir ~/llm-cache, under this test's HOME


def test_docs_quickstart_page_runs_as_notebook_cells(tmp_path: Path) -> None:
    """docs/quickstart.md as a notebook: its Python cells, then `run_batch` and the magic, in order
    (test_docs runs the Python blocks as a script; the script section's ``asyncio.run`` is left
    to it, since a kernel's loop is already running)."""
    page = MAGIC_PAGE.parent / "quickstart.md"
    cells = [body for lang, body in re.findall(r"```(\w*)\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
             if (lang == "python" and "asyncio.run(" not in body)
             or (not lang and (body.startswith("%") or "await run_batch(" in body))]
    assert any("await run_batch(" in c for c in cells) and any(c.startswith("%%seeds_batch") for c in cells)
    executed = run_notebook([*cells, "print(result.successful_count, seeds_result.successful_count)"], tmp_path)
    assert [c.source[:60] for c in executed if "UsageError" in text_of(c, "stderr")] == []
    assert any(o.output_type == "display_data" and "application/vnd.plotly.v1+json" in o.data
               for c in executed for o in c.outputs)  # result.plot()
    assert text_of(executed[-1], "stdout").split() == ["4", "2"]
