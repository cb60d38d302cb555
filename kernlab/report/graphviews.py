"""The function graph as the article writes its code blocks: each root's merged tree, indented, every line with
its calls and mean duration, the documented functions marked, the rest dimmer and cut off below a share of the
root's time; and where a root's time goes (self time per function)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from kernlab.frames import base_name
from kernlab.report import plots
from kernlab.report.format import fmt
from kernlab.results.chainrecords import ChainRecord
from kernlab.results.evidencerecords import GraphCapture, GraphFile, GraphNodeRecord
from kernlab.verify.hist import PLUMBING

MIN_SHARE = 0.02  # an undocumented callee below this share of the root's time goes into the cut-off line
CHART_FUNCTIONS = 10  # bars in a self-time chart; the rest is one "other" bar
KVM_NOTE = "Durations are the guest's clock under KVM."
COARSE_NOTE = ("No durations: the guest's trace clock advanced in {step:,.0f} µs steps (its TSC could not be "
               "calibrated at boot, so sched_clock ran on jiffies; the setup table shows the clocksource). The "
               "calls and call paths stand; the time columns and charts are left out.")
PROBE_NOTE = "kernlab's stack probe: its cost, not the kernel's"
PROBES = "kernlab's stack probes"
TCG_NOTE = ("Durations are the guest's clock under {accel}: emulated time. Compare them within a run (which "
            "callee costs more), not with bare metal.")


@dataclass(frozen=True)
class GraphRow:
    """One line of a merged tree, or the cut-off line that stands for the callees left out."""

    depth: int
    name: str
    calls: str
    mean_us: str
    share: str
    documented: bool
    cut: bool = False

    @property
    def text(self) -> str:
        return "  " * self.depth + self.name

    @property
    def figures(self) -> str:
        return "" if self.cut else f"{self.calls} calls, mean {self.mean_us} µs, {self.share} of the time"


@dataclass(frozen=True)
class GraphTreeView:
    root: str
    rows: tuple[GraphRow, ...]
    calls: int
    chart: str  # the self-time chart's plot key

    @property
    def chart_file(self) -> str:
        return f"plots/{self.chart}.png"
    self_time: tuple[tuple[str, float], ...]  # (function, µs per root call), largest first, "other" last
    probe_cost: str | None = None  # what kernlab's probes cost a root call, against the root's own self time


@dataclass(frozen=True)
class GraphView:
    trees: tuple[GraphTreeView, ...]
    summary: str  # windows, seconds, roots, depth
    losses: str | None  # truncated calls and lost events, when there were any
    duration_note: str
    # Stack probes that read the graph tracer's own frames: about kernlab's evidence, so said here, not at the top.
    hidden_returns: str | None = None


def documented_functions(chains: Iterable[ChainRecord]) -> set[str]:
    return {line.function for chain in chains for line in chain.lines if line.function}


def is_probe(node: GraphNodeRecord) -> bool:
    """kernlab's own kprobe handler (the stack histograms), called inside the function it probes."""
    return PLUMBING.match(node.name) is not None


def _contains(node: GraphNodeRecord, names: set[str]) -> bool:
    return base_name(node.name) in names or any(_contains(child, names) for child in node.children)


def graph_rows(node: GraphNodeRecord, documented: set[str], min_share: float = MIN_SHARE,
               depth: int = 0) -> list[GraphRow]:
    """The node and, in call order, the callees worth a line: documented ones, those with a documented function
    below them, and any with at least min_share of the root's time; the others become one cut-off line."""
    rows = [GraphRow(depth, node.name, fmt(node.calls), f"{node.mean_us:,.1f}", f"{node.share:.1%}",
                     base_name(node.name) in documented)]
    if is_probe(node):
        return [replace(rows[0], name=f"{node.name} ({PROBE_NOTE})")]
    left_out: list[GraphNodeRecord] = []
    for child in node.children:
        if _contains(child, documented) or child.share >= min_share:
            rows += graph_rows(child, documented, min_share, depth + 1)
        else:
            left_out.append(child)
    if left_out:
        share = sum(child.share for child in left_out)
        rows.append(GraphRow(depth + 1, f"... {len(left_out)} more callee{'s' if len(left_out) > 1 else ''}, "
                                        f"{share:.0%} of the time", "", "", "", False, cut=True))
    return rows


@dataclass(frozen=True)
class ProbeCost:
    """kernlab's probes inside a root's calls (the windows' probe handler subtrees), per root call."""

    probes_us: float
    root_self_us: float  # the root function's own self time
    share: float  # of the root's whole time
    unhooked: bool = False  # the probes were unhooked for the windows (GraphCapture.probes_unhooked)

    def text(self, root: str) -> str:
        if self.unhooked:
            return (f"kernlab's probes: none inside these calls, unhooked for the graph's windows (each histogram "
                    f"read before a window and started again after it, the two added); {root}'s own self time "
                    f"{self.root_self_us:,.1f} µs")
        return (f"kernlab's probes: {self.probes_us:,.1f} µs per {root} call, {self.share:.1%} of its time; "
                f"{root}'s own self time {self.root_self_us:,.1f} µs")


def probe_cost(root: GraphNodeRecord, unhooked: bool = False) -> ProbeCost | None:
    """None when the probes did not fire inside the root (no stack probe below it, and they were not unhooked for
    the windows) or calls have no time."""
    if not root.calls or not root.total_us:
        return None
    probes = self_time_totals(root).get(PROBES, 0.0)
    if not probes and not unhooked:
        return None
    return ProbeCost(round(probes / root.calls, 1), round(root.self_us / root.calls, 1),
                     round(probes / root.total_us, 4), unhooked and not probes)


def self_time_totals(root: GraphNodeRecord) -> dict[str, float]:
    """Self time per function (clones merged) in µs over all the root's calls, kernlab's probes as one entry."""
    totals: dict[str, float] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if is_probe(node):  # the probe's whole subtree is one cost: kernlab's, not the kernel's
            totals[PROBES] = totals.get(PROBES, 0.0) + node.total_us
            continue
        totals[base_name(node.name)] = totals.get(base_name(node.name), 0.0) + node.self_us
        stack.extend(node.children)
    return totals


def self_time(root: GraphNodeRecord, functions: int = CHART_FUNCTIONS) -> list[tuple[str, float]]:
    """Self time per function (clones merged) in µs per call of the root, largest first, the rest as other."""
    ranked = sorted(self_time_totals(root).items(), key=lambda item: -item[1])
    per_call = [(name, us / root.calls) for name, us in ranked] if root.calls else []
    head, rest = per_call[:functions], per_call[functions:]
    return head + ([("other", sum(us for _, us in rest))] if rest else [])


def chart_key(root: str) -> str:
    """The self-time chart's plot key (plots/<key>.png)."""
    return f"graph-self-time-{base_name(root)}"


def hidden_returns_text(hidden: Mapping[str, int] | None) -> str | None:
    """Which caller counts the function graph's windows affected, when any."""
    if not hidden:
        return None
    counts = ", ".join(f"{count:,} at {name}" for name, count in hidden.items())
    return (f"While the function graph was on, some return addresses read the graph tracer's trampoline "
            f"(return_to_handler) instead of the call site: {counts}. Those hits' caller is unknown; every other "
            "count is unaffected (stack traces are unwound past the trampoline).")


def graph_view(graph: GraphFile | None, capture: GraphCapture | None, chains: Sequence[ChainRecord],
               accel: str | None, hidden_returns: Mapping[str, int] | None = None) -> GraphView | None:
    """hidden_returns: chains.json's graph_hidden_returns (caller probe hits per function that read the trampoline)."""
    if graph is None or capture is None:
        return None
    documented = documented_functions(chains)
    trees = tuple(GraphTreeView(root=tree.name, rows=tuple(graph_rows(tree, documented)), calls=tree.calls,
                                chart=chart_key(tree.name), self_time=tuple(self_time(tree)),
                                probe_cost=cost.text(tree.name) if (cost := probe_cost(tree, capture.probes_unhooked))
                                else None)
                  for tree in graph.trees)
    opened = ", ".join(f"{w.workload} {w.closed_s - w.opened_s:.2f} s" for w in capture.windows
                       if w.opened_s is not None and w.closed_s is not None)
    never = [w.workload for w in capture.windows if w.opened_s is None]
    hooked = ("every function below them" if capture.recorded is None else
              f"the {len(capture.recorded)} functions the chains name below them (an edge: no other of them between)")
    summary = (f"function_graph of {', '.join(capture.roots) or 'no root'} (max_graph_depth {capture.max_depth}, "
               f"recording {hooked}), "
               f"{graph.windows} window{'s' if graph.windows != 1 else ''} ({opened or 'none opened'})"
               + (f"; no window in {', '.join(never)} (it swapped in fewer than {capture.start_pswpin} pages)"
                  if never else "")
               + f". The trees cover only these windows (the stack histograms: see Evidence above). The "
                 f"{capture.buffer_kb // 1024} MiB ring buffer per CPU took the guest's memory from each workload's "
                 "start until its window was read.")
    losses = None
    if graph.truncated_calls or graph.lost_events:
        losses = (f"{graph.truncated_calls:,} calls cut by a window's edge and {graph.lost_events:,} events lost "
                  "(dropped once the buffer was full, overrun, or LOST lines) are not in the trees.")
    if graph.clock_step_us:
        # Counts and call paths stand; times taken with a clock this coarse do not.
        trees = tuple(replace(tree, rows=tuple(replace(row, mean_us="-") for row in tree.rows), self_time=(),
                              probe_cost=None) for tree in trees)
        note = COARSE_NOTE.format(step=graph.clock_step_us)
    else:
        note = TCG_NOTE.format(accel=(accel or "unknown").upper()) if accel != "kvm" else KVM_NOTE
    return GraphView(trees=trees, summary=summary, losses=losses, duration_note=note,
                     hidden_returns=hidden_returns_text(hidden_returns))


def self_time_pngs(view: GraphView | None) -> dict[str, bytes]:
    """The self-time chart of each root, by plot key."""
    if view is None:
        return {}
    pngs = {}
    for tree in view.trees:
        if not tree.self_time:
            continue  # no durations to chart (a coarse trace clock)
        # kernlab's own probes would dwarf the kernel's functions: named in the title, not drawn
        bars = [(name, us) for name, us in tree.self_time if name != PROBES]
        probes = sum(us for name, us in tree.self_time if name == PROBES)
        title = f"where a {tree.root} call's time goes ({tree.calls:,} calls)" + (
            f"\nnot drawn: {PROBES}, {probes:,.1f} µs per call" if probes else "")
        pngs[tree.chart] = plots.bar_chart_png([name for name, _ in bars], [us for _, us in bars], title,
                                               "self time per call (µs)")
    return pngs
