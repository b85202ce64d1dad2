"""Browser-test harness: an isolated JupyterLab, Notebook 7 or marimo server and a Debian-chromium page
driven by playwright.

Why these settings (measured, see the project's notes on Jupyter mechanics): the server must allow
root (CI runs as root), must not restore old workspaces or fetch news (isolated config/data dirs,
read-only extension manager, no update checks), and must still find the ipywidgets and plotly lab
extensions, which live in the venv's ``share/jupyter/labextensions`` (on ``jupyter_path`` whatever
``JUPYTER_DATA_DIR`` says). Chromium is Debian's; no browser is downloaded. Every request that is
not loopback is aborted, so the test runs offline.

Test modules import it as ``from browser import harness`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
APPS = {"lab": "jupyterlab", "notebook": "notebook"}
"""The Jupyter frontends the widget tests run in: test id -> the server's module (``python -m ...``)."""
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
DOCS_IMG = REPO / "docs" / "img"
NOTEBOOK_SETTINGS = '{"windowingMode": "none"}'
"""JupyterLab's and Notebook 7's notebook settings for the tests: every cell stays in the DOM, so
locators see every panel however far down the notebook it is."""

PANEL_PROGRESS = """([index, total, least]) => {
    const panel = document.querySelectorAll('.seeds-batch-progress')[index];
    const match = panel && panel.innerText.match(new RegExp('(\\\\d+)/' + total + ' done'));
    return !!match && Number(match[1]) >= least;
}"""


@dataclass
class LabServer:
    url: str
    token: str
    root: Path
    log: Path
    app: str = "jupyterlab"

    def notebook_url(self, name: str) -> str:
        """JupyterLab: a fresh workspace each time, so nothing from an earlier session is restored;
        Notebook 7: one notebook per page (it keeps no workspace)."""
        if self.app == "notebook":
            return f"{self.url}/notebooks/{name}?token={self.token}"
        return f"{self.url}/lab/workspaces/t{uuid.uuid4().hex[:8]}/tree/{name}?token={self.token}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def jupyterlab(work: Path, timeout_s: float = 60, app: str = "jupyterlab") -> Iterator[LabServer]:
    """Start JupyterLab (or Notebook 7: ``app="notebook"``) on 127.0.0.1 with everything user-level
    redirected into ``work``."""
    root, config, data, runtime = (work / name for name in ("root", "config", "data", "runtime"))
    for path in (root, config, data, runtime):
        path.mkdir(parents=True, exist_ok=True)
    port, token = free_port(), uuid.uuid4().hex
    settings = {
        "ServerApp": {"ip": "127.0.0.1", "port": port, "port_retries": 0, "root_dir": str(root),
                      "allow_root": True, "open_browser": False, "terminals_enabled": False},
        "IdentityProvider": {"token": token},
        "LabApp": {"extension_manager": "readonly", "news_url": None,
                   "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
    }
    (config / "jupyter_server_config.json").write_text(json.dumps(settings))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_DATA_DIR": str(data),
           "JUPYTER_RUNTIME_DIR": str(runtime), "IPYTHONDIR": str(work / "ipython"),
           "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    notebook_settings = config / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True, exist_ok=True)
    (notebook_settings / "tracker.jupyterlab-settings").write_text(NOTEBOOK_SETTINGS)
    log = work / f"{app}.log"
    with _serve([sys.executable, "-m", app, "--no-browser"], root, env, log) as proc:
        server = LabServer(f"http://127.0.0.1:{port}", token, root, log, app)
        _wait_http(f"{server.url}/api/status?token={server.token}", proc, log, app, timeout_s)
        yield server


@contextmanager
def _serve(command: Sequence[str], cwd: Path, env: dict[str, str],
           log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server for the ``with`` block, its output in ``log``; stop it (terminate, then kill) after."""
    with log.open("wb") as log_file:
        proc = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class MarimoServer:
    url: str
    log: Path


@contextmanager
def marimo_app(notebook: Path, work: Path, timeout_s: float = 60) -> Iterator[MarimoServer]:
    """``marimo run notebook.py`` headless on 127.0.0.1 (every cell runs when a page connects), with its
    user config, cache and state redirected into ``work`` and no update check."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "MARIMO_SKIP_UPDATE_CHECK": "1", "XDG_CONFIG_HOME": str(work / "config"),
           "XDG_CACHE_HOME": str(work / "cache"), "XDG_STATE_HOME": str(work / "state"),
           "XDG_DATA_HOME": str(work / "data")}
    log = work / "marimo.log"
    marimo_cli = Path(sys.executable).with_name("marimo")
    command = [str(marimo_cli), "-q", "run", str(notebook), "--headless", "--host", "127.0.0.1", "--port", str(port),
               "--no-token", "--no-sandbox", "--no-check"]
    with _serve(command, notebook.parent, env, log) as proc:
        server = MarimoServer(f"http://127.0.0.1:{port}", log)
        _wait_http(f"{server.url}/", proc, log, "marimo", timeout_s)
        yield server


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, name: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)  # polling a server that is starting: nothing to wait on but time
    raise TimeoutError(f"{name} did not answer in {timeout_s} s:\n{log.read_text()[-3000:]}")


@contextmanager
def chromium_page(profile: Path, width: int = 1400, height: int = 1100, *, javascript: bool = True) -> Iterator[Any]:
    """A playwright page in Debian's chromium; non-loopback requests are aborted. ``javascript=False``
    shows a page as GitHub shows a notebook's HTML (scripts stripped)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height}, device_scale_factor=1, java_script_enabled=javascript)
        try:
            context.route("**/*", _offline_only)
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()


def _offline_only(route: Any) -> None:
    parsed = urlparse(route.request.url)
    if parsed.scheme in ("data", "blob", "file") or (parsed.hostname or "") in LOOPBACK:
        route.continue_()
    else:
        route.abort()


def open_notebook(page: Any, server: LabServer, name: str, timeout_ms: int = 90_000) -> None:
    """Open ``name`` and wait until its kernel is idle (then Run All is reliable)."""
    page.goto(server.notebook_url(name), timeout=timeout_ms)
    page.wait_for_selector(".jp-Notebook", timeout=timeout_ms)
    if server.app == "notebook":  # no status bar: the toolbar names the kernel once it is started
        page.locator(".jp-KernelName", has_text="Python 3").first.wait_for(timeout=timeout_ms)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_ms)
    if server.app != "notebook":
        page.get_by_text("| Idle").first.wait_for(timeout=timeout_ms)


def run_all_cells(page: Any) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def wait_for_output(page: Any, marker: str, timeout_ms: int) -> str:
    """The text of the first output (not cell source) that contains ``marker``."""
    output = page.locator(".jp-OutputArea-output", has_text=marker).first
    output.wait_for(timeout=timeout_ms)
    return str(output.inner_text())


def wait_for_panel(page: Any, index: int, total: int, least: int, timeout_ms: int) -> None:
    """Wait until the ``index``-th panel on the page shows at least ``least`` of ``total`` done."""
    page.wait_for_function(PANEL_PROGRESS, arg=[index, total, least], timeout=timeout_ms)


def screenshot(target: Any, name: str, *, full_page: bool = False, docs: bool = True) -> Path:
    """Save a screenshot of a locator (or a whole page) as ``test-artifacts/name``; with
    ``SEEDS_UPDATE_DOCS_IMG=1`` and ``docs`` also as ``docs/img/name`` (the images the docs show)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    if full_page:
        target.screenshot(path=str(path), full_page=True)
    else:
        target.screenshot(path=str(path))
    if docs and os.environ.get("SEEDS_UPDATE_DOCS_IMG") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMG / name)
    return path


def require_chromium() -> None:
    """Skip where chromium cannot be had (no apt-get); fail where `make install` would have installed it."""
    import pytest

    status = chromium_status()
    if status == "skip":
        pytest.skip(f"{CHROMIUM} is missing and apt-get is unavailable to install Debian's chromium")
    if status == "install":
        pytest.fail(f"{CHROMIUM} is missing: run `make install` as root (scripts/install_browser.sh "
                    "installs Debian's chromium with apt-get)")


def chromium_status() -> str | None:
    """None when chromium is there; otherwise why the browser test cannot run."""
    if Path(CHROMIUM).exists():
        return None
    if shutil.which("apt-get") is None:
        return "skip"
    return "install"
