"""Before a run makes its results folder: where the results go is a directory that can be written with room for
what the run will write (estimated from the lab). One-line errors; nothing created."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kernlab.config.lab import Lab
from kernlab.errors import KernlabError
from kernlab.units import MIB

# What every run writes whatever the lab: System.map and available_filter_functions (a few MB each on 6.x), the
# console, the manifest, the report and its plots.
FIXED_BYTES = 16 * MIB
SAMPLE_BYTES = 6 * 1024  # one samples.jsonl row (zram stats, vmstat, meminfo)
HIST_ENTRY_BYTES = 1024  # one stack entry of a hist file: 16 frames as text
GRAPH_TEXT_PER_BUFFER_BYTE = 3  # a function_graph trace as text against its ring buffer


def estimate_bytes(lab: Lab) -> int:
    """An upper estimate of what one run of the lab writes into its results folder."""
    seconds = sum(workload.timeout_s for workload in lab.workloads)
    total = FIXED_BYTES + int(seconds / lab.sampling.interval_s) * SAMPLE_BYTES
    if lab.tracing.enabled and lab.chains:
        probes = 4 * len(lab.chains) + len(lab.tracing.extra_functions)  # a chain probes a few functions
        total += probes * lab.tracing.table_size * HIST_ENTRY_BYTES
        graph = lab.tracing.graph
        if graph.enabled:
            total += len(lab.workloads) * graph.buffer_kb * 1024 * lab.vm.cpus * GRAPH_TEXT_PER_BUFFER_BYTE
    return total


def _existing(path: Path) -> Path:
    """The path, or its nearest ancestor that exists."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check(lab: Lab, results: Path) -> None:
    """Raise KernlabError, in one line, when the run could not keep what it records (a cache path that is a file
    is refused when its kernlab.cache.Cache is made)."""
    where = _existing(results)
    if not where.is_dir():
        raise KernlabError(f"results: {where} is a file, not a directory")
    if not os.access(where, os.W_OK | os.X_OK):
        raise KernlabError(f"results: {where} cannot be written (read-only file system or no permission)")
    need, free = estimate_bytes(lab), shutil.disk_usage(where).free
    if free < need:
        raise KernlabError(f"results: {where} has {free / MIB:,.1f} MiB free; a run of lab {lab.name} may write "
                           f"up to {need / MIB:,.0f} MiB (samples, histograms, graph traces)")
