"""Live figures while a workload runs: the sampler's latest sample as elapsed time, zram's stored and compressed
MiB, their ratio and the swap-out/in rates since the sample before, handed to whoever shows them (the CLI)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kernlab.probes.zram import Sample
from kernlab.units import MIB

# Below this zram holds a few pages (and their metadata): their ratio says nothing about the workload's data.
RATIO_FROM_BYTES = MIB


@dataclass(frozen=True)
class LiveFigures:
    workload: str
    elapsed_s: float
    orig_mib: float
    compr_mib: float
    ratio: float | None  # None while zram holds less than RATIO_FROM_BYTES
    swapout_per_s: float | None  # pages; None for the first sample of a workload
    swapin_per_s: float | None

    def text(self) -> str:
        """shared-hog 12 s: zram 85.2 MiB stored in 43.1 MiB (ratio 1.98), swap out 5,210 pages/s, in 3,100/s"""
        ratio = f" (ratio {self.ratio:.2f})" if self.ratio else ""
        rates = "" if self.swapout_per_s is None or self.swapin_per_s is None else \
            f", swap out {self.swapout_per_s:,.0f} pages/s, in {self.swapin_per_s:,.0f}/s"
        return (f"{self.workload} {self.elapsed_s:.0f} s: zram {self.orig_mib:,.1f} MiB stored in "
                f"{self.compr_mib:,.1f} MiB{ratio}{rates}")


def _rate(previous: Sample | None, current: Sample, counter: str) -> float | None:
    if previous is None or current.t <= previous.t or counter not in current.vmstat \
            or counter not in previous.vmstat:
        return None
    return (current.vmstat[counter] - previous.vmstat[counter]) / (current.t - previous.t)


def figures_of(previous: Sample | None, current: Sample, workload: str, elapsed_s: float) -> LiveFigures:
    orig, compr = current.mm_stat["orig_data_size"], current.mm_stat["compr_data_size"]
    return LiveFigures(workload=workload, elapsed_s=elapsed_s, orig_mib=orig / MIB, compr_mib=compr / MIB,
                       ratio=orig / compr if compr and orig >= RATIO_FROM_BYTES else None,
                       swapout_per_s=_rate(previous, current, "pswpout"),
                       swapin_per_s=_rate(previous, current, "pswpin"))


class LiveFeed:
    """Between the sampler's thread and the workload loop: each sample taken while a workload runs becomes
    LiveFigures for show(); with every_s, at most one every every_s seconds (a log file gets a line now and then,
    not one a second). end() is called when a workload ends, so a live line can be taken down."""

    def __init__(self, show: Callable[[LiveFigures], None], end: Callable[[], None] = lambda: None,
                 every_s: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.show, self.end, self.every_s, self.clock = show, end, every_s, clock
        self._lock = threading.Lock()
        self._workload: str | None = None
        self._started = 0.0
        self._previous: Sample | None = None
        self._shown_at: float | None = None

    def workload_started(self, name: str) -> None:
        with self._lock:
            self._workload, self._started, self._shown_at = name, self.clock(), None

    def workload_ended(self) -> None:
        with self._lock:  # show() and end() under the lock: a late sample cannot put a line back up after end()
            self._workload = None
            self.end()

    @contextlib.contextmanager
    def around(self, workload: str) -> Iterator[None]:
        """While one workload (or all, run in parallel) runs: kernlab.lab.workloads.run_workloads's hook."""
        self.workload_started(workload)
        try:
            yield
        finally:
            self.workload_ended()

    def sample(self, sample: Sample) -> None:
        with self._lock:
            previous, self._previous = self._previous, sample
            if self._workload is None:
                return
            now = self.clock()
            if self.every_s and self._shown_at is not None and now - self._shown_at < self.every_s:
                return
            self._shown_at = now
            self.show(figures_of(previous, sample, self._workload, now - self._started))
