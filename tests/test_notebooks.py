"""The committed notebooks, checked as files: executed, small, honest about their outputs, no leaks.

Running them is nbval's job (``pytest --nbval-lax --nbval-sanitize-with notebooks/nbval_sanitize.cfg
notebooks/``). These checks need no kernel. They catch a notebook committed without outputs, or
edited in place without being executed again, or with a saved temp path, a key or an error in it.
They also catch a plotly cell that nbval could not compare, and a notebook missing from
docs/notebooks.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
EXPECTED = [
    "01_quickstart.ipynb", "02_batch_processing.ipynb", "03_cell_magic.ipynb", "04_reliability.ipynb",
    "05_cost_and_carbon.ipynb", "06_teaching_concurrency.ipynb", "07_providers_and_batch_api.ipynb",
    "08_datasets.ipynb",
]
MAX_BYTES = 1_000_000
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PLOTLY = "application/vnd.plotly.v1+json"
# What must never be saved in an output: local paths (temp dirs, home dirs) and anything key-like.
LEAK = re.compile(r"/tmp/|/var/folders/|/private/var/|/home/|/root/|/Users/|\\Temp\\|\bsk-[A-Za-z0-9_-]{8,}"
                  r"|\bsk-ant-|OPENAI_API_KEY=\S|Bearer [A-Za-z0-9]")


def load(name: str) -> dict[str, Any]:
    return json.loads((NB_DIR / name).read_text(encoding="utf-8"))


def code_cells(nb: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell: dict[str, Any]) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def marked(cell: dict[str, Any], marker: str) -> bool:
    """nbval's markers: a ``# NBVAL_...`` comment line, or the equivalent cell tag."""
    tag = marker.lower().replace("_", "-")
    return marker in source(cell) or tag in cell.get("metadata", {}).get("tags", [])


def test_the_notebooks_are_there() -> None:
    assert sorted(p.name for p in NB_DIR.glob("*.ipynb")) == EXPECTED
    assert (NB_DIR / "nbval_sanitize.cfg").is_file()


@pytest.mark.parametrize("name", EXPECTED)
def test_small_enough_to_review(name: str) -> None:
    size = (NB_DIR / name).stat().st_size
    assert size < MAX_BYTES, f"{name} is {size:,} bytes; keep plotted batches small"


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_as_executed_from_a_clean_kernel(name: str) -> None:
    counts = [c["execution_count"] for c in code_cells(load(name))]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{name}: execution counts {counts} - execute it top to bottom in a fresh kernel (docs/notebooks.md)")


@pytest.mark.parametrize("name", EXPECTED)
def test_no_unexpected_errors(name: str) -> None:
    for cell in code_cells(load(name)):
        errors = [o for o in cell["outputs"] if o["output_type"] == "error"]
        if "raises-exception" not in cell.get("metadata", {}).get("tags", []):
            assert not errors, f"{name}: a cell failed: {source(cell)[:80]!r}"


@pytest.mark.parametrize("name", EXPECTED)
def test_widget_state_is_saved(name: str) -> None:
    """A reader of the saved notebook sees each panel's final state, not an empty box."""
    nb = load(name)
    shown = {o["data"][WIDGET_VIEW]["model_id"] for c in code_cells(nb) for o in c["outputs"]
             if WIDGET_VIEW in o.get("data", {})}
    state = nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    assert shown <= set(state), f"{name}: {len(shown - set(state))} displayed widgets have no saved state"


@pytest.mark.parametrize("name", EXPECTED)
def test_no_paths_or_keys_in_outputs(name: str) -> None:
    nb = load(name)
    saved = [json.dumps(c["outputs"]) for c in code_cells(nb)] + [json.dumps(nb["metadata"].get("widgets", {}))]
    for text in saved:
        match = LEAK.search(text)
        assert match is None, f"{name}: an output contains {text[max(match.start() - 40, 0):match.end() + 40]!r}"


@pytest.mark.parametrize("name", EXPECTED)
def test_outputs_are_really_compared(name: str) -> None:
    """Some deterministic cells are checked even under --nbval-lax; measured figures are not."""
    cells = code_cells(load(name))
    assert sum(marked(c, "NBVAL_CHECK_OUTPUT") for c in cells) >= 2, f"{name}: mark a few deterministic cells"
    for cell in cells:
        if any(PLOTLY in o.get("data", {}) for o in cell["outputs"]):
            assert marked(cell, "NBVAL_IGNORE_OUTPUT"), f"{name}: a plotly cell lacks NBVAL_IGNORE_OUTPUT"
            assert not marked(cell, "NBVAL_CHECK_OUTPUT")


@pytest.mark.parametrize("name", EXPECTED)
def test_offline_by_default_and_says_how_to_go_online(name: str) -> None:
    nb = load(name)
    intro = " ".join(source(c) for c in nb["cells"][:3] if c["cell_type"] == "markdown")
    assert "OPENAI_API_KEY" in intro and re.search(r"real\s+(model|provider)", intro), (
        f"{name}: say near the top which line switches to a real provider")
    code = "\n".join(source(c) for c in code_cells(nb))
    assert "MockServer(" in code or 'SeedsBatch.provider = "mock"' in code
    # Caches go to a temporary directory that the notebook deletes, never into notebooks/.
    assert not re.search(r"cache_dir\s*=\s*[\"'][^\"']", code), f"{name}: a literal cache_dir path"
    if "%%seeds_batch" in code:
        assert "%config SeedsBatch.cache_dir" in code, f"{name}: point the magic's cache at a temp dir"
    if "mkdtemp" in code:
        assert "rmtree" in code, f"{name}: delete the temporary cache at the end"


@pytest.mark.parametrize("name", EXPECTED)
def test_described_in_docs(name: str) -> None:
    assert name in (ROOT / "docs" / "notebooks.md").read_text(encoding="utf-8")
