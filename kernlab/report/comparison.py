"""Several runs side by side (a sweep, repeats, a rerun): one row per run labelled by the lab settings that differ,
and bar charts over the complete ones; where variants were repeated, their figures over the repeats with each
difference marked significant or within noise (kernlab.report.noise), and bars with confidence intervals."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kernlab.report import plots
from kernlab.report.across import ChainAcross, chains_across
from kernlab.report.format import Cell, Table, fmt, table
from kernlab.report.noise import NO_NOISE_ESTIMATE, NoiseView, noise_view, spread_table
from kernlab.report.views import PlotView, RunFiles, status_of, workload_names
from kernlab.results import stats
from kernlab.results.aggregate import swapout_throughput, total_workload_seconds
from kernlab.results.compare import flatten, is_number
from kernlab.results.stats import Spread
from kernlab.results.sweeprecords import AggregateFile

COMPARISON_PLOTS: tuple[tuple[str, str], ...] = (
    ("compare_compression_ratio", "Compression ratio"),
    ("compare_swapout_throughput", "Swap-out throughput"),
    ("compare_workload_seconds", "Workload time"),
)
NO_DIFFERING_SETTINGS = "none (repeats of one lab)"
INCOMPLETE_NOT_PLOTTED = "Incomplete runs are in the table only, not in the plots."


# The figures compared across runs: (column, value from summary.json's figures).
FIGURE_COLUMNS: tuple[tuple[str, Callable[[Mapping[str, Any]], Any]], ...] = (
    ("compression ratio", lambda f: f.get("compression_ratio")),
    ("swap-out MiB/s", swapout_throughput),
    ("peak orig MiB", lambda f: f.get("peak_orig_data_mib")),
    ("peak compr MiB", lambda f: f.get("peak_compr_data_mib")),
    ("pswpout pages", lambda f: f.get("pswpout_pages")),
    ("pswpin pages", lambda f: f.get("pswpin_pages")),
    ("workload s", total_workload_seconds),
)


def figure_cells(figures: Mapping[str, Any]) -> list[str]:
    return [fmt(value(figures)) for _, value in FIGURE_COLUMNS]


def _value_key(flat: Mapping[str, Any], key: str) -> str:
    return json.dumps(flat[key], default=repr, sort_keys=True) if key in flat else "(unset)"


def differing_settings(labs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Dotted keys whose value is not the same in every lab (absent counts as a value); the name is ignored."""
    flats = [flatten(lab) for lab in labs]
    keys = list(dict.fromkeys(key for flat in flats for key in flat))
    return [key for key in keys if key != "name" and len({_value_key(flat, key) for flat in flats}) > 1]


def setting_text(flat: Mapping[str, Any], key: str) -> str:
    if key not in flat:
        return "unset"
    value = flat[key]
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class ComparisonRow:
    folder: Path
    params: tuple[str, ...]  # KEY=VALUE of the differing settings (and the folder's name for repeats)
    values: tuple[str, ...]  # the differing settings' values, in the order of the table's columns
    status: str
    complete: bool
    figures: Mapping[str, Any]
    report_link: str | None  # relative to the comparison's folder
    workload_order: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return "\n".join(self.params)


def _row(run: RunFiles | tuple[Path, str], keys: Sequence[str], out_dir: Path) -> ComparisonRow:
    if not isinstance(run, RunFiles):
        folder, error = run
        return ComparisonRow(folder=folder, params=("?",) * len(keys), values=("?",) * len(keys),
                             status=f"unreadable: {error}", complete=False, figures={}, report_link=None)
    flat = flatten(run.manifest.lab)
    status = status_of(run.manifest)
    report = run.folder / "report.html"
    return ComparisonRow(folder=run.folder, params=tuple(f"{key}={setting_text(flat, key)}" for key in keys),
                         values=tuple(setting_text(flat, key) for key in keys), status=status.text,
                         complete=status.complete, figures=run.figures,
                         report_link=Path(os.path.relpath(report, out_dir)).as_posix() if report.exists() else None,
                         workload_order=tuple(workload_names(run)))


def comparison_rows(runs: Sequence[RunFiles | tuple[Path, str]],
                    out_dir: Path) -> tuple[list[str], list[ComparisonRow]]:
    """(differing setting keys, one row per run); a (folder, error) pair stands for a run that could not be read."""
    # A run that stopped before recording its lab would make every setting "differ": leave it out of the diff.
    keys = differing_settings([run.manifest.lab for run in runs if isinstance(run, RunFiles) and run.manifest.lab])
    rows = [_row(run, keys, out_dir) for run in runs]
    # Runs with identical settings (repeats) still need telling apart.
    labels = [row.params for row in rows]
    return keys, [row if row.params and labels.count(row.params) == 1 else
                  replace(row, params=(*row.params, row.folder.name)) for row in rows]


@dataclass(frozen=True)
class GroupFiles:
    """A variant in a comparison: its runs (a repeat set's, or a single run) and their aggregate."""

    folder: Path
    label: str  # its folder relative to the comparison's: 00-lz4-text
    runs: tuple[RunFiles | tuple[Path, str], ...]
    aggregate: AggregateFile

    @property
    def repeated(self) -> bool:
        return len(self.aggregate.complete) >= 2


def run_name(folder: Path, out_dir: Path | None) -> str:
    """A run's or variant's name in a comparison: its path below the comparison's folder (00-lz4/repeat-2),
    else its folder's name."""
    if out_dir is None or not folder.resolve().is_relative_to(out_dir.resolve()) or folder.resolve() == \
            out_dir.resolve():
        return folder.name
    return folder.resolve().relative_to(out_dir.resolve()).as_posix()


def _interval(record: Spread | None) -> tuple[float, float] | None:
    if record is None or record.ci_low is None or record.ci_high is None:
        return None
    return record.mean - record.ci_low, record.ci_high - record.mean


def group_plots(groups: Sequence[GroupFiles]) -> dict[str, bytes]:
    """Bars of each variant's mean over its complete runs, whiskers its confidence interval (none for one run)."""
    out: dict[str, bytes] = {}
    for name, key, title, unit in (
        ("compare_compression_ratio", "compression_ratio", "zram compression ratio (orig_data / compr_data)", "ratio"),
        ("compare_swapout_throughput", "swapout_mib_per_s", "swap-out throughput (pswpout / total workload time)",
         "MiB/s"),
    ):
        bars = [(g.label, g.aggregate.figures[key]) for g in groups if key in g.aggregate.figures]
        if bars:
            out[name] = plots.bar_chart_png([label for label, _ in bars], [r.mean for _, r in bars],
                                            f"{title}, mean and {stats.CONFIDENCE:.0%} interval", unit,
                                            errors=[_interval(r) for _, r in bars])
    timed = [g for g in groups if any(key.startswith("workload_seconds.") for key in g.aggregate.figures)]
    names = list(dict.fromkeys(key.removeprefix("workload_seconds.") for g in timed for key in g.aggregate.figures
                               if key.startswith("workload_seconds.")))
    if timed:
        records = {name: [g.aggregate.figures.get(f"workload_seconds.{name}") for g in timed] for name in names}
        out["compare_workload_seconds"] = plots.grouped_bar_chart_png(
            [g.label for g in timed], {name: [r.mean if r else None for r in rs] for name, rs in records.items()},
            f"workload time per variant, mean and {stats.CONFIDENCE:.0%} interval", "seconds",
            errors={name: [_interval(r) for r in rs] for name, rs in records.items()})
    return out


def comparison_plots(rows: Sequence[ComparisonRow], groups: Sequence[GroupFiles] = ()) -> dict[str, bytes]:
    """Bar charts over the complete runs that have the figure; incomplete runs stay out of plots. Where a
    variant was repeated, one bar per variant instead (group_plots)."""
    if any(group.repeated for group in groups):
        return group_plots(groups)
    done = [row for row in rows if row.complete]
    out: dict[str, bytes] = {}
    for name, figure, title, unit in (
        ("compare_compression_ratio", lambda f: f.get("compression_ratio"),
         "zram compression ratio (orig_data / compr_data)", "ratio"),
        ("compare_swapout_throughput", swapout_throughput,
         "swap-out throughput (pswpout / total workload time)", "MiB/s"),
    ):
        bars = [(row, value) for row in done if is_number(value := figure(row.figures))]
        if bars:
            out[name] = plots.bar_chart_png([row.label for row, _ in bars], [v for _, v in bars], title, unit)
    timed = [row for row in done if isinstance(row.figures.get("workload_seconds"), Mapping)
             and row.figures["workload_seconds"]]
    # The lab's order (the order they ran in), not summary.json's sorted keys.
    names = list(dict.fromkeys([name for row in timed for name in row.workload_order]
                               + [name for row in timed for name in row.figures["workload_seconds"]]))
    if timed and names:
        groups = {name: [v if is_number(v := row.figures["workload_seconds"].get(name)) else None for row in timed]
                  for name in names}
        out["compare_workload_seconds"] = plots.grouped_bar_chart_png(
            [row.label for row in timed], groups, "workload time per run", "seconds")
    return out


@dataclass(frozen=True)
class ComparisonView:
    title: str
    count: int
    keys: tuple[str, ...]
    no_keys: str | None
    table: Table
    incomplete_note: str | None
    plots: tuple[PlotView, ...]
    chains: tuple[ChainAcross, ...] = ()  # each chain's lines on each run (a kernel matrix)
    noise: NoiseView | None = None  # the variants' figures over their repeats
    spreads: Table | None = None  # a single repeated variant's figures in full
    noise_note: str | None = None  # several variants, each run once: no noise estimate
    intervals: str = stats.INTERVALS


def first_complete(group: GroupFiles) -> RunFiles | None:
    """The run that stands for a variant where one run must (the chain tables): its first complete one."""
    readable = [run for run in group.runs if isinstance(run, RunFiles)]
    return next((run for run in readable if status_of(run.manifest).complete), readable[0] if readable else None)


def comparison_view(title: str, keys: Sequence[str], rows: Sequence[ComparisonRow], plotted: Sequence[str],
                    runs: Sequence[RunFiles] = (), groups: Sequence[GroupFiles] = (),
                    out_dir: Path | None = None) -> ComparisonView:
    headers = ("run", *keys, "status", *(header for header, _ in FIGURE_COLUMNS), "report")
    cells = [(run_name(row.folder, out_dir), *row.values, row.status,
              *figure_cells(row.figures), Cell("report.html", href=row.report_link) if row.report_link else "none")
             for row in rows]
    noise = noise_view([(group.label, group.aggregate) for group in groups])
    if any(group.repeated for group in groups):  # one run per variant in the chain tables
        runs = [run for group in groups if (run := first_complete(group)) is not None]
    return ComparisonView(
        title=title, count=len(rows), keys=tuple(keys), no_keys=None if keys else NO_DIFFERING_SETTINGS,
        table=table(headers, cells),
        incomplete_note=INCOMPLETE_NOT_PLOTTED if any(not row.complete for row in rows) else None,
        plots=tuple(PlotView(key, heading) for key, heading in COMPARISON_PLOTS if key in plotted),
        chains=chains_across(runs), noise=noise if noise and len(groups) > 1 else None,
        spreads=spread_table(groups[0].aggregate) if noise and len(groups) == 1 else None,
        noise_note=NO_NOISE_ESTIMATE if noise is None and len(rows) > 1 else None)
