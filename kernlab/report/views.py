"""A run's report as a view: plain values computed from the results folder (read only through kernlab.results),
in the order a reader asks — the answer, the figures, the chains in detail, the setup — drawn by the Markdown and
HTML templates and, in part, on the terminal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from kernlab.config.lab import KernelSpec, SamplingSpec, SwapSpec, TracingSpec, VmSpec, WorkloadSpec, ZramSpec
from kernlab.report import plots
from kernlab.report.chainviews import (
    BranchView,
    ChainView,
    branch_view,
    chain_records,
    chain_verdict,
    chain_view,
    chains_absent_text,
    lost_events_text,
    verdict_table,
)
from kernlab.report.format import Table, figure_rows, fmt, short_sha, table, with_unit
from kernlab.report.graphviews import GraphView, graph_view
from kernlab.results.chainrecords import ChainsFile
from kernlab.results.evidencerecords import BranchesFile, GraphCapture, GraphFile
from kernlab.results.folder import ResultsFolder
from kernlab.results.guest import GuestRecord, cpus_text, kernel_text
from kernlab.results.schema import (
    AccelRecord,
    BootRecord,
    CiRecord,
    GuestImageRecord,
    HostRecord,
    KernelRecord,
    KernlabRecord,
    Manifest,
    Summary,
    WorkloadRecord,
)

# The plots of one run, in report order: (key, file stem and heading).
PLOTS: tuple[tuple[str, str], ...] = (
    ("zram_memory", "zram memory: original vs compressed vs total used"),
    ("compression_ratio", "Compression ratio over time"),
    ("swap_rates", "Swap-out and swap-in rates"),
    ("free_memory", "Free memory in the guest"),
)
NO_SUMMARY = "No summary.json: the run produced no figures."
NO_SAMPLES = "No samples were recorded (samples.jsonl is missing or empty)."
KERNEL_DEFAULT = "kernel default"
# Runs from before kernlab read the guest (issue 23), and runs that stopped before it booted.
GUEST_NOT_RECORDED = "not recorded: the VM row says what the lab asked for, not what the guest brought up"
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class RunFiles:
    """One results folder as kernlab.results reads it; absent optional files are None or empty."""

    folder: Path
    manifest: Manifest = field(default_factory=Manifest)
    summary: Summary | None = None
    samples: Sequence[dict[str, Any]] = ()
    chains: ChainsFile | None = None
    workloads: Mapping[str, WorkloadRecord] = field(default_factory=dict)
    branches: BranchesFile | None = None
    graph: GraphFile | None = None
    graph_capture: GraphCapture | None = None

    @classmethod
    def read(cls, path: Path, verified: Path | None = None) -> RunFiles:
        """A KernlabError naming the file when the folder is not a results folder or a file is malformed. With
        `verified` (a folder `inv lab.verify` wrote), its chains.json and graph.json stand for the run's own."""
        folder = ResultsFolder.open(path)
        verdicts = ResultsFolder(verified) if verified is not None else folder
        return cls(folder=folder.path, manifest=folder.manifest(), summary=folder.summary(),
                   samples=folder.samples(), chains=verdicts.chains(), workloads=folder.workloads(),
                   branches=folder.branches(), graph=verdicts.graph(), graph_capture=folder.graph_capture())

    @property
    def figures(self) -> dict[str, Any]:
        return self.summary.figures() if self.summary else {}

    @property
    def lab_name(self) -> str:
        return self.manifest.lab_name or self.folder.name


@dataclass(frozen=True)
class Status:
    complete: bool
    text: str  # "complete", "INCOMPLETE: why (failed step: boot)", ...


@dataclass(frozen=True)
class PlotView:
    key: str
    heading: str

    @property
    def file(self) -> str:
        return f"plots/{self.key}.png"


@dataclass(frozen=True)
class RunView:
    title: str
    status: Status
    ran_on: str  # the kernel every verdict below is a claim about
    warnings: tuple[str, ...]  # said right below the status: kernel fallback, lost trace events
    description: str
    # 1. the answer
    verdicts: Table | None
    sampling: str | None  # how the stacks and hits behind the verdicts were taken (chains.json)
    chains_absent: str | None
    branch_answer: str
    # 2. plots and key figures
    key_figures: Table | None
    no_figures: str | None
    plots: tuple[PlotView, ...]
    no_samples: str | None
    spans: str | None
    # 3. the chains and branches in detail
    chains: tuple[ChainView, ...]
    graph: GraphView | None
    branches: BranchView | None
    # 4. the setup and every figure
    folder_name: str
    setup: Table
    workloads: Table
    all_figures: Table | None


def connection_text(manifest: Manifest) -> str | None:
    """Said at the top when the SSH connection to the guest dropped during the workloads and was made again."""
    connection = manifest.connection
    if connection is None or not (connection.reconnects or connection.samples_missed):
        return None
    missed = (f"{connection.samples_missed} sample(s) of zram and vmstat were missed, a gap in the plots "
              f"(first: {connection.first_miss})" if connection.samples_missed else "no sample was missed")
    return (f"The SSH connection to the guest dropped {connection.reconnects} time(s) during the workloads and "
            f"kernlab connected again; {missed}. console.log has dropbear's own reason.")


def ran_on_text(manifest: Manifest) -> str:
    kernel, accel = manifest.kernel, manifest.accel
    if kernel is None or not kernel.version:
        return "Kernel: not recorded (the run stopped before its kernel was built)."
    return (f"Linux {kernel.version} from {kernel.source or 'an unrecorded source'}, run under "
            f"{accel.used if accel and accel.used else 'an unrecorded accelerator'}.")


def status_of(manifest: Manifest) -> Status:
    """Complete, or why not and in which step it stopped."""
    if manifest.status == "complete":
        return Status(True, "complete")
    why = manifest.why
    if manifest.status == "running":
        text = "RUNNING: the run had not finished when its files were read" + (f" ({why})" if why else "")
    else:
        label = "INCOMPLETE" if manifest.status == "incomplete" else f"status {fmt(manifest.status)}"
        text = f"{label}: {why if why else 'no reason recorded'}"
    return Status(False, text + (f" (failed step: {manifest.failed_step})" if manifest.failed_step else ""))


def fallback_note(manifest: Manifest) -> str | None:
    """Said at the top: the run used another kernel than the lab asked for."""
    kernel = manifest.kernel
    if kernel is None or not kernel.fallback_from:
        return None
    return (f"Kernel fallback: asked for {kernel.fallback_from}, ran {fmt(kernel.source)} "
            f"({fmt(kernel.fallback_reason)}).")


def lab_section(lab: Mapping[str, Any], key: str, model: type[M]) -> M | None:
    """One section of the lab as run, or None when it was not recorded (or in a shape this kernlab cannot read)."""
    value = lab.get(key)
    if not isinstance(value, Mapping):
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def setting(section: BaseModel | None, name: str, unit: str = "", none: str = "unknown") -> str:
    """A lab setting: "unknown" when its section was not recorded, `none` when it is unset (null)."""
    if section is None:
        return "unknown"
    return with_unit(getattr(section, name), unit, none) if unit else fmt(getattr(section, name), none)


def lab_workloads(lab: Mapping[str, Any]) -> list[WorkloadSpec]:
    listed = lab.get("workloads")
    found = []
    for item in listed if isinstance(listed, list) else []:
        try:
            found.append(WorkloadSpec.model_validate(item))
        except ValidationError:
            continue
    return found


def kernlab_text(record: KernlabRecord | None) -> str:
    if record is None:
        return "unknown (not recorded)"
    commit = f" at commit {record.commit[:12]}" if record.commit else " (no git checkout)"
    return f"{fmt(record.version)}{commit}" + (" with uncommitted changes" if record.dirty else "")


def ci_text(record: CiRecord) -> str:
    ids = ", ".join(f"{key} {value}" for key, value in record.model_dump(exclude={"provider"}).items() if value)
    return f"{record.provider}" + (f": {ids}" if ids else "")


def guest_note(manifest: Manifest) -> str | None:
    """Said at the top: the guest brought up fewer CPUs than the lab asked for."""
    guest, vm = manifest.guest, lab_section(manifest.lab, "vm", VmSpec)
    if guest is None or guest.cpus_online is None or vm is None or guest.cpus_online >= vm.cpus:
        return None
    return (f"The lab asked for {vm.cpus} CPUs; linux {fmt(guest.release)} brought up {guest.cpus_online} "
            f"({fmt(guest.cpus_online_list)} online), so the run stopped before its workloads.")


def vm_text(vm: VmSpec | None, guest: GuestRecord | None) -> str:
    """The VM as the guest saw it when kernlab read it; older runs say what was asked, as they always did."""
    memory = setting(vm, "memory_mib", "MiB")
    if guest is None:
        return f"{setting(vm, 'cpus')} CPUs, {memory}"
    return f"{cpus_text(guest, vm.cpus if vm else None)}, {memory}, {kernel_text(guest)}"


def guest_text(guest: GuestRecord | None) -> str:
    """Where the VM row's facts came from."""
    if guest is None:
        return GUEST_NOT_RECORDED
    return (f"linux {fmt(guest.release)}, {fmt(guest.uts_version)}; CPUs online {fmt(guest.cpus_online_list)} of "
            f"{fmt(guest.cpus_possible)} possible; HZ: {guest.hz_how or 'unknown'}; "
            f"preemption: {guest.preempt_how or 'unknown'}")


def setup_rows(manifest: Manifest) -> list[tuple[str, str]]:
    """The setup as run: kernel, zram, swap, VM, image, timings; anything unrecorded says unknown."""
    m, lab = manifest, manifest.lab
    k, accel, boot = m.kernel or KernelRecord(), m.accel or AccelRecord(), m.boot or BootRecord()
    host, image = m.host or HostRecord(), m.guest_image or GuestImageRecord()
    request, zram = lab_section(lab, "kernel", KernelSpec), lab_section(lab, "zram", ZramSpec)
    swap, vm = lab_section(lab, "swap", SwapSpec), lab_section(lab, "vm", VmSpec)
    tracing = lab_section(lab, "tracing", TracingSpec)
    config = setting(request, "base") + (" + " + ", ".join(request.fragments) if request and request.fragments else "")
    rows = [
        ("kernel version", fmt(k.version)),
        ("kernel source", f"{fmt(k.source)} (asked for {setting(request, 'version')})"),
        ("kernel origin", fmt(k.origin)),
    ]
    if k.fallback_from:
        rows.append(("kernel FALLBACK", f"fell back from {k.fallback_from}: {fmt(k.fallback_reason)}"))
    rows += [
        ("kernel config", f"{config} (sha256 {short_sha(k.config_sha256)})"),
        ("build key", fmt(k.build_key)),
        ("compiler", fmt(k.compiler)),
        ("source sha256", short_sha(k.sha256)),
        ("zram compressor", setting(zram, "comp_algorithm")),
        ("zram disksize", setting(zram, "disksize_mib", "MiB")),
        ("zram mem limit", "none" if zram and zram.mem_limit_mib == 0 else setting(zram, "mem_limit_mib", "MiB")),
        ("zram max comp streams", setting(zram, "max_comp_streams", none=KERNEL_DEFAULT)),
        ("swap", f"swappiness {setting(swap, 'swappiness', none=KERNEL_DEFAULT)}, "
                 f"page-cluster {setting(swap, 'page_cluster', none=KERNEL_DEFAULT)}, "
                 f"vma_ra_enabled {setting(swap, 'vma_ra_enabled', none=KERNEL_DEFAULT)}"),
        ("VM", vm_text(vm, m.guest)),
        ("guest as booted", guest_text(m.guest)),
        ("accel", f"{fmt(accel.used)} ({fmt(accel.why)})"),
        ("boot to SSH", f"{with_unit(boot.ssh_ready_s, 's')} (console ready {with_unit(boot.console_ready_s, 's')})"),
        # The VM row has it once the guest's facts are recorded.
        *([("guest clocksource at boot", fmt(boot.clocksource))] if m.guest is None else []),
        ("workloads run", fmt(lab.get("run_workloads"))),
        ("sampling interval", setting(lab_section(lab, "sampling", SamplingSpec), "interval_s", "s")),
        ("tracing", "unknown" if tracing is None else "enabled" if tracing.enabled else "disabled"),
        ("guest image sha256", short_sha(image.sha256)),
        ("QEMU version", fmt(m.qemu_version)),
        ("host", f"{fmt(host.machine)}, {fmt(host.cpus)} CPUs, kernel {fmt(host.kernel)}"),
        ("kernlab", kernlab_text(m.kernlab)),
        *([("CI run", ci_text(m.ci))] if m.ci else []),
        ("started", fmt(m.started)),
        ("finished", fmt(m.finished)),
        ("total time", with_unit(m.steps_s.get("total"), "s")),
    ]
    return rows


def workload_command(spec: WorkloadSpec | None) -> str:
    """What the lab asked to run, for when the run never recorded the command it sent."""
    return spec.command_line() if spec is not None else "unknown"


def workload_names(run: RunFiles) -> list[str]:
    """In the lab's order (the order they ran in), then any other recorded ones."""
    names = [spec.name for spec in lab_workloads(run.manifest.lab)]
    return names + [name for name in run.workloads if name not in names]


def workload_rows(run: RunFiles) -> list[tuple[str, ...]]:
    """One row per workload: name, command, exit code, seconds, result."""
    specs = {spec.name: spec for spec in lab_workloads(run.manifest.lab)}
    seconds = run.summary.workload_seconds if run.summary else {}
    rows = []
    for name in workload_names(run):
        record = run.workloads.get(name)
        if record is None:
            rows.append((name, workload_command(specs.get(name)), "unknown", fmt(seconds.get(name)), "not run"))
            continue
        report = record.report
        ok = report.get("ok") if isinstance(report, dict) and "ok" in report else record.exit_code == 0
        rows.append((name, record.command or workload_command(specs.get(name)), fmt(record.exit_code),
                     fmt(record.seconds if record.seconds is not None else seconds.get(name)),
                     "ok" if ok else "FAILED"))
    return rows


def workload_spans(run: RunFiles) -> list[plots.Span]:
    """Approximate workload boundaries on the samples' time axis (0 = first sample, taken just before the
    first workload): only for sequential runs where every workload's duration is known."""
    if not run.samples or run.manifest.lab.get("run_workloads") != "sequential":
        return []
    names = [spec.name for spec in lab_workloads(run.manifest.lab)]
    seconds = run.summary.workload_seconds if run.summary else {}
    if not names or not all(isinstance(seconds.get(name), int | float) for name in names):
        return []
    spans, start = [], 0.0
    for name in names:
        spans.append((name, start, start + seconds[name]))
        start += seconds[name]
    return spans


def spans_text(spans: Sequence[plots.Span]) -> str:
    listed = ", ".join(f"{name} {start:.1f}-{end:.1f} s" for name, start, end in spans)
    return f"Workload boundaries (dashed; approximate, from each workload's duration): {listed}."


def run_view(run: RunFiles) -> RunView:
    """The whole report of one run, every format's content."""
    m = run.manifest
    records = chain_records(run.chains, m)
    lost = run.chains.lost_events if run.chains else 0
    branches = branch_view(run.branches)
    figures = run.figures
    key_rows, all_rows = figure_rows(figures, only_key_figures=True), figure_rows(figures)
    plotted = tuple(PlotView(key, heading) for key, heading in PLOTS) if run.samples else ()
    spans = workload_spans(run)
    return RunView(
        title=f"{run.lab_name}: kernlab report",
        status=status_of(m),
        ran_on=ran_on_text(m),
        warnings=tuple(w for w in (fallback_note(m), guest_note(m), connection_text(m),
                                   lost_events_text(lost) if lost else None) if w),
        description=str(m.lab.get("description") or "").strip(),
        verdicts=verdict_table([chain_verdict(c) for c in records]) if records else None,
        sampling=run.chains.sampling if run.chains and records else None,
        chains_absent=None if records else chains_absent_text(m),
        branch_answer=branches.answer if branches else "",
        key_figures=table(("figure", "value"), key_rows) if key_rows else None,
        no_figures=None if figures else NO_SUMMARY,
        plots=plotted,
        no_samples=None if run.samples else NO_SAMPLES,
        spans=spans_text(spans) if spans and plotted else None,
        chains=tuple(chain_view(c) for c in records),
        graph=graph_view(run.graph, run.graph_capture, records, m.accel.used if m.accel else None,
                         run.chains.graph_hidden_returns if run.chains else None),
        branches=branches if branches and branches.available else None,
        folder_name=run.folder.name,
        setup=table(("setting", "value"), setup_rows(m)),
        workloads=table(("workload", "command", "exit code", "seconds", "result"), workload_rows(run)),
        all_figures=table(("figure", "value"), all_rows) if all_rows else None,
    )
