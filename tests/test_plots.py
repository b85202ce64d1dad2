"""Figures of ``seeds_nb.plots`` checked on their data and layout (no pixels, no timings)."""

from __future__ import annotations

import math
import random

import numpy as np
import plotly.graph_objects as go
import pytest

from seeds_nb import plots
from seeds_nb.core.exceptions import BudgetExceeded, Cancelled, RateLimitError, ServerError
from seeds_nb.core.result import BatchResult
from seeds_nb.core.types import Response, Tracking, Usage

ZONE = "FRA"
INDIVIDUAL = [plots.latency, plots.tokens, plots.cost, plots.carbon, plots.timeline, plots.status]


def make_result(n: int = 40, *, seed: int = 0, cached: float = 0.2, failed: float = 0.1,
                cancelled: float = 0.05, budget: float = 0.0, zone: str | None = ZONE,
                ranges: bool = True) -> BatchResult:
    """A batch of ``n`` prompts with seeded latencies, tokens, costs and a mix of outcomes."""
    rng = random.Random(seed)
    result = BatchResult(model="mock-1", provider="mock", electricity_mix_zone=zone)
    nan = float("nan")
    for i in range(n):
        prompt = f"Prompt {i}: " + "tell me about seeds " * rng.randint(1, 8)
        start = i * 0.05 + rng.random() * 0.01
        lat = rng.lognormvariate(-0.5, 0.6)
        u = rng.random()
        kind = ("cached" if u < cached else "failed" if u < cached + failed else
                "cancelled" if u < cached + failed + cancelled else
                "budget" if u < cached + failed + cancelled + budget else "ok")
        response, error = None, None
        if kind in ("ok", "cached"):
            p, c = rng.randint(20, 400), rng.randint(5, 300)
            g = (p + 3 * c) * 1e-6
            tracking = Tracking(cost_usd=(p * 1e-6 + c * 4e-6), energy_kwh=g * 2, gwp_kgco2eq=g,
                                gwp_kgco2eq_min=g * 0.5 if ranges else None,
                                gwp_kgco2eq_max=g * 1.8 if ranges else None, electricity_mix_zone=zone)
            if kind == "cached":
                lat = 0.002
            response = Response(content=f"answer {i}", model="mock-1", usage=Usage(p, c),
                                finish_reason="stop", cached=kind == "cached",
                                latency_s=lat, tracking=tracking)
        elif kind == "failed":
            error = (ServerError("boom", status_code=500) if rng.random() < 0.5 else
                     RateLimitError("slow down", status_code=429, retry_after=1.0))
        elif kind == "cancelled":
            error = Cancelled()
        else:
            error = BudgetExceeded("max_cost_usd", 0.01, 0.0101)
        result.record(i, response if response is not None else error)
        result.prompts.append(prompt)
        sent = kind in ("ok", "cached", "failed")
        result.started_s.append(start if sent else nan)
        result.finished_s.append(start + lat if sent else nan)
    finished = [f for f in result.finished_s if not math.isnan(f)]
    result.total_duration_seconds = max(finished, default=0.0)
    return result


@pytest.fixture(scope="module")
def result() -> BatchResult:
    return make_result(60, budget=0.05)


def _traces(fig: go.Figure, name_part: str) -> list:
    return [t for t in fig.data if name_part in (t.name or "")]


def _named(fig: go.Figure, name: str):
    return next(t for t in fig.data if t.name == name)


def _title(fig: go.Figure) -> str:
    return fig.layout.title.text or ""


def _axis_titles(fig: go.Figure) -> set[str]:
    return {fig.layout[k].title.text for k in fig.layout if k.startswith(("xaxis", "yaxis"))
            and fig.layout[k].title.text}


# -- summary -------------------------------------------------------------------------------------
def test_summary_layout_and_title(result: BatchResult) -> None:
    fig = plots.summary(result)
    assert isinstance(fig, go.Figure)
    title = _title(fig)
    assert f"{len(result)} requests" in title and "mock-1" in title and ZONE in title
    assert f"${result.total_cost_usd:.4g}" in title
    assert f"{result.total_gwp_kgco2eq * 1000:.3g}" in title
    subtitles = [a.text for a in fig.layout.annotations]
    for expected in ("Latency", "Tokens per request", "Status", "Spent vs avoided by cache", "Throughput",
                     "Cumulative cost and carbon"):
        assert expected in subtitles
    labels = _axis_titles(fig)
    assert {"latency (s)", "cumulative cost (USD)", f"cumulative carbon (gCO2eq, {ZONE} mix)",
            "throughput (requests / s)", "time since batch start (s)"} <= labels
    assert {type(t).__name__ for t in fig.data} == {"Bar", "Scatter"}


def test_summary_totals_match_result(result: BatchResult) -> None:
    fig = plots.summary(result)
    spent = _traces(fig, "cost spent")[0]
    assert spent.y[-1] == pytest.approx(result.total_cost_usd)
    assert _traces(fig, "cost avoided")[0].y[-1] == pytest.approx(result.avoided_cost_usd)
    carbon = _traces(fig, "gCO2eq spent")[0]
    assert carbon.y[-1] == pytest.approx(result.total_gwp_kgco2eq * 1000)
    assert ZONE in carbon.name
    lo, hi = result.total_gwp_kgco2eq_range
    assert _traces(fig, "gCO2eq min")[0].y[-1] == pytest.approx(lo * 1000)
    assert _traces(fig, "gCO2eq min–max")[0].y[-1] == pytest.approx(hi * 1000)
    assert list(spent.x) == sorted(spent.x)
    finished = [-1 if math.isnan(f) else f for f in result.finished_s]
    last = finished.index(max(finished))
    assert spent.hovertext[-1].startswith(f"#{last} Prompt {last}:")
    status = _named(fig, "status")
    assert sum(status.x) == len(result)
    spent_bar, avoided_bar = _named(fig, "spent"), _named(fig, "avoided by cache")
    assert spent_bar.customdata[0] == pytest.approx(result.total_cost_usd)
    assert avoided_bar.customdata[0] == pytest.approx(result.avoided_cost_usd)
    assert spent_bar.customdata[1] == pytest.approx(result.total_gwp_kgco2eq * 1000)
    assert avoided_bar.customdata[1] == pytest.approx(result.avoided_gwp_kgco2eq * 1000)
    assert spent_bar.x[0] + avoided_bar.x[0] == pytest.approx(100)


def test_summary_is_built_once_from_to_pandas(result: BatchResult, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = BatchResult.to_pandas
    monkeypatch.setattr(BatchResult, "to_pandas", lambda self: calls.append(1) or original(self))
    plots.summary(result)
    assert len(calls) == 1


def test_plot_method_returns_summary(result: BatchResult) -> None:
    assert _title(result.plot()) == _title(plots.summary(result))


# -- individual figures --------------------------------------------------------------------------
def test_latency_percentile_lines(result: BatchResult) -> None:
    fig = plots.latency(result)
    ok = [r.latency_s for r in result.responses if r is not None and not r.cached]
    expected = np.percentile(ok, [50, 90, 99])
    shapes = {s.name: s.x0 for s in fig.layout.shapes}
    assert [shapes["p50"], shapes["p90"], shapes["p99"]] == pytest.approx(list(expected))
    notes = [a.text for a in fig.layout.annotations]
    assert f"p90 {expected[1]:.3g} s" in notes
    bars = {t.name: t for t in fig.data}
    assert set(bars) == {"ok", "cached"}
    assert sum(bars["ok"].y) == len(ok) and sum(bars["cached"].y) == result.cached_count
    assert fig.layout.xaxis.title.text == "latency (s)" and fig.layout.yaxis.title.text == "requests"


def test_tokens_per_request_with_hover(result: BatchResult) -> None:
    fig = plots.tokens(result)
    prompt, completion = fig.data
    assert sum(prompt.y) == result.total_prompt_tokens
    assert sum(completion.y) == result.total_completion_tokens
    assert prompt.hovertext[7].startswith("#7 Prompt 7:")
    assert all(len(h) <= len(f"#{len(result)} ") + 80 for h in prompt.hovertext)
    assert fig.layout.yaxis.title.text == "tokens per request"


def test_cost_and_carbon_figures(result: BatchResult) -> None:
    fig = plots.cost(result)
    assert fig.data[0].y[-1] == pytest.approx(result.total_cost_usd)
    assert fig.layout.yaxis.title.text == "cumulative cost (USD)"
    assert any(h.startswith("#") for h in fig.data[0].hovertext)
    fig = plots.carbon(result)
    assert ZONE in _title(fig) and fig.layout.yaxis.title.text == f"cumulative carbon (gCO2eq, {ZONE} mix)"
    names = [t.name for t in fig.data]
    assert names[:2] == ["gCO2eq min", "gCO2eq min–max"] and fig.data[1].fill == "tonexty"
    mean = _traces(fig, "gCO2eq spent")[0]
    assert mean.y[-1] == pytest.approx(result.total_gwp_kgco2eq * 1000)
    assert all(lo <= m <= hi for lo, m, hi in zip(fig.data[0].y, mean.y, fig.data[1].y, strict=True))


def test_carbon_without_range_or_zone() -> None:
    fig = plots.carbon(make_result(20, ranges=False, zone=None))
    assert [t.name for t in fig.data if "min" in t.name] == []
    assert fig.layout.yaxis.title.text == "cumulative carbon (gCO2eq)"


def test_timeline_gantt(result: BatchResult) -> None:
    fig = plots.timeline(result)
    bars = {t.name: t for t in fig.data}
    sent = sum(1 for f in result.finished_s if not math.isnan(f))
    assert sum(len(t.y) for t in fig.data) == sent
    ok = bars["ok"]
    i = ok.y[0]
    assert ok.base[0] == pytest.approx(result.started_s[i])
    assert ok.base[0] + ok.x[0] == pytest.approx(result.finished_s[i])
    assert ok.hovertext[0].startswith(f"#{i} ")
    assert fig.layout.xaxis.title.text == "time since batch start (s)"


def test_status_breakdown_by_error_type(result: BatchResult) -> None:
    fig = plots.status(result)
    (bar,) = fig.data
    counts = dict(zip(bar.y, bar.x, strict=True))
    assert sum(counts.values()) == len(result)
    assert counts["ok"] == result.successful_count - result.cached_count
    assert counts["cached"] == result.cached_count
    assert counts.get("cancelled", 0) == result.cancelled_count
    assert counts.get("budget", 0) == result.budget_stopped_count
    failed = {k: v for k, v in counts.items() if k.startswith("failed: ")}
    assert set(failed) <= {"failed: ServerError", "failed: RateLimitError"}
    assert sum(failed.values()) == result.failed_count - result.cancelled_count - result.budget_stopped_count
    assert list(bar.y)[0] == "ok"


def test_compare_two_runs() -> None:
    a, b = make_result(30, seed=1), make_result(50, seed=2, cached=0.0, failed=0.3)
    fig = plots.compare({"model A": a, "model B": b})
    assert "Comparison of 2 runs" in _title(fig) and ZONE in _title(fig)
    assert fig.layout.barmode == "group"
    by_name = {t.name: t for t in fig.data}
    assert all(list(t.x) == ["model A", "model B"] for t in fig.data)
    assert list(by_name["cost spent"].y) == pytest.approx([a.total_cost_usd, b.total_cost_usd])
    carbon = by_name["gCO2eq spent"]
    assert list(carbon.y) == pytest.approx([a.total_gwp_kgco2eq * 1000, b.total_gwp_kgco2eq * 1000])
    lo = [r.total_gwp_kgco2eq_range[0] * 1000 for r in (a, b)]
    assert [y - m for y, m in zip(carbon.y, carbon.error_y.arrayminus, strict=True)] == pytest.approx(lo)
    assert list(by_name["failed"].y) == pytest.approx(
        [100 * (r.failed_count - r.cancelled_count) / len(r) for r in (a, b)])
    assert by_name["prompt tokens"].y[1] == b.total_prompt_tokens
    assert {"latency mean", "latency p90", "throughput"} <= set(by_name)
    assert "Cost" in [a.text for a in fig.layout.annotations] and "cost (USD)" in _axis_titles(fig)


def test_compare_empty() -> None:
    fig = plots.compare({})
    assert "no results to compare" in [a.text for a in fig.layout.annotations]


def test_compare_with_an_empty_run() -> None:
    empty = BatchResult(model="mock-1", electricity_mix_zone=ZONE)
    fig = plots.compare({"full": make_result(10), "empty": empty})
    by_name = {t.name: t for t in fig.data}
    assert by_name["cost spent"].y[1] == 0 and math.isnan(by_name["latency mean"].y[1])


# -- edge cases ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [plots.summary, *INDIVIDUAL])
def test_empty_result(fn) -> None:
    fig = fn(BatchResult(model="mock-1"))
    assert fig.data == () and "no requests" in [a.text for a in fig.layout.annotations]


@pytest.mark.parametrize("fn", [plots.summary, *INDIVIDUAL])
def test_all_failed(fn) -> None:
    result = make_result(12, cached=0.0, failed=1.0, cancelled=0.0)
    fig = fn(result)
    assert isinstance(fig, go.Figure)
    if fn is plots.summary:
        assert "no latency: nothing was answered" in [a.text for a in fig.layout.annotations]
        assert _traces(fig, "cost spent")[0].y[-1] == 0


@pytest.mark.parametrize("fn", [plots.summary, *INDIVIDUAL])
def test_nothing_sent(fn) -> None:
    result = make_result(8, cached=0.0, failed=0.0, cancelled=0.5, budget=0.5)
    assert all(math.isnan(f) for f in result.finished_s)
    fig = fn(result)
    if fn in (plots.summary, plots.timeline):
        assert "no request was sent" in [a.text for a in fig.layout.annotations]


def test_all_cached() -> None:
    result = make_result(15, cached=1.0)
    fig = plots.summary(result)
    assert _traces(fig, "cost spent")[0].y[-1] == 0
    assert _traces(fig, "cost avoided")[0].y[-1] == pytest.approx(result.avoided_cost_usd)
    assert not fig.layout.shapes  # no provider latency, so no percentile lines
    split = _named(fig, "avoided by cache")
    assert list(split.x) == pytest.approx([100, 100])


@pytest.mark.parametrize("fn", [plots.summary, *INDIVIDUAL])
def test_single_request(fn) -> None:
    result = make_result(1, cached=0.0, failed=0.0, cancelled=0.0)
    fig = fn(result)
    assert "1 requests" in _title(fig)


def test_missing_values_are_not_errors() -> None:
    result = make_result(20, cached=0.1, failed=0.1)
    # an answer whose cost and carbon are unknown (default Tracking: all None)
    result.record(0, Response(content="x", model="mock-1", usage=Usage(10, 5), latency_s=0.3))
    result.record(1, ServerError("boom", status_code=502))
    result.finished_s[2] = float("nan")
    result.prompts[3] = "line one\nline two " * 20
    for fn in (plots.summary, *INDIVIDUAL):
        fn(result)
    fig = plots.summary(result)
    assert _traces(fig, "cost spent")[0].y[-1] == pytest.approx(result.total_cost_usd)
    assert "unknown" in _title(fig)
    assert all("\n" not in h for h in plots.tokens(result).data[0].hovertext)


def test_large_result_is_aggregated() -> None:
    result = make_result(100_000, seed=3)
    # latency, cost, carbon and status are panels of the summary; tokens and timeline change mode above
    # MAX_POINTS requests, so they are built on their own
    figs = {fn.__name__: fn(result) for fn in (plots.summary, plots.tokens, plots.timeline)}
    for name, fig in figs.items():
        for trace in fig.data:
            for attr in ("x", "y"):
                values = getattr(trace, attr)
                assert values is None or len(values) <= plots.MAX_POINTS + 2, (name, trace.name)
    summary = figs["summary"]
    assert _traces(summary, "cost spent")[0].y[-1] == pytest.approx(result.total_cost_usd)
    assert sum(_named(summary, "status").x) == len(result)
    assert "mean of" in figs["tokens"].layout.yaxis.title.text
    assert figs["timeline"].layout.yaxis2.title.text == "requests in flight"
    tokens = figs["tokens"].data[0]
    assert tokens.hovertext[0].startswith("#0–#")


def test_compare_axes_start_at_zero_when_nothing_failed() -> None:
    a, b = make_result(50, seed=1, failed=0.0), make_result(50, seed=2, failed=0.0)
    fig = plots.compare({"a": a, "b": b})
    failures_axis = next(ax for name, ax in fig.layout.to_plotly_json().items()
                         if name.startswith("yaxis") and ax.get("title", {}).get("text") == "failed requests (%)")
    assert failures_axis["range"] == [0, 1]
