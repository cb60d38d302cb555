"""Stack histograms as the kernel prints them (`events/kernlab/*/hist`): parsed and checked against themselves
(format, counts, Totals, a file cut short), the tracer's own frames stripped, copies merged. Pure: text in, values
out."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kernlab.errors import KernlabError
from kernlab.frames import Frame

U64_MAX, U32_MAX = 2**64 - 1, 2**32 - 1
# The stack key's name as `hist` prints it: `stacktrace:` before 6.4, `common_stacktrace:` since ("tracing:
# Rename stacktrace field to common_stacktrace", Steven Rostedt, in the v6.4-rc3 tracing fixes); both are read.
HIST_HEADER = re.compile(r"^\{\s*(common_)?stacktrace:\s*$")
# Counts are matched loosely (\S+) so that a damaged one is named, not mistaken for a frame.
HIST_END = re.compile(r"^\}\s*hitcount:\s*(?P<hits>\S+)\s*$")
# kernel/trace/trace_events_hist.c: a stacktrace key holds at most this many frames. On arm64, 7 of them are
# kprobes' trap (el1h_64_sync ... kprobe_breakpoint_handler), which cuts the swap-in stacks below the fault entry.
HIST_STACKTRACE_DEPTH = 16
HIST_RET = re.compile(r"^\{\s*ret:\s*\[[0-9a-f]+\]\s*(?P<site>\S+)\s*\}\s*hitcount:\s*(?P<hits>\S+)\s*$")
# The end of a stack key compounded with the return address (arm64's stack probes: Arch.stack_skips_caller).
HIST_STACK_RET = re.compile(r"^,\s*ret:\s*\[[0-9a-f]+\]\s*(?P<site>\S+)\s*\}\s*hitcount:\s*(?P<hits>\S+)\s*$")


@dataclass
class StackCount:
    stack: list[Frame]  # innermost first, ftrace/kprobe plumbing removed
    hits: int
    # The kernel recorded HIST_STACKTRACE_DEPTH frames, plumbing included: the outermost ones may be cut off.
    truncated: bool = False


@dataclass
class Histogram:
    function: str
    stacks: list[StackCount]  # from a stacktrace-keyed histogram
    callers: dict[str, int]  # return site (`pageout+0xe3/0x1bb`) -> hits, from a ret-keyed histogram
    hits: int
    entries: int
    dropped: int


# Frames that belong to the probe machinery, not to the traced kernel path.
# arm64's kprobes trap (brk): aggr_pre_handler < kprobe_breakpoint_handler < call_break_hook < brk_handler <
# do_debug_exception < el1_dbg < el1h_64_sync_handler < el1h_64_sync, then the probed function at +0x0.
PLUMBING = re.compile(r"^(0x[0-9a-f]+|kprobe_\w+|kprobe_ftrace_handler|arch_ftrace_ops_list_func|ftrace_\w+|"
                      r"__kprobes_\w+|trace_\w+|event_triggers_call|opt_pre_handler|optimized_callback|"
                      r"aggr_pre_handler|call_break_hook|brk_handler|do_debug_exception|el1\w*)$")


# While function_graph runs, the return address on the stack of a traced call is the tracer's trampoline; a
# caller probe ($stack0) reads that instead of the call site (the stacktrace unwinder restores the real one).
GRAPH_TRAMPOLINE = "return_to_handler"


def hidden_returns(histogram: Histogram) -> int:
    """Hits of a caller histogram whose return address was the graph tracer's trampoline: caller unknown."""
    return sum(hits for site, hits in histogram.callers.items() if Frame.parse(site).name == GRAPH_TRAMPOLINE)


def strip_plumbing(stack: list[Frame], function: str) -> list[Frame]:
    """Drop the innermost probe/ftrace frames so the stack starts at the traced function."""
    names = [frame.name for frame in stack]
    if function in names:
        return stack[names.index(function):]
    index = 0
    while index < len(stack) and PLUMBING.match(stack[index].symbol):
        index += 1
    return [Frame(function)] + stack[index:]


def with_caller(stack: list[Frame], site: str) -> list[Frame]:
    """An arm64 entry probe's stack with its caller put back from the return address (the return site, like
    every other frame); left as it is when the address is the graph tracer's trampoline (caller unknown, and
    counted as such) or the caller is already there (a kernel whose unwinder reports it)."""
    caller = Frame.parse(site)
    if caller.name == GRAPH_TRAMPOLINE or (len(stack) > 1 and stack[1].name == caller.name):
        return stack
    return stack[:1] + [caller] + stack[1:]


# How `hist` prints a frame of a stacktrace key (%pS: `sym+off/size`, ` [module]` after one in a module, the bare
# address where no symbol is known, as for the ftrace trampoline `0xffffffffa00000c8`).
HIST_FRAME = re.compile(r"^(\S+\+0x[0-9a-f]+/0x[0-9a-f]+(\s+\[\S+\])?|0x[0-9a-f]+)$")
# hist_trigger_show (kernel/trace/trace_events_hist.c) ends every file with these, in this order:
# "Totals:\n    Hits: %llu\n    Entries: %u\n    Dropped: %llu\n".
HIST_TOTALS = ("Hits", "Entries", "Dropped")


def _count(where: str, text: str, what: str, number: int, limit: int = U64_MAX) -> int:
    """A count as the kernel prints it (unsigned, %llu or %u), or a one-line error naming its line."""
    if re.fullmatch(r"-\d+", text):
        raise KernlabError(f"{where}: negative {what} {text} at line {number}")
    if not re.fullmatch(r"\d+", text):
        raise KernlabError(f"{where}: {what} {text!r} at line {number} is not a count")
    if int(text) > limit:
        raise KernlabError(f"{where}: {what} {text} at line {number} is more than the kernel's counter holds "
                           f"({limit:,})")
    return int(text)


def _not_hist(where: str, number: int, line: str) -> KernlabError:
    return KernlabError(f"{where}: line {number} is not part of a hist file: {line.strip()[:80]!r}")


@dataclass
class _Entries:
    """What a hist file's entries add up to, read up to its `Totals:` line."""

    stacks: list[StackCount]
    callers: dict[str, int]
    count: int = 0
    hits: int = 0

    def add(self, hits: int, site: str | None) -> None:
        self.count, self.hits = self.count + 1, self.hits + hits
        if site is not None:
            self.callers[site] = self.callers.get(site, 0) + hits


def _stack_end(function: str, where: str, frames: list[Frame], start: int, number: int, line: str,
               entries: _Entries) -> None:
    """The line that closes the stack opened at line `start`: its hitcount (and arm64's return address)."""
    end = HIST_END.match(line) or HIST_STACK_RET.match(line)
    if not end:
        if line == "Totals:" or HIST_HEADER.match(line):
            raise KernlabError(f"{where}: the stack at line {start} has no hitcount: cut short?")
        raise _not_hist(where, number, line)
    # kernel/trace/trace_events_hist.c: a key holds 1 to HIST_STACKTRACE_DEPTH frames, never none nor more.
    if not 0 < len(frames) <= HIST_STACKTRACE_DEPTH:
        raise KernlabError(f"{where}: the stack at line {start} has {len(frames)} frames; a hist stack has 1 to "
                           f"{HIST_STACKTRACE_DEPTH}")
    hits = _count(where, end.group("hits"), "hitcount", number)
    site = end.groupdict().get("site")
    stack = strip_plumbing(frames, function)
    entries.stacks.append(StackCount(with_caller(stack, site) if site else stack, hits,
                                     len(frames) >= HIST_STACKTRACE_DEPTH))
    entries.add(hits, site)


def _read_entries(function: str, where: str, lines: list[str]) -> tuple[_Entries, int]:
    """The entries, and the number of the `Totals:` line; only what hist_show prints before it is taken."""
    entries = _Entries([], {})
    start, frames = 0, []  # the line that opened the current stack (0: none open), its frames
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if start and HIST_FRAME.match(line):
            frames.append(Frame.parse(line))
        elif start:
            _stack_end(function, where, frames, start, number, line, entries)
            start = 0
        elif HIST_HEADER.match(line):
            start, frames = number, []
        elif ret := HIST_RET.match(line):
            entries.add(_count(where, ret.group("hits"), "hitcount", number), ret.group("site"))
        elif line == "Totals:":
            return entries, number
        elif line and not (line.startswith("#") and not entries.count):  # the `# event histogram` header
            raise _not_hist(where, number, raw)
    if start:
        raise KernlabError(f"{where}: ends inside the stack that starts at line {start}: cut short?")
    raise KernlabError(f"{where}: {'is empty' if not ''.join(lines).strip() else 'ends before its Totals: block'}: "
                       "cut short?")


def _read_totals(where: str, lines: list[str], totals_line: int) -> dict[str, int]:
    """Hits, Entries and Dropped from the lines after `Totals:`; nothing but blank lines may follow them."""
    totals = {}
    for number, name in enumerate(HIST_TOTALS, totals_line + 1):
        if number > len(lines):
            raise KernlabError(f"{where}: ends inside its Totals: block, before {name}: cut short?")
        match = re.fullmatch(rf"\s*{name}:\s*(\S+)\s*", lines[number - 1])
        if not match:
            raise _not_hist(where, number, lines[number - 1])
        totals[name] = _count(where, match.group(1), f"{name}:", number, U32_MAX if name == "Entries" else U64_MAX)
    for number in range(totals_line + len(HIST_TOTALS) + 1, len(lines) + 1):
        if lines[number - 1].strip():
            raise _not_hist(where, number, lines[number - 1])
    return totals


def _check_totals(where: str, entries: _Entries, totals: dict[str, int]) -> None:
    """A file's entries against its own Totals:. Entries is what print_entries printed: equal, always. Hits is
    map->hits, which __tracing_map_insert (kernel/trace/tracing_map.c) counts before event_hist_trigger adds
    the hitcount, and only for an event that found or got an entry (one that did not is Dropped, not a hit).
    collect_tracing reads the file while the probes are still armed, and hist_trigger_show reads Hits after
    printing the entries: Hits is never less than their sum, and more only by the few events that came while
    the file was printed (none in any recorded file: tests/recorded/test_histfile.py)."""
    if entries.count != totals["Entries"]:
        raise KernlabError(f"{where}: {entries.count:,} entries but Totals says Entries: {totals['Entries']:,}")
    if not entries.hits <= totals["Hits"] <= entries.hits + hits_while_printing(totals["Hits"]):
        raise KernlabError(f"{where}: hitcounts sum to {entries.hits:,} but Totals says Hits: {totals['Hits']:,}")


def hits_while_printing(hits: int) -> int:
    """How many more hits than its entries sum to a file may count: events that came while hist_show printed
    (a tenth of a percent; recorded files have none)."""
    return hits // 1000


def parse_hist(function: str, text: str, where: str = "") -> Histogram:
    """A `hist` file of a kprobe event keyed by stacktrace (with the return address on arm64) or by its return
    address alone, checked against what it says about itself: its format, its counts and its Totals:.
    A damaged file is a KernlabError naming `where` (default `<function>.hist`) and what is wrong."""
    where = where or f"{function}.hist"
    lines = text.splitlines()
    entries, totals_line = _read_entries(function, where, lines)
    totals = _read_totals(where, lines, totals_line)
    _check_totals(where, entries, totals)
    return Histogram(function, entries.stacks, entries.callers, totals["Hits"], totals["Entries"],
                     totals["Dropped"])


def merged_histogram(parts: list[Histogram]) -> Histogram:
    """One probe's histograms over a run whose probes were unhooked and hooked again (unhook_commands): the
    same stacks' and return sites' hits added, Entries the distinct keys, Dropped summed."""
    first = parts[0]
    stacks: dict[tuple[tuple[str, ...], bool], StackCount] = {}
    callers: dict[str, int] = {}
    for part in parts:
        for count in part.stacks:
            key = (tuple(map(str, count.stack)), count.truncated)
            if key in stacks:
                stacks[key].hits += count.hits
            else:
                stacks[key] = StackCount(list(count.stack), count.hits, count.truncated)
        for site, hits in part.callers.items():
            callers[site] = callers.get(site, 0) + hits
    ordered = sorted(stacks.values(), key=lambda count: -count.hits)
    return Histogram(first.function, ordered, dict(sorted(callers.items(), key=lambda item: -item[1])),
                     sum(part.hits for part in parts), len(ordered) or len(callers),
                     sum(part.dropped for part in parts))
