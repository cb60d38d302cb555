"""chains.json: every documented chain's verdict, line by line, with the evidence for it and what the kernel does
instead."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kernlab.results.schema import Record


class FunctionVerdictRecord(Record):
    function: str
    verdict: str
    evidence: str
    into: str | None = None


class JoinedRecord(Record):
    """kernlab.verify.chains.Joined: a leaf's hits on stacks the hist depth cut, continued from an anchor's stacks."""

    leaf: str
    anchor: str
    hits: int
    of: int


class LeafRecord(Record):
    leaf: str
    holds: bool
    hits: int
    stacks_seen: int = 0
    by_task: dict[str, int] = Field(default_factory=dict)
    functions: list[FunctionVerdictRecord] = Field(default_factory=list)
    example: list[str] = Field(default_factory=list)
    joined: JoinedRecord | None = None


class EdgeRecord(Record):
    """The function graph on a chain line's edge from its caller (kernlab.verify.witness)."""

    caller: str
    status: str = Field(description="seen, not seen, not traceable, outside the window")
    calls: int = 0
    agrees: bool | None = Field(None, description="with the stack verdict (None: the graph cannot say)")
    caller_calls: int = Field(0, description="the caller's calls in the windows (what \"not seen\" is out of)")
    expected: float | None = Field(
        None, description="calls of the edge the windows should have held, from the histograms")
    lost: int = Field(0, description="events the windows lost: a \"not seen\" edge may be among them")

    @property
    def text(self) -> str:
        return f"graph: seen {self.calls:,} times" if self.status == "seen" else f"graph: {self.status}"


class LineRecord(Record):
    number: int
    depth: int
    text: str
    function: str | None = None
    verdict: str
    label: str = ""
    evidence: str = ""
    hits: int | None = None
    by_task: dict[str, int] = Field(default_factory=dict)
    into: str | None = None
    indirect: dict[str, Any] | None = None
    graph: EdgeRecord | None = Field(None, description="the second witness, when a function graph was recorded")


class AlignedStepRecord(Record):
    documented: str | None = None
    recorded: str | None = None
    status: str
    why: str = ""


class RecordedPathRecord(Record):
    """kernlab.verify.instead.RecordedPath: a recorded path to a leaf aligned with the documented one."""

    leaf: str
    hits: int
    share: float
    steps: list[AlignedStepRecord] = Field(default_factory=list)
    source: str = Field(
        "stacks", description="\"graph\": the function graph's callees of `under`, where no stack reached the "
        "leaf")
    under: str | None = None


class ChainRecord(Record):
    name: str
    documented: str = ""
    expect: str = "hold"
    expect_reason: str = Field(
        "", description="why `expect` differs from the lab's: the commit that removed a documented function")
    holds: bool
    hits: int
    leaves: list[LeafRecord] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    lost_events: int = 0
    lines: list[LineRecord] = Field(default_factory=list, description="empty in folders from before call-tree specs")
    ok: bool | None = Field(None, description="older folders lack it: derived from expect and holds")
    instead: list[RecordedPathRecord] = Field(default_factory=list, description="when it does not hold")

    def expectation_met(self) -> bool:
        if self.ok is not None:
            return self.ok
        return {"hold": self.holds, "not-hold": not self.holds}.get(self.expect, True)


class ChainsFile(Record):
    kernel: str | None = None
    # How stacks and hits were taken (kernlab.verify.coverage.sampling_text): every call, or every call in windows
    sampling: str | None = None
    lost_events: int = 0
    # function -> caller-probe hits that read the function graph's return trampoline (kernlab.probes.kprobes)
    graph_hidden_returns: dict[str, int] = Field(default_factory=dict)
    chains: list[ChainRecord] = Field(default_factory=list)
