"""ftrace evidence: the guest commands that set up kprobe stack histograms, and parsers for what they print.

Parsers take the text of tracefs files (`events/kernlab/*/hist`,
`available_filter_functions`); they do no I/O.
"""

from __future__ import annotations

import re

from kernlab.arch import X86_64, Arch
from kernlab.frames import base_name

TRACEFS = "/sys/kernel/tracing"
PROBE_GROUP = "kernlab"
REFUSED = "kernlab-kprobe-refused:"
# Why a function kprobes refuse has no probe (kernel/kprobes.c: within_kprobe_blacklist, check_ftrace_location).
REFUSED_WHY = ("the kernel refused a kprobe on it (kept out of kprobes' reach: __kprobes or NOKPROBE_SYMBOL, "
               "as arm64's do_page_fault is); stack frames still show it")


def probe_event_name(symbol: str) -> str:
    """A kprobe event name for a function symbol (event names allow no dots)."""
    return "kl_" + re.sub(r"[^A-Za-z0-9_]", "_", symbol)


def _trigger(kind: str, table_size: int, arch: Arch) -> str:
    key = "ret.sym-offset" if kind == "caller" else "stacktrace,ret.sym-offset" if arch.stack_skips_caller \
        else "stacktrace"
    return f"hist:keys={key}:vals=hitcount:sort=hitcount.descending:size={table_size}"


def _fetch(kind: str, arch: Arch) -> str:
    return f" ret={arch.return_address}:x64" if kind == "caller" or arch.stack_skips_caller else ""


def _kinds(stack_symbols: list[str], caller_symbols: list[str]) -> list[tuple[str, str]]:
    """Each probed symbol with its kind: "stack" (a stacktrace-keyed histogram) or "caller" (its return site)."""
    return [(symbol, "stack") for symbol in stack_symbols] + [(symbol, "caller") for symbol in caller_symbols]


def hist_setup_commands(stack_symbols: list[str], caller_symbols: list[str], table_size: int = 1024,
                        arch: Arch = X86_64) -> list[str]:
    """Guest shell commands: a kprobe per function, each feeding an in-kernel histogram.

    Stack probes count every distinct full stack (the evidence for a chain); caller
    probes count only the return address at entry (`$stack0`, arm64's `%x30`), which is
    cheap and is what proves a tail call. On arm64 a stack probe keys on its return
    address too, which puts back the caller its stack trace lacks. Nothing streams out
    while the workload runs, and nothing is lost unless a table fills up (`Dropped:`).
    """
    commands = [f"echo 0 > {TRACEFS}/tracing_on", f"echo > {TRACEFS}/kprobe_events"]
    for symbol, kind in _kinds(stack_symbols, caller_symbols):
        # A kprobe the kernel refuses (arm64's do_page_fault is __kprobes) is named in the output, not fatal.
        event = f"{TRACEFS}/events/{PROBE_GROUP}/{probe_event_name(symbol)}"
        commands.append(f"if echo 'p:{PROBE_GROUP}/{probe_event_name(symbol)} {symbol}{_fetch(kind, arch)}' "
                        f">> {TRACEFS}/kprobe_events 2>/dev/null; "
                        f"then echo '{_trigger(kind, table_size, arch)}' > {event}/trigger; "
                        f"else echo '{REFUSED} {symbol}'; fi")
    commands.append(f"echo 1 > {TRACEFS}/tracing_on")
    return commands


def pause_commands(stack_symbols: list[str], caller_symbols: list[str], table_size: int = 1024,
                   arch: Arch = X86_64) -> list[str]:
    """Pause every histogram: a paused trigger is skipped (event_triggers_call), so no stack is unwound and
    nothing counted, though the kprobe itself still fires while ftrace is enabled."""
    return [f"echo '{_trigger(kind, table_size, arch)}:pause' >> "
            f"{TRACEFS}/events/{PROBE_GROUP}/{probe_event_name(symbol)}/trigger 2>/dev/null"
            for symbol, kind in _kinds(stack_symbols, caller_symbols)]


def unhook_commands(stack_symbols: list[str], caller_symbols: list[str], table_size: int, arch: Arch,
                    keep_dir: str) -> list[str]:
    """Each histogram copied into keep_dir, then its trigger removed. With no trigger left the kprobe event loses
    its last soft-mode user and is unregistered (unregister_trigger > trace_event_trigger_enable_disable >
    __ftrace_event_enable_disable, kernel/trace/trace_events.c): the probe is no longer hooked at all, where a
    paused one still runs its handler (2 to 11 µs under TCG, about 8 per page swapped in on 6.1). The copies
    are added to what the histograms count after rehook_commands (merged_histogram)."""
    commands = [f"mkdir -p {keep_dir}"]
    for symbol, kind in _kinds(stack_symbols, caller_symbols):
        event = f"{TRACEFS}/events/{PROBE_GROUP}/{probe_event_name(symbol)}"
        commands.append(f"cat {event}/hist > {keep_dir}/{base_name(symbol)}.hist; "
                        f"echo '!{_trigger(kind, table_size, arch)}' >> {event}/trigger")
    return commands


def rehook_commands(stack_symbols: list[str], caller_symbols: list[str], table_size: int,
                    arch: Arch) -> list[str]:
    """The triggers unhook_commands removed, each starting an empty histogram."""
    return [f"echo '{_trigger(kind, table_size, arch)}' >> "
            f"{TRACEFS}/events/{PROBE_GROUP}/{probe_event_name(symbol)}/trigger"
            for symbol, kind in _kinds(stack_symbols, caller_symbols)]


def refused_probes(output: str) -> list[str]:
    """The symbols hist_setup_commands' output says the kernel refused a kprobe on."""
    return [words[1] for words in map(str.split, output.splitlines()) if len(words) == 2 and words[0] == REFUSED]


def hist_teardown_commands(stack_symbols: list[str], caller_symbols: list[str], table_size: int = 1024,
                           arch: Arch = X86_64) -> list[str]:
    commands = [f"echo 0 > {TRACEFS}/tracing_on"]
    for symbol, kind in _kinds(stack_symbols, caller_symbols):
        event = f"{TRACEFS}/events/{PROBE_GROUP}/{probe_event_name(symbol)}"
        commands.append(f"echo '!{_trigger(kind, table_size, arch)}' > {event}/trigger 2>/dev/null || true")
    commands.append(f"echo > {TRACEFS}/kprobe_events")
    return commands
