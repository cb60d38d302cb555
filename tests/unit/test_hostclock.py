"""The host's TSC rate for a TCG guest's clock, read from this machine kind's own dmesg and /proc/cpuinfo."""

from __future__ import annotations

from pathlib import Path

from kernlab.config.lab import VmSpec
from kernlab.vm import hostclock
from kernlab.vm import qemu as vm
from tests.common import FIXTURES

HOSTCLOCK = FIXTURES / "hostclock"


def test_the_host_kernels_detected_rate_is_read_from_its_boot_log() -> None:
    rate = hostclock.rate_from_dmesg((HOSTCLOCK / "dmesg-amd-epyc.txt").read_text())
    assert rate == hostclock.TscRate(2596152, "dmesg (detected)")


def test_a_refined_calibration_wins_over_the_early_one() -> None:
    text = ("[    0.000000] tsc: Detected 2445.400 MHz processor\n"
            "[    1.523811] tsc: Refined TSC clocksource calibration: 2445.417 MHz\n")
    assert hostclock.rate_from_dmesg(text) == hostclock.TscRate(2445417, "dmesg (refined)")
    assert hostclock.rate_from_dmesg("[    0.1] no clock words here\n") is None


def test_cpuinfo_is_trusted_only_with_a_constant_tsc() -> None:
    text = (HOSTCLOCK / "cpuinfo-amd-epyc.txt").read_text()
    assert hostclock.rate_from_cpuinfo(text) == hostclock.TscRate(2596152, "/proc/cpuinfo")
    assert hostclock.rate_from_cpuinfo(text.replace(" constant_tsc", "")) is None
    assert hostclock.rate_from_cpuinfo("processor : 0\n") is None


def test_only_an_x86_guest_under_tcg_gets_clock_parameters(tmp_path: Path) -> None:
    args = hostclock.guest_clock_args("x86_64", "tcg")
    assert args.startswith("tsc_early_khz=") and args.endswith(" tsc=reliable")
    assert int(args.split()[0].split("=")[1]) > 100_000  # kHz of a real host, not MHz
    assert hostclock.guest_clock_args("x86_64", "kvm") == "" and hostclock.guest_clock_args("arm64", "tcg") == ""
    command = vm.qemu_command(VmSpec(append="loglevel=4"), kernel=Path("/k/bzImage"), initrd=None, ssh_port=40022,
                              accel="tcg", qmp_socket=tmp_path / "q.sock", clock_args=args)
    assert command[command.index("-append") + 1] == (
        f"console=ttyS0 panic=-1 oops=panic random.trust_cpu=on {args} loglevel=4")


def test_a_boot_still_on_tsc_early_counts_real_time() -> None:
    """tsc-early is the TSC at the rate kernlab handed it; a loaded host only delays the swap to "tsc"."""
    from kernlab.lab.clockcheck import ClockCount

    count = ClockCount(load="make -j2", clocksources=["tsc", "tsc-early", "refined-jiffies", "hpet", "kvm-clock"])
    assert (count.jiffies_boots, count.other_boots) == (1, 1)
    assert count.figures()["clocksources"] == {"tsc": 1, "tsc-early": 1, "refined-jiffies": 1, "hpet": 1,
                                               "kvm-clock": 1}
