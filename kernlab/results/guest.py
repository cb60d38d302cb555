"""What the guest brought up, as a run records it (read from the guest by kernlab.probes.guestfacts)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CPU_ONLINE = "/sys/devices/system/cpu/online"
CPU_POSSIBLE = "/sys/devices/system/cpu/possible"
SlabAllocator = Literal["SLUB", "SLUB_TINY", "SLAB", "SLOB", "SLUB_TINY or SLOB"]
MemcgState = Literal["on", "disabled", "not built"]
class GuestRecord(BaseModel):
    """manifest.json's `guest`: what the running kernel brought up, read from the guest right after boot.
    Keys a newer kernlab adds are kept on rewrite, as for every kernlab.results record."""

    model_config = ConfigDict(extra="allow")

    release: str | None = Field(None, description="`uname -r` in the guest")
    uts_version: str | None = Field(None, description="`uname -v`: build number, SMP/PREEMPT flags, build time")
    smp: bool | None = Field(None, description="built with CONFIG_SMP (`SMP` in uname -v); None: unreadable")
    cpus_online: int | None = Field(None, description=f"CPUs online ({CPU_ONLINE}); None: unreadable")
    cpus_online_list: str | None = Field(None, description=f"{CPU_ONLINE} as the kernel printed it, e.g. 0-1")
    cpus_possible: int | None = Field(None, description=f"CPUs the kernel could bring up ({CPU_POSSIBLE})")
    slab: SlabAllocator | None = Field(None, description="slab allocator, from which of /sys/kernel/slab and "
                                                         "/proc/slabinfo exist (see slab_allocator)")
    memcg: MemcgState | None = Field(None, description="memory cgroup controller: on, disabled at boot "
                                                       "(cgroup_disable=memory), or not built")
    thp: str | None = Field(None, description="transparent hugepage mode (always, madvise, never) or `not built`")
    hz: int | None = Field(None, description="CONFIG_HZ, the tick rate; None: not determined (see hz_how)")
    hz_how: str = Field("", description="how hz was found, or why it was not")
    preempt: str | None = Field(None, description="preemption model: none, voluntary, full, rt, or "
                                                  "`none or voluntary` (which look alike from the guest)")
    preempt_how: str = Field("", description="how preempt was found, or why it was not")
    clocksource: str | None = Field(None, description="current_clocksource right after boot")


def cpus_text(guest: GuestRecord, asked: int | None) -> str:
    """`2 CPUs online (asked 2)`; a shortfall said plainly."""
    online = guest.cpus_online
    counted = "unknown CPUs online" if online is None else f"{online} CPU{'' if online == 1 else 's'} online"
    if asked is None:
        return f"{counted} (asked unknown)"
    if online is not None and online < asked:
        return f"{counted} (ASKED {asked}: the guest brought up fewer)"
    return f"{counted} (asked {asked})"


def kernel_text(guest: GuestRecord) -> str:
    """`SLUB, memcg on, THP madvise, HZ 250, preempt voluntary, clocksource tsc`."""
    memcg = {"on": "memcg on", "disabled": "memcg disabled at boot", "not built": "no memcg (not built)"}
    thp = "no THP (not built)" if guest.thp == "not built" else f"THP {guest.thp or 'unknown'}"
    return ", ".join((guest.slab or "slab unknown", memcg.get(guest.memcg or "", "memcg unknown"), thp,
                      f"HZ {guest.hz or 'unknown'}", f"preempt {guest.preempt or 'unknown'}",
                      f"clocksource {guest.clocksource or 'unknown'}"))
