"""The function graph as a second witness: for every traceable edge of a documented chain (a caller and the
callee the documentation puts under it), was the call seen in the merged function_graph trees, and does that
agree with the stack-histogram verdict? Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from kernlab.frames import base_name
from kernlab.results.chainrecords import ChainRecord, EdgeRecord, LineRecord
from kernlab.verify.chains import PROVEN
from kernlab.verify.graph import Node

FRAMES = ("observed", "tail call", "missing", "gone", "not traceable")  # verdicts of lines that can be frames


# "Not seen" contradicts the stacks only when the windows ran the caller often enough that the edge, at the share
# of the caller's calls the histograms counted for it, should have turned up: with 5 expected, a Poisson count
# is 0 less than 1% of the time.
MIN_EXPECTED = 5.0
EdgeShare = Callable[[str, str], float | None]  # (caller, callee) -> the callee's share of the caller's calls


def _nodes(roots: Mapping[str, Node]) -> Iterator[tuple[Node, int]]:
    """Every node with its depth (a root is 1, as max_graph_depth counts)."""
    stack = [(node, 1) for node in roots.values()]
    while stack:
        node, depth = stack.pop()
        yield node, depth
        stack.extend((child, depth + 1) for child in node.children.values())


def _edges(lines: list[LineRecord]) -> Iterator[tuple[LineRecord, LineRecord]]:
    """(caller, callee) for each function line that can be a frame, its caller the nearest enclosing line that
    can be one too: a function inlined in between is no frame in either witness."""
    open_lines: list[LineRecord] = []  # the enclosing lines, outermost first
    for line in lines:
        while open_lines and open_lines[-1].depth >= line.depth:
            open_lines.pop()
        if line.function is None:
            continue
        caller = next((above for above in reversed(open_lines) if above.verdict in FRAMES), None)
        if line.verdict in FRAMES and caller is not None:
            yield caller, line
        open_lines.append(line)


def graph_witness(chain: ChainRecord, roots: Mapping[str, Node], max_depth: int | None = None,
                  share: EdgeShare | None = None, lost: int = 0) -> list[tuple[LineRecord, EdgeRecord]]:
    """One witness per edge of the chain, on the callee's line. An edge whose caller the graph never ran, or
    ran only at max_depth (its callees were not recorded), is outside the window. An edge not seen says
    nothing where the histograms' share says the windows held too few of the caller's calls to expect it, or
    where the windows lost events: a window whose buffer filled keeps only its start, whose mix of paths is
    not the run's (arm64's private-hog window, full of reclaim, held none of its skip-swapcache faults)."""
    calls: dict[tuple[str, str], int] = {}
    shallowest: dict[str, int] = {}  # caller -> the least depth it was seen at
    ran: dict[str, int] = {}  # function -> its calls in the windows
    for node, depth in _nodes(roots):
        name = base_name(node.name)
        shallowest[name] = min(depth, shallowest.get(name, depth))
        ran[name] = ran.get(name, 0) + node.calls
        for child in node.children.values():
            key = (name, base_name(child.name))
            calls[key] = calls.get(key, 0) + child.calls
    witnesses = []
    for caller, callee in _edges(chain.lines):
        assert caller.function is not None and callee.function is not None
        stack_says = callee.verdict in PROVEN
        depth = shallowest.get(caller.function)
        if callee.verdict == "not traceable":
            witness = EdgeRecord(caller=caller.function, status="not traceable")
        elif depth is None or (max_depth is not None and depth >= max_depth):
            witness = EdgeRecord(caller=caller.function, status="outside the window")
        elif count := calls.get((caller.function, callee.function), 0):
            # A "missing" line is the stacks' word on this chain's order down to its leaves, not on the call
            # itself: the call seen on another path (wrong-read-under-writepage's swap_writepage >
            # __swap_writepage, on the write path) does not contradict it.
            witness = EdgeRecord(caller=caller.function, status="seen", calls=count,
                                 agrees=None if callee.verdict == "missing" else stack_says)
        else:
            caller_calls = ran.get(caller.function, 0)
            fraction = share(caller.function, callee.function) if share else None
            expected = caller_calls * fraction if fraction else None
            agrees = None if lost or (expected is not None and expected < MIN_EXPECTED) else not stack_says
            witness = EdgeRecord(caller=caller.function, status="not seen", agrees=agrees, caller_calls=caller_calls,
                                 expected=round(expected, 1) if expected is not None else None, lost=lost)
        witnesses.append((callee, witness))
    return witnesses
