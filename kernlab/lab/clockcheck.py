"""Does every boot get a working clock? Boots a kernel N times while the host compiles in parallel (the load a
CI runner building kernels puts on the guest's emulated timers) and counts each boot's clocksource."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kernlab import tools
from kernlab.cache import Cache
from kernlab.config.lab import Lab
from kernlab.guest.image import build_guest_image
from kernlab.probes.guestfacts import CLOCKSOURCE
from kernlab.vm.session import guest_session

# A C unit with enough work in it that gcc -O2 takes a moment (the loop is unrolled and vectorised).
C_UNIT = """
double unit{n}(const double *a, const double *b, int n) {{
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i] / (1.0 + a[i] * a[i]);
    return s;
}}
"""
UNITS = 60
# Clocksources that count real time: kvm-clock under KVM, the TSC under TCG. tsc-early is the same TSC at the rate
# kernlab hands it (tsc_early_khz=); the kernel swaps it for "tsc" only once tsc_refine_calibration_work() has
# read the TSC against the HPET or PM timer twice, a second apart, and it starts that second again each time
# tsc_read_refs() is disturbed (arch/x86/kernel/tsc.c, `goto restart`), which a loaded host does: CI saw 1 boot
# in 10 still on tsc-early when SSH came up.
REAL_TIME_CLOCKS = frozenset({"kvm-clock", "tsc", "tsc-early"})


@dataclass
class ClockCount:
    """Each boot's clocksource, and the load it booted under."""

    load: str
    clocksources: list[str] = field(default_factory=list)

    @property
    def jiffies_boots(self) -> int:
        return sum("jiffies" in name for name in self.clocksources)

    @property
    def other_boots(self) -> int:
        """Boots on a clock that is neither jiffies nor one that counts real time (hpet, acpi_pm: a watchdog
        switch kernlab's tsc=reliable should have prevented)."""
        return sum(name not in REAL_TIME_CLOCKS and "jiffies" not in name for name in self.clocksources)

    def figures(self) -> dict:
        return {"boots": len(self.clocksources), "load": self.load, "jiffies_boots": self.jiffies_boots,
                "other_boots": self.other_boots,
                "clocksources": dict(Counter(self.clocksources))}


@contextlib.contextmanager
def parallel_make(jobs: int = 2) -> Iterator[str]:
    """`make -jJOBS` compiling C units over and over on the host until the block ends; yields what it runs.
    Only the process group it started is stopped."""
    make = tools.require_tool("make", "make")
    with tempfile.TemporaryDirectory(prefix="kernlab-load-") as scratch:
        root = Path(scratch)
        for n in range(UNITS):
            (root / f"unit{n}.c").write_text(C_UNIT.format(n=n))
        (root / "Makefile").write_text("all: $(patsubst %.c,%.o,$(wildcard *.c))\n%.o: %.c\n\tgcc -O2 -c $< -o $@\n")
        command = f"while :; do {make} -s -B -j{jobs} -C {root} >/dev/null 2>&1 || exit 1; done"
        process = subprocess.Popen(["sh", "-c", command], start_new_session=True)
        try:
            yield f"make -j{jobs} (gcc -O2 over {UNITS} C units, in a loop)"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def count_clocksources(lab: Lab, kernel_image: Path, cache: Cache, boots: int = 10, jobs: int = 2) -> ClockCount:
    """Boot the lab's guest `boots` times under a parallel make and read the clocksource each boot came up on."""
    image = build_guest_image(lab, cache)
    with tempfile.TemporaryDirectory(prefix="kernlab-clock-") as scratch, parallel_make(jobs) as load:
        count = ClockCount(load=load)
        for boot in range(boots):
            with guest_session(lab.vm, kernel_image, image, Path(scratch) / f"console-{boot}.log",
                               accel_verdicts=cache.dir("accel")) as session:
                count.clocksources.append(session.run(f"cat {CLOCKSOURCE}", timeout=30).stdout.strip())
    return count
