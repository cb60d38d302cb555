"""The lab runner: a run as a list of steps (kernel, guest image, boot, setup, workloads with sampling, trace
collection, verification), each recorded in the results folder as it ends."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from kernlab import cacheentries, progress
from kernlab.arch import by_name
from kernlab.cache import Cache
from kernlab.config.lab import Lab, WorkloadSpec, lab_as_dict
from kernlab.errors import KernlabError, Terminated
from kernlab.frames import base_name, traceable_symbols
from kernlab.guest.image import GuestImage, build_guest_image
from kernlab.kernel import build, source
from kernlab.lab import preflight, provenance
from kernlab.lab.experiment import Pins
from kernlab.paths import KCONFIG_DIR
from kernlab.probes import branches, graphwindow, guestfacts, probewindows, zram
from kernlab.probes.kprobes import (
    PROBE_GROUP,
    REFUSED_WHY,
    TRACEFS,
    hist_setup_commands,
    hist_teardown_commands,
    pause_commands,
    probe_event_name,
    refused_probes,
)
from kernlab.probes.live import LiveFeed
from kernlab.probes.windows import EvidenceWindows
from kernlab.report import render
from kernlab.results import seal
from kernlab.results.chainrecords import ChainRecord
from kernlab.results.evidencerecords import BranchesFile, GraphCapture, ProbeSet
from kernlab.results.folder import ResultsFolder
from kernlab.results.guest import GuestRecord, cpus_text, kernel_text
from kernlab.results.schema import (
    AccelRecord,
    BootRecord,
    BranchProfileRecord,
    ChainOutcome,
    ConnectionRecord,
    GuestImageRecord,
    HostRecord,
    KernelRecord,
    Manifest,
    Summary,
    WorkloadRecord,
)
from kernlab.verify.evidence import lab_chains, verify_results
from kernlab.vm.qemu import GuestFailed, qemu_version, scan_console
from kernlab.vm.session import GuestSession, guest_session
from kernlab.vm.ssh import GuestSSH

log = logging.getLogger(__name__)
GUEST_FACTS = "guest-facts.txt"  # what the guest said, as read (kernlab.guestfacts.COMMAND's output)


def stop_reason(error: BaseException) -> str:
    """The first line of why a run stopped, as the manifest keeps it."""
    if isinstance(error, Terminated):
        return "terminated (SIGTERM)"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    lines = str(error).splitlines()
    return lines[0] if lines else type(error).__name__


class RunRecorder:
    """The results folder of a run in progress: the manifest is rewritten after every step, so a run that
    stops (error or Ctrl-C) still says how far it got, which step failed and why."""

    def __init__(self, folder: ResultsFolder, manifest: Manifest, say: Callable[[str], None] | None = None) -> None:
        self.folder, self.manifest = folder, manifest
        self.say = say or (lambda _line: None)  # where a step's GitHub Actions log group is opened and closed
        self.started = time.monotonic()

    def save(self) -> None:
        self.folder.write(self.manifest)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Times one step into steps_s; a failure marks the run incomplete with the step's name and why."""
        began = time.monotonic()
        try:
            with progress.group(name, self.say):
                yield
        except (Exception, KeyboardInterrupt) as error:
            self.manifest.failed_step = name
            self.manifest.status, self.manifest.why = "incomplete", stop_reason(error)
            raise
        finally:
            self.manifest.steps_s[name] = round(time.monotonic() - began, 2)
            self.save()
            log.debug("step %s: %.2f s", name, self.manifest.steps_s[name])

    def finish(self, error: BaseException | None = None) -> None:
        """Called on every exit path: the end time and total; complete only when nothing failed."""
        if error is not None and self.manifest.status != "incomplete":
            self.manifest.status, self.manifest.why = "incomplete", stop_reason(error)
        elif error is None and self.manifest.status == "running":
            self.manifest.status = "complete"
        self.manifest.finished = datetime.now(UTC).isoformat(timespec="seconds")
        self.manifest.steps_s["total"] = round(time.monotonic() - self.started, 2)
        with contextlib.suppress(OSError):  # a folder that cannot be read back (a full disk) stays unsealed
            self.manifest.evidence = seal.seal(self.folder.path)
        self.save()


@dataclass
class LabOutcome:
    """What a finished run says, for the CLI to print without reading or verifying again."""

    folder: Path
    manifest: Manifest
    chains: list[ChainRecord] = field(default_factory=list)
    branches: BranchesFile | None = None
    summary: Summary | None = None

    @property
    def ok(self) -> bool:
        """Every chain as the lab expects, and branch counts taken when the lab asked for them."""
        return all(chain.expectation_met() for chain in self.chains) and (
            self.branches is None or self.branches.available)


def memhog_command(workload: WorkloadSpec) -> str:
    spec = workload.memhog
    assert spec is not None
    args = ["/bin/memhog", "--size-mib", str(spec.size_mib), "--passes", str(spec.passes), "--forks",
            str(spec.forks), "--seed", str(spec.seed)]
    args += ["--ratio", str(spec.ratio)] if spec.ratio else ["--data", spec.data]
    return shlex.join(args)


def workload_command(workload: WorkloadSpec) -> str:
    return memhog_command(workload) if workload.memhog else str(workload.command)


class Sampler:
    """Reads zram, vmstat and meminfo every interval over its own SSH channel while the workloads run.
    A sample that fails (the connection dropped and was made again) is a gap, counted; only
    MAX_MISSED_IN_A_ROW failures in a row stop the sampler and fail the run."""

    MAX_MISSED_IN_A_ROW = 5

    def __init__(self, session: GuestSession, kernel_version: str, interval_s: float, folder: ResultsFolder,
                 on_sample: Callable[[zram.Sample], None] | None = None) -> None:
        self.session, self.kernel_version, self.interval_s, self.folder = session, kernel_version, interval_s, folder
        self.on_sample = on_sample  # live figures (kernlab.live.LiveFeed.sample)
        self.ssh: GuestSSH | None = None  # its own connection (GuestSSH.sibling), from __enter__ on
        self.samples: list[zram.Sample] = []
        self.error: Exception | None = None
        self.missed: list[str] = []  # why each missed sample failed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def take(self) -> None:
        assert self.ssh is not None, "samples are taken inside `with sampler`, on its own connection"
        text = self.ssh.run(zram.SAMPLE_SCRIPT, timeout=30, what="sampling zram and vmstat").stdout
        sample = zram.parse_sample(text, self.kernel_version)
        self.samples.append(sample)
        self.folder.append_sample(sample.as_row())
        if self.on_sample:
            self.on_sample(sample)

    def _loop(self) -> None:
        in_a_row = 0
        while not self._stop.wait(self.interval_s):
            try:
                self.take()
                in_a_row = 0
            except KernlabError as error:  # a gap in the samples; the workload's own failure matters more
                self.missed.append(str(error))
                in_a_row += 1
                log.warning("sample missed: %s", error)
                if in_a_row >= self.MAX_MISSED_IN_A_ROW:
                    self.error = error
                    return
            except Exception as error:  # a parser bug: reported by __exit__, never retried
                self.error = error
                return

    def connection_record(self) -> ConnectionRecord:
        own = self.ssh.reconnects if self.ssh else 0
        return ConnectionRecord(reconnects=self.session.ssh.reconnects + own, samples_missed=len(self.missed),
                                first_miss=self.missed[0] if self.missed else None)

    def __enter__(self) -> Sampler:
        self.ssh = self.session.ssh.sibling()
        self.take()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        try:
            if exc_info[0] is None:
                if self.error:
                    raise KernlabError(f"sampling failed: {self.error}")
                self.take()
        finally:
            if self.ssh is not None:
                self.ssh.close()


def memhog_report(stdout: str) -> dict | None:
    """memhog's last stdout line is its JSON report; None when it died before printing it."""
    try:
        report = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return report if isinstance(report, dict) else None


# The guest's init makes this memcg when the kernel has one (guest/init); the workload's shell joins it first.
WORKLOAD_CGROUP = "/sys/fs/cgroup/kernlab"
JOIN_CGROUP = f"if [ -d {WORKLOAD_CGROUP} ]; then echo $$ > {WORKLOAD_CGROUP}/cgroup.procs || exit 125; fi; "


def run_workload(session: GuestSession, workload: WorkloadSpec, folder: ResultsFolder) -> WorkloadRecord:
    command = workload_command(workload)
    result = session.run(JOIN_CGROUP + command, timeout=workload.timeout_s, check=False,
                         what=f"workload {workload.name}")
    record = WorkloadRecord(name=workload.name, command=command, exit_code=result.exit_code,
                            seconds=round(result.seconds, 2), stdout=result.stdout, stderr=result.stderr,
                            report=memhog_report(result.stdout) if workload.memhog else None)
    folder.write_workload(record)
    return record


def workload_failure(record: WorkloadRecord, console: str, qemu_exit: str | None) -> str | None:
    """Why a workload failed, the real cause first: the guest kernel's own panic, oops or BUG, then QEMU
    gone, then the OOM killer, and only then the workload's exit code and last stderr line."""
    if record.exit_code == 0:
        return None
    failed = f"workload {record.name} failed (exit {record.exit_code})"
    if problem := scan_console(console, ("panic", "oops", "bug")):
        return f"{failed}: {problem.summary()}"
    if qemu_exit is not None:
        return f"{failed}: QEMU {qemu_exit}"
    oom = scan_console(console, ("oom",))
    if oom and record.exit_code in (137, -1, 9):
        return f"workload {record.name} was killed by the OOM killer: {oom.line}"
    stderr = record.stderr.strip().splitlines()
    return f"{failed}: {stderr[-1] if stderr else 'no stderr'}"


def _fail_workload(record: WorkloadRecord, session: GuestSession) -> None:
    time.sleep(0.5 if record.exit_code else 0)  # a dying guest's last console lines are still arriving
    if why := workload_failure(record, session.vm.text, session.vm.exit_text()):
        tail = "\n".join(session.vm.text.splitlines()[-15:])
        raise GuestFailed(f"{why} (console: {session.vm.console_log})", tail)


def probe_set(lab: Lab, kernel_version: str, traceable: dict[str, str]) -> ProbeSet:
    """Full stacks at each chain's leaves, and only the return address at the chain's other traceable
    functions (the cheap evidence that proves a tail call)."""
    leaves: list[str] = []
    others: list[str] = []
    resolved_chains = [resolved for resolved, _ in lab_chains(lab, kernel_version)]
    for resolved in resolved_chains:
        leaves += resolved.probe_leaves(lambda name: name in traceable)
        others += resolved.functions()
    leaves += lab.tracing.extra_functions
    if lab.arch.stack_skips_caller:
        # arm64 spends 7 of the hist's 16 stack frames on kprobes' trap, so a leaf's stack stops short of the
        # fault entry; the chains' graph roots (do_swap_page: once per page, shallow) get full stacks too, from
        # which kernlab.chains.joined_stacks continues the cut ones.
        leaves += graphwindow.chain_roots(resolved_chains)
    probes = ProbeSet(table_size=lab.tracing.table_size, arch=lab.arch.name)
    for name in dict.fromkeys(leaves + others):
        if name not in traceable:
            probes.not_probed[name] = "not in available_filter_functions"
        elif name in leaves:
            probes.stack.append(traceable[name])
        else:
            probes.caller.append(traceable[name])
    return probes


def read_guest(session: GuestSession, folder: ResultsFolder) -> GuestRecord:
    """What the running kernel brought up (kernlab.guestfacts); the guest's own words are kept beside the manifest."""
    text = session.run(guestfacts.COMMAND, what="reading what the guest brought up").stdout
    folder.write_file(GUEST_FACTS, text)
    return guestfacts.parse_guest_facts(text)


def record_boot(session: GuestSession, lab: Lab, kernel_version: str, folder: ResultsFolder, manifest: Manifest,
                notify: Callable[[str], None]) -> None:
    """The boot as it went: accel, times, and what the guest brought up, read before anything is set up in it.
    A guest short of CPUs is not the machine the lab describes: the run stops here, before any workload."""
    manifest.accel = AccelRecord(used=session.accel.accel, why=session.accel.reason, probe_kept=session.accel.cached)
    guest = manifest.guest = read_guest(session, folder)
    manifest.boot = BootRecord(console_ready_s=round(session.console_ready_s, 2),
                               ssh_ready_s=round(session.ssh_ready_s, 2), clocksource=guest.clocksource)
    notify(f"guest up in {session.ssh_ready_s:.1f} s ({session.accel.accel}: {session.accel.reason}): "
           f"{cpus_text(guest, lab.vm.cpus)}, {kernel_text(guest)}")
    guestfacts.check_cpus(guest, lab.vm.cpus, kernel_version)


def setup_zram(session: GuestSession, lab: Lab, folder: ResultsFolder) -> None:
    zram.check_algorithm(lab.zram.comp_algorithm, session.run(f"cat {zram.ZRAM}/comp_algorithm").stdout)
    steps = zram.setup_commands(lab.zram, lab.swap)
    for step in steps:
        session.run(step.command, what=f"zram setup: {step.description}")
    folder.write_file("zram-setup.txt", "\n".join(step.command for step in steps) + "\n")


def setup_tracing(session: GuestSession, lab: Lab, kernel_version: str, config: Path,
                  folder: ResultsFolder) -> tuple[ProbeSet, EvidenceWindows | None]:
    """The stack histograms, armed in probe windows where the kernel allows it, and the function graph's windows
    when the lab asks for them."""
    available = session.run(f"cat {TRACEFS}/available_filter_functions", timeout=60).stdout
    folder.write_file("trace/available_filter_functions", available)
    traceable = traceable_symbols(available)
    probes = probe_set(lab, kernel_version, traceable)
    if lab.tracing.sample:
        probes.armed_why = probewindows.windows_missing(config.read_text())
        if probes.armed_why is None:
            probes.armed, probes.every_s = "windows", lab.tracing.sample.every_s
    folder.write(probes)
    # Windowed probes are registered disarmed, so they count nothing outside a window (setup commands included).
    disarm = [probewindows.disarm_command()] if probes.armed == "windows" else []
    # One exec: each kprobe registration patches kernel text, slow enough under TCG without extra round trips.
    said = session.run(" && ".join(disarm + hist_setup_commands(probes.stack, probes.caller,
                                                                      lab.tracing.table_size, lab.arch)),
                       timeout=300, what="tracing setup").stdout
    if refused := refused_probes(said):
        probes.stack = [symbol for symbol in probes.stack if symbol not in refused]
        probes.caller = [symbol for symbol in probes.caller if symbol not in refused]
        probes.not_probed |= {base_name(symbol): REFUSED_WHY for symbol in refused}
        folder.write(probes)
    if not lab.tracing.graph.enabled:
        return probes, EvidenceWindows(session, lab, probes, None, folder) if probes.armed == "windows" else None
    spec = lab.tracing.graph
    chains = [resolved for resolved, _ in lab_chains(lab, kernel_version)]
    roots = spec.roots or graphwindow.chain_roots(chains)
    symbols, not_traced = graphwindow.graph_symbols(roots, traceable)
    recorded = (graphwindow.recorded_symbols(chains, symbols, spec.functions, traceable)
                if spec.record == "chains" else None)
    capture = GraphCapture(roots=symbols, not_traced=not_traced, max_depth=spec.max_depth, window_s=spec.window_s,
                           start_pswpin=spec.start_pswpin, buffer_kb=spec.buffer_kb, recorded=recorded)
    folder.write(capture)
    if not symbols:
        return probes, EvidenceWindows(session, lab, probes, None, folder) if probes.armed == "windows" else None
    session.run(" && ".join(graphwindow.setup_commands(spec, symbols, recorded or ())), timeout=300,
                what="function graph setup")
    return probes, EvidenceWindows(session, lab, probes, capture, folder)


def collect_tracing(session: GuestSession, probes: ProbeSet, folder: ResultsFolder) -> None:
    # Paused first: reading a hist faults pages in the guest, and a probe that counts faults (first-touch's
    # __handle_mm_fault, armed throughout) would count the reads, its Totals landing after its entries (6.12,
    # 2026-12-03: entries 182,776 hits, Totals 182,778).
    pause = pause_commands(probes.stack, probes.caller, probes.table_size or 0, by_name(probes.arch))
    session.run("; ".join(pause), check=False, timeout=300)
    for symbol in probes.stack + probes.caller:
        event = f"{TRACEFS}/events/{PROBE_GROUP}/{probe_event_name(symbol)}/hist"
        folder.write_file(f"trace/hist/{base_name(symbol)}.hist", session.run(f"cat {event}", timeout=60).stdout)
    rearm = [probewindows.rearm_command()] if probes.armed == "windows" else []
    session.run("; ".join(rearm + hist_teardown_commands(probes.stack, probes.caller, probes.table_size or 0,
                                                               by_name(probes.arch))),
                check=False, timeout=300)


class BranchProfiler:
    """Snapshots of trace_stat/branch_annotated around each workload (the table is never reset, so deltas)."""

    def __init__(self, session: GuestSession, folder: ResultsFolder) -> None:
        self.session, self.folder = session, folder
        self.snapshots: dict[str, tuple[branches.Snapshot, branches.Snapshot]] = {}
        self.baseline: branches.Snapshot | None = None  # since boot, before the first workload
        self._before: branches.Snapshot = {}

    def _read(self, name: str) -> branches.Snapshot:
        text = self.session.run(f"cat {branches.BRANCH_ANNOTATED}", timeout=300, what="reading branch_annotated").stdout
        path = self.folder.write_file(f"branches/{name}.txt", text)
        return branches.parse_branch_annotated(text, str(path))

    @contextlib.contextmanager
    def around(self, workload: str):  # noqa: ANN201 - a context manager
        self._before = self._read(f"{workload}.before")
        if self.baseline is None:
            self.baseline = self._before
        yield
        self.snapshots[workload] = (self._before, self._read(f"{workload}.after"))


def branch_profile_missing(session: GuestSession, config: Path) -> str | None:
    """Why this kernel cannot profile branches, or None when it can."""
    if f"{branches.KCONFIG_SYMBOL}=y" not in config.read_text():
        return (f"this kernel was built without {branches.KCONFIG_SYMBOL} (add the branch-profile fragment to "
                "kernel.fragments); no branch counts were taken")
    if session.run(f"test -r {branches.BRANCH_ANNOTATED}", check=False).exit_code != 0:
        return f"{branches.BRANCH_ANNOTATED} is missing in the guest; no branch counts were taken"
    return None


def run_workloads(session: GuestSession, lab: Lab, folder: ResultsFolder, profiler: BranchProfiler | None,
                  notify: Callable[[str], None], windows: EvidenceWindows | None = None,
                  live: LiveFeed | None = None) -> list[WorkloadRecord]:
    """The lab's workloads, in sequence or all at once; a failed one ends the run with its real cause."""
    arounds = [each.around for each in (profiler, windows, live) if each is not None]

    @contextlib.contextmanager
    def profiled(name: str) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for around in arounds:
                stack.enter_context(around(name))
            yield
    if lab.run_workloads == "parallel":
        done: dict[str, WorkloadRecord] = {}
        workers = [threading.Thread(target=lambda w=w: done.__setitem__(w.name, run_workload(session, w, folder)))
                   for w in lab.workloads]
        with profiled("all-workloads"):
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        records = [done[w.name] for w in lab.workloads if w.name in done]
        for record in records:
            _fail_workload(record, session)
        return records
    records = []
    for workload in lab.workloads:
        notify(f"workload {workload.name}: {workload_command(workload)}")
        with profiled(workload.name):
            records.append(run_workload(session, workload, folder))
            _fail_workload(records[-1], session)
    return records


def host_facts() -> HostRecord:
    return HostRecord(machine=platform.machine(), python=platform.python_version(), kernel=platform.release(),
                      cpus=os.cpu_count())


def run_lab(lab: Lab, lab_path: Path, cache: Cache, results_root: Path, *, kernel: str | None = None,
            notify: Callable[[str], None] = print, results_dir: Path | None = None, pins: Pins | None = None,
            command: str | None = None, extra: dict | None = None, live: LiveFeed | None = None) -> LabOutcome:
    """Run a lab from source to results folder; the folder's manifest says complete, or which step failed and why.

    results_dir: an exact (new) folder instead of results_root/<lab>/<time>; pins: what a rerun must
    find identical; extra: more manifest keys (e.g. the sweep point); live: gets every sample taken while a
    workload runs.
    """
    lab.chain_specs(str(lab_path))  # a spec that cannot be read: nothing fetched, no folder made
    preflight.check(lab, results_dir or results_root)
    if results_dir:
        results_dir.mkdir(parents=True)
    folder = ResultsFolder(results_dir) if results_dir else ResultsFolder.create(results_root, lab.name)
    run = RunRecorder(folder, Manifest.model_validate({
        "lab": lab_as_dict(lab), "lab_file": str(lab_path), "status": "running",
        "started": datetime.now(UTC).isoformat(timespec="seconds"), "host": host_facts(),
        "kernlab": provenance.kernlab_record(), "ci": provenance.ci_record(),
        "kernlab_command": command or f"inv lab --lab {lab_path}" + (f" --kernel {kernel}" if kernel else ""),
        **(extra or {})}), say=notify)
    folder.write_file("lab.yaml", yaml.safe_dump(lab_as_dict(lab), sort_keys=False))
    run.save()
    manifest = run.manifest
    outcome = LabOutcome(folder.path, manifest)
    try:
        with run.step("kernel"):
            used = source.fetch_source(lab.kernel, cache, kernel=kernel, notify=notify)
            if pins:
                pins.check_source(used.version, used.sha256)
                compiler = build.compiler_version(lab.arch)
                pins.check_build_key(build.build_key(used, lab.kernel, KCONFIG_DIR, compiler, lab.arch), compiler)
            with progress.Heartbeat(f"building linux {used.version}", notify) as heartbeat:
                kernel_build = build.build_kernel(
                    used, lab.kernel, cache, KCONFIG_DIR, arch=lab.arch, on_line=heartbeat.on_line,
                    check_config=lambda text: zram.check_compressor_config(lab.zram.comp_algorithm, text, used.version))
            if pins:
                pins.check_config(kernel_build.info["config"]["config_sha256"])
            notify(f"kernel: {'cached' if kernel_build.cached else 'built'}: {kernel_build.describe()}")
            manifest.kernel = KernelRecord(
                version=used.version, source=used.ref, origin=used.origin, sha256=used.sha256,
                fallback_from=used.fallback_from, fallback_reason=used.fallback_reason,
                build_dir=str(kernel_build.dir), build_key=kernel_build.info["key"],
                config_sha256=kernel_build.info["config"]["config_sha256"], compiler=kernel_build.info["compiler"],
                bzimage_sha256=kernel_build.info.get("image_sha256") or kernel_build.info.get("bzimage_sha256"),
                arch=lab.arch.name)
            folder.write_file("System.map", kernel_build.system_map.read_bytes())

        with run.step("guest_image"):
            image: GuestImage = build_guest_image(lab, cache)
            if pins:
                pins.check_image(image.info)
            notify(f"guest image: {'cached' if image.cached else 'built'}: {image.path} (sha256 {image.sha256[:12]})")
            manifest.guest_image = GuestImageRecord(sha256=image.sha256, path=str(image.path), inputs=image.info)
            manifest.qemu_version = qemu_version(lab.arch)

        with contextlib.ExitStack() as guest:
            in_cache = [path for path in (kernel_build.dir, image.path.parent, used.tree) if cache.root in path.parents]
            guest.enter_context(cacheentries.in_use(*in_cache))  # `kernlab cache` prunes none of them meanwhile
            with run.step("boot"):
                # An OOM kill anywhere in the guest fails the run too (with its console excerpt) once it ends.
                session = guest.enter_context(guest_session(lab.vm, kernel_build.image, image,
                                                            folder.file("console.log"),
                                                            watch=("panic", "oops", "bug", "oom"),
                                                            accel_verdicts=cache.dir("accel")))
                record_boot(session, lab, used.version, folder, manifest, notify)

            with run.step("setup"):
                setup_zram(session, lab, folder)
                tracing = bool(lab.chains) and lab.tracing.enabled
                probes, windows = (setup_tracing(session, lab, used.version, kernel_build.config, folder)
                                   if tracing else (None, None))
                profiler = None
                if lab.branch_profile.enabled:
                    if missing := branch_profile_missing(session, kernel_build.config):
                        notify(f"note: branch profile: {missing}")
                        outcome.branches = BranchesFile(available=False, why=missing, answer=missing)
                        folder.write(outcome.branches)
                        manifest.branch_profile = BranchProfileRecord(available=False, why=missing)
                    else:
                        profiler = BranchProfiler(session, folder)

            sampler = Sampler(session, used.version, lab.sampling.interval_s, folder,
                              on_sample=live.sample if live else None)
            with run.step("workloads"):
                try:
                    with sampler:
                        records = run_workloads(session, lab, folder, profiler, notify, windows, live)
                finally:
                    manifest.connection = sampler.connection_record()

            if probes:
                with run.step("collect_trace"):
                    if windows:
                        windows.finish()
                    collect_tracing(session, probes, folder)

        summary = Summary.model_validate(zram.summarize(sampler.samples))
        summary.workload_seconds = {record.name: record.seconds or 0.0 for record in records}
        folder.write(summary)
        outcome.summary = summary
        if profiler:
            spec = lab.branch_profile
            outcome.branches = BranchesFile.model_validate(branches.branch_report(
                branches.per_workload(profiler.snapshots), spec.functions, spec.question.functions,
                spec.question.source_matches, summary.figures(),
                lambda site: branches.find_site_source(used.tree, site), profiler.baseline))
            folder.write(outcome.branches)
            manifest.branch_profile = BranchProfileRecord(
                available=True, question=outcome.branches.question.model_dump() if outcome.branches.question else None)
        if probes:
            with run.step("verify"):
                outcome.chains = verify_results(folder)
                manifest.chains = {chain.name: ChainOutcome(holds=chain.holds, hits=chain.hits, expect=chain.expect,
                                                            ok=chain.expectation_met()) for chain in outcome.chains}
    except BaseException as error:
        run.finish(error)
        _report_incomplete(folder.path, notify)
        error.results_folder = folder.path  # type: ignore[attr-defined] # for the caller's CI outputs
        raise
    run.finish()
    notify(f"report: {render.write_report(folder.path)}")
    return outcome


def _report_incomplete(folder: Path, notify: Callable[[str], None]) -> None:
    """A failed run still gets a report that says why; its own failure must not hide the run's."""
    try:
        notify(f"report of the incomplete run: {render.write_report(folder)}")
    except Exception as error:  # noqa: BLE001 - the run's error is the one to raise
        notify(f"no report for the incomplete run: {error}")
