"""A variant's repeated runs as one aggregate: each summary figure and each chain's hit count over the complete
runs (kernlab.results.stats.Spread), and the figures derived from a summary that comparisons show."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernlab.errors import KernlabError
from kernlab.results import stats
from kernlab.results.chainrecords import ChainsFile
from kernlab.results.compare import flatten, is_number
from kernlab.results.folder import AGGREGATE, ResultsFolder, find_folders, read_aggregate, write_aggregate
from kernlab.results.schema import Summary
from kernlab.results.sweeprecords import AggregateFile
from kernlab.units import MIB

PAGE_SIZE = 4096
REPEAT_DIR = "repeat-{}"  # a repeat set's runs: repeat-1, repeat-2, ...


def total_workload_seconds(summary: Summary | Mapping[str, Any] | None) -> float | None:
    seconds = summary.workload_seconds if isinstance(summary, Summary) else (summary or {}).get("workload_seconds")
    values = [v for v in seconds.values() if is_number(v)] if isinstance(seconds, Mapping) else []
    return round(sum(values), 2) if values else None


def swapout_throughput(figures: Mapping[str, Any]) -> float | None:
    """MiB swapped out per second of workload time; None when either side is unknown or zero."""
    mib = figures.get("pswpout_mib")
    if not is_number(mib):
        pages = figures.get("pswpout_pages")
        mib = pages * PAGE_SIZE / MIB if is_number(pages) else None
    seconds = total_workload_seconds(figures)
    return round(mib / seconds, 2) if mib is not None and seconds else None


def kswapd_scan_share(figures: Mapping[str, Any]) -> float | None:
    """The reclaim split: the share of scanned pages kswapd scanned (the rest were scanned in direct reclaim)."""
    kswapd, direct = figures.get("pgscan_kswapd"), figures.get("pgscan_direct")
    if not (is_number(kswapd) and is_number(direct)) or kswapd + direct == 0:
        return None
    return round(kswapd / (kswapd + direct), 4)


# Figures computed from a summary, beside its own: key -> function of summary.json's figures.
DERIVED = {
    "swapout_mib_per_s": swapout_throughput,
    "workload_seconds_total": total_workload_seconds,
    "kswapd_scan_share": kswapd_scan_share,
}


def run_figures(figures: Mapping[str, Any]) -> dict[str, float]:
    """A run's numeric figures, flattened (workload_seconds.shared-hog, reclaim.pgscan_anon, ...), and derived."""
    flat = {key: value for key, value in flatten(dict(figures)).items() if is_number(value)}
    return flat | {key: value for key, function in DERIVED.items() if is_number(value := function(figures))}


@dataclass(frozen=True)
class RunOutcome:
    """What the aggregate needs of one run: its folder name, whether it completed, its figures and chains."""

    name: str
    complete: bool
    summary: Summary | None
    chains: ChainsFile | None


def build_aggregate(outcomes: Sequence[RunOutcome], *, repeat: int, lab_name: str | None, label: str = "",
                    params: Mapping[str, Any] | None = None) -> AggregateFile:
    """Figures over the complete runs; a figure some complete run lacks is over the runs that have it (its n says).
    params: the variant's sweep values in the lab's order (kept as `swept` too, since JSON on disk is sorted)."""
    done = [o for o in outcomes if o.complete and o.summary is not None]
    per_figure: dict[str, list[float]] = {}
    for outcome in done:
        assert outcome.summary is not None
        for key, value in run_figures(outcome.summary.figures()).items():
            per_figure.setdefault(key, []).append(value)
    hits: dict[str, list[float]] = {}
    holds: dict[str, int] = {}
    for outcome in done:
        for chain in outcome.chains.chains if outcome.chains else []:
            hits.setdefault(chain.name, []).append(chain.hits)
            holds[chain.name] = holds.get(chain.name, 0) + int(chain.holds)
    return AggregateFile(lab_name=lab_name, label=label, params=dict(params or {}), swept=list(params or {}),
                         repeat=repeat, runs=[o.name for o in outcomes], complete=[o.name for o in done],
                         confidence=stats.CONFIDENCE, method=stats.METHOD,
                         figures={key: stats.spread(values) for key, values in per_figure.items()},
                         chain_hits={name: stats.spread(values) for name, values in hits.items()},
                         chain_holds=holds)


def read_outcome(folder: Path) -> RunOutcome:
    """A run folder as the aggregate sees it; one that cannot be read counts as not complete."""
    try:
        results = ResultsFolder.open(folder)
        manifest = results.manifest()
        return RunOutcome(folder.name, manifest.status == "complete", results.summary(), results.chains())
    except KernlabError:
        return RunOutcome(folder.name, False, None, None)


def write_for(group: Path, run_dirs: Sequence[str], *, repeat: int, lab_name: str | None, label: str = "",
              params: Mapping[str, Any] | None = None) -> AggregateFile:
    """Aggregate the runs under group (folder names relative to it) into group/aggregate.json."""
    aggregate = build_aggregate([read_outcome(group / name) for name in run_dirs], repeat=repeat,
                                lab_name=lab_name, label=label, params=params)
    write_aggregate(group, aggregate)
    return aggregate


def group_runs(group: Path) -> tuple[list[Path], AggregateFile | None]:
    """A repeat set's run folders (from its aggregate.json) or a single run folder, with the aggregate if any."""
    aggregate = read_aggregate(group)
    if aggregate is None:
        return [group], None
    return [group / name for name in aggregate.runs], aggregate


def find_groups(path: Path) -> list[Path]:
    """The variants at path: each run folder found there (kernlab.results.folder.find_folders), a run inside a
    repeat set standing for its set; in path order."""
    groups: list[Path] = []
    for run in find_folders(path):
        group = run.parent if (run.parent / AGGREGATE).is_file() else run
        if group not in groups:
            groups.append(group)
    return groups


def first_complete_run(group: Path) -> Path:
    """The run that stands for a repeat set where one must (its settings): its first complete one; a run itself."""
    aggregate = read_aggregate(group)
    if aggregate is None or not aggregate.complete:
        return group
    return group / aggregate.complete[0]


def group_aggregate(group: Path) -> AggregateFile:
    """A repeat set's aggregate.json, or a single run as an aggregate of one (no spread, so no noise estimate):
    comparisons treat every side alike."""
    aggregate = read_aggregate(group)
    if aggregate is not None:
        return aggregate
    outcome = read_outcome(group)
    return build_aggregate([outcome], repeat=1, lab_name=None)
