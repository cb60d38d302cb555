"""What the guest brought up (kernlab.guestfacts): the parser on the kernel's own formats and on a real kernel's
files, the CPU check that stops a run before its workloads, the boot step's record. (The record in a recorded run's
manifest and report: tests/recorded/test_guestfacts.py.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from kernlab.config.lab import VmSpec
from kernlab.errors import KernlabError
from kernlab.lab.recorder import RunRecorder
from kernlab.lab.run import record_boot
from kernlab.probes import guestfacts
from kernlab.probes.guestfacts import GUEST_FACTS, check_cpus, parse_guest_facts, preemption, slab_allocator, tick_rate
from kernlab.probes.zram import MISSING
from kernlab.report import render
from kernlab.results.folder import ResultsFolder
from kernlab.results.guest import GuestRecord
from kernlab.results.schema import Manifest
from tests.common import FIXTURES

HOST = FIXTURES / "guestfacts" / "host-6.18.txt"


# The lines of /proc/timer_list the command keeps (kernel/time/timer_list.c: timer_list_header, print_base,
# print_cpu's tick_sched part), one CPU's worth: low resolution (HZ 250), so .resolution is one tick, and no
# jiffies line without CONFIG_TICK_ONESHOT.
TIMERS_LOW_RES = "now at 2061254775 nsecs\n  .resolution: 4000000 nsecs\n  .resolution: 4000000 nsecs\n"


def timers_high_res(now_ns: int, jiffies: int) -> str:
    return f"now at {now_ns} nsecs\n  .resolution: 1 nsecs\n  .resolution: 1 nsecs\njiffies: {jiffies}\n"


def guest_output(**sections: str | None) -> str:
    """COMMAND's output: every section in COMMAND's order, MISSING unless given (keys: the section names with
    every run of other characters than letters, digits and `_` as one `_`, e.g. uname_v, proc_cgroups)."""
    lines = []
    for name, _ in guestfacts.SECTIONS:
        key = re.sub(r"\W+", "_", name.strip("/"))
        text = sections.pop(key, None)
        lines += [f"==> {name} <==", MISSING if text is None else text.rstrip("\n")]
    assert not sections, f"unknown sections {sorted(sections)}"
    return "\n".join(lines) + "\n"


# The 6.1 lab kernel with kconfigs/mm.config: SMP, SLUB, memcg, THP madvise, x86's PREEMPT_DYNAMIC defaulting to
# the voluntary model mm.config asks for, low resolution timers under TCG.
LAB_6_1 = guest_output(
    uname_r="6.1.192", uname_v="#1 SMP PREEMPT_DYNAMIC 1970-01-01",
    sys_devices_system_cpu_online="0-1", sys_devices_system_cpu_possible="0-1",
    sys_kernel_slab="present", proc_slabinfo="present",
    proc_cgroups="#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t0\t1\t1\n",
    sys_kernel_mm_transparent_hugepage_enabled="always [madvise] never",
    sys_devices_system_clocksource_clocksource0_current_clocksource="tsc",
    dmesg="[    0.064810] SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=2, Nodes=1\n"
          "[    0.101235] Dynamic Preempt: voluntary",
    proc_timer_list=TIMERS_LOW_RES)


# The tinyconfig kernel before issue 23 (the console of results-6.1-sizing/ says `Processors: 1`): no SMP, SLOB
# (no /sys/kernel/slab, no /proc/slabinfo), no cgroups, no THP, periodic ticks at HZ 250.
TINY_6_1 = guest_output(
    uname_r="6.1.192", uname_v="#1 1970-01-01", sys_devices_system_cpu_online="0",
    sys_devices_system_cpu_possible="0",
    sys_devices_system_clocksource_clocksource0_current_clocksource="refined-jiffies",
    proc_timer_list=TIMERS_LOW_RES)


def test_the_command_is_one_shell_line_that_frames_every_section() -> None:
    assert "\n" not in guestfacts.COMMAND
    names = [name for name, _ in guestfacts.SECTIONS]
    assert len(set(names)) == len(names)
    for name in names:
        assert f"echo '==> {name} <=='" in guestfacts.COMMAND
    # A shell runs it whatever the guest lacks: with no command found but the shell's own, every section is there.
    said = subprocess.run(["/bin/sh", "-c", guestfacts.COMMAND], env={"PATH": "/nonexistent"}, capture_output=True,
                          text=True, check=True).stdout
    assert [line for line in said.splitlines() if line.startswith("==> ")] == [f"==> {name} <==" for name in names]
    assert parse_guest_facts(said).cpus_online is None


def test_a_real_kernel_read_by_the_command() -> None:
    record = parse_guest_facts(HOST.read_text())
    assert record.model_dump() == {
        "release": "6.18.44-fc-v1147", "uts_version": "#1 SMP PREEMPT_DYNAMIC @0", "smp": True,
        "cpus_online": 2, "cpus_online_list": "0-1", "cpus_possible": 2, "slab": "SLUB", "memcg": "on",
        "thp": "madvise", "hz": 250, "hz_how": "250 jiffies/s counted over 0.50 s", "preempt": "none",
        "preempt_how": "the boot log's `Dynamic Preempt: none`", "clocksource": "tsc"}


def test_the_lab_kernel_and_the_old_tinyconfig_one() -> None:
    lab = parse_guest_facts(LAB_6_1)
    assert (lab.smp, lab.cpus_online, lab.slab, lab.memcg, lab.thp, lab.hz, lab.preempt, lab.clocksource) == (
        True, 2, "SLUB", "on", "madvise", 250, "voluntary", "tsc")
    assert lab.hz_how == "hrtimer resolution 4000000 ns, one tick (high resolution timers off)"
    tiny = parse_guest_facts(TINY_6_1)
    assert (tiny.smp, tiny.cpus_online, tiny.cpus_possible, tiny.slab, tiny.memcg, tiny.thp, tiny.hz) == (
        False, 1, 1, "SLOB", "not built", "not built", 250)
    assert tiny.preempt == "none or voluntary"
    assert parse_guest_facts("") == GuestRecord(hz_how="/proc/timer_list was unreadable",
                                                preempt_how="uname -v was unreadable")


@pytest.mark.parametrize(("text", "count"), [("0", 1), ("0-1\n", 2), ("0,2-3", 3), ("0-3,5,7-8", 7)])
def test_cpu_lists(text: str, count: int) -> None:
    assert guestfacts.count_cpus(text, "online") == count


@pytest.mark.parametrize("text", ["", "1-0", "0-", "two", "0;1"])
def test_a_bad_cpu_list_is_an_error_naming_the_file(text: str) -> None:
    with pytest.raises(KernlabError, match=r"^online: not a CPU list"):
        guestfacts.count_cpus(text, "online")


# As results-6.12-trees/console.log has it (6.12's tinyconfig: SLUB_TINY).
SLUB_LINE = "[    0.064810] SLUB: HWalign=64, Order=0-1, MinObjects=0, CPUs=1, Nodes=1"


@pytest.mark.parametrize(("sysfs", "slabinfo", "boot_log", "release", "allocator"), [
    (True, True, "", "5.15.135", "SLUB"),  # SLUB_DEBUG adds /proc/slabinfo
    (True, False, "", "6.12.117", "SLUB"),
    (False, True, "", "6.1.192", "SLAB"),
    (False, False, "", "5.15.135", "SLOB"),  # before SLUB_TINY (6.2)
    (False, False, SLUB_LINE, "6.12.117", "SLUB_TINY"),  # 6.12's tinyconfig
    (False, False, "", "6.12.117", "SLUB_TINY"),  # after SLOB (gone in 6.4)
    (False, False, SLUB_LINE, "6.3.1", "SLUB_TINY"),
    (False, False, "", "6.3.1", "SLUB_TINY or SLOB"),  # both existed, and the boot log has scrolled away
    (False, False, "", None, "SLUB_TINY or SLOB"),
])
def test_the_slab_allocator(sysfs: bool, slabinfo: bool, boot_log: str, release: str | None, allocator: str) -> None:
    assert slab_allocator(sysfs, slabinfo, boot_log, release) == allocator


def test_memcg_and_thp() -> None:
    header = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
    assert guestfacts.memcg_state(header + "cpu\t0\t1\t1\nmemory\t0\t14\t1\n") == "on"
    assert guestfacts.memcg_state(header + "memory\t0\t1\t0\n") == "disabled"  # cgroup_disable=memory
    assert guestfacts.memcg_state(header + "cpu\t0\t1\t1\n") == "not built"
    assert guestfacts.memcg_state(None) == "not built"
    with pytest.raises(KernlabError, match=r"^/proc/cgroups: not `memory hierarchy num_cgroups enabled`"):
        guestfacts.memcg_state(header + "memory\t0\t1\n")
    assert [guestfacts.thp_mode(text) for text in ("[always] madvise never\n", "always madvise [never]", None)] == [
        "always", "never", "not built"]
    with pytest.raises(KernlabError, match=r"^/sys/kernel/mm/transparent_hugepage/enabled: no \[mode\]"):
        guestfacts.thp_mode("always madvise never")


@pytest.mark.parametrize(("resolution", "hz"), [(10000000, 100), (4000000, 250), (3333333, 300), (1000000, 1000)])
def test_hz_is_the_tick_when_high_resolution_timers_are_off(resolution: int, hz: int) -> None:
    # TICK_NSEC = (10^9 + HZ/2) / HZ (include/vdso/jiffies.h)
    assert tick_rate(f"now at 5 nsecs\n  .resolution: {resolution} nsecs\n", None)[0] == hz


def test_hz_is_counted_when_high_resolution_timers_are_on() -> None:
    first = timers_high_res(4_000_000_000, 4294968296)
    assert tick_rate(first, timers_high_res(4_503_000_000, 4294968296 + 126)) == (
        250, "250 jiffies/s counted over 0.50 s")
    assert tick_rate(first, timers_high_res(4_500_000_000, 4294968296 + 499))[0] == 1000
    assert tick_rate(first, timers_high_res(4_500_000_000, 4294968296 + 51))[0] == 100
    assert tick_rate(first, timers_high_res(4_500_000_000, 4294968296 + 70)) == (
        None, "140 jiffies/s counted over 0.50 s, no HZ of 100, 250, 300, 1000")
    assert tick_rate(first, None) == (None, "high resolution timers on and /proc/timer_list was not read a "
                                            "second time")
    assert tick_rate("now at 1 nsecs\n  .resolution: 1 nsecs\n", "now at 2 nsecs\n  .resolution: 1 nsecs\n")[1] == (
        "high resolution timers on and /proc/timer_list has no jiffies to count (CONFIG_TICK_ONESHOT off?)")
    assert tick_rate("now at 1 nsecs\n", None) == (None, "/proc/timer_list has no .resolution line")
    assert tick_rate(None, None) == (None, "/proc/timer_list was unreadable")


def test_the_preemption_model() -> None:
    dynamic = "#1 SMP PREEMPT_DYNAMIC 1970-01-01"
    # kernel/sched/debug.c sched_dynamic_show: the mode in force in parentheses
    assert preemption(dynamic, "none (voluntary) full \n", "") == ("voluntary", "/sys/kernel/debug/sched/preempt")
    # kernel/sched/core.c prints the mode at boot and on every change; its warning for a bad mode is no mode
    log = ("[    0.101] Dynamic Preempt: voluntary\n[    0.102] Dynamic Preempt: unsupported mode: lazy\n"
           "[   12.000] Dynamic Preempt: full\n")
    assert preemption(dynamic, None, log) == ("full", "the boot log's `Dynamic Preempt: full`")
    assert preemption(dynamic, None, "")[0] is None
    assert preemption("#1 SMP PREEMPT_RT 1970-01-01", None, "") == ("rt", "uname -v says PREEMPT_RT")
    assert preemption("#1 SMP PREEMPT 1970-01-01", None, "") == ("full", "uname -v says PREEMPT")
    assert preemption("#1 SMP PREEMPT 1970-01-01", None, log)[0] == "full"  # 5.15's dynamic kernels say PREEMPT
    assert preemption("#1 SMP Thu Jan 1 00:00:00 UTC 1970", None, "")[0] == "none or voluntary"
    assert preemption(None, None, "") == (None, "uname -v was unreadable")


def test_a_guest_short_of_cpus_fails_in_one_line_naming_why() -> None:
    tiny = parse_guest_facts(TINY_6_1)
    with pytest.raises(KernlabError) as raised:
        check_cpus(tiny, 2, "6.1.192")
    assert str(raised.value) == ("vm.cpus: the lab asks for 2 CPUs, linux 6.1.192 brought up 1 (built without "
                                 "CONFIG_SMP: see kconfigs/mm.config)")
    capped = GuestRecord(smp=True, cpus_online=2, cpus_possible=2)
    with pytest.raises(KernlabError, match=r"brought up 2 \(it allows 2: CONFIG_NR_CPUS, or nr_cpus=/maxcpus="):
        check_cpus(capped, 4, "6.12.117")
    with pytest.raises(KernlabError, match=r"brought up 1 \(the others did not come up: see console.log\)$"):
        check_cpus(GuestRecord(smp=True, cpus_online=1, cpus_possible=2), 2, "5.15.135")
    check_cpus(parse_guest_facts(LAB_6_1), 2, "6.1.192")
    check_cpus(tiny, 1, "6.1.192")
    check_cpus(GuestRecord(), 2, "6.1.192")  # unreadable: nothing to hold against the guest


class FakeSession:
    """A booted GuestSession's shape, its guest answering COMMAND with a given output."""

    def __init__(self, output: str) -> None:
        self.output, self.commands = output, []
        self.accel = SimpleNamespace(accel="tcg", reason="asked for", cached=False)
        self.console_ready_s, self.ssh_ready_s = 2.2, 4.4

    def run(self, command: str, **_kwargs) -> subprocess.CompletedProcess:
        self.commands.append(command)
        return subprocess.CompletedProcess(command, 0, stdout=self.output, stderr="")


def boot(tmp_path: Path, output: str, cpus: int) -> tuple[ResultsFolder, list[str], KernlabError | None]:
    """run_lab's boot step on a fake guest: the folder it leaves, what it said, and how it failed."""
    folder = ResultsFolder.create(tmp_path, "lab")
    run = RunRecorder(folder, Manifest(lab={"name": "lab", "vm": {"cpus": cpus}}, status="running"))
    said: list[str] = []
    failed = None
    try:
        with run.step("boot"):
            record_boot(FakeSession(output), SimpleNamespace(vm=VmSpec(cpus=cpus)), "6.1.192",  # type: ignore[arg-type]
                        folder, run.manifest, said.append)
    except KernlabError as error:
        failed = error
    run.finish(failed)
    return folder, said, failed


def test_the_boot_step_records_the_guest(tmp_path: Path) -> None:
    folder, said, failed = boot(tmp_path, LAB_6_1, 2)
    assert failed is None
    assert said == ["guest up in 4.4 s (tcg: asked for): 2 CPUs online (asked 2), SLUB, memcg on, THP madvise, "
                    "HZ 250, preempt voluntary, clocksource tsc"]
    manifest = folder.manifest()
    assert manifest.guest == parse_guest_facts(LAB_6_1) and manifest.status == "complete"
    assert manifest.boot is not None and manifest.boot.clocksource == "tsc"
    assert (folder.path / GUEST_FACTS).read_text() == LAB_6_1


def test_a_short_guest_stops_the_boot_step_with_its_facts_recorded(tmp_path: Path) -> None:
    folder, _, failed = boot(tmp_path, TINY_6_1, 2)
    assert str(failed) == ("vm.cpus: the lab asks for 2 CPUs, linux 6.1.192 brought up 1 (built without "
                           "CONFIG_SMP: see kconfigs/mm.config)")
    manifest = folder.manifest()
    assert manifest.status == "incomplete" and manifest.failed_step == "boot" and manifest.why == str(failed)
    assert manifest.guest == parse_guest_facts(TINY_6_1)
    render.write_report(folder.path)
    top = (folder.path / "report.md").read_text().split("## Setup")[0]
    assert "INCOMPLETE: vm.cpus: the lab asks for 2 CPUs" in top
    assert "The lab asked for 2 CPUs; linux 6.1.192 brought up 1 (0 online), so the run stopped" in top
