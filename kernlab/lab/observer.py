"""The observer effect: the same lab with and without its evidence (a sweep of tracing.enabled, N runs a side, each
on a fresh boot), and for each key figure whether the evidence moved it beyond the runs' own noise (Welch's test,
kernlab.results.stats). `inv lab.observe` and `inv bench`'s observer_effect section."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kernlab.cache import Cache
from kernlab.config.lab import Lab
from kernlab.errors import KernlabError
from kernlab.lab.sweep import run_sweep
from kernlab.results import aggregate, stats
from kernlab.results.folder import OBSERVER, write_model
from kernlab.results.sweeprecords import AggregateFile, EffectRow, ObserverEffect

# The figures an mm engineer asks about first: time, swap traffic, the reclaim split, compression, major faults.
KEY_FIGURES = {
    "workload_seconds_total": "workload seconds",
    "pswpout_pages": "pswpout (pages)",
    "pswpin_pages": "pswpin (pages)",
    "pgscan_kswapd": "pgscan_kswapd",
    "pgscan_direct": "pgscan_direct",
    "kswapd_scan_share": "kswapd share of scans",
    "compression_ratio": "compression ratio",
    "pgmajfault": "pgmajfault",
}
MIN_REPEAT = 3


def observer_lab(lab: Lab, repeat: int) -> Lab:
    """The lab twice: tracing off, then on (as the lab sets it), repeat runs each."""
    if not lab.chains or not lab.tracing.enabled:
        raise KernlabError(f"lab {lab.name} records no evidence (no chains, or tracing.enabled false): "
                           "there is no observer effect to measure")
    if repeat < MIN_REPEAT:
        raise KernlabError(f"--repeat {repeat}: the observer effect needs at least {MIN_REPEAT} runs a side")
    return lab.model_copy(update={"sweep": {"tracing.enabled": [False, True]}, "repeat": repeat})


def effect_rows(untraced: AggregateFile, traced: AggregateFile) -> list[EffectRow]:
    rows = []
    for key, label in KEY_FIGURES.items():
        if key not in untraced.figures or key not in traced.figures:
            continue
        a, b = untraced.figures[key], traced.figures[key]
        verdict = stats.decide(a, b)
        rows.append(EffectRow(figure=key, label=label, untraced=list(a.values), traced=list(b.values),
                              untraced_mean=a.mean, traced_mean=b.mean, untraced_half_width=a.half_width,
                              traced_half_width=b.half_width, ratio=round(b.mean / a.mean, 3) if a.mean else None,
                              decision=verdict.decision, p=verdict.p))
    return rows


def measure(lab: Lab, lab_path: Path, cache: Cache, results: Path, repeat: int = MIN_REPEAT,
            kernel: str | None = None, notify: Callable[[str], None] = print) -> ObserverEffect:
    """Run both sides and write observer.json beside the sweep's own comparison report."""
    folder, outcomes = run_sweep(observer_lab(lab, repeat), lab_path, cache, results, kernel=kernel, notify=notify)
    sides = [aggregate.group_aggregate(folder / outcome.dir) for outcome in outcomes]
    if len(sides) != 2 or not all(side.complete for side in sides):
        raise KernlabError(f"{folder}: a side has no complete run; see its comparison report")
    rows = effect_rows(*sides)
    seconds = next((row for row in rows if row.figure == "workload_seconds_total"), None)
    effect = ObserverEffect(lab=lab.name, kernel=kernel, repeat=repeat, folder=str(folder), rows=rows,
                            method=stats.METHOD,
                            tracing_overhead_x=round(seconds.ratio, 2) if seconds and seconds.ratio else None)
    write_model(folder / OBSERVER, effect)
    return effect
