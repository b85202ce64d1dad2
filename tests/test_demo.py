"""`make demo` as a new user runs it: scripts/demo.py starts JupyterLab on 127.0.0.1 with the
quickstart open (checked over HTTP, then stopped), and ``--headless`` writes an executed HTML copy."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scripts" / "demo.py"
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def isolated_env(tmp_path: Path) -> dict[str, str]:
    """Jupyter's runtime and config files go to a temporary directory, not the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
    env.update(JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"))
    return env


def test_make_demo_serves_the_quickstart_on_loopback(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(DEMO), "--port", str(port)], cwd=ROOT, env=isolated_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(rf"http://127\.0\.0\.1:{port}/\S*token=\w+", line)
            url = found.group(0) if found else None
        assert url is not None, "".join(lines)
        assert "01_quickstart.ipynb" in url  # the lab opens the quickstart
        token = url.rsplit("token=", 1)[1]
        answer = httpx.get(f"http://127.0.0.1:{port}/api/contents/notebooks/01_quickstart.ipynb",
                           params={"token": token, "content": "0"}, timeout=30)
        assert answer.status_code == 200 and answer.json()["name"] == "01_quickstart.ipynb"
        assert "Starting JupyterLab on 127.0.0.1" in "".join(lines)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_make_demo_headless_writes_the_executed_quickstart(tmp_path: Path) -> None:
    out = tmp_path / "quickstart.html"
    done = subprocess.run([sys.executable, str(DEMO), "--headless", "--out", str(out)], cwd=ROOT,
                          env=isolated_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    html = out.read_text(encoding="utf-8")
    assert "Mock answer to" in html and "plotly" in html.lower()
    assert not list((ROOT / "notebooks").glob(".seeds_cache*"))  # nothing left in the repository
