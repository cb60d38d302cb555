"""Plots for lab reports: pure functions from samples and figures to deterministic PNG bytes."""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kernlab.units import MIB

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGSIZE = (8.0, 4.0)
DPI = 100
TIME_LABEL = "time since first sample (s)"
# A few pages in zram (a lone zero-filled page compresses 60:1) say nothing about the workload's data.
RATIO_MIN_ORIG_BYTES = MIB
SPAN_CHAR_PX = 5.5  # width of one 8 pt character, to fit workload names over their spans
# (workload name, start s, end s) on the same time axis as the plotted samples.
Span = tuple[str, float, float]


@functools.cache
def _pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, imported on the first plot (0.6 s: not at every command's start)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on the lab host; must precede the pyplot import
    import matplotlib.pyplot as plt

    return plt

def series(samples: Sequence[dict], key: str, scale: float = 1.0) -> tuple[list[float], list[float]]:
    """(times relative to the first sample, values / scale) for the samples that carry a numeric key."""
    if not samples:
        return [], []
    t0 = samples[0].get("t", 0.0)
    times, values = [], []
    for row in samples:
        value, t = row.get(key), row.get("t")
        if isinstance(value, int | float) and isinstance(t, int | float):
            times.append(t - t0)
            values.append(value / scale)
    return times, values


def compression_ratios(samples: Sequence[dict], min_orig_bytes: int = 0) -> tuple[list[float], list[float]]:
    """orig_data_size / compr_data_size over time; samples with nothing compressed, or less than
    min_orig_bytes stored, have no ratio."""
    if not samples:
        return [], []
    t0 = samples[0].get("t", 0.0)
    times, ratios = [], []
    for row in samples:
        orig, compr, t = row.get("mm.orig_data_size"), row.get("mm.compr_data_size"), row.get("t")
        if isinstance(orig, int | float) and isinstance(compr, int | float) and compr > 0 and t is not None:
            if orig < min_orig_bytes:
                continue
            times.append(t - t0)
            ratios.append(orig / compr)
    return times, ratios


def counter_rates(samples: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    """Per-second rate of a cumulative counter between consecutive samples, placed at the later sample.

    Pairs with no time between them or a counter that went backwards (a reset) give no point.
    """
    if not samples:
        return [], []
    t0 = samples[0].get("t", 0.0)
    times, rates = [], []
    previous: tuple[float, float] | None = None
    for row in samples:
        value, t = row.get(key), row.get("t")
        if not isinstance(value, int | float) or not isinstance(t, int | float):
            continue
        if previous is not None:
            dt, dv = t - previous[0], value - previous[1]
            if dt > 0 and dv >= 0:
                times.append(t - t0)
                rates.append(dv / dt)
        previous = (t, value)
    return times, rates


def _figure(title: str, ylabel: str) -> tuple[Figure, Axes]:
    # Constrained layout makes room for long tick labels (KVM runs reach 10^5 pages/s) and the workload names.
    fig, ax = _pyplot().subplots(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax.set_title(title)
    ax.set_xlabel(TIME_LABEL)
    ax.set_ylabel(ylabel)
    # No "1e6" offset text: it would sit on top of the workload names.
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _fit(name: str, chars: int) -> str:
    return name if len(name) <= chars else (name[: chars - 1] + "…" if chars >= 3 else "")


def _mark_spans(ax: Axes, spans: Sequence[Span]) -> None:
    """Workload boundaries as dashed lines, their names on a top axis so they never sit on the data;
    a name too long for its span is shortened (the report lists the spans in full)."""
    if not spans:
        return
    for index, (_, start, end) in enumerate(spans):
        ax.axvspan(start, end, color="0.5", alpha=0.06 if index % 2 else 0.0, lw=0)
        ax.axvline(start, color="0.4", ls="--", lw=0.8)
    ax.axvline(spans[-1][2], color="0.4", ls="--", lw=0.8)
    low, high = ax.get_xlim()
    px_per_unit = FIGSIZE[0] * DPI * 0.85 / max(high - low, 1e-9)
    top = ax.secondary_xaxis("top")
    top.set_xticks(
        [(start + end) / 2 for _, start, end in spans],
        labels=[_fit(name, int((end - start) * px_per_unit / SPAN_CHAR_PX)) for name, start, end in spans],
    )
    top.tick_params(length=0, labelsize=8)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        _pyplot().close(fig)
    return buffer.getvalue()


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.4")


def _lines_png(title: str, ylabel: str, lines: Sequence[tuple[tuple[list[float], list[float]], str, dict]],
               spans: Sequence[Span], legend: str = "upper left") -> bytes:
    """One plot of several series over time; "no data" when none has points."""
    fig, ax = _figure(title, ylabel)
    drawn = False
    for (times, values), label, style in lines:
        if times:
            draw = ax.step if style.pop("step", False) else ax.plot
            draw(times, values, label=label, **style)
            drawn = True
    if drawn:
        ax.set_ylim(bottom=0)
        ax.legend(loc=legend, fontsize=8)
    else:
        _no_data(ax)
    _mark_spans(ax, spans)
    return _png(fig)


def zram_memory_png(samples: Sequence[dict], spans: Sequence[Span] = ()) -> bytes:
    """zram's stored data before and after compression and its total memory use, in MiB."""
    return _lines_png("zram memory", "MiB", [
        (series(samples, "mm.orig_data_size", MIB), "original data (orig_data_size)", {"lw": 1.5}),
        (series(samples, "mm.compr_data_size", MIB), "compressed data (compr_data_size)", {"lw": 1.5}),
        (series(samples, "mm.mem_used_total", MIB), "total memory used (mem_used_total)", {"lw": 1.5}),
    ], spans)


def compression_ratio_png(samples: Sequence[dict], spans: Sequence[Span] = ()) -> bytes:
    """orig_data_size / compr_data_size over time."""
    fig, ax = _figure(
        "zram compression ratio (points with < 1 MiB stored left out)", "orig_data_size / compr_data_size"
    )
    times, ratios = compression_ratios(samples, RATIO_MIN_ORIG_BYTES)
    if times:
        ax.plot(times, ratios, color="tab:green", lw=1.5, marker=".", ms=3)
        ax.set_ylim(bottom=0, top=max(ratios) * 1.15)
    else:
        _no_data(ax)
    _mark_spans(ax, spans)
    return _png(fig)


def swap_rates_png(samples: Sequence[dict], spans: Sequence[Span] = ()) -> bytes:
    """Pages swapped out and in per second (from /proc/vmstat pswpout and pswpin)."""
    return _lines_png("swap traffic", "pages/s", [
        (counter_rates(samples, "vm.pswpout"), "swapped out (pswpout)",
         {"step": True, "where": "pre", "color": "tab:red", "lw": 1.2}),
        (counter_rates(samples, "vm.pswpin"), "swapped in (pswpin)",
         {"step": True, "where": "pre", "color": "tab:blue", "lw": 1.2}),
    ], spans)


def free_memory_png(samples: Sequence[dict], spans: Sequence[Span] = ()) -> bytes:
    """MemFree and MemAvailable from /proc/meminfo, in MiB (meminfo is in KiB)."""
    return _lines_png("guest free memory", "MiB", [
        (series(samples, "mem.MemFree", 1024), "MemFree", {"lw": 1.5}),
        (series(samples, "mem.MemAvailable", 1024), "MemAvailable", {"lw": 1.5}),
    ], spans, legend="center right")


def _bar_height(count: int) -> float:
    return max(2.5, 1.2 + 0.45 * count)


def _xerr(errors: Sequence[tuple[float, float] | None] | None) -> list[list[float]] | None:
    """matplotlib's xerr (a row of distances below, a row above) from (low, high) intervals around each bar."""
    if not errors:
        return None
    return [[e[0] if e else 0.0 for e in errors], [e[1] if e else 0.0 for e in errors]]


def bar_chart_png(labels: Sequence[str], values: Sequence[float], title: str, xlabel: str,
                  errors: Sequence[tuple[float, float] | None] | None = None) -> bytes:
    """One horizontal bar per run (labels can be long parameter lists), each bar annotated with its value;
    errors: (distance below, distance above) of each bar's confidence interval, drawn as whiskers."""
    fig, ax = _pyplot().subplots(figsize=(FIGSIZE[0], _bar_height(len(labels))), dpi=DPI, layout="constrained")
    positions = list(range(len(labels)))
    bars = ax.barh(positions, values, color="tab:blue", xerr=_xerr(errors), capsize=4,
                   error_kw={"ecolor": "black", "lw": 1})
    ax.bar_label(bars, labels=[f"{v:,.2f}" for v in values], padding=3, fontsize=8)
    ax.set_yticks(positions, labels=list(labels), fontsize=8)
    ax.invert_yaxis()  # first run on top, as in the table
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.margins(x=0.15)
    ax.grid(True, axis="x", alpha=0.3)
    if not labels:
        _no_data(ax)
    return _png(fig)


def grouped_bar_chart_png(
    labels: Sequence[str], groups: dict[str, Sequence[float | None]], title: str, xlabel: str,
    errors: dict[str, Sequence[tuple[float, float] | None]] | None = None,
) -> bytes:
    """Horizontal bars per run, one bar per group (e.g. workload) side by side; None values are left out;
    errors: per group, each bar's (distance below, distance above), as in bar_chart_png."""
    count = max(1, len(groups))
    fig, ax = _pyplot().subplots(
        figsize=(FIGSIZE[0], _bar_height(len(labels) * max(1.0, count / 2))), dpi=DPI, layout="constrained"
    )
    height = 0.8 / count
    for index, (group, values) in enumerate(groups.items()):
        kept = [run for run, v in enumerate(values) if v is not None]
        points = [(run + index * height - 0.4 + height / 2, values[run]) for run in kept]
        spans = (errors or {}).get(group)
        bars = ax.barh([p for p, _ in points], [v for _, v in points], height=height, label=group,
                       xerr=_xerr([spans[run] for run in kept]) if spans else None, capsize=3,
                       error_kw={"ecolor": "black", "lw": 1})
        ax.bar_label(bars, labels=[f"{v:,.1f}" for _, v in points], padding=3, fontsize=7)
    ax.set_yticks(range(len(labels)), labels=list(labels), fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.margins(x=0.15)
    ax.grid(True, axis="x", alpha=0.3)
    if groups and labels:
        fig.legend(fontsize=8, loc="outside lower center", ncols=min(count, 4))
    else:
        _no_data(ax)
    return _png(fig)
