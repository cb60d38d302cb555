"""function_graph capture: which functions the graph starts at, and the guest commands of a bounded window per
workload. Pure: names in, shell text out (kernlab.probes.tracing and kernlab.probes.windows run them).

The window is kept short because function_graph under TCG costs every traced call a trip through the ftrace
trampoline; the tracer is switched on only for the window (`current_tracer` resets the buffer, so the trace of
each window is read before the next one opens) and `nop` the rest of the time. With probe windows
(kernlab.probes.probewindows) the window has ftrace to itself, the probes unhooked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kernlab.config.lab import GraphSpec
from kernlab.config.specs import ResolvedChain
from kernlab.frames import base_name
from kernlab.probes.kprobes import TRACEFS

STOP_FILE = "/tmp/kernlab-graph-stop"
# The ring buffer between workloads: one page per CPU. It grows to buffer_kb as a workload starts and shrinks once
# the window's trace is read. Not at the window itself: by then the guest is short of memory and the resize can
# fail (2 of 6 windows so grown kept one page per CPU, 240 entries, and dropped up to 48,777 events, 2026-12-03).
IDLE_BUFFER_KB = 1
OPENED, CLOSED, NOT_OPENED = "window-opened", "window-closed", "window-not-opened"
PSWPIN = "awk '$1==\"pswpin\"{print $2}' /proc/vmstat"
UPTIME = "cut -d' ' -f1 /proc/uptime"


def chain_roots(chains: Sequence[ResolvedChain]) -> list[str]:
    """Each chain's graph root, without a root that another chain puts below it (its calls are in that
    root's trees already): e.g. swap_writepage under shrink_page_list."""
    roots = list(dict.fromkeys(chain.graph_root for chain in chains if chain.graph_root))

    def below(inner: str, outer: str) -> bool:
        for chain in chains:
            functions = [line.function for line in chain.lines]
            if outer in functions and inner in functions[functions.index(outer) + 1:]:
                return True
        return False

    return [root for root in roots if not any(below(root, other) for other in roots if other != root)]


def graph_symbols(roots: Sequence[str], traceable: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """(symbols for set_graph_function, {root: why it cannot be one}) from available_filter_functions."""
    symbols = [traceable[root] for root in roots if root in traceable]
    return symbols, {root: "not in available_filter_functions" for root in roots if root not in traceable}


# The kprobe handler stays in a narrowed graph, so the stack probes' cost is a node of its own (kernlab's, named
# so in the report) instead of being added to the self time of the function they probe.
PROBE_HANDLER = "kprobe_ftrace_handler"


def recorded_symbols(chains: Sequence[ResolvedChain], roots: Sequence[str], extra: Sequence[str],
                     traceable: Mapping[str, str]) -> list[str]:
    """set_ftrace_filter for `record: chains`: the roots, every traceable function the chains name on this kernel,
    the lab's extra graph functions and the probe handler. Everything else runs unhooked, so a window records a
    few events per page instead of every call below the roots (on 5.15 a 0.3 s window of the whole subtree
    dropped 2,573,772 events), and a graph edge means: no other recorded function in between."""
    names = [*roots, *(function for chain in chains for function in chain.functions()), *extra, PROBE_HANDLER]
    return list(dict.fromkeys(traceable[base_name(name)] for name in names if base_name(name) in traceable))


# proc/tail: the task and the closing function's name on every line (calls of tasks interleave on a CPU).
# sleep-time 0: a duration is the time on the CPU, not the time the task was scheduled out inside the call
# (with it, __cond_resched took two thirds of shrink_page_list on 5.15). irqs 0: interrupts that arrive inside a
# traced call are not the article's tree. overwrite 0: a full buffer drops the window's newest events (counted
# in stats as dropped) instead of overwriting its beginning, so the trees are the window's first calls.
GRAPH_OPTIONS = {"funcgraph-proc": 1, "funcgraph-tail": 1, "sleep-time": 0, "funcgraph-irqs": 0, "overwrite": 0}
DEFAULT_OPTIONS = {"funcgraph-proc": 0, "funcgraph-tail": 0, "sleep-time": 1, "funcgraph-irqs": 1, "overwrite": 1}


def filter_command(recorded: Sequence[str]) -> str:
    """The functions the graph hooks: `recorded` (`record: chains`), or every function when it is empty."""
    return f"echo {' '.join(recorded)} > {TRACEFS}/set_ftrace_filter"


def setup_commands(spec: GraphSpec, symbols: Sequence[str], recorded: Sequence[str] = ()) -> list[str]:
    """Graph functions, the functions recorded below them, depth, the proc/tail columns and the buffer; the
    tracer itself stays nop until a window opens."""
    return [f"echo nop > {TRACEFS}/current_tracer", f"echo {' '.join(symbols)} > {TRACEFS}/set_graph_function",
            filter_command(recorded),
            f"echo {spec.max_depth} > {TRACEFS}/max_graph_depth",
            # options/ files, not trace_options: that takes a tracer's options only while it is the current one
            *(f"echo {value} > {TRACEFS}/options/{option}" for option, value in GRAPH_OPTIONS.items()),
            f"echo {IDLE_BUFFER_KB} > {TRACEFS}/buffer_size_kb"]


def window_script(spec: GraphSpec, symbols: Sequence[str]) -> str:
    """Runs beside a workload: waits until it has swapped in start_pswpin pages (or gives up when STOP_FILE
    appears, the workload being over), then records window_s seconds. Prints the guest uptime at which the
    window opened and closed, so the report can place it on the samples' time axis.

    Closing: tracing_on 0 stops the recording at once, but the graph tracer would still hook every kernel
    function until `nop` replaces it, which resets the buffer; so set_ftrace_filter narrows the hooks to the
    roots (a filter change keeps the buffer) and the rest of the workload runs almost untraced."""
    return (f"rm -f {STOP_FILE}; {grow_buffer(spec)}base=$({PSWPIN}); "
            f"while [ $(( $({PSWPIN}) - base )) -lt {spec.start_pswpin} ]; do "
            f"if [ -e {STOP_FILE} ]; then echo {NOT_OPENED}; exit 0; fi; sleep 0.1; done; "
            + record_window(spec, symbols))


def grow_buffer(spec: GraphSpec) -> str:
    """The window's ring buffer, taken as the workload starts (kernlab.probes.graphwindow.IDLE_BUFFER_KB)."""
    return f"echo {spec.buffer_kb} > {TRACEFS}/buffer_size_kb; "


def record_window(spec: GraphSpec, symbols: Sequence[str]) -> str:
    """The window itself: the tracer on, window_s seconds, the ring buffer off and the hooks narrowed."""
    return (f"echo function_graph > {TRACEFS}/current_tracer && echo {OPENED} $({UPTIME}) && sleep {spec.window_s}; "
            f"echo 0 > {TRACEFS}/tracing_on; echo {CLOSED} $({UPTIME}); "
            f"echo {' '.join(symbols)} > {TRACEFS}/set_ftrace_filter")


def read_stats_command() -> str:
    return f"for f in {TRACEFS}/per_cpu/cpu*/stats; do echo \"==> $f <==\"; cat $f; done"


def after_window_commands(recorded: Sequence[str] = ()) -> list[str]:
    """Once the window's trace is read: the tracer off again, the recorded functions hooked again for the next
    window (the close narrowed them to the roots), and the ring buffer back on."""
    return [f"echo nop > {TRACEFS}/current_tracer", f"echo {IDLE_BUFFER_KB} > {TRACEFS}/buffer_size_kb",
            filter_command(recorded), f"echo 1 > {TRACEFS}/tracing_on"]


def teardown_commands() -> list[str]:
    return [f"echo nop > {TRACEFS}/current_tracer", f"echo > {TRACEFS}/set_graph_function", filter_command(()),
            f"echo 0 > {TRACEFS}/max_graph_depth",
            *(f"echo {value} > {TRACEFS}/options/{option}" for option, value in DEFAULT_OPTIONS.items())]


def window_times(output: str) -> tuple[float | None, float | None]:
    """(opened, closed) guest uptimes from window_script's output; None where it did not print one."""
    times: dict[str, float] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in (OPENED, CLOSED):
            try:
                times[parts[0]] = float(parts[1])
            except ValueError:
                continue
    return times.get(OPENED), times.get(CLOSED)
