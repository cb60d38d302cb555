"""The evidence files beside the verdicts: the branch profile, the function graph's windows and trees, and the probe
set with its windows."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kernlab.results.schema import Record


class BranchCounts(Record):
    correct: int = 0
    incorrect: int = 0


class BranchSiteRecord(Record):
    function: str
    file: str | None = None
    line: int | None = None
    source: str | None = None
    annotation: str | None = None
    per_workload: dict[str, BranchCounts] = Field(default_factory=dict)
    total: BranchCounts = Field(default_factory=BranchCounts)
    before_workloads: BranchCounts | None = None


class BranchesFile(Record):
    available: bool
    why: str | None = None
    question: BranchSiteRecord | None = None
    swap_path: list[BranchSiteRecord] = Field(default_factory=list)
    answer: str = ""


class GraphWindowRecord(Record):
    """One function_graph window: when it was open (guest uptime, the samples' time axis) and what it held."""

    workload: str
    opened_s: float | None = Field(None, description="None: the workload ended before it swapped in enough to open it")
    closed_s: float | None = None
    trace: str | None = Field(None, description="the raw trace, relative to the results folder")
    stats: str | None = Field(None, description="per_cpu/cpu*/stats as read after the window")
    overruns: int = Field(0, description="events the ring buffer overwrote: the window held more than the buffer")
    dropped: int = Field(0, description="events a full buffer refused (overwrite off): the window's newest")


class GraphCapture(Record):
    """trace/graph/windows.json: how the graph was recorded."""

    roots: list[str] = Field(default_factory=list, description="symbols as set_graph_function took them")
    not_traced: dict[str, str] = Field(default_factory=dict, description="root -> why it is no graph function")
    max_depth: int
    window_s: float
    start_pswpin: int
    buffer_kb: int
    # set_ftrace_filter below the roots (graph `record: chains`); None: every function (`record: all`, and
    # folders from before the choice)
    recorded: list[str] | None = None
    windows: list[GraphWindowRecord] = Field(default_factory=list)
    # True: kernlab's kprobes were unhooked for each window (trace.unhook_commands), so no probe ran inside the
    # graphed calls; False: they stayed hooked, paused (folders from before, probes armed throughout)
    probes_unhooked: bool = False


class GraphNodeRecord(Record):
    """A call path merged over the windows (kernlab.verify.graph.Node)."""

    name: str
    calls: int
    total_us: float
    mean_us: float
    p50_us: float
    p95_us: float
    max_us: float
    self_us: float
    share: float = Field(description="of the root's total time")
    children: list[GraphNodeRecord] = Field(default_factory=list)


class GraphFile(Record):
    """graph.json: one merged tree per root, and what the windows lost."""

    trees: list[GraphNodeRecord] = Field(default_factory=list)
    max_depth: int | None = None
    windows: int = Field(0, description="windows that opened")
    window_seconds: float = Field(0.0, description="their summed length")
    truncated_calls: int = Field(0, description="calls a window cut (begun before it or still open at its end)")
    lost_events: int = Field(0, description="LOST lines and ring-buffer overruns")
    other_top_level: int = Field(
        0, description="lines of tasks resumed inside a traced call (kernlab.verify.graph.Trace)")
    clock_step_us: float | None = Field(None, description="the trace clock's step when it was too coarse to time calls")


class ArmedWindowRecord(Record):
    """One probe window (kernlab.probes.probewindows): guest uptimes, and the kernel's own swap counters over it."""

    workload: str
    armed_s: float
    disarmed_s: float
    # Pages swapped from just before arming to just after disarming (every page the probes can have seen), and
    # from just after arming to just before disarming (every page they must have seen): hits fall in between.
    pswpout: int
    pswpin: int
    pswpout_inner: int
    pswpin_inner: int


class ProbeSet(Record):
    stack: list[str] = Field(default_factory=list, description="full stacks recorded at these")
    caller: list[str] = Field(default_factory=list, description="only the return address recorded at these")
    not_probed: dict[str, str] = Field(default_factory=dict)
    table_size: int | None = None
    arch: str = Field("x86_64", description="the guest's: how the probes read return addresses (kernlab.arch)")
    # "always": armed for the whole run (older folders too); "windows": only in `windows`
    armed: Literal["always", "windows"] = "always"
    armed_why: str | None = Field(None, description="why a lab that asked for windows got \"always\"")
    every_s: float | None = Field(None, description="the windows' period, with armed: windows")
    windows: list[ArmedWindowRecord] = Field(default_factory=list)
