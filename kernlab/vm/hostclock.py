"""The host's TSC rate, handed to an x86 guest under TCG so its clock never depends on calibrating at boot.

Under TCG, QEMU's RDTSC returns the host's own TSC (cpu_get_ticks() adds cpu_get_host_ticks()), so the guest's
TSC runs at the host's rate. The guest kernel calibrates it at boot against the PIT (native_calibrate_tsc(),
quick_pit_calibrate()); on a loaded host the emulated PIT reads come late, calibration fails ("tsc: Unable to
calibrate against PIT", "No reference (HPET/PMTIMER) available": q35 without ACPI has neither), the TSC is marked
unstable and the guest runs on refined-jiffies, where a function graph has 4 ms steps and no durations.
`tsc_early_khz=` (arch/x86/kernel/tsc.c, determine_cpu_tsc_frequencies()) skips that calibration, and
`tsc=reliable` turns off the clocksource watchdog, which on a busy host would otherwise judge the TSC against
jiffies and mark it unstable later.
"""

from __future__ import annotations

import functools
import logging
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# The host kernel's own words (arch/x86/kernel/tsc.c): the refined rate is the better one when both are there.
REFINED = re.compile(r"tsc: Refined TSC clocksource calibration: (\d+)\.(\d{3}) MHz")
DETECTED = re.compile(r"tsc: Detected (\d+)\.(\d{3}) MHz processor")
CPUINFO_MHZ = re.compile(r"^cpu MHz\s*:\s*(\d+)(?:\.(\d+))?", re.MULTILINE)


@dataclass(frozen=True)
class TscRate:
    """The host TSC's rate in kHz and where it was read."""

    khz: int
    source: str  # "dmesg (refined)", "dmesg (detected)", "/proc/cpuinfo"


def _khz(whole: str, fraction: str | None) -> int:
    return int(whole) * 1000 + int((fraction or "0").ljust(3, "0")[:3])


def rate_from_dmesg(text: str) -> TscRate | None:
    """The host kernel's TSC rate from its boot log: the refined calibration when it ran, else the detected one."""
    if matches := REFINED.findall(text):
        return TscRate(_khz(*matches[-1]), "dmesg (refined)")
    if matches := DETECTED.findall(text):
        return TscRate(_khz(*matches[-1]), "dmesg (detected)")
    return None


def rate_from_cpuinfo(text: str) -> TscRate | None:
    """cpu MHz of the first CPU, trusted only with constant_tsc (the TSC then ticks at that nominal rate)."""
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    match = CPUINFO_MHZ.search(text)
    if not match or "constant_tsc" not in flags.split():
        return None
    return TscRate(_khz(match.group(1), match.group(2)), "/proc/cpuinfo")


def _dmesg() -> str:
    try:
        return subprocess.run(["dmesg"], capture_output=True, text=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""  # no dmesg, or not allowed to read it (kernel.dmesg_restrict): /proc/cpuinfo then


@functools.cache
def host_tsc_rate(cpuinfo: Path = Path("/proc/cpuinfo")) -> TscRate | None:
    """The host's TSC rate, or None when neither the host's boot log nor /proc/cpuinfo says it."""
    rate = rate_from_dmesg(_dmesg())
    if rate is None:
        try:
            rate = rate_from_cpuinfo(cpuinfo.read_text())
        except OSError:
            rate = None
    if rate is None:
        log.warning("host TSC rate unknown: a TCG guest calibrates its own (on a busy host it may fall back "
                    "to jiffies)")
    return rate


def tcg_clock_args(rate: TscRate | None) -> str:
    """Kernel parameters that give an x86 TCG guest a working TSC clocksource whatever the host's load."""
    return f"tsc_early_khz={rate.khz} tsc=reliable" if rate else ""


def guest_clock_args(arch: str, accel: str) -> str:
    """What the guest's command line needs for its clock: only an x86 guest under TCG (KVM gives kvm-clock, and
    arm64's generic timer needs no calibration)."""
    return tcg_clock_args(host_tsc_rate()) if arch == "x86_64" and accel == "tcg" else ""
