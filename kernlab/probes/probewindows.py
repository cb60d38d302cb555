"""Probe windows: kernlab's kprobes, and the function graph, armed only part of each workload.

`/proc/sys/kernel/ftrace_enabled` 0 turns every ftrace call site back into a NOP (ftrace_shutdown_sysctl), kprobes
on function entry included when they sit on ftrace (CONFIG_KPROBES_ON_FTRACE), while the probes stay registered and
their histograms keep what they counted. So a window is two writes to one file, not a registration. Measured on
5.15.135 (TCG, 2 CPUs, private-hog 160 MiB): 25.3 s unprobed, 26.2 s with every probe registered and disarmed,
52.5 s armed throughout. Pure: settings in, guest shell text out, and the windows out of what it printed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kernlab.config.lab import GraphSpec, SampleSpec
from kernlab.probes.graphwindow import NOT_OPENED, STOP_FILE, UPTIME, grow_buffer, record_window
from kernlab.results.evidencerecords import ArmedWindowRecord

FTRACE_ENABLED = "/proc/sys/kernel/ftrace_enabled"
ARMED, DISARMED = "probes-armed", "probes-disarmed"
GRAPH_ARMED = "graph-armed"  # ftrace on for the graph window alone, the probes unhooked
KCONFIG_SYMBOL = "CONFIG_KPROBES_ON_FTRACE"
# How often the loop looks at the clock and at pswpin.
POLL_S = 0.5
# Shell functions, so that nothing forks around an arming (a fork's page faults would run into the armed probes,
# and under TCG an awk took tens of ms, which made a 0.5 s window 0.6 to 1.4 s long): swp sets $i and $o to
# pswpin and pswpout (pswpin comes first in /proc/vmstat), up sets $u to the uptime, now sets $t to it in
# centiseconds (/proc/uptime prints two decimals).
FUNCTIONS = ("swp() { while read k v; do case $k in pswpin) i=$v;; pswpout) o=$v; break;; esac; "
             "done < /proc/vmstat; }; up() { read u _ < /proc/uptime; }; now() { up; t=${u%.*}${u#*.}; }; ")


def disarm_command() -> str:
    return f"echo 0 > {FTRACE_ENABLED}"


def rearm_command() -> str:
    return f"echo 1 > {FTRACE_ENABLED}"


def windows_missing(config_text: str) -> str | None:
    """Why this kernel's probes cannot be windowed, or None when they can: a kprobe that is a breakpoint (no
    KPROBES_ON_FTRACE in the build's .config, as in kernlab's arm64 5.15) ignores ftrace_enabled."""
    if f"{KCONFIG_SYMBOL}=y" in config_text:
        return None
    return (f"this kernel has no {KCONFIG_SYMBOL}: its kprobes are breakpoints that ftrace_enabled cannot disarm, "
            "so they stayed armed for the whole run")


def window_script(sample: SampleSpec, graph: tuple[GraphSpec, Sequence[str]] | None,
                  unhook: Sequence[str] = (), rehook: Sequence[str] = ()) -> str:
    """Runs beside a workload until STOP_FILE appears: arms the probes for armed_s as soon as the workload first
    swaps in, then every every_s seconds. Prints each window's uptimes and the swap counters read on both sides
    of each write to ftrace_enabled, which bound the pages the probes saw from above and below.

    With a graph: once the workload has swapped in start_pswpin pages, ftrace is enabled for the graph's window
    alone with the probes unhooked (`unhook`, then `rehook`: trace.unhook_commands): the graph's durations then
    carry no probe at all (paused, they still cost 25 to 40 µs per do_swap_page call on 6.1, about its own self
    time, 2026-12-03), and no return address reads the graph's trampoline. A probe
    window follows at once, so the histograms see the phase the graph was timed for (the swap-in pass, where
    the swap cache and its readahead are taken) whatever the period: windows every 10 s missed it on 5.15."""
    gap_cs = round((sample.every_s - sample.armed_s) * 100)
    # the counters on both sides of each write, and the uptime of the write, all read before anything is printed
    arm = (f"swp; c=\"$i $o\"; {rearm_command()}; swp; up; echo {ARMED} $u $c $i $o; ")
    disarm = (f"swp; c=\"$i $o\"; {disarm_command()}; up; swp; echo {DISARMED} $u $c $i $o; "
              f"now; next=$(( t + {gap_cs} )); ")
    lines = [f"rm -f {STOP_FILE}; {FUNCTIONS}{grow_buffer(graph[0]) if graph else ''}"
             f"now; next=$(( t + {gap_cs} )); swp; base=$i; first=1; graph={int(graph is not None)}; "
             f"while [ ! -e {STOP_FILE} ]; do "
             # the workload's first swap-ins: where a path taken only a few dozen times in a run turned up (6.12's
             # swapin_readahead, 35 calls in a 90 s run, was in no periodic window)
             f"if [ $first = 1 ]; then swp; if [ $i -gt $base ]; then first=0; {arm}sleep {sample.armed_s}; "
             f"{disarm}continue; fi; fi; "]
    if graph is not None:
        spec, symbols = graph
        unhooked = "".join(f"{command}; " for command in unhook)
        rehooked = "".join(f"{command}; " for command in rehook)
        lines.append(f"if [ $graph = 1 ]; then swp; "
                     f"if [ $(( i - base )) -ge {spec.start_pswpin} ]; then graph=0; {unhooked}"
                     f"{rearm_command()}; echo {GRAPH_ARMED} $({UPTIME}); {record_window(spec, symbols)}; "
                     f"{disarm_command()}; {rehooked}{arm}sleep {sample.armed_s}; {disarm}continue; fi; fi; ")
    lines.append(f"now; if [ $t -ge $next ]; then {arm}sleep {sample.armed_s}; {disarm}fi; sleep {POLL_S}; done; "
                 f"if [ $graph = 1 ]; then echo {NOT_OPENED}; fi; exit 0")
    return "".join(lines)


@dataclass(frozen=True)
class _Mark:
    """One write to ftrace_enabled: the uptime, and (pswpin, pswpout) read before it and after it."""

    uptime: float
    before: tuple[int, int]
    after: tuple[int, int]


def _mark(parts: list[str]) -> _Mark | None:
    try:
        return _Mark(float(parts[1]), (int(parts[2]), int(parts[3])), (int(parts[4]), int(parts[5])))
    except (IndexError, ValueError):
        return None


def parse_windows(workload: str, output: str) -> list[ArmedWindowRecord]:
    """The windows window_script printed, in order; an arming with no disarming after it (the guest died) is
    left out, since what it saw cannot be bounded."""
    windows: list[ArmedWindowRecord] = []
    opened: _Mark | None = None
    for line in output.splitlines():
        parts = line.split()
        if not parts or parts[0] not in (ARMED, DISARMED):
            continue
        mark = _mark(parts)
        if parts[0] == ARMED:
            opened = mark
        elif opened is not None and mark is not None:
            windows.append(ArmedWindowRecord(
                workload=workload, armed_s=opened.uptime, disarmed_s=mark.uptime,
                pswpin=mark.after[0] - opened.before[0], pswpout=mark.after[1] - opened.before[1],
                pswpin_inner=mark.before[0] - opened.after[0], pswpout_inner=mark.before[1] - opened.after[1]))
            opened = None
    return windows


