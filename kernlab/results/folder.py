"""The results folder's contract: a model of every JSON file a lab run writes (manifest, summary, samples,
workloads/, chains, branches, trace/ probes and vmlinux fact tables, a sweep's plan), and the one reader and writer
of them. Older folders are read (fields added since have defaults); a newer `format` is refused, saying so."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kernlab.cache import check_child, write_bytes_atomic
from kernlab.errors import KernlabError
from kernlab.guestfacts import GuestRecord
from kernlab.yamlfile import validation_message

# Bump when a file changes meaning so that an older kernlab would misread it; new optional fields need no bump.
FORMAT = 1
MANIFEST = "manifest.json"
SUMMARY = "summary.json"
SAMPLES = "samples.jsonl"
CHAINS = "chains.json"
BRANCHES = "branches.json"
SWEEP = "sweep.json"
AGGREGATE = "aggregate.json"  # a variant's repeats (kernlab.aggregate)
PROBES = "trace/probes.json"
WORKLOADS = "workloads"
HIST_DIR = "trace/hist"
# What each histogram had counted when the probes were unhooked for a workload's graph window (trace.unhook_commands):
# HELD_HIST_DIR/<workload>/<probe>.hist, added to the probe's trace/hist/<probe>.hist by verification.
HELD_HIST_DIR = "trace/hist/before-graph"
GRAPH_DIR = "trace/graph"  # raw function_graph trace and ring-buffer stats of each window
GRAPH_CAPTURE = "trace/graph/windows.json"
GRAPH = "graph.json"  # the windows' merged call trees (kernlab.evidence)
# vmlinux facts kept beside the evidence so verification runs offline later (kernlab.evidence)
FACT_TABLES = {"inline": "trace/inline.json", "inline_trees": "trace/inline-trees.json", "ops": "trace/ops.json",
               "pointers": "trace/pointers.json"}
FactTable = Literal["inline", "inline_trees", "ops", "pointers"]

RunStatus = Literal["running", "complete", "incomplete"]
M = TypeVar("M", bound=BaseModel)


class Record(BaseModel):
    """A JSON object on disk: keys a newer kernlab added are kept when an older one rewrites the file."""

    model_config = ConfigDict(extra="allow")


class KernelRecord(Record):
    """The kernel a run used, as fetched and built."""

    version: str | None = None
    source: str | None = None  # the ref used, e.g. "5.15.135" or "tarball:/path"
    origin: str | None = None  # URL, package or path it came from
    sha256: str | None = None
    fallback_from: str | None = None  # the ref the lab asked for when another was used
    fallback_reason: str | None = None
    build_dir: str | None = None
    build_key: str | None = None
    config_sha256: str | None = None
    compiler: str | None = None
    bzimage_sha256: str | None = None  # of the boot image QEMU was given (named for x86's; arm64's is Image)
    arch: str | None = None  # the guest's (kernlab.arch); None in folders from before arm64: x86_64


class GuestImageRecord(Record):
    sha256: str | None = None
    path: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)  # kernlab.guest's guest.json


class AccelRecord(Record):
    used: str | None = None  # kvm or tcg
    why: str | None = None
    probe_kept: bool | None = None  # auto's KVM probe verdict reused from an earlier run on this host


class BootRecord(Record):
    console_ready_s: float | None = None
    ssh_ready_s: float | None = None
    clocksource: str | None = None  # the guest's current_clocksource right after boot


class ConnectionRecord(Record):
    """The SSH connection to the guest during the workloads: drops kernlab reconnected, samples they cost."""

    reconnects: int = 0
    samples_missed: int = 0
    first_miss: str | None = None


class HostRecord(Record):
    machine: str | None = None
    python: str | None = None
    kernel: str | None = None
    cpus: int | None = None


class KernlabRecord(Record):
    """The kernlab that ran: its version and, from a git checkout, the commit and whether it had changes."""

    version: str | None = None
    commit: str | None = None
    dirty: bool | None = None


class CiRecord(Record):
    """The CI run around a lab run (kernlab.provenance): provider and, on GitHub Actions, the run's ids."""

    provider: str
    run_id: str | None = None
    run_attempt: str | None = None
    job: str | None = None
    workflow: str | None = None
    repository: str | None = None
    sha: str | None = None
    ref: str | None = None
    server_url: str | None = None


class ChainOutcome(Record):
    """A chain's verdict as the manifest keeps it (chains.json has the evidence)."""

    holds: bool
    hits: int
    expect: str
    ok: bool | None = None


class BranchProfileRecord(Record):
    available: bool
    why: str | None = None
    question: dict[str, Any] | None = None


class SweepPoint(Record):
    index: int
    params: dict[str, Any] = Field(default_factory=dict)
    label: str = ""


class RepeatPoint(Record):
    """Which of a variant's repeated runs this is (1-based), of how many."""

    index: int
    of: int


class FileSeal(Record):
    size: int
    sha256: str


class Manifest(Record):
    """manifest.json: rewritten after every step, so a run that stopped still says what it did and why."""

    format: int = FORMAT
    lab: dict[str, Any] = Field(default_factory=dict)  # the lab as run (kernlab.lab.parse_lab reads it)
    lab_file: str | None = None
    status: RunStatus | None = None
    why: str | None = None  # why an incomplete run stopped
    failed_step: str | None = None
    started: str | None = None
    finished: str | None = None
    host: HostRecord | None = None
    kernlab_command: str | None = None
    kernlab: KernlabRecord | None = None  # None in folders from before it was recorded
    ci: CiRecord | None = None
    kernel: KernelRecord | None = None
    guest_image: GuestImageRecord | None = None
    qemu_version: str | None = None
    accel: AccelRecord | None = None
    boot: BootRecord | None = None
    guest: GuestRecord | None = None  # what the guest brought up (kernlab.guestfacts); None in older folders
    connection: ConnectionRecord | None = None
    branch_profile: BranchProfileRecord | None = None
    chains: dict[str, ChainOutcome] = Field(default_factory=dict)
    steps_s: dict[str, float] = Field(default_factory=dict)
    # kernlab.seal: every file the run wrote, as it ended (empty in folders from before the seal)
    evidence: dict[str, FileSeal] = Field(default_factory=dict)
    sweep: SweepPoint | None = None
    repeat: RepeatPoint | None = None

    @property
    def lab_name(self) -> str | None:
        name = self.lab.get("name")
        return name if isinstance(name, str) and name else None


class Summary(Record):
    """summary.json: figures from the samples (kernlab.zram.summarize) and each workload's duration.
    The zram and vmstat figures are extra keys: which exist depends on the kernel's counters."""

    workload_seconds: dict[str, float] = Field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        return self.model_dump()


class WorkloadRecord(Record):
    """workloads/NAME.json: one workload as it ran over SSH."""

    name: str
    command: str | None = None
    exit_code: int | None = None
    seconds: float | None = None
    stdout: str = ""
    stderr: str = ""
    report: dict[str, Any] | None = None  # memhog's JSON report line


class FunctionVerdictRecord(Record):
    function: str
    verdict: str
    evidence: str
    into: str | None = None


class JoinedRecord(Record):
    """kernlab.chains.Joined: a leaf's hits on stacks the hist depth cut, continued from an anchor's stacks."""

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
    """kernlab.witness.EdgeWitness: the function graph on a chain line's edge from its caller."""

    caller: str
    status: str  # seen, not seen, not traceable, outside the window
    calls: int = 0
    agrees: bool | None = None  # with the stack verdict (None: the graph cannot say)
    caller_calls: int = 0  # the caller's calls in the windows (what "not seen" is out of)
    expected: float | None = None  # calls of the edge the windows should have held, from the histograms
    lost: int = 0  # events the windows lost: a "not seen" edge may be among them


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
    graph: EdgeRecord | None = None  # the second witness, when a function graph was recorded


class AlignedStepRecord(Record):
    documented: str | None = None
    recorded: str | None = None
    status: str
    why: str = ""


class RecordedPathRecord(Record):
    """kernlab.instead.RecordedPath: a recorded path to a leaf aligned with the documented one."""

    leaf: str
    hits: int
    share: float
    steps: list[AlignedStepRecord] = Field(default_factory=list)
    source: str = "stacks"  # "graph": the function graph's callees of `under`, where no stack reached the leaf
    under: str | None = None


class ChainRecord(Record):
    name: str
    documented: str = ""
    expect: str = "hold"
    expect_reason: str = ""  # why `expect` differs from the lab's: the commit that removed a documented function
    holds: bool
    hits: int
    leaves: list[LeafRecord] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    lost_events: int = 0
    lines: list[LineRecord] = Field(default_factory=list)  # empty in folders from before call-tree specs
    ok: bool | None = None  # older folders lack it: derived from expect and holds
    instead: list[RecordedPathRecord] = Field(default_factory=list)  # when it does not hold

    def expectation_met(self) -> bool:
        if self.ok is not None:
            return self.ok
        return {"hold": self.holds, "not-hold": not self.holds}.get(self.expect, True)


class ChainsFile(Record):
    kernel: str | None = None
    # How stacks and hits were taken (kernlab.probewindows.sampling_text): every call, or every call in windows
    sampling: str | None = None
    lost_events: int = 0
    # function -> caller-probe hits that read the function graph's return trampoline (kernlab.trace)
    graph_hidden_returns: dict[str, int] = Field(default_factory=dict)
    chains: list[ChainRecord] = Field(default_factory=list)


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
    opened_s: float | None = None  # None: the workload ended before it swapped in enough to open it
    closed_s: float | None = None
    trace: str | None = None  # the raw trace, relative to the results folder
    stats: str | None = None  # per_cpu/cpu*/stats as read after the window
    overruns: int = 0  # events the ring buffer overwrote: the window held more than the buffer
    dropped: int = 0  # events a full buffer refused (overwrite off): the window's newest


class GraphCapture(Record):
    """trace/graph/windows.json: how the graph was recorded."""

    roots: list[str] = Field(default_factory=list)  # symbols as set_graph_function took them
    not_traced: dict[str, str] = Field(default_factory=dict)  # root -> why it is no graph function
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
    """A call path merged over the windows (kernlab.graph.Node)."""

    name: str
    calls: int
    total_us: float
    mean_us: float
    p50_us: float
    p95_us: float
    max_us: float
    self_us: float
    share: float  # of the root's total time
    children: list[GraphNodeRecord] = Field(default_factory=list)


class GraphFile(Record):
    """graph.json: one merged tree per root, and what the windows lost."""

    trees: list[GraphNodeRecord] = Field(default_factory=list)
    max_depth: int | None = None
    windows: int = 0  # windows that opened
    window_seconds: float = 0.0  # their summed length
    truncated_calls: int = 0  # calls a window cut (begun before it or still open at its end)
    lost_events: int = 0  # LOST lines and ring-buffer overruns
    other_top_level: int = 0  # lines of tasks resumed inside a traced call (kernlab.graph.Trace)
    clock_step_us: float | None = None  # the trace clock's step when it was too coarse to time calls


class ArmedWindowRecord(Record):
    """One probe window (kernlab.probewindows): guest uptimes, and the kernel's own swap counters over it."""

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
    stack: list[str] = Field(default_factory=list)  # full stacks recorded at these
    caller: list[str] = Field(default_factory=list)  # only the return address recorded at these
    not_probed: dict[str, str] = Field(default_factory=dict)
    table_size: int | None = None
    arch: str = "x86_64"  # the guest's: how the probes read return addresses (kernlab.arch)
    # "always": armed for the whole run (older folders too); "windows": only in `windows`
    armed: Literal["always", "windows"] = "always"
    armed_why: str | None = None  # why a lab that asked for windows got "always"
    every_s: float | None = None  # the windows' period, with armed: windows
    windows: list[ArmedWindowRecord] = Field(default_factory=list)


class EffectRow(Record):
    figure: str  # summary key
    label: str
    untraced: list[float]
    traced: list[float]
    untraced_mean: float
    traced_mean: float
    untraced_half_width: float | None  # of the 95 % interval of the mean
    traced_half_width: float | None
    ratio: float | None  # traced / untraced
    decision: str  # kernlab.stats.Decision
    p: float | None


class ObserverEffect(Record):
    """observer.json: traced against untraced, figure by figure."""

    lab: str
    kernel: str | None
    repeat: int
    folder: str
    method: str  # kernlab.stats.METHOD
    tracing_overhead_x: float | None  # mean traced workload seconds / mean untraced
    rows: list[EffectRow]

    def outside_noise(self) -> list[str]:
        return [row.label for row in self.rows if row.decision == "significant"]


class SweepVariant(Record):
    index: int
    label: str
    params: dict[str, Any] = Field(default_factory=dict)
    dir: str
    in_shard: bool = True
    status: str = "pending"  # complete: every repeat completed
    why: str | None = None
    expectations_met: bool | None = None  # every chain as the lab expects it on this variant's kernel
    repeat: int = 1  # runs asked for; with more than one, dir holds repeat-1... and aggregate.json
    runs_complete: int | None = None  # of them (None in folders from before repeats)


class SpreadRecord(Record):
    """kernlab.stats.Spread: one figure over a variant's complete runs."""

    values: list[float]
    mean: float
    sd: float | None = None  # None with a single run
    min: float
    max: float
    ci_low: float | None = None  # the mean's confidence interval (AggregateFile.confidence)
    ci_high: float | None = None

    @property
    def n(self) -> int:
        return len(self.values)


class AggregateFile(Record):
    """aggregate.json: a variant's repeated runs, figure by figure (kernlab.aggregate)."""

    format: int = FORMAT
    lab_name: str | None = None
    label: str = ""  # the variant's settings, e.g. zram.comp_algorithm=zstd; empty for a lab's own repeats
    params: dict[str, Any] = Field(default_factory=dict)
    swept: list[str] = Field(default_factory=list)  # the sweep's keys in the lab's order (params is sorted on disk)
    repeat: int  # runs asked for
    runs: list[str] = Field(default_factory=list)  # every run's folder, relative to this file's folder
    complete: list[str] = Field(default_factory=list)  # the runs the figures are over
    confidence: float
    method: str = ""  # how intervals and differences are computed (kernlab.stats.METHOD)
    figures: dict[str, SpreadRecord] = Field(default_factory=dict)  # summary.json figures, flattened, and derived
    chain_hits: dict[str, SpreadRecord] = Field(default_factory=dict)
    chain_holds: dict[str, int] = Field(default_factory=dict)  # in how many of the complete runs the chain held


class SweepPlan(Record):
    lab_file: str | None = None
    sweep: dict[str, Any] = Field(default_factory=dict)
    shard: str | None = None
    variants: list[SweepVariant] = Field(default_factory=list)


FILE_OF: dict[type[BaseModel], str] = {Manifest: MANIFEST, Summary: SUMMARY, ChainsFile: CHAINS,
                                       BranchesFile: BRANCHES, ProbeSet: PROBES, GraphCapture: GRAPH_CAPTURE,
                                       GraphFile: GRAPH}


def _dump(model: BaseModel | dict | list) -> bytes:
    data = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def write_model(path: Path, model: BaseModel | dict | list) -> None:
    """Atomically: a reader never sees half a file, and a crash leaves the previous one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, _dump(model))


def parse_json(text: str, path: Path) -> Any:
    if not text.strip():
        raise KernlabError(f"{path}: empty (the run was cut short while writing it?)")
    try:
        return json.loads(text)
    except ValueError as error:
        raise KernlabError(f"{path}: not valid JSON ({str(error).splitlines()[0]})") from None


def read_text(path: Path, why_missing: str = "") -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise KernlabError(f"{path}: missing" + (f": {why_missing}" if why_missing else "")) from None
    except (OSError, UnicodeDecodeError) as error:
        raise KernlabError(f"{path}: unreadable ({getattr(error, 'strerror', None) or error})") from None


def validate(data: Any, path: Path, model: type[M]) -> M:
    """Parsed JSON as its model; a one-line KernlabError naming the file and key otherwise."""
    if not isinstance(data, dict):
        raise KernlabError(f"{path}: expected a JSON object, found {type(data).__name__}")
    if isinstance(data.get("format"), int) and data["format"] > FORMAT:
        raise KernlabError(f"{path}: written by a newer kernlab (format {data['format']}; this one reads up to "
                           f"{FORMAT}): update kernlab to read it")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise KernlabError(validation_message(str(path), error)) from None


def read_model(path: Path, model: type[M]) -> M:
    return validate(parse_json(read_text(path), path), path, model)


def read_samples(path: Path) -> list[dict[str, Any]]:
    """samples.jsonl rows (kernlab.zram.Sample.as_row); a run killed mid-write leaves a partial last line,
    which is dropped; any other bad line is an error naming it."""
    if not path.exists():
        return []
    text = read_text(path)
    lines = text.splitlines()
    samples = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            if number == len(lines) and not text.endswith("\n"):
                break
            raise KernlabError(f"{path}:{number}: not valid JSON ({error})") from None
        if not isinstance(row, dict):
            raise KernlabError(f"{path}:{number}: expected a JSON object per line")
        samples.append(row)
    return samples


class ResultsFolder:
    """One lab run's results folder: typed reads (absent optional files are None) and atomic writes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ResultsFolder({str(self.path)!r})"

    @classmethod
    def open(cls, path: Path) -> ResultsFolder:
        """An existing folder of a kernlab run, given as the folder or its manifest.json; refuses anything else
        with a one-line error."""
        path = Path(path)
        folder = cls(path.parent if path.name == MANIFEST and path.is_file() else path)
        if not folder.path.is_dir():
            raise KernlabError(f"{folder.path}: no such results folder")
        if not (folder.path / MANIFEST).is_file():
            raise KernlabError(f"{folder.path}: not a results folder (no {MANIFEST})")
        return folder

    @classmethod
    def create(cls, root: Path, lab_name: str) -> ResultsFolder:
        """A new folder root/LAB/TIMESTAMP (with -2, -3... when runs start within the same second)."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        check_child(root / lab_name)
        path = root / lab_name / stamp
        suffix = 1
        while path.exists():
            suffix += 1
            path = root / lab_name / f"{stamp}-{suffix}"
        path.mkdir(parents=True)
        return cls(path)

    def file(self, relative: str) -> Path:
        """A path inside the folder; a name that would lead out of it (`../x`, `/x`) is refused."""
        path = self.path / relative
        if not path.resolve().is_relative_to(self.path.resolve()) or path.resolve() == self.path.resolve():
            raise KernlabError(f"{path}: refusing to write outside the results folder {self.path}")
        return path

    def _optional(self, relative: str, model: type[M]) -> M | None:
        path = self.path / relative
        return read_model(path, model) if path.exists() else None

    # reads
    def manifest(self) -> Manifest:
        return read_model(self.path / MANIFEST, Manifest)

    def summary(self) -> Summary | None:
        return self._optional(SUMMARY, Summary)

    def chains(self) -> ChainsFile | None:
        return self._optional(CHAINS, ChainsFile)

    def branches(self) -> BranchesFile | None:
        return self._optional(BRANCHES, BranchesFile)

    def probes(self) -> ProbeSet | None:
        return self._optional(PROBES, ProbeSet)

    def graph_capture(self) -> GraphCapture | None:
        return self._optional(GRAPH_CAPTURE, GraphCapture)

    def graph(self) -> GraphFile | None:
        return self._optional(GRAPH, GraphFile)

    def samples(self) -> list[dict[str, Any]]:
        return read_samples(self.path / SAMPLES)

    def workloads(self) -> dict[str, WorkloadRecord]:
        found: dict[str, WorkloadRecord] = {}
        for path in sorted((self.path / WORKLOADS).glob("*.json")):
            data = parse_json(read_text(path), path)
            if isinstance(data, dict) and not data.get("name"):
                data["name"] = path.stem  # a record without its name is still shown, under its file's
            record = validate(data, path, WorkloadRecord)
            found[record.name] = record
        return found

    def fact_table(self, table: FactTable) -> dict[str, Any]:
        """A vmlinux fact table (empty when not recorded yet)."""
        path = self.path / FACT_TABLES[table]
        if not path.exists():
            return {}
        data = parse_json(read_text(path), path)
        if not isinstance(data, dict):
            raise KernlabError(f"{path}: expected a JSON object, found {type(data).__name__}")
        return data

    def hist_paths(self) -> list[Path]:
        return sorted((self.path / HIST_DIR).glob("*.hist"))

    def held_hist_paths(self, probe: str) -> list[Path]:
        """The copies of a probe's histogram taken before each graph window (HELD_HIST_DIR)."""
        return sorted((self.path / HELD_HIST_DIR).glob(f"*/{probe}.hist"))

    def text(self, relative: str, why_missing: str = "") -> str:
        return read_text(self.path / relative, why_missing)

    # writes
    def write(self, model: Manifest | Summary | ChainsFile | BranchesFile | ProbeSet | GraphCapture
              | GraphFile) -> None:
        """manifest.json, summary.json, chains.json, branches.json, graph.json, trace/probes.json or
        trace/graph/windows.json, by the model's type."""
        write_model(self.path / FILE_OF[type(model)], model)

    def write_workload(self, record: WorkloadRecord) -> None:
        write_model(self.file(f"{WORKLOADS}/{record.name}.json"), record)

    def write_fact_table(self, table: FactTable, data: dict[str, Any]) -> None:
        write_model(self.path / FACT_TABLES[table], data)

    def append_sample(self, row: dict[str, Any]) -> None:
        with open(self.path / SAMPLES, "a") as handle:
            handle.write(json.dumps(row) + "\n")

    def write_file(self, relative: str, data: str | bytes) -> Path:
        """A text or binary evidence file (console excerpts, hist tables, System.map), written atomically."""
        path = self.file(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data.encode() if isinstance(data, str) else data)
        return path


def find_folders(path: Path) -> list[Path]:
    """Results folders at path: itself, or every run folder below it (a lab's runs, a sweep, the shards of a
    sweep downloaded side by side by CI), in path order."""
    if (path / MANIFEST).is_file():
        return [path]
    found = sorted(p.parent for p in path.rglob(MANIFEST))
    if not found:
        raise KernlabError(f"{path}: no results folder here (no {MANIFEST} in it or below it)")
    return found


def read_aggregate(folder: Path) -> AggregateFile | None:
    """A repeat set's aggregate.json, None when folder is not a repeat set."""
    path = folder / AGGREGATE
    return read_model(path, AggregateFile) if path.is_file() else None


def write_aggregate(folder: Path, aggregate: AggregateFile) -> None:
    write_model(folder / AGGREGATE, aggregate)


def read_sweep(folder: Path) -> SweepPlan:
    return read_model(folder / SWEEP, SweepPlan)


def write_sweep(folder: Path, plan: SweepPlan) -> None:
    write_model(folder / SWEEP, plan)
