"""Every Python block in README.md and docs/*.md runs, in order, one namespace per page.

Blocks are notebook cells: top-level ``await`` runs on one persistent event loop per page, as in
a kernel. Pages whose blocks need a kernel (widgets, magic) are exercised by the notebook tests.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Their blocks are notebook cells (top-level await, magics): run in a kernel by
# tests/test_magic_kernel.py::test_docs_magic_page_runs_as_notebook_cells and
# tests/test_widgets_kernel.py::test_docs_page_runs_as_notebook_cells.
KERNEL_ONLY = {"magic.md", "widgets.md"}
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)


def run_blocks(blocks: list[str]) -> None:
    import asyncio

    ns: dict[str, object] = {"__name__": "__docs__"}
    with asyncio.Runner() as runner:
        for code in blocks:
            try:
                compiled = compile(code, "<doc>", "exec")
            except SyntaxError:
                compiled = compile(code, "<doc>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
                coro = eval(compiled, ns)
                if coro is not None:
                    runner.run(coro)
                continue
            exec(compiled, ns)
        # A notebook would keep these open; a test closes what the page left open.
        from seeds_nb import BaseClient, MockServer

        for value in list(ns.values()):
            if isinstance(value, BaseClient):
                runner.run(value.aclose())
            elif isinstance(value, MockServer):
                value.stop()


@pytest.mark.parametrize("page", [p for p in PAGES if p.name not in KERNEL_ONLY], ids=lambda p: p.name)
def test_page_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(page)
    run_blocks(blocks)


def test_every_page_is_linked_from_the_index() -> None:
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    for page in (ROOT / "docs").glob("*.md"):
        if page.name != "index.md":
            assert f"({page.name})" in index, f"docs/index.md does not link {page.name}"


def test_api_reference_is_up_to_date() -> None:
    import subprocess
    import sys

    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_api_docs.py"), "--check"])
    assert check.returncode == 0, "docs/api.md is stale: run .venv/bin/python scripts/gen_api_docs.py"
