"""What the probe windows covered of a run: how long they were armed and how much of the run's swapping happened inside
them, said with every verdict (stacks and hits are every call inside the windows, never scaled up)."""

from __future__ import annotations

from dataclasses import dataclass

from kernlab.results.evidencerecords import ProbeSet


@dataclass(frozen=True)
class Coverage:
    """What the windows covered of a run: seconds armed, and the pages the kernel swapped while they were."""

    windows: int
    armed_s: float
    pswpout: int  # at most (counters read outside each arming)
    pswpin: int
    pswpout_inner: int  # at least (read inside it)
    pswpin_inner: int


def coverage(probes: ProbeSet) -> Coverage | None:
    """None when the probes were armed throughout (every call counted)."""
    if probes.armed != "windows":
        return None
    windows = probes.windows
    return Coverage(len(windows), round(sum(w.disarmed_s - w.armed_s for w in windows), 2),
                    sum(w.pswpout for w in windows), sum(w.pswpin for w in windows),
                    sum(w.pswpout_inner for w in windows), sum(w.pswpin_inner for w in windows))


def sampling_text(probes: ProbeSet, run_pswpout: int | None = None, run_pswpin: int | None = None) -> str:
    """How the stacks and hit counts were taken, in one sentence for chains.json, the terminal and the report."""
    cover = coverage(probes)
    if cover is None:
        return "stacks and hits: every call of the run (probes armed throughout" + (
            f"; {probes.armed_why})" if probes.armed_why else ")")

    def pages(low: int, high: int, whole: int | None, unit: str = "") -> str:
        share = f" ({low / whole:.1%}-{high / whole:.1%} of the run's {whole:,})" if whole else ""
        return f"{low:,}-{high:,}{unit}{share}"

    return (f"stacks and hits: every call inside {cover.windows} probe windows, {cover.armed_s:.1f} s armed "
            f"(once every {probes.every_s:g} s), not the whole run; while they were armed the kernel swapped out "
            f"{pages(cover.pswpout_inner, cover.pswpout, run_pswpout, ' pages')} and in "
            f"{pages(cover.pswpin_inner, cover.pswpin, run_pswpin)}. Nothing is scaled up to the run.")
