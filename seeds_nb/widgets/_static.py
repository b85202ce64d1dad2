"""``StaticSnapshot``: a ``text/html`` copy of what a widget shows, next to its live view.

Why: a widget view renders only where a widget manager runs and its state was saved. JupyterLab does
not save widget state by default, GitHub never renders widget views, and ``nbconvert --to html``
needs the widget JavaScript from a CDN. Every renderer picks the richest type it knows from an
output's mimebundle, so a plain, escaped ``text/html`` (no script, small) beside the view is what a
saved notebook shows of a batch there. The display is refreshed at the end of a run
(``_tree.refresh_fallback``), so what is saved is the final state.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SNAPSHOT_LIMIT", "StaticSnapshot", "snapshot_box"]

SNAPSHOT_LIMIT = 50_000
"""Most characters a snapshot may take in a saved notebook (it is sent once per display)."""


class StaticSnapshot:
    """Mixin for a widget class: adds ``snapshot_html()`` as ``text/html`` to its mimebundle."""

    def snapshot_html(self) -> str:
        """The widget's current state as static, escaped HTML without JavaScript."""
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        if bundle is None:
            return None
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, None)  # anywidget: (data, metadata)
        html = self.snapshot_html()
        if len(html) > SNAPSHOT_LIMIT:  # a subclass went over its budget: say so rather than bloat the notebook
            html = snapshot_box(f"<i>{type(self).__name__}: snapshot too large to save</i>")
        data = {**data, "text/html": html}
        return data if metadata is None else (data, metadata)


def snapshot_box(body: str, css_class: str = "") -> str:
    """The frame every snapshot is drawn in (inline styles only: static renderers drop ``<style>``)."""
    return (f'<div class="seeds-snapshot {css_class}" style="max-width:1100px;font-size:13px;'
            f'line-height:1.5">{body}</div>')
