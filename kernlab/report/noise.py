"""Figures over repeated runs, for people: each variant's mean ± its confidence interval's half width, and each
difference from the baseline marked significant or within noise (kernlab.results.stats), or said to have no noise
estimate when a side ran once."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kernlab.report.format import Cell, Table, table
from kernlab.results import stats
from kernlab.results.stats import Spread
from kernlab.results.sweeprecords import AggregateFile

# The figures comparisons show over repeats: (label, aggregate.json figure key).
COMPARED_FIGURES: tuple[tuple[str, str], ...] = (
    ("compression ratio", "compression_ratio"),
    ("swap-out MiB/s", "swapout_mib_per_s"),
    ("peak orig MiB", "peak_orig_data_mib"),
    ("peak compr MiB", "peak_compr_data_mib"),
    ("pswpout pages", "pswpout_pages"),
    ("pswpin pages", "pswpin_pages"),
    ("pgmajfault", "pgmajfault"),
    ("pgscan kswapd", "pgscan_kswapd"),
    ("pgscan direct", "pgscan_direct"),
    ("kswapd share of scans (reclaim split)", "kswapd_scan_share"),
    ("workingset activate anon", "workingset.workingset_activate_anon"),
    ("workload s", "workload_seconds_total"),
)
NO_NOISE_ESTIMATE = ("Every variant ran once, so these figures have no noise estimate: a difference between runs "
                     "may be run-to-run noise. Run with --repeat 3 (or `repeat: 3` in the lab) to tell.")
ONE_RUN_EACH = ("One run each: these differences have no noise estimate and may be run-to-run noise. Compare "
                "repeat sets (`inv lab --repeat 3`, or `repeat:` in the lab) to tell an effect from noise.")
SIGNIFICANT_CSS = {"significant": "badge effect", "within noise": "badge no", "no noise estimate": ""}


def number(value: float, decimals: int | None = None) -> str:
    """A figure for people: with decimals, that many; else up to 3 below 100 and 1 above (1.94, 231,252.5)."""
    if decimals is not None:  # to an interval's precision: trailing zeros are digits too
        return f"{value:,.{decimals}f}"
    text = f"{value:,.{3 if abs(value) < 100 else 1}f}"
    return text.rstrip("0").rstrip(".") if abs(value) >= 100 else text


def precision(half_width: float) -> int:
    """Decimals that give an interval's half width two significant digits (0.014 -> 3, 78.4 -> 0, 3,439 -> 0):
    the mean is shown to the same place, since digits past it are noise."""
    return max(0, 1 - math.floor(math.log10(half_width))) if half_width > 0 else 3


def mean_text(mean: float, half_width: float | None) -> str:
    """12.3 ± 0.4, to the interval's second significant digit; the mean alone without an interval."""
    if half_width is None:
        return number(mean)
    places = 0 if half_width == 0 and mean == int(mean) else precision(half_width)
    return f"{number(mean, places)} ± {number(half_width, places)}"


def spread_text(record: Spread, with_n: bool = True) -> str:
    """1.957 ± 0.014 (n 3), 128,530 ± 3,439 (n 3); a single run's value with "(1 run)"."""
    s = record
    if s.half_width is None:
        return f"{number(s.mean)} (1 run)"
    return mean_text(s.mean, s.half_width) + (f" (n {s.n})" if with_n else "")


def change_text(a: Spread, b: Spread) -> str:
    change = stats.relative_change(a, b)
    return "" if change is None else f"{change:+.1%}".replace("%", " %")


def decision_text(verdict: stats.Verdict) -> str:
    """significant (p 0.0004); within noise (every run gave the same value); no noise estimate (1 run against 3)."""
    if verdict.p is not None and 0 < verdict.p < 1:
        return f"{verdict.decision} (p {verdict.p:.2g})"
    return f"{verdict.decision} ({verdict.why.split(':')[0]})"


def verdict_cell(a: Spread, b: Spread) -> Cell:
    """"+19.1 %, significant (p 0.0004)" as a badge; the words alone carry it in Markdown and on the terminal."""
    verdict = stats.decide(a, b)
    change = change_text(a, b)
    return Cell(f"{change + ', ' if change else ''}{decision_text(verdict)}", css=SIGNIFICANT_CSS[verdict.decision])


@dataclass(frozen=True)
class NoiseView:
    method: str
    baselines: str  # what each difference is measured from
    table: Table  # a row per figure (and chain hit count), a column per variant
    runs_note: str  # how many runs each variant had


def _rows(groups: Sequence[tuple[str, AggregateFile]]) -> list[tuple[str, dict[str, Spread]]]:
    """(label, {variant label: spread}) for the compared figures and every chain's hits, where any variant has it."""
    rows = [(label, {name: agg.figures[key] for name, agg in groups if key in agg.figures})
            for label, key in COMPARED_FIGURES]
    chains = list(dict.fromkeys(chain for _, agg in groups for chain in agg.chain_hits))
    rows += [(f"chain {chain}: hits", {name: agg.chain_hits[chain] for name, agg in groups if chain in agg.chain_hits})
             for chain in chains]
    return [(label, by_group) for label, by_group in rows if by_group]


def baselines(params: Sequence[Mapping[str, Any]], keys: Sequence[str] = ()) -> list[int | None]:
    """Which variant each one is measured against: the first variant with the first swept key's first value and
    the same values of every other key (lz4-pattern for zstd-pattern, so the difference is the compressor's
    alone); None for a baseline itself. keys: the swept keys in the lab's order (else params' own order).
    Variants without sweep values are all measured against the first."""
    if not params or not params[0]:
        return [None] + [0] * (len(params) - 1)
    first_key = next(iter(keys), None) or next(iter(params[0]))
    first_value = params[0][first_key]
    found: list[int | None] = []
    for own in params:
        rest = {key: value for key, value in own.items() if key != first_key}
        base = next((index for index, other in enumerate(params) if other.get(first_key) == first_value
                     and {key: value for key, value in other.items() if key != first_key} == rest), None)
        found.append(None if base is None or params[base] == own else base)
    return found


def noise_view(groups: Sequence[tuple[str, AggregateFile]]) -> NoiseView | None:
    """The variants' figures over their repeats, each against its baseline (baselines()); None when no variant
    has two complete runs (a comparison of single runs says NO_NOISE_ESTIMATE instead)."""
    if not groups or all(len(agg.complete) < stats.MIN_RUNS for _, agg in groups):
        return None
    names = [name for name, _ in groups]
    against = baselines([agg.params for _, agg in groups], groups[0][1].swept)
    cells = []
    for label, by_group in _rows(groups):
        row: list[str | Cell] = [label]
        for name, base in zip(names, against, strict=True):
            record = by_group.get(name)
            reference = by_group.get(names[base]) if base is not None else None
            if record is None:
                row.append("not measured")
            elif reference is None:
                row.append(spread_text(record, with_n=False))
            else:
                verdict = verdict_cell(reference, record)
                row.append(Cell(f"{spread_text(record, with_n=False)}; {verdict.text}", css=verdict.css))
        cells.append(row)
    runs = ", ".join(f"{name} {len(agg.complete)}/{agg.repeat}" for name, agg in groups)
    measured = sorted({names[base] for base in against if base is not None})
    first_key = next(iter(groups[0][1].swept or groups[0][1].params), None)
    words = (f"each variant against the one with the first {first_key} and the same other settings: "
             if first_key and len(measured) > 1 else "each variant against ") + ", ".join(measured)
    return NoiseView(method=stats.METHOD, baselines=words, table=table(("figure", *names), cells),
                     runs_note=f"complete runs per variant: {runs}")


def plain(value: float) -> str:
    """A whole number as one (0, 238,275), else number()."""
    return f"{int(value):,}" if value == int(value) else number(value)


def spread_table(aggregate: AggregateFile) -> Table:
    """One variant's figures in full: n, mean, sd, min, max and the interval (a lab's own repeats); a chain's row
    says in how many runs it held."""
    rows = []
    keyed = [(label, aggregate.figures[key]) for label, key in COMPARED_FIGURES if key in aggregate.figures]
    keyed += [(f"chain {name}: hits (held in {aggregate.chain_holds.get(name, 0)} of {record.n})", record)
              for name, record in aggregate.chain_hits.items()]
    for label, record in keyed:
        s = record
        interval = "none (1 run)" if s.ci_low is None or s.ci_high is None else \
            f"{plain(s.ci_low)} to {plain(s.ci_high)}"
        rows.append((label, str(s.n), plain(s.mean), "none" if s.sd is None else plain(s.sd), plain(s.min),
                     plain(s.max), interval))
    return table(("figure", "n", "mean", "sd", "min", "max", f"{aggregate.confidence:.0%} interval"), rows)


@dataclass(frozen=True)
class PairRow:
    """One figure of two sets of runs (kernlab lab.compare): each side's spread, the change, the decision."""

    figure: str
    a: str
    b: str
    change: str
    decision: stats.Decision
    text: str  # the decision with its p-value or reason (decision_text)


def _all_zero(record: Spread) -> bool:
    return not any(record.values)


def pair_rows(a: AggregateFile, b: AggregateFile) -> list[PairRow]:
    """Every figure both sides measured, but those 0 in every run (failed_reads): the compared figures first,
    then the rest by name, then chain hits."""
    first = [key for _, key in COMPARED_FIGURES]
    keys = [key for key in first if key in a.figures and key in b.figures]
    keys += sorted(key for key in a.figures.keys() & b.figures.keys() if key not in first)
    pairs = [(key, a.figures[key], b.figures[key]) for key in keys]
    pairs += [(f"chain {name}: hits", a.chain_hits[name], b.chain_hits[name]) for name in a.chain_hits
              if name in b.chain_hits]
    rows = []
    for key, left, right in pairs:
        if _all_zero(left) and _all_zero(right):
            continue
        verdict = stats.decide(left, right)
        rows.append(PairRow(key, spread_text(left), spread_text(right), change_text(left, right), verdict.decision,
                            decision_text(verdict)))
    return rows
