"""function_graph traces: parse the tracer's text into call trees, and merge them into one tree per root with
call counts and durations. Pure: text in, values out.

The format (kernel/trace/trace_functions_graph.c) with funcgraph-proc and funcgraph-tail, one event per line:

     1)   memhog-93    |               |  do_swap_page() {
     1)   memhog-93    |   0.980 us    |    lookup_swap_cache();
     1)   memhog-93    | + 12.345 us   |  } /* do_swap_page */

A duration may carry a marker for its size (`+` > 10 us, `!` > 100 us, `#` > 1 ms, `*` > 10 ms, `@` > 100 ms,
`$` > 1 s). Calls of different tasks interleave on a CPU (a task sleeps inside a traced call), so calls are nested
per task. A call open when the window started shows only its closing line, and one still open when it ended only
its opening lines: both are counted as truncated, not guessed; so is a call whose closing line a full buffer dropped
(the closing line's `/* name */` says which call ends). `CPU:N [LOST M EVENTS]` lines are lost events.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

LINE = re.compile(r"^\s*(?P<cpu>\d+)\)\s+(?P<task>\S.*?)\s+\|\s*(?P<marker>[+!#*@$])?\s*(?P<duration>[\d.]+\s+us)?"
                  r"\s*\|\s(?P<body>.*)$")
ENTRY = re.compile(r"^(?P<indent>\s*)(?P<name>[\w.$]+)\(\)\s*\{\s*$")
LEAF = re.compile(r"^(?P<indent>\s*)(?P<name>[\w.$]+)\(\);\s*$")
EXIT = re.compile(r"^(?P<indent>\s*)\}(?:\s*/\*\s*(?P<name>[\w.$]+)\s*\*/)?\s*$")
LOST = re.compile(r"^\s*CPU:\s*(\d+)\s+\[LOST\s+(\d+)\s+EVENTS\]")
OVERRUN = re.compile(r"^overrun:\s*(\d+)\s*$", re.MULTILINE)
DROPPED = re.compile(r"^dropped events:\s*(\d+)\s*$", re.MULTILINE)


@dataclass
class Call:
    """One call as traced: its callees in order, and its duration (None: the window cut it)."""

    name: str
    task: str
    duration_us: float | None = None
    callees: list[Call] = field(default_factory=list)
    orphan: bool = False  # inside a call that began before the window: not a root of its own


ROOT_INDENT = 2  # the graph function's own lines are indented by two spaces; each level adds two


@dataclass
class Trace:
    calls: list[Call]  # completed calls of the graph functions, in trace order
    truncated: int  # calls the window cut: begun before it (only a closing line) or still open at its end
    lost_events: int  # from `[LOST N EVENTS]` lines
    # Top-level lines that are no graph function: a task resumed inside a traced call after a context switch
    # shows its first callee at the top level (5.15: `finish_task_switch.isra.0();`).
    other_top_level: int = 0


def overruns(stats: str) -> int:
    """Events the ring buffer overwrote, summed over per_cpu/cpu*/stats: the window held more than the buffer,
    and its earliest calls are gone (their closing lines count as truncated)."""
    return sum(int(count) for count in OVERRUN.findall(stats))


def dropped(stats: str) -> int:
    """Events a full buffer refused (overwrite off), summed over per_cpu/cpu*/stats: the window's newest."""
    return sum(int(count) for count in DROPPED.findall(stats))


def _duration(match: re.Match) -> float | None:
    text = match.group("duration")
    return float(text.split()[0]) if text else None


def parse_trace(text: str, roots: Iterable[str]) -> Trace:
    """roots: the graph functions (set_graph_function); only their calls are trees of their own."""
    wanted = set(roots)
    other = 0
    open_calls: dict[str, list[Call]] = {}  # task -> its calls still open, outermost first
    calls: list[Call] = []
    truncated = lost = 0
    for raw in text.splitlines():
        if dropped := LOST.match(raw):
            lost += int(dropped.group(2))
            continue
        line = LINE.match(raw)
        if not line:
            continue  # headers, `------` context-switch banners, irq markers
        task, body = line.group("task").strip(), line.group("body")
        stack = open_calls.setdefault(task, [])
        if entry := ENTRY.match(body):
            call = Call(entry.group("name"), task, orphan=not stack and len(entry.group("indent")) > ROOT_INDENT)
            if stack:
                stack[-1].callees.append(call)  # a root joins `calls` when it closes
            stack.append(call)
        elif leaf := LEAF.match(body):
            if stack:
                stack[-1].callees.append(Call(leaf.group("name"), task, _duration(line)))
            elif len(leaf.group("indent")) <= ROOT_INDENT and leaf.group("name") in wanted:
                calls.append(Call(leaf.group("name"), task, _duration(line)))  # a root that called nothing traced
            elif len(leaf.group("indent")) <= ROOT_INDENT:
                other += 1
        elif closing := EXIT.match(body):
            name = closing.group("name")
            if not stack or (name and all(open_call.name != name for open_call in stack)):
                truncated += 1  # begun before the window, or its opening line was dropped (a full CPU buffer)
                continue
            # funcgraph-tail names the call that closes. With overwrite off a full CPU buffer drops a task's
            # events while another CPU records its later ones, so calls above it may never show their closing
            # lines: they are cut (no duration), not closed by their caller's line, which would misplace every
            # later call of the task under a call that never ends.
            while name and stack[-1].name != name:
                stack.pop()
                truncated += 1
            call = stack.pop()
            call.duration_us = _duration(line)
            if not stack and call.orphan:
                truncated += 1  # what a call begun before the window did after it started
            elif not stack and call.name in wanted:
                calls.append(call)
            elif not stack:
                other += 1
    truncated += sum(1 for stack in open_calls.values() if stack)
    return Trace(calls, truncated, lost, other)


COARSE_STEP_US = 1000.0  # a trace clock that only advances in whole milliseconds (jiffies) times nothing here


def clock_step_us(durations: Iterable[float]) -> float | None:
    """The step the trace clock advanced in, when it is coarse: every duration a whole number of milliseconds
    (the smallest non-zero one is the step). None for a fine clock. When the guest's TSC cannot be calibrated
    at boot (`tsc: Marking TSC unstable due to could not calculate TSC khz`, seen under TCG on a loaded host),
    sched_clock, and with it the trace clock, runs on jiffies: 4 ms steps at HZ=250, most calls 0.000 us."""
    measured = [d for d in durations if d > 0]
    if not measured or any(d % COARSE_STEP_US for d in measured):
        return None
    return min(measured)


@dataclass
class Node:
    """A call path merged over every call that took it."""

    name: str
    durations_us: list[float] = field(default_factory=list)
    children: dict[str, Node] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        return len(self.durations_us)

    @property
    def total_us(self) -> float:
        return sum(self.durations_us)

    @property
    def mean_us(self) -> float:
        return self.total_us / self.calls if self.calls else 0.0

    def percentile_us(self, share: float) -> float:
        if not self.durations_us:
            return 0.0
        ordered = sorted(self.durations_us)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    @property
    def self_us(self) -> float:
        """Time in this function itself, its traced callees' time taken out."""
        return max(0.0, self.total_us - sum(child.total_us for child in self.children.values()))


def merge(calls: Iterable[Call]) -> dict[str, Node]:
    """One tree per root function, keyed by call path, over the completed calls (a cut call inside one is left
    out with its callees, so every node's time holds its children's)."""
    roots: dict[str, Node] = {}

    def add(call: Call, into: dict[str, Node]) -> None:
        if call.duration_us is None:
            return  # cut by a dropped closing line: its callees' time would outlast the (unknown) time it took
        node = into.setdefault(call.name, Node(call.name))
        node.durations_us.append(call.duration_us)
        for callee in call.callees:
            add(callee, node.children)

    for call in calls:
        add(call, roots)
    return roots
