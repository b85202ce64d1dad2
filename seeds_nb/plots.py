"""Plotly summaries of a ``BatchResult``: one dashboard and one figure per view.

Every function returns a ``plotly.graph_objects.Figure`` and never shows it, so the notebook
displays it (JupyterLab, Notebook 7, VS Code, exported HTML). Figures are built from
``result.to_pandas()`` (the frame users get, made once per call) by panel builders that the
dashboard shares with the single figures. Large batches are aggregated: histograms, binned rates,
bucketed bars, and cumulative lines thinned to ``MAX_POINTS``, so 100,000 requests stay cheap.
Cost and carbon count what this run spent; cache hits are shown as avoided.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

if TYPE_CHECKING:
    from seeds_nb.core.result import BatchResult

__all__ = ["COLORS", "MAX_POINTS", "carbon", "compare", "cost", "latency", "status", "summary", "timeline",
           "tokens"]

MAX_POINTS = 2000
"""Most points any trace gets: beyond it, lines are thinned and per-request bars are bucketed."""
COLORS = {"ok": "#4C78A8", "cached": "#54A24B", "failed": "#E45756", "cancelled": "#9D9D9D",
          "budget": "#F58518", "prompt": "#4C78A8", "completion": "#9ECAE9", "cost": "#B279A2",
          "carbon": "#2F6F4F", "band": "rgba(47,111,79,0.18)", "mean": "#8C6BB1", "p90": "#54278F"}
_BUCKETS = 500  # bars per panel once requests are bucketed
_BINS = 60  # most histogram / time bins
_EXCERPT = 80
_NUMERIC = ("started_s", "finished_s", "latency_s", "prompt_tokens", "completion_tokens", "cost_usd",
            "gwp_kgco2eq", "gwp_kgco2eq_min", "gwp_kgco2eq_max")
_STATUSES = ("ok", "cached", "failed", "cancelled", "budget")
_TIME = "time since batch start (s)"


class _Batch:
    """The result's frame, made once and normalised (None -> NaN), plus what titles need."""

    def __init__(self, result: BatchResult) -> None:
        df = result.to_pandas()
        self.arrays = {c: pd.to_numeric(df[c], errors="coerce").to_numpy(dtype="float64") for c in _NUMERIC}
        df = df.assign(**self.arrays)
        self.df, self.n = df, len(df)
        self.zone: str | None = result.electricity_mix_zone or _first(df["electricity_mix_zone"])
        self.model: str = result.model or _first(df["model"]) or "unknown model"
        self.duration_s = float(result.total_duration_seconds or 0.0)
        self.status = df["status"].to_numpy(dtype=object)  # numpy compares faster than string columns
        self.hit = self.status == "cached"
        self.grams = self.total("gwp_kgco2eq") * 1000
        self.has_range = bool(df["gwp_kgco2eq_min"].notna().any() and df["gwp_kgco2eq_max"].notna().any())
        self.head = f"{self.n:,} requests · {self.model}"
        self.carbon_label = f"carbon (gCO2eq, {self.zone} mix)" if self.zone else "carbon (gCO2eq)"
        #: where the carbon comes from, for titles: a server's measurement is said so, an estimate by whom
        #: (an EcoLogits estimate is the default and says nothing)
        self.carbon_source = {"measured": "measured by the server",
                              "mixed": "partly measured, partly EcoLogits"}.get(result.impacts_method, "")

    def col(self, name: str, status: str | None = None) -> np.ndarray:
        values = self.arrays[name]
        return values if status is None else values[self.status == status]

    def total(self, col: str, avoided: bool = False) -> float:
        """Sum over spent (non-cached) or avoided (cached) rows, unknown (NaN) skipped."""
        return float(np.nansum(self.col(col)[self.hit if avoided else ~self.hit]))

    def labels(self, index: pd.Index) -> list[str]:
        """'#index excerpt' hover labels, made only for the rows actually drawn."""
        return [f"#{i} {_cut(p)}" for i, p in zip(index, self.df.loc[index, "prompt"], strict=True)]

    @cached_property
    def cumulative(self) -> pd.DataFrame:
        """Running spent/avoided cost and gCO2eq in finish order, thinned to MAX_POINTS rows."""
        keep = ~(np.isnan(self.col("finished_s")) & np.isnan(self.col("cost_usd"))
                 & np.isnan(self.col("gwp_kgco2eq")))
        x = np.nan_to_num(self.col("finished_s")[keep])  # a cost without a timestamp still counts, at t=0
        order = np.argsort(x, kind="stable")
        hit = self.hit[keep][order]

        def cum(name: str, spent: bool = True) -> np.ndarray:
            v = self.col(name)[keep][order]
            if name != "gwp_kgco2eq" and name.startswith("gwp"):  # a missing bound counts as the mean
                v = np.where(np.isnan(v), self.col("gwp_kgco2eq")[keep][order], v)
            v = np.nan_to_num(v) * (1000 if name.startswith("gwp") else 1)
            return np.cumsum(np.where(hit, 0, v) if spent else v * hit)

        out = pd.DataFrame({"x": x[order], "cost": cum("cost_usd"), "cost_avoided": cum("cost_usd", False),
                            "g": cum("gwp_kgco2eq"), "g_avoided": cum("gwp_kgco2eq", False),
                            "g_min": cum("gwp_kgco2eq_min"), "g_max": cum("gwp_kgco2eq_max")},
                           index=self.df.index[keep][order])
        out = out.iloc[_thin(len(out))]
        return out.assign(label=self.labels(out.index))


_Panel = Callable[[go.Figure, _Batch, int, int], None]


def _first(s: pd.Series) -> str | None:
    s = s.dropna()
    return str(s.iloc[0]) if len(s) else None


def _cut(text: object) -> str:
    text = "" if text is None or text != text else str(text).replace("\n", " ")
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _thin(n: int) -> np.ndarray:
    """Row positions to draw: all, or MAX_POINTS evenly spaced ones keeping first and last."""
    return np.arange(n) if n <= MAX_POINTS else np.unique(np.linspace(0, n - 1, MAX_POINTS).astype(int))


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def _usd(v: float) -> str:
    return f"${v:,.2f}" if abs(v) >= 1000 else f"${v:.4g}"


def _nice(step: float) -> float:
    """The smallest 1/2/5 x 10^k at least ``step``, so time bins have round widths."""
    base = 10 ** np.floor(np.log10(step))
    return float(next(m * base for m in (1, 2, 5, 10) if m * base >= step))


def _refs(fig: go.Figure, row: int, col: int) -> tuple[str, str]:
    sub = fig.get_subplot(row, col)
    return sub.xaxis.plotly_name.replace("axis", ""), sub.yaxis.plotly_name.replace("axis", "")


def _note(fig: go.Figure, text: str, row: int, col: int) -> None:
    xref, yref = _refs(fig, row, col)
    fig.add_annotation(text=text, x=0.5, y=0.5, xref=f"{xref} domain", yref=f"{yref} domain",
                       showarrow=False, font={"size": 14, "color": "#777"})


def _axes(fig: go.Figure, row: int, col: int, x: str, y: str, y2: str | None = None, **ykw: object) -> None:
    """Axis titles (with units) of one subplot; set on the layout directly, faster than update_*axes."""
    sub = fig.get_subplot(row, col)
    sub.xaxis.title.text, sub.yaxis.title.text = x, y
    sub.yaxis.update(ykw)
    if y2:
        sub.yaxis.rangemode = "tozero"
        fig.get_subplot(row, col, secondary_y=True).yaxis.update(
            title_text=y2, rangemode="tozero", showgrid=False)


def _bars(fig: go.Figure, row: int, col: int, x: np.ndarray, ys: dict[str, np.ndarray], width: object,
          hover: str, suffix: str = "", **kw: object) -> None:
    """One stacked bar trace per series (status or token kind), colored by name, empty ones skipped."""
    for name, y in ys.items():
        if np.any(y):
            fig.add_trace(go.Bar(x=x, y=y, width=width, name=f"{name}{suffix}", marker_color=COLORS[name],
                                 marker_line_width=0, hovertemplate=hover.replace("{name}", name)
                                 + "<extra></extra>", **kw), row=row, col=col)


# -- panels: each draws one view into (row, col) of a figure --------------------------------------
def _p_latency(fig: go.Figure, b: _Batch, row: int, col: int) -> None:
    """Histogram of answered requests, ok and cache hits stacked, the slowest 0.1% in the last bin.
    Percentiles are over 'ok' only: cache hits answer in ~0 s and would hide the provider's latency."""
    groups = {s: b.col("latency_s", s) for s in ("ok", "cached")}
    groups = {s: v[~np.isnan(v)] for s, v in groups.items()}
    values = np.concatenate(list(groups.values()))
    if not values.size:
        return _note(fig, "no latency: nothing was answered", row, col)
    bins = int(np.clip(np.ceil(np.sqrt(values.size)), 5, _BINS))
    edges = np.histogram_bin_edges(values, bins=bins, range=(values.min(), np.quantile(values, 0.999)))
    counts = {s: np.histogram(np.minimum(v, edges[-1]), edges)[0] for s, v in groups.items()}
    _bars(fig, row, col, (edges[:-1] + edges[1:]) / 2, counts, float(edges[1] - edges[0]),
          "%{customdata[0]:.3g}–%{customdata[1]:.3g} s: %{y} {name}",
          customdata=np.column_stack([edges[:-1], edges[1:]]))
    if groups["ok"].size:
        xref, yref = _refs(fig, row, col)
        for k, (q, v) in enumerate(zip((50, 90, 99), np.percentile(groups["ok"], [50, 90, 99]), strict=True)):
            fig.add_shape(type="line", x0=v, x1=v, y0=0, y1=1, xref=xref, yref=f"{yref} domain", name=f"p{q}",
                          line={"color": "#333", "width": 1, "dash": "dash"})
            fig.add_annotation(x=v, y=1 - 0.09 * k, xref=xref, yref=f"{yref} domain", text=f"p{q} {v:.3g} s",
                               showarrow=False, xanchor="left", yanchor="top", font={"size": 11},
                               bgcolor="rgba(255,255,255,0.7)")
    _axes(fig, row, col, "latency (s)", "requests")


def _p_tokens(fig: go.Figure, b: _Batch, row: int, col: int) -> None:
    """Prompt vs completion tokens by request index; above MAX_POINTS, means per index bucket."""
    df = b.df[["prompt_tokens", "completion_tokens"]].fillna(0)
    if b.n <= MAX_POINTS:
        x, hover, ylabel = df.index.to_numpy(), b.labels(df.index), "tokens per request"
    else:
        size = -(-b.n // _BUCKETS)
        df = df.groupby(np.arange(b.n) // size).mean()
        idx = b.df.index.to_numpy()
        x, last = idx[::size], idx[np.minimum(np.arange(1, len(df) + 1) * size, b.n) - 1]
        hover = [f"#{a}–#{z}" for a, z in zip(x, last, strict=True)]
        ylabel = f"tokens per request (mean of {size})"
    _bars(fig, row, col, x, {k: df[f"{k}_tokens"].to_numpy() for k in ("prompt", "completion")}, None,
          "%{hovertext}<br>%{y:,.0f} {name} tokens", " tokens", hovertext=hover)
    _axes(fig, row, col, "request index", ylabel)


def _cost_traces(b: _Batch) -> list[go.Scatter]:
    c = b.cumulative
    hover = c["label"].tolist()
    line = {"mode": "lines", "x": c["x"], "hovertext": hover}
    traces = [go.Scatter(y=c["cost"], name="cost spent", line={"color": COLORS["cost"], "width": 2}, **line,
                         hovertemplate="%{hovertext}<br>t=%{x:.3g} s · spent $%{y:.4g}<extra></extra>")]
    if len(c) and c["cost_avoided"].iloc[-1] > 0:
        traces.append(go.Scatter(y=c["cost_avoided"], name="cost avoided", **line,
                                 line={"color": COLORS["cost"], "dash": "dot"},
                                 hovertemplate="%{hovertext}<br>avoided $%{y:.4g}<extra></extra>"))
    return traces


def _carbon_traces(b: _Batch) -> list[go.Scatter]:
    c, zone = b.cumulative, f" ({b.zone})" if b.zone else ""
    hover = c["label"].tolist()
    line = {"mode": "lines", "x": c["x"]}
    traces = []
    if b.has_range:  # band first: 'tonexty' fills from the max line down to the min line
        traces += [go.Scatter(y=c["g_min"], name="gCO2eq min", line={"width": 0}, showlegend=False,
                              hoverinfo="skip", **line),
                   go.Scatter(y=c["g_max"], name="gCO2eq min–max", line={"width": 0}, fill="tonexty",
                              fillcolor=COLORS["band"], hoverinfo="skip", **line)]
    rng = " (%{customdata[0]:.3g}–%{customdata[1]:.3g})" if b.has_range else ""
    traces.append(go.Scatter(y=c["g"], name=f"gCO2eq spent{zone}", line={"color": COLORS["carbon"]},
                             hovertext=hover, customdata=c[["g_min", "g_max"]].to_numpy(), **line,
                             hovertemplate=f"%{{hovertext}}<br>t=%{{x:.3g}} s · %{{y:.3g}}{rng} gCO2eq"
                             "<extra></extra>"))
    if len(c) and c["g_avoided"].iloc[-1] > 0:
        traces.append(go.Scatter(y=c["g_avoided"], name="gCO2eq avoided", hovertext=hover,
                                 line={"color": COLORS["carbon"], "dash": "dot"}, **line,
                                 hovertemplate="%{hovertext}<br>avoided %{y:.3g} gCO2eq<extra></extra>"))
    return traces


def _cumulative(with_cost: bool, with_carbon: bool) -> _Panel:
    """Cumulative cost, carbon, or both on one timeline (carbon on the right axis then)."""
    def panel(fig: go.Figure, b: _Batch, row: int, col: int) -> None:
        both = with_cost and with_carbon
        traces = [(t, False) for t in (_cost_traces(b) if with_cost else [])]
        traces += [(t, both) for t in (_carbon_traces(b) if with_carbon else [])]
        for trace, right in traces:
            fig.add_trace(trace, row=row, col=col, secondary_y=right)
        carbon_label = f"cumulative {b.carbon_label}"
        _axes(fig, row, col, _TIME, "cumulative cost (USD)" if with_cost else carbon_label,
              carbon_label if both else None)
    return panel


def _p_status(fig: go.Figure, b: _Batch, row: int, col: int) -> None:
    """Requests per status, failures split by error type, each with an example message."""
    rows = []  # (label, count, status, example error)
    for s in _STATUSES:
        errors = b.df.loc[b.status == s, ["error_type", "error"]]
        if s == "failed" and len(errors):
            g = errors.groupby(errors["error_type"].fillna("error"))["error"].agg(["size", "first"])
            g = g.sort_values("size", ascending=False)
            rows += [(f"failed: {t}", n, s, e) for t, (n, e) in g.iterrows()]
        elif len(errors):
            rows.append((s, len(errors), s, errors["error"].iloc[0]))
    label, count, kind, example = zip(*rows, strict=True)
    hover = [f"{k}: {c:,} ({100 * c / b.n:.1f}%)" + (f"<br>e.g. {_cut(e)}" if isinstance(e, str) else "")
             for k, c, e in zip(label, count, example, strict=True)]
    fig.add_trace(go.Bar(x=count, y=label, orientation="h", showlegend=False, name="status",
                         marker_color=[COLORS[s] for s in kind], text=[f"{c:,}" for c in count],
                         textposition="outside", cliponaxis=False, hovertext=hover,
                         hovertemplate="%{hovertext}<extra></extra>"), row=row, col=col)
    fig.get_subplot(row, col).xaxis.range = [0, max(count) * 1.15]
    _axes(fig, row, col, "requests", "", autorange="reversed")


def _time_edges(b: _Batch) -> np.ndarray:
    """Round-width time bins ending exactly at the batch end (a short remainder joins the last bin),
    so the last bin's rate is not diluted by time after the batch."""
    end = max(float(np.nanmax(b.col("finished_s"), initial=0.0)), b.duration_s, 1e-3)
    step = _nice(end / _BINS)
    edges = np.arange(0.0, end, step)
    return np.append(edges[:-1] if len(edges) > 1 and end - edges[-1] < step / 2 else edges, end)


def _p_throughput(fig: go.Figure, b: _Batch, row: int, col: int) -> None:
    """Completions per second in round time bins, stacked by status."""
    if np.isnan(b.col("finished_s")).all():
        return _note(fig, "no request was sent", row, col)
    edges = _time_edges(b)
    width = np.diff(edges)
    rates = {s: np.histogram(b.col("finished_s", s), edges)[0] / width for s in _STATUSES}
    _bars(fig, row, col, edges[:-1] + width / 2, rates, width, "%{customdata[0]:.3g}–%{customdata[1]:.3g} s: "
          "%{y:.3g} {name} req/s", " /s", customdata=np.column_stack([edges[:-1], edges[1:]]))
    _axes(fig, row, col, _TIME, "throughput (requests / s)")


def _p_concurrency(fig: go.Figure, b: _Batch, row: int, col: int) -> None:
    """Mean requests in flight per time bin (right axis), to show whether a concurrency limit saturates."""
    sent = ~np.isnan(b.col("started_s")) & ~np.isnan(b.col("finished_s"))
    if not sent.any():
        return
    edges = _time_edges(b)

    def area(times: np.ndarray) -> np.ndarray:  # integral over [0, edge] of how many times are <= t
        times = np.sort(times)
        k = np.searchsorted(times, edges, "right")
        return k * edges - np.concatenate([[0.0], np.cumsum(times)])[k]

    flight = np.diff(area(b.col("started_s")[sent]) - area(b.col("finished_s")[sent])) / np.diff(edges)
    fig.add_trace(go.Scatter(x=(edges[:-1] + edges[1:]) / 2, y=flight, name="mean in flight", mode="lines",
                             line={"color": "#333"},
                             hovertemplate="t=%{x:.3g} s: %{y:.3g} in flight<extra></extra>"),
                  row=row, col=col, secondary_y=True)
    _axes(fig, row, col, _TIME, "throughput (requests / s)", "requests in flight")


def _p_split(fig: go.Figure, b: _Batch, row: int, col: int) -> None:
    """Share of cost and carbon spent vs avoided by cache hits; absolute values as text."""
    rows: list[tuple[str, float, float, Callable[[float], str]]] = [
        ("cost (USD)", b.total("cost_usd"), b.total("cost_usd", avoided=True), _usd),
        ("carbon (gCO2eq)", b.grams, b.total("gwp_kgco2eq", True) * 1000, lambda v: f"{_num(v)} g")]
    for k, part in enumerate(("spent", "avoided by cache")):
        values = [r[2] if k else r[1] for r in rows]
        share = [100 * v / (r[1] + r[2]) if r[1] + r[2] > 0 else 0 for v, r in zip(values, rows, strict=True)]
        fig.add_trace(go.Bar(y=[r[0] for r in rows], x=share, orientation="h", name=part, customdata=values,
                             marker_color=COLORS["cost"] if k == 0 else COLORS["cached"], textangle=0,
                             text=[r[3](v) for v, r in zip(values, rows, strict=True)], textposition="inside",
                             insidetextanchor="middle",
                             hovertemplate=f"%{{y}} {part}: %{{text}} (%{{x:.1f}}%)<extra></extra>"),
                      row=row, col=col)
    fig.get_subplot(row, col).xaxis.range = [0, 100]
    _axes(fig, row, col, "share of cost / carbon (%)", "")


def _p_gantt(fig: go.Figure, b: _Batch, row: int, col: int) -> None:
    """Each request as a bar from its start to its finish (cache hits get a visible sliver)."""
    df = b.df[b.df["started_s"].notna() & b.df["finished_s"].notna()]
    if df.empty:
        return _note(fig, "no request was sent", row, col)
    sliver = max(float(df["finished_s"].max()), 1e-3) / 300
    for s in _STATUSES:
        d = df[df["status"] == s]
        if len(d):
            fig.add_trace(go.Bar(y=d.index, x=np.maximum(d["finished_s"] - d["started_s"], sliver),
                                 base=d["started_s"], orientation="h", name=s, marker_color=COLORS[s],
                                 hovertext=b.labels(d.index), customdata=d["finished_s"] - d["started_s"],
                                 hovertemplate="%{hovertext}<br>start %{base:.3g} s, took %{customdata:.3g} s"
                                 "<extra></extra>"), row=row, col=col)
    _axes(fig, row, col, _TIME, "request index", autorange="reversed")


# -- figures ------------------------------------------------------------------------------------
def _empty(title: str, text: str = "no requests") -> go.Figure:
    fig = go.Figure(layout={"title": title, "template": "plotly_white", "height": 360,
                            "xaxis": {"visible": False}, "yaxis": {"visible": False}})
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": 16})
    return fig


def _single(result: BatchResult, name: str, panels: list[_Panel], title: Callable[[_Batch], str],
            barmode: str = "stack", secondary: bool = False) -> go.Figure:
    b = _Batch(result)
    if not b.n:
        return _empty(f"{name}: no requests")
    fig = make_subplots(rows=1, cols=1, specs=[[{"secondary_y": secondary}]])
    for panel in panels:
        panel(fig, b, 1, 1)
    fig.update_layout(title=f"{name} · {title(b)}", template="plotly_white", barmode=barmode, bargap=0.02,
                      height=450, hovermode="closest", legend={"orientation": "h", "y": -0.18})
    return fig


def latency(result: BatchResult) -> go.Figure:
    """Latency histogram of answered requests, with p50/p90/p99 of those that reached the provider."""
    return _single(result, "Latency", [_p_latency], lambda b: b.head)


def tokens(result: BatchResult) -> go.Figure:
    """Prompt vs completion tokens per request (bucketed means above MAX_POINTS requests)."""
    return _single(result, "Tokens per request", [_p_tokens], lambda b: f"{b.head} · "
                   f"{np.nansum(b.col('prompt_tokens')):,.0f} prompt + "
                   f"{np.nansum(b.col('completion_tokens')):,.0f} completion tokens")


def cost(result: BatchResult) -> go.Figure:
    """Cumulative cost spent (and avoided by cache hits) over the batch timeline."""
    return _single(result, "Cumulative cost", [_cumulative(True, False)], lambda b: f"{b.head} · "
                   f"{_usd(b.total('cost_usd'))} spent, {_usd(b.total('cost_usd', avoided=True))} avoided")


def carbon(result: BatchResult) -> go.Figure:
    """Cumulative gCO2eq with the EcoLogits min–max band (a measured run has none: min = max), titled with
    where the figures come from and the electricity mix zone."""
    return _single(result, "Cumulative carbon", [_cumulative(False, True)], lambda b: f"{b.head} · "
                   f"{_num(b.grams)} gCO2eq spent, {_num(b.total('gwp_kgco2eq', True) * 1000)} avoided"
                   + (f" · {b.carbon_source}" if b.carbon_source else "")
                   + (f" · {b.zone} electricity mix" if b.zone else ""))


def timeline(result: BatchResult) -> go.Figure:
    """Per-request start→finish bars up to MAX_POINTS requests; beyond, throughput and mean in-flight."""
    if len(result) <= MAX_POINTS:
        return _single(result, "Timeline", [_p_gantt], lambda b: b.head, barmode="overlay")
    return _single(result, "Throughput and concurrency", [_p_throughput, _p_concurrency], secondary=True,
                   title=lambda b: f"{b.head} · {_num(b.duration_s)} s")


def status(result: BatchResult) -> go.Figure:
    """Requests per status, failures split by error type (hover gives an example message)."""
    return _single(result, "Status", [_p_status], lambda b: b.head)


_DASHBOARD: list[tuple[str, _Panel, str | None]] = [  # (title, panel, where its legend goes)
    ("Latency", _p_latency, "below"), ("Tokens per request", _p_tokens, "below"),
    ("Status", _p_status, None), ("Cumulative cost and carbon", _cumulative(True, True), "inside"),
    ("Throughput", _p_throughput, "below"), ("Spent vs avoided by cache", _p_split, "below"),
]
_HEIGHT, _MARGIN_T, _MARGIN_B = 1150, 90, 50


def summary(result: BatchResult) -> go.Figure:
    """The dashboard: six views in one 3x2 figure, each with its own legend, totals in the title."""
    b = _Batch(result)
    if not b.n:
        return _empty("Batch summary: no requests")
    fig = make_subplots(rows=3, cols=2, subplot_titles=[t for t, _, _ in _DASHBOARD], vertical_spacing=0.12,
                        horizontal_spacing=0.14, specs=[[{}, {}], [{}, {"secondary_y": True}], [{}, {}]])
    for k, (_, panel, where) in enumerate(_DASHBOARD):
        before = len(fig.data)
        panel(fig, b, k // 2 + 1, k % 2 + 1)
        if where:
            _panel_legend(fig, k, range(before, len(fig.data)), where)
    c = b.cumulative
    rng = f" ({_num(c['g_min'].iloc[-1])}–{_num(c['g_max'].iloc[-1])})" if b.has_range and len(c) else ""
    unknown = int(np.isnan(b.col("cost_usd", "ok")).sum())
    fig.update_layout(
        title=f"{b.head} · {_usd(b.total('cost_usd'))}{f' (+{unknown} unknown)' if unknown else ''} · "
              f"{_num(b.grams)}{rng} gCO2eq" + (f" · {b.zone} electricity mix" if b.zone else ""),
        template="plotly_white", barmode="stack", bargap=0.02, height=_HEIGHT, hovermode="closest",
        margin={"t": _MARGIN_T, "b": _MARGIN_B})
    return fig


def _panel_legend(fig: go.Figure, k: int, traces: range, where: str) -> None:
    """Give panel ``k`` its own legend (plotly's multiple legends), so each names only its traces:
    below its x-axis title, or inside top-left where rising cumulative lines leave room."""
    xref, yref = _refs(fig, k // 2 + 1, k % 2 + 1)
    xd, yd = fig.layout[xref.replace("x", "xaxis")].domain, fig.layout[yref.replace("y", "yaxis")].domain
    name = f"legend{k + 1}" if k else "legend"
    for i in traces:
        fig.data[i].legend = name
    px = 1 / (_HEIGHT - _MARGIN_T - _MARGIN_B)
    y = yd[0] - 58 * px if where == "below" else yd[1] - 4 * px
    fig.layout[name] = {"x": xd[0] + (0.01 if where == "inside" else 0), "y": y, "xanchor": "left",
                        "yanchor": "top", "orientation": "h" if where == "below" else "v",
                        "font": {"size": 11}, "bgcolor": "rgba(255,255,255,0.7)"}


def _run_stats(b: _Batch) -> dict[str, float]:
    ok = b.col("latency_s", "ok")
    ok = ok[~np.isnan(ok)]
    c, sent = b.cumulative, int((~np.isnan(b.col("finished_s"))).sum())
    return {"cost": b.total("cost_usd"), "avoided": b.total("cost_usd", avoided=True), "g": b.grams,
            "g_min": float(c["g_min"].iloc[-1]) if len(c) else 0.0,
            "g_max": float(c["g_max"].iloc[-1]) if len(c) else 0.0,
            "mean": float(ok.mean()) if ok.size else np.nan,
            "p90": float(np.percentile(ok, 90)) if ok.size else np.nan,
            "failed": 100 * float((b.status == "failed").mean()) if b.n else np.nan,
            "prompt": float(np.nansum(b.col("prompt_tokens"))),
            "completion": float(np.nansum(b.col("completion_tokens"))),
            "rps": sent / b.duration_s if b.duration_s > 0 else np.nan}


_COMPARE = [  # (subplot title, y-axis title, [(stat, trace name, color)])
    ("Cost", "cost (USD)", [("cost", "cost spent", "cost"), ("avoided", "cost avoided by cache", "cached")]),
    ("Carbon (min–max)", "carbon (gCO2eq)", [("g", "gCO2eq spent", "carbon")]),
    ("Latency of ok requests", "latency (s)", [("mean", "latency mean", "mean"),
                                               ("p90", "latency p90", "p90")]),
    ("Failures", "failed requests (%)", [("failed", "failed", "failed")]),
    ("Tokens", "tokens", [("prompt", "prompt tokens", "prompt"),
                          ("completion", "completion tokens", "completion")]),
    ("Throughput", "throughput (requests / s)", [("rps", "throughput", "budget")]),
]


def compare(results: Mapping[str, BatchResult]) -> go.Figure:
    """Several runs side by side (models, prompt variants): cost, carbon with its range, mean/p90
    latency, failure rate, tokens and throughput, one bar group per run."""
    if not results:
        return _empty("Comparison: no runs", "no results to compare")
    batches = {name: _Batch(r) for name, r in results.items()}
    stats = pd.DataFrame({name: _run_stats(b) for name, b in batches.items()}).T
    names = list(stats.index)
    hover = [f"{n}: {b.head}" + (f", {b.zone} mix" if b.zone else "") for n, b in batches.items()]
    zones = sorted({b.zone for b in batches.values() if b.zone})
    fig = make_subplots(rows=2, cols=3, subplot_titles=[t for t, _, _ in _COMPARE], vertical_spacing=0.16)
    for k, (_, ytitle, series) in enumerate(_COMPARE):
        for key, label, color in series:
            err = None if key != "g" else {"type": "data", "color": "#333",
                                           "array": (stats["g_max"] - stats["g"]).clip(lower=0).tolist(),
                                           "arrayminus": (stats["g"] - stats["g_min"]).clip(lower=0).tolist()}
            fig.add_trace(go.Bar(x=names, y=stats[key].tolist(), name=label, marker_color=COLORS[color],
                                 error_y=err, hovertext=hover,
                                 hovertemplate=f"%{{hovertext}}<br>{label}: %{{y:.4g}}<extra></extra>"),
                          row=k // 3 + 1, col=k % 3 + 1)
        fig.update_yaxes(title_text=ytitle, row=k // 3 + 1, col=k % 3 + 1)
        if all(float(stats[key].max()) <= 0 for key, _, _ in series):  # all zero: show 0 at the bottom
            fig.update_yaxes(range=[0, 1], row=k // 3 + 1, col=k % 3 + 1)
    mix = f" · {', '.join(zones)} electricity mix" if zones else ""
    fig.update_layout(title=f"Comparison of {len(names)} runs{mix}", template="plotly_white", barmode="group",
                      height=700, legend={"orientation": "h", "y": -0.12})
    return fig
