"""Support for the browser tests (a Jupyter or marimo server and Debian chromium) and the widget
measurements; no tests here. Imported as ``from browser import harness``."""
