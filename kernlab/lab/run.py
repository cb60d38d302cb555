"""The lab runner: a run as a list of steps (kernel, guest image, boot, setup, workloads with sampling, trace
collection, verification), each recorded in the results folder as it ends."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from kernlab import cacheentries, progress
from kernlab.cache import Cache
from kernlab.config.lab import Lab, lab_as_dict
from kernlab.errors import KernlabError, RunFailed, RunInterrupted
from kernlab.guest.image import GuestImage, build_guest_image
from kernlab.kernel import build, source
from kernlab.kernel.source import KernelSource
from kernlab.lab import preflight, provenance
from kernlab.lab.experiment import Pins
from kernlab.lab.recorder import LabOutcome, RunRecorder, host_facts
from kernlab.lab.workloads import run_workloads
from kernlab.paths import KCONFIG_DIR
from kernlab.probes import branches, guestfacts, zram
from kernlab.probes.branchprofile import BranchProfiler, branch_profile_missing
from kernlab.probes.guestfacts import read_guest
from kernlab.probes.live import LiveFeed
from kernlab.probes.sampler import Sampler
from kernlab.probes.tracing import collect_tracing, setup_tracing
from kernlab.probes.windows import EvidenceWindows
from kernlab.report import render
from kernlab.results.evidencerecords import BranchesFile, ProbeSet
from kernlab.results.folder import ResultsFolder
from kernlab.results.guest import cpus_text, kernel_text
from kernlab.results.schema import (
    AccelRecord,
    BootRecord,
    BranchProfileRecord,
    ChainOutcome,
    GuestImageRecord,
    KernelRecord,
    Manifest,
    Summary,
    WorkloadRecord,
)
from kernlab.verify.evidence import verify_results
from kernlab.vm.qemu import qemu_version
from kernlab.vm.session import GuestSession, guest_session


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


@dataclass
class LabRun:
    """One run as its steps see it: what the lab asks, where it writes, and what each step has made so far."""

    lab: Lab
    cache: Cache
    recorder: RunRecorder
    outcome: LabOutcome
    notify: Callable[[str], None]
    live: LiveFeed | None = None
    source: KernelSource | None = None
    kernel_build: build.KernelBuild | None = None
    image: GuestImage | None = None

    @property
    def folder(self) -> ResultsFolder:
        return self.recorder.folder

    @property
    def manifest(self) -> Manifest:
        return self.recorder.manifest


def _start(lab: Lab, lab_path: Path, results_root: Path, results_dir: Path | None, kernel: str | None,
           command: str | None, extra: dict | None, notify: Callable[[str], None]) -> RunRecorder:
    """The results folder and its first manifest, after the checks that must pass before anything is made."""
    lab.chain_specs(str(lab_path))  # a spec that cannot be read: nothing fetched, no folder made
    preflight.check(lab, results_dir or results_root)
    if results_dir:
        results_dir.mkdir(parents=True)
    folder = ResultsFolder(results_dir) if results_dir else ResultsFolder.create(results_root, lab.name)
    recorder = RunRecorder(folder, Manifest.model_validate({
        "lab": lab_as_dict(lab), "lab_file": str(lab_path), "status": "running",
        "started": datetime.now(UTC).isoformat(timespec="seconds"), "host": host_facts(),
        "kernlab": provenance.kernlab_record(), "ci": provenance.ci_record(),
        "kernlab_command": command or f"inv lab --lab {lab_path}" + (f" --kernel {kernel}" if kernel else ""),
        **(extra or {})}), say=notify)
    folder.write_file("lab.yaml", yaml.safe_dump(lab_as_dict(lab), sort_keys=False))
    recorder.save()
    return recorder


def kernel_step(run: LabRun, kernel: str | None, pins: Pins | None) -> None:
    """The kernel source, fetched and checked, and its build (cached by key)."""
    lab = run.lab
    used = run.source = source.fetch_source(lab.kernel, run.cache, kernel=kernel, notify=run.notify)
    if pins:
        pins.check_source(used.version, used.sha256)
        compiler = build.compiler_version(lab.arch)
        pins.check_build_key(build.build_key(used, lab.kernel, KCONFIG_DIR, compiler, lab.arch), compiler)
    with progress.Heartbeat(f"building linux {used.version}", run.notify) as heartbeat:
        built = run.kernel_build = build.build_kernel(
            used, lab.kernel, run.cache, KCONFIG_DIR, arch=lab.arch, on_line=heartbeat.on_line,
            check_config=lambda text: zram.check_compressor_config(lab.zram.comp_algorithm, text, used.version))
    if pins:
        pins.check_config(built.config_sha256)
    run.notify(f"kernel: {'cached' if built.cached else 'built'}: {built.describe()}")
    run.manifest.kernel = KernelRecord(
        version=used.version, source=used.ref, origin=used.origin, sha256=used.sha256,
        fallback_from=used.fallback_from, fallback_reason=used.fallback_reason, build_dir=str(built.dir),
        build_key=built.key, config_sha256=built.config_sha256, compiler=built.compiler,
        bzimage_sha256=built.image_sha256, arch=lab.arch.name)
    run.folder.write_file("System.map", built.system_map.read_bytes())


def image_step(run: LabRun, pins: Pins | None) -> None:
    image = run.image = build_guest_image(run.lab, run.cache)
    if pins:
        pins.check_image(image.info)
    run.notify(f"guest image: {'cached' if image.cached else 'built'}: {image.path} (sha256 {image.sha256[:12]})")
    run.manifest.guest_image = GuestImageRecord(sha256=image.sha256, path=str(image.path), inputs=image.info)
    run.manifest.qemu_version = qemu_version(run.lab.arch)


def setup_step(run: LabRun, session: GuestSession) -> tuple[ProbeSet | None, EvidenceWindows | None,
                                                             BranchProfiler | None]:
    """zram swap, the probes and graph windows when the lab traces, the branch profiler when it asks for one."""
    lab, built = run.lab, run.kernel_build
    assert built is not None and run.source is not None
    setup_zram(session, lab, run.folder)
    probes, windows = (setup_tracing(session, lab, run.source.version, built.config, run.folder)
                       if lab.chains and lab.tracing.enabled else (None, None))
    if not lab.branch_profile.enabled:
        return probes, windows, None
    if missing := branch_profile_missing(session, built.config):
        run.notify(f"note: branch profile: {missing}")
        run.outcome.branches = BranchesFile(available=False, why=missing, answer=missing)
        run.folder.write(run.outcome.branches)
        run.manifest.branch_profile = BranchProfileRecord(available=False, why=missing)
        return probes, windows, None
    return probes, windows, BranchProfiler(session, run.folder)


def guest_steps(run: LabRun) -> None:
    """Boot, setup, the workloads with their instruments, and the evidence read back; the guest is always
    torn down, and every cache entry it uses is held against `kernlab cache` pruning meanwhile."""
    lab, built, image, used = run.lab, run.kernel_build, run.image, run.source
    assert built is not None and image is not None and used is not None
    with contextlib.ExitStack() as guest:
        in_cache = [path for path in (built.dir, image.path.parent, used.tree) if run.cache.root in path.parents]
        guest.enter_context(cacheentries.in_use(*in_cache))
        with run.recorder.step("boot"):
            # An OOM kill anywhere in the guest fails the run too (with its console excerpt) once it ends.
            session = guest.enter_context(guest_session(lab.vm, built.image, image, run.folder.file("console.log"),
                                                        watch=("panic", "oops", "bug", "oom"),
                                                        accel_verdicts=run.cache.dir("accel")))
            record_boot(session, lab, used.version, run.folder, run.manifest, run.notify)
        with run.recorder.step("setup"):
            probes, windows, profiler = setup_step(run, session)
        sampler = Sampler(session, used.version, lab.sampling.interval_s, run.folder,
                          on_sample=run.live.sample if run.live else None)
        with run.recorder.step("workloads"):
            try:
                with sampler:
                    records = run_workloads(session, lab, run.folder, profiler, run.notify, windows, run.live)
            finally:
                run.manifest.connection = sampler.connection_record()
        if probes:
            with run.recorder.step("collect_trace"):
                if windows:
                    windows.finish()
                collect_tracing(session, probes, run.folder)
    summarize(run, sampler, records, profiler)
    if probes:
        with run.recorder.step("verify"):
            run.outcome.chains = verify_results(run.folder)
            run.manifest.chains = {chain.name: ChainOutcome(holds=chain.holds, hits=chain.hits, expect=chain.expect,
                                                            ok=chain.expectation_met())
                                   for chain in run.outcome.chains}


def summarize(run: LabRun, sampler: Sampler, records: list[WorkloadRecord], profiler: BranchProfiler | None) -> None:
    """The run's figures from its samples, and the branch profile's answer when one was taken."""
    summary = Summary.model_validate(zram.summarize(sampler.samples))
    summary.workload_seconds = {record.name: record.seconds or 0.0 for record in records}
    run.folder.write(summary)
    run.outcome.summary = summary
    if not profiler:
        return
    spec, tree = run.lab.branch_profile, run.source.tree if run.source else None
    run.outcome.branches = BranchesFile.model_validate(branches.branch_report(
        branches.per_workload(profiler.snapshots), spec.functions, spec.question.functions,
        spec.question.source_matches, summary.figures(), lambda site: branches.find_site_source(tree, site),
        profiler.baseline))
    run.folder.write(run.outcome.branches)
    question = run.outcome.branches.question
    run.manifest.branch_profile = BranchProfileRecord(available=True,
                                                      question=question.model_dump() if question else None)


def run_lab(lab: Lab, lab_path: Path, cache: Cache, results_root: Path, *, kernel: str | None = None,
            notify: Callable[[str], None] = print, results_dir: Path | None = None, pins: Pins | None = None,
            command: str | None = None, extra: dict | None = None, live: LiveFeed | None = None) -> LabOutcome:
    """Run a lab from source to results folder; the folder's manifest says complete, or which step failed and why.

    results_dir: an exact (new) folder instead of results_root/<lab>/<time>; pins: what a rerun must
    find identical; extra: more manifest keys (e.g. the sweep point); live: gets every sample taken while a
    workload runs. A run that stops after its folder is made raises RunFailed (an error) or RunInterrupted
    (Ctrl-C, SIGTERM), each with the folder.
    """
    recorder = _start(lab, lab_path, results_root, results_dir, kernel, command, extra, notify)
    run = LabRun(lab, cache, recorder, LabOutcome(recorder.folder.path, recorder.manifest), notify, live)
    try:
        with recorder.step("kernel"):
            kernel_step(run, kernel, pins)
        with recorder.step("guest_image"):
            image_step(run, pins)
        guest_steps(run)
    except BaseException as error:
        recorder.finish(error)
        _report_incomplete(run.folder.path, notify)
        if isinstance(error, KernlabError):
            raise RunFailed(error, run.folder.path) from error
        if isinstance(error, KeyboardInterrupt):
            raise RunInterrupted(error, run.folder.path) from error
        raise
    recorder.finish()
    notify(f"report: {render.write_report(run.folder.path)}")
    return run.outcome


def _report_incomplete(folder: Path, notify: Callable[[str], None]) -> None:
    """A failed run still gets a report that says why; its own failure must not hide the run's."""
    try:
        notify(f"report of the incomplete run: {render.write_report(folder)}")
    except Exception as error:  # noqa: BLE001 - the run's error is the one to raise
        notify(f"no report for the incomplete run: {error}")
