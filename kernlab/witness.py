"""The function graph as a second witness: for every traceable edge of a documented chain (a caller and the
callee the documentation puts under it), was the call seen in the merged function_graph trees, and does that
agree with the stack-histogram verdict? Pure."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from kernlab.chains import PROVEN
from kernlab.graph import Node
from kernlab.results import ChainRecord, LineRecord
from kernlab.trace import base_name

FRAMES = ("observed", "tail call", "missing", "gone", "not traceable")  # verdicts of lines that can be frames


@dataclass(frozen=True)
class EdgeWitness:
    caller: str
    callee: str
    status: str  # seen, not seen, not traceable, outside the window
    calls: int  # how often the graph saw the caller call the callee directly
    agrees: bool | None  # with the stack verdict of the callee's line (None: the graph cannot say)

    @property
    def text(self) -> str:
        return f"graph: seen {self.calls:,} times" if self.status == "seen" else f"graph: {self.status}"


def _nodes(roots: Mapping[str, Node]) -> Iterator[Node]:
    stack = list(roots.values())
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children.values())


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


def graph_witness(chain: ChainRecord, roots: Mapping[str, Node]) -> list[EdgeWitness]:
    """One witness per edge of the chain below the graph's roots; edges above them are outside the window."""
    calls: dict[tuple[str, str], int] = {}
    seen_callers: set[str] = set()
    for node in _nodes(roots):
        seen_callers.add(base_name(node.name))
        for child in node.children.values():
            key = (base_name(node.name), base_name(child.name))
            calls[key] = calls.get(key, 0) + child.calls
    witnesses = []
    for caller, callee in _edges(chain.lines):
        assert caller.function is not None and callee.function is not None
        stack_says = callee.verdict in PROVEN
        if callee.verdict == "not traceable":
            witnesses.append(EdgeWitness(caller.function, callee.function, "not traceable", 0, None))
        elif caller.function not in seen_callers:
            witnesses.append(EdgeWitness(caller.function, callee.function, "outside the window", 0, None))
        elif count := calls.get((caller.function, callee.function), 0):
            witnesses.append(EdgeWitness(caller.function, callee.function, "seen", count, stack_says))
        else:
            witnesses.append(EdgeWitness(caller.function, callee.function, "not seen", 0, not stack_says))
    return witnesses
