"""The guest as the guest sees it: what the running kernel brought up (CPUs online, slab allocator, memcg, THP
mode, HZ, preemption model, clocksource), read from the guest in one SSH round trip right after boot, so the
manifest and the report state what ran rather than what the lab asked for (issue 23: a lab asked QEMU for 2 CPUs,
the tinyconfig kernel brought up 1, and the report said "2 CPUs").

Everything here is pure, as in kernlab.probes.zram: COMMAND is a string for the runner's SSH session, parse_guest_facts
takes its output. Formats were read from the kernel itself (Debian linux-source-6.1 6.1.192 and 6.12 6.12.117):
- CPUs: drivers/base/cpu.c prints cpu_online_mask/cpu_possible_mask as a list (`0`, `0-1`, `0,2-3`);
- slab: mm/slab.h (SLAB_SUPPORTS_SYSFS), mm/slab_common.c (/proc/slabinfo), mm/slub.c kmem_cache_init;
- memcg: kernel/cgroup/cgroup-v1.c proc_cgroupstats_show (`memory\\t0\\t1\\t1`, enabled last);
- THP: mm/huge_memory.c enabled_show (`always [madvise] never`);
- HZ: kernel/time/timer_list.c (`now at N nsecs`, `  .resolution: N nsecs`, `jiffies: N`), kernel/time/hrtimer.c;
- preemption: init/Makefile (UTS_VERSION flags), kernel/sched/debug.c sched_dynamic_show, kernel/sched/core.c.
"""

from __future__ import annotations

import re

from kernlab.errors import KernlabError
from kernlab.probes.zram import MISSING, split_sample
from kernlab.results.folder import ResultsFolder
from kernlab.results.guest import CPU_ONLINE, CPU_POSSIBLE, GuestRecord, MemcgState, SlabAllocator
from kernlab.version import KernelVersion
from kernlab.vm.session import GuestSession

SLAB_SYSFS = "/sys/kernel/slab"
SLABINFO = "/proc/slabinfo"
CGROUPS = "/proc/cgroups"
THP = "/sys/kernel/mm/transparent_hugepage/enabled"
# The guest's clock, as proof of what ran: kvm-clock under KVM; under TCG tsc, until the watchdog finds it
# unstable and switches to refined-jiffies.
CLOCKSOURCE = "/sys/devices/system/clocksource/clocksource0/current_clocksource"
DEBUGFS = "/sys/kernel/debug"
PREEMPT_DEBUGFS = f"{DEBUGFS}/sched/preempt"
TIMER_LIST = "/proc/timer_list"
BOOT_LOG = "dmesg"
TIMER_LATER = f"{TIMER_LIST} later"
HZ_WAIT_S = 0.5  # between the two jiffies reads: ±1 jiffy is 2 % at HZ 100, well inside HZ_TOLERANCE
# The HZ values kernel/Kconfig.hz offers x86_64 and arm64, the guests kernlab builds.
KNOWN_HZ = (100, 250, 300, 1000)
HZ_TOLERANCE = 0.05  # 250 and 300 are 20 % apart

# The lines of /proc/timer_list the HZ needs; per CPU it has one .resolution per clock base and one jiffies line.
_TIMER_LINES = f"grep -E '^now at |^jiffies: |[.]resolution: ' {TIMER_LIST}"
# (section name, shell): each section's output under a `==> name <==` header, as kernlab.probes.zram's sampler frames
# files, and MISSING when the command failed (file absent, nothing matched).
SECTIONS: tuple[tuple[str, str], ...] = (
    ("uname -r", "uname -r"),
    ("uname -v", "uname -v"),
    (CPU_ONLINE, f"cat {CPU_ONLINE}"),
    (CPU_POSSIBLE, f"cat {CPU_POSSIBLE}"),
    # Presence only: /proc/slabinfo is large, and which of the two exists is what tells the allocator.
    (SLAB_SYSFS, f"test -d {SLAB_SYSFS} && echo present"),
    (SLABINFO, f"test -e {SLABINFO} && echo present"),
    (CGROUPS, f"cat {CGROUPS}"),
    (THP, f"cat {THP}"),
    (CLOCKSOURCE, f"cat {CLOCKSOURCE}"),
    # guest/init mounts no debugfs; mounting it changes nothing the labs measure, and on a PREEMPT_DYNAMIC kernel
    # with CONFIG_DEBUG_FS this file is the mode in force now (the boot log has the mode chosen at boot).
    (PREEMPT_DEBUGFS, f"{{ grep -qs ' {DEBUGFS} ' /proc/mounts || mount -t debugfs debugfs {DEBUGFS}; }} "
                      f"&& cat {PREEMPT_DEBUGFS}"),
    (BOOT_LOG, "dmesg | grep -E 'SLUB: HWalign|Dynamic Preempt:'"),
    (TIMER_LIST, _TIMER_LINES),
    # Only with high resolution timers active does the resolution stop being one tick: then HZ is measured.
    (TIMER_LATER, f"grep -q 'resolution: 1 nsecs' {TIMER_LIST} && sleep {HZ_WAIT_S} && {_TIMER_LINES}"),
)
COMMAND = "; ".join(f"echo '==> {name} <=='; {{ {shell}; }} 2>/dev/null || echo '{MISSING}'"
                    for name, shell in SECTIONS)


def count_cpus(text: str, path: str) -> int:
    """A cpumask as a list (`%*pbl`): `0`, `0-1`, `0,2-3`."""
    count = 0
    for part in text.strip().split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        if not match or int(match[2] or match[1]) < int(match[1]):
            raise KernlabError(f"{path}: not a CPU list: {text.strip()[:80]!r}")
        count += int(match[2] or match[1]) - int(match[1]) + 1
    return count


def slab_allocator(slab_sysfs: bool, slabinfo: bool, boot_log: str, release: str | None) -> SlabAllocator | None:
    """Which slab allocator runs. /sys/kernel/slab exists for SLUB with sysfs, except SLUB_TINY (6.2+, mm/slab.h:
    SLAB_SUPPORTS_SYSFS is CONFIG_SYSFS && !CONFIG_SLUB_TINY); /proc/slabinfo for SLAB or SLUB_DEBUG, and
    SLUB_DEBUG depends on SYSFS (and, 6.2+, !SLUB_TINY), so slabinfo without the sysfs directory is SLAB. With
    neither, SLOB (gone in 6.4) or SLUB_TINY (new in 6.2): the kernel version decides outside 6.2-6.3, and within
    it the boot log's `SLUB: HWalign=` line, which mm/slub.c prints for SLUB_TINY too and SLOB never prints."""
    if slab_sysfs:
        return "SLUB"
    if slabinfo:
        return "SLAB"
    if "SLUB: HWalign=" in boot_log:
        return "SLUB_TINY"
    try:
        version = KernelVersion.parse(release or "")
    except KernlabError:
        return "SLUB_TINY or SLOB"
    if version < KernelVersion(6, 2):
        return "SLOB"
    return "SLUB_TINY" if version >= KernelVersion(6, 4) else "SLUB_TINY or SLOB"


def memcg_state(cgroups: str | None) -> MemcgState:
    """From /proc/cgroups: absent without CONFIG_CGROUPS; no `memory` line without CONFIG_MEMCG; its last column
    (enabled) is 0 after cgroup_disable=memory."""
    for line in (cgroups or "").splitlines():
        fields = line.split()
        if fields and fields[0] == "memory":
            if len(fields) != 4 or fields[3] not in ("0", "1"):
                raise KernlabError(f"{CGROUPS}: not `memory hierarchy num_cgroups enabled`: {line.strip()!r}")
            return "on" if fields[3] == "1" else "disabled"
    return "not built"


def thp_mode(text: str | None) -> str:
    """The bracketed word of `always [madvise] never`; no file without CONFIG_TRANSPARENT_HUGEPAGE."""
    if text is None:
        return "not built"
    match = re.search(r"\[(\w+)\]", text)
    if not match:
        raise KernlabError(f"{THP}: no [mode] in {text.strip()[:80]!r}")
    return match[1]


def _timer_values(text: str) -> tuple[int | None, int | None, int | None]:
    """(now in ns, jiffies, hrtimer resolution in ns) from the lines _TIMER_LINES keeps; the first of each."""
    def first(pattern: str) -> int | None:
        match = re.search(pattern, text, re.MULTILINE)
        return int(match[1]) if match else None
    return first(r"^now at (\d+) nsecs"), first(r"^jiffies: (\d+)"), first(r"\.resolution: (\d+) nsecs")


def _counted_hz(first: str, later: str) -> tuple[int | None, str]:
    """HZ from jiffies counted against `now` between two reads, snapped to the HZ the kernel offers."""
    now, jiffies, _ = _timer_values(first)
    now_later, jiffies_later, _ = _timer_values(later)
    if now is None or jiffies is None or now_later is None or jiffies_later is None or now_later <= now:
        return None, f"high resolution timers on and {TIMER_LIST} has no jiffies to count (CONFIG_TICK_ONESHOT off?)"
    seconds = (now_later - now) / 1e9
    rate = (jiffies_later - jiffies) / seconds
    nearest = min(KNOWN_HZ, key=lambda hz: abs(hz - rate))
    counted = f"{rate:.0f} jiffies/s counted over {seconds:.2f} s"
    if abs(nearest - rate) > HZ_TOLERANCE * nearest:
        return None, f"{counted}, no HZ of {', '.join(map(str, KNOWN_HZ))}"
    return nearest, counted


def tick_rate(first: str | None, later: str | None) -> tuple[int | None, str]:
    """HZ and how it was found. While high resolution timers are not active, hrtimer_resolution is LOW_RES_NSEC,
    which is TICK_NSEC, (10^9 + HZ/2) / HZ: exact. With them active it is 1 ns, and CONFIG_TICK_ONESHOT (which
    they select) makes timer_list print jiffies: HZ is then counted over HZ_WAIT_S (one jiffy of error either
    end)."""
    if first is None:
        return None, f"{TIMER_LIST} was unreadable"
    resolution = _timer_values(first)[2]
    if resolution is None:
        return None, f"{TIMER_LIST} has no .resolution line"
    if resolution > 1:
        return round(1e9 / resolution), f"hrtimer resolution {resolution} ns, one tick (high resolution timers off)"
    if later is None:
        return None, f"high resolution timers on and {TIMER_LIST} was not read a second time"
    return _counted_hz(first, later)


def preemption(uts_version: str | None, debugfs: str | None, boot_log: str) -> tuple[str | None, str]:
    """The preemption model and how it was found. uname -v carries one flag (init/Makefile, 6.x): PREEMPT_RT,
    PREEMPT_DYNAMIC or PREEMPT (5.15's PREEMPT_DYNAMIC kernels say PREEMPT); a dynamic kernel's mode is in
    debugfs's sched/preempt as `none (voluntary) full` and in the boot log as `Dynamic Preempt: voluntary`.
    PREEMPT_NONE and PREEMPT_VOLUNTARY set no flag and leave no other trace the guest can read."""
    flags = set((uts_version or "").split())
    if "PREEMPT_RT" in flags:
        return "rt", "uname -v says PREEMPT_RT"
    if debugfs is not None and (match := re.search(r"\((\w+)\)", debugfs)):
        return match[1], PREEMPT_DEBUGFS
    if modes := re.findall(r"Dynamic Preempt: (\w+)\s*$", boot_log, re.MULTILINE):
        return modes[-1], f"the boot log's `Dynamic Preempt: {modes[-1]}`"
    if "PREEMPT_DYNAMIC" in flags:
        return None, "uname -v says PREEMPT_DYNAMIC but neither debugfs nor the boot log said the mode"
    if "PREEMPT" in flags:
        return "full", "uname -v says PREEMPT"
    if uts_version is None:
        return None, "uname -v was unreadable"
    return "none or voluntary", "uname -v names no preemption: PREEMPT_NONE or PREEMPT_VOLUNTARY"


def _line(text: str | None) -> str | None:
    """A one-line section, None when missing or empty."""
    return (text or "").strip() or None


def parse_guest_facts(text: str) -> GuestRecord:
    """COMMAND's output as a record; a fact the guest could not give is None (with why, for HZ and preemption)."""
    sections = split_sample(text)
    release, uts_version = _line(sections.get("uname -r")), _line(sections.get("uname -v"))
    online, possible = _line(sections.get(CPU_ONLINE)), _line(sections.get(CPU_POSSIBLE))
    boot_log = sections.get(BOOT_LOG) or ""
    hz, hz_how = tick_rate(sections.get(TIMER_LIST), sections.get(TIMER_LATER))
    preempt, preempt_how = preemption(uts_version, sections.get(PREEMPT_DEBUGFS), boot_log)
    return GuestRecord(
        release=release, uts_version=uts_version,
        smp="SMP" in uts_version.split() if uts_version else None,
        cpus_online=count_cpus(online, CPU_ONLINE) if online else None, cpus_online_list=online,
        cpus_possible=count_cpus(possible, CPU_POSSIBLE) if possible else None,
        slab=slab_allocator(sections.get(SLAB_SYSFS) is not None, sections.get(SLABINFO) is not None, boot_log,
                            release) if sections else None,
        memcg=memcg_state(sections.get(CGROUPS)) if sections else None,
        thp=thp_mode(sections.get(THP)) if sections else None,
        hz=hz, hz_how=hz_how, preempt=preempt, preempt_how=preempt_how,
        clocksource=_line(sections.get(CLOCKSOURCE)))


def check_cpus(guest: GuestRecord, asked: int, kernel_version: str) -> None:
    """A one-line error when the guest brought up fewer CPUs than the lab asks for (before any workload runs on
    a machine other than the one the lab describes); nothing when it brought them all up or could not say."""
    online = guest.cpus_online
    if online is None or online >= asked:
        return
    if guest.smp is False:
        hint = "built without CONFIG_SMP: see kconfigs/mm.config"
    elif guest.cpus_possible is not None and guest.cpus_possible < asked:
        hint = f"it allows {guest.cpus_possible}: CONFIG_NR_CPUS, or nr_cpus=/maxcpus= on the command line?"
    else:
        hint = "the others did not come up: see console.log"
    raise KernlabError(f"vm.cpus: the lab asks for {asked} CPUs, linux {kernel_version} brought up {online} "
                       f"({hint})")


GUEST_FACTS = "guest-facts.txt"  # what the guest said, as read (kernlab.COMMAND's output)
def read_guest(session: GuestSession, folder: ResultsFolder) -> GuestRecord:
    """What the running kernel brought up; the guest's own words are kept beside the manifest."""
    text = session.run(COMMAND, what="reading what the guest brought up").stdout
    folder.write_file(GUEST_FACTS, text)
    return parse_guest_facts(text)
