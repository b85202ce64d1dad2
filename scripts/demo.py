"""`make demo`: open the quickstart notebook in JupyterLab, offline on the mock server.

JupyterLab listens on 127.0.0.1 only, runs as root when it must (CI machines, containers), and
never tries to open a browser: it prints the URL to open. ``--headless`` instead executes the
quickstart notebook in a kernel and writes an HTML copy, for machines without a browser.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "notebooks" / "01_quickstart.ipynb"


def run_lab(port: int) -> int:
    # The lab's default URL is the quickstart, so the URL Jupyter prints (with its token) opens it;
    # a file argument alone only reaches a browser that Jupyter opens itself, and it opens none here.
    notebook = QUICKSTART.relative_to(ROOT).as_posix()
    args = [
        sys.executable, "-m", "jupyterlab",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={ROOT}", f"--LabApp.default_url=/lab/tree/{notebook}", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--ServerApp.allow_root=True")
    print("Starting JupyterLab on 127.0.0.1 with notebooks/01_quickstart.ipynb (offline, mock server).")
    print("Open the http://127.0.0.1:... URL printed below (with its token) in your browser; Ctrl-C stops it.",
          flush=True)
    return subprocess.call(args, cwd=ROOT)


def run_headless(out: Path) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    # nbconvert's HTML cannot show plotly's mimetype output; inline plotly.js so the page works offline.
    os.environ.setdefault("PLOTLY_RENDERER", "plotly_mimetype+notebook")
    nb = nbformat.read(QUICKSTART, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(QUICKSTART.parent)}},
                   store_widget_state=True).execute()
    html, _ = HTMLExporter().from_notebook_node(nb)
    out.write_text(html, encoding="utf-8")
    print(f"Executed {QUICKSTART.name} offline; wrote {out}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--headless", action="store_true", help="execute the quickstart and write HTML instead")
    parser.add_argument("--out", type=Path, default=ROOT / "quickstart.html")
    args = parser.parse_args()
    if not QUICKSTART.exists():
        print(f"missing {QUICKSTART}", file=sys.stderr)
        return 1
    return run_headless(args.out) if args.headless else run_lab(args.port)


if __name__ == "__main__":
    raise SystemExit(main())
