"""The lab runner: kernel and image, boot, zram setup, probes, workloads with sampling, and the results folder."""

from __future__ import annotations

import json
import logging
import os
import platform
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from kernlab import branches, build, experiment, report, source, specs, trace, zram
from kernlab.cache import Cache, check_child, write_json_atomic
from kernlab.errors import KernlabError
from kernlab.experiment import Pins, Shard
from kernlab.guest import GuestImage, build_guest_image
from kernlab.lab import Lab, WorkloadSpec, lab_as_dict
from kernlab.session import GuestSession, guest_session
from kernlab.verify import lab_chains, verify_results
from kernlab.vm import GuestFailed, qemu_version, scan_console

log = logging.getLogger("kernlab")
REPO = Path(__file__).resolve().parent.parent
KCONFIG_DIR = REPO / "kconfigs"


@dataclass
class Results:
    """The results folder being written; the manifest is rewritten after every step, so a crash still explains."""

    dir: Path
    manifest: dict = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def step(self, name: str, seconds: float) -> None:
        self.manifest.setdefault("steps_s", {})[name] = round(seconds, 2)
        self.save()

    def save(self) -> None:
        write_json_atomic(self.dir / "manifest.json", self.manifest)

    def write(self, relative: str, data: str | bytes | dict | list) -> Path:
        path = self.dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, dict | list):
            write_json_atomic(path, data)
        elif isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
        return path


def new_results_dir(root: Path, lab: Lab) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    check_child(root / lab.name)
    path = root / lab.name / stamp
    suffix = 1
    while path.exists():
        suffix += 1
        path = root / lab.name / f"{stamp}-{suffix}"
    path.mkdir(parents=True)
    return path


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
    """Reads zram, vmstat and meminfo every interval over its own SSH channel while the workloads run."""

    def __init__(self, session: GuestSession, kernel_version: str, interval_s: float, out: Path) -> None:
        self.session, self.kernel_version, self.interval_s, self.out = session, kernel_version, interval_s, out
        self.samples: list[zram.Sample] = []
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def take(self) -> None:
        text = self.session.ssh.run(zram.SAMPLE_SCRIPT, timeout=30, what="sampling zram and vmstat").stdout
        sample = zram.parse_sample(text, self.kernel_version)
        self.samples.append(sample)
        with open(self.out, "a") as handle:
            handle.write(json.dumps(sample.as_row()) + "\n")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.take()
            except Exception as error:  # reported by stop(); the workload's own failure matters more
                self.error = error
                return

    def __enter__(self) -> Sampler:
        self.take()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        if exc_info[0] is None:
            if self.error:
                raise KernlabError(f"sampling failed: {self.error}")
            self.take()


def run_workload(session: GuestSession, workload: WorkloadSpec, results: Results) -> dict:
    command = workload_command(workload)
    result = session.run(command, timeout=workload.timeout_s, check=False, what=f"workload {workload.name}")
    record = {"name": workload.name, "command": command, "exit_code": result.exit_code,
              "seconds": round(result.seconds, 2), "stdout": result.stdout, "stderr": result.stderr}
    try:
        record["report"] = json.loads(result.stdout.strip().splitlines()[-1]) if workload.memhog else None
    except (ValueError, IndexError):
        record["report"] = None
    results.write(f"workloads/{workload.name}.json", record)
    return record


def workload_failure(record: dict, console: str, qemu_exit: str | None) -> str | None:
    """Why a workload failed, the real cause first: the guest kernel's own panic, oops or BUG, then QEMU
    gone, then the OOM killer, and only then the workload's exit code and last stderr line."""
    if record["exit_code"] == 0:
        return None
    failed = f"workload {record['name']} failed (exit {record['exit_code']})"
    if problem := scan_console(console, ("panic", "oops", "bug")):
        return f"{failed}: {problem.summary()}"
    if qemu_exit is not None:
        return f"{failed}: QEMU {qemu_exit}"
    oom = scan_console(console, ("oom",))
    if oom and record["exit_code"] in (137, -1, 9):
        return f"workload {record['name']} was killed by the OOM killer: {oom.line}"
    stderr = record["stderr"].strip().splitlines()
    return f"{failed}: {stderr[-1] if stderr else 'no stderr'}"


def _fail_workload(record: dict, session: GuestSession) -> None:
    time.sleep(0.5 if record["exit_code"] else 0)  # a dying guest's last console lines are still arriving
    if why := workload_failure(record, session.vm.text, session.vm.exit_text()):
        tail = "\n".join(session.vm.text.splitlines()[-15:])
        raise GuestFailed(f"{why} (console: {session.vm.console_log})", tail)


def probe_set(lab: Lab, kernel_version: str, traceable: dict[str, str]) -> tuple[list[str], list[str], dict]:
    """(stack probes, caller probes, not probed): full stacks at each chain's leaves, and only the return
    address at the chain's other traceable functions (the cheap evidence that proves a tail call)."""
    leaves: list[str] = []
    others: list[str] = []
    for resolved, _ in lab_chains(lab, kernel_version):
        leaves += resolved.leaves
        others += resolved.functions()
    leaves += lab.tracing.extra_functions
    stack, caller, skipped = [], [], {}
    for name in dict.fromkeys(leaves + others):
        if name not in traceable:
            skipped[name] = "not in available_filter_functions"
        elif name in leaves:
            stack.append(traceable[name])
        else:
            caller.append(traceable[name])
    return stack, caller, skipped


def setup_zram(session: GuestSession, lab: Lab, results: Results) -> None:
    zram.check_algorithm(lab.zram.comp_algorithm, session.run(f"cat {zram.ZRAM}/comp_algorithm").stdout)
    for step in zram.setup_steps(lab.zram, lab.swap):
        session.run(step.command, what=f"zram setup: {step.description}")
    results.write("zram-setup.txt", "\n".join(step.command for step in zram.setup_steps(lab.zram, lab.swap)) + "\n")


def setup_tracing(session: GuestSession, lab: Lab, kernel_version: str,
                  results: Results) -> tuple[list[str], list[str]]:
    available = session.run(f"cat {trace.TRACEFS}/available_filter_functions", timeout=60).stdout
    results.write("trace/available_filter_functions", available)
    stack, caller, skipped = probe_set(lab, kernel_version, trace.traceable_symbols(available))
    results.write("trace/probes.json", {"stack": stack, "caller": caller, "not_probed": skipped,
                                        "table_size": lab.tracing.table_size})
    # One exec: each kprobe registration patches kernel text, slow enough under TCG without extra round trips.
    session.run(" && ".join(trace.hist_setup_commands(stack, caller, lab.tracing.table_size)), timeout=300,
                what="tracing setup")
    return stack, caller


def collect_tracing(session: GuestSession, probes: tuple[list[str], list[str]], table_size: int,
                    results: Results) -> None:
    stack, caller = probes
    for symbol in stack + caller:
        event = f"{trace.TRACEFS}/events/{trace.PROBE_GROUP}/{trace.probe_event_name(symbol)}/hist"
        results.write(f"trace/hist/{trace.base_name(symbol)}.hist", session.run(f"cat {event}", timeout=60).stdout)
    session.run("; ".join(trace.hist_teardown_commands(stack, caller, table_size)), check=False, timeout=300)


class BranchProfiler:
    """Snapshots of trace_stat/branch_annotated around each workload (the table is never reset, so deltas)."""

    def __init__(self, session: GuestSession, results: Results) -> None:
        self.session, self.results = session, results
        self.snapshots: dict[str, tuple[branches.Snapshot, branches.Snapshot]] = {}
        self.baseline: branches.Snapshot | None = None  # since boot, before the first workload
        self._before: branches.Snapshot = {}

    def _read(self, name: str) -> branches.Snapshot:
        text = self.session.run(f"cat {branches.BRANCH_ANNOTATED}", timeout=300, what="reading branch_annotated").stdout
        path = self.results.write(f"branches/{name}.txt", text)
        return branches.parse_branch_annotated(text, str(path))

    def before(self, workload: str) -> None:
        self._before = self._read(f"{workload}.before")
        if self.baseline is None:
            self.baseline = self._before

    def after(self, workload: str) -> None:
        self.snapshots[workload] = (self._before, self._read(f"{workload}.after"))


def branch_profile_missing(session: GuestSession, config: Path) -> str | None:
    """Why this kernel cannot profile branches, or None when it can."""
    if f"{branches.KCONFIG_SYMBOL}=y" not in config.read_text():
        return (f"this kernel was built without {branches.KCONFIG_SYMBOL} (add the branch-profile fragment to "
                "kernel.fragments); no branch counts were taken")
    if session.run(f"test -r {branches.BRANCH_ANNOTATED}", check=False).exit_code != 0:
        return f"{branches.BRANCH_ANNOTATED} is missing in the guest; no branch counts were taken"
    return None


def host_facts() -> dict:
    return {"machine": platform.machine(), "python": platform.python_version(), "kernel": platform.release(),
            "cpus": os.cpu_count()}


def run_lab(lab: Lab, lab_path: Path, cache: Cache, results_root: Path, *, kernel: str | None = None,
            notify: Callable[[str], None] = print, results_dir: Path | None = None, pins: Pins | None = None,
            command: str | None = None, extra: dict | None = None) -> Path:
    """Run a lab from source to results folder; returns the folder (its manifest says complete or why not).

    results_dir: an exact (new) folder instead of results_root/<lab>/<time>; pins: what a rerun must
    find identical; extra: more manifest keys (e.g. the sweep point).
    """
    if results_dir:
        results_dir.mkdir(parents=True)
    results = Results(results_dir or new_results_dir(results_root, lab))
    results.manifest = {"lab": lab_as_dict(lab), "lab_file": str(lab_path), "status": "running",
                        "started": datetime.now(UTC).isoformat(timespec="seconds"), "host": host_facts(),
                        "kernlab_command": command or (f"inv lab --lab {lab_path}"
                                                       + (f" --kernel {kernel}" if kernel else "")), **(extra or {})}
    results.write("lab.yaml", yaml.safe_dump(lab_as_dict(lab), sort_keys=False))
    results.save()
    try:
        t = time.monotonic()
        specs.check_specs([use.spec for use in lab.chains], str(lab_path))
        used = source.fetch_source(lab.kernel, cache, kernel=kernel, notify=notify)
        if pins:
            pins.check_source(used.version, used.sha256)
            compiler = build.compiler_version()
            pins.check_build_key(build.build_key(used, lab.kernel, KCONFIG_DIR, compiler), compiler)
        kernel_build = build.build_kernel(used, lab.kernel, cache, KCONFIG_DIR, check_config=lambda text: (
            zram.check_compressor_config(lab.zram.comp_algorithm, text, used.version)))
        if pins:
            pins.check_config(kernel_build.info["config"]["config_sha256"])
        notify(f"kernel: {'cached' if kernel_build.cached else 'built'}: {kernel_build.describe()}")
        results.manifest["kernel"] = {
            "version": used.version, "source": used.ref, "origin": used.origin, "sha256": used.sha256,
            "fallback_from": used.fallback_from, "fallback_reason": used.fallback_reason,
            "build_dir": str(kernel_build.dir), "build_key": kernel_build.info["key"],
            "config_sha256": kernel_build.info["config"]["config_sha256"], "compiler": kernel_build.info["compiler"],
            "bzimage_sha256": kernel_build.info.get("bzimage_sha256"),
        }
        results.write("System.map", kernel_build.system_map.read_bytes())
        results.step("kernel", time.monotonic() - t)

        t = time.monotonic()
        image: GuestImage = build_guest_image(lab, cache)
        if pins:
            pins.check_image(image.info)
        notify(f"guest image: {'cached' if image.cached else 'built'}: {image.path} (sha256 {image.sha256[:12]})")
        results.manifest["guest_image"] = {"sha256": image.sha256, "path": str(image.path), "inputs": image.info}
        results.manifest["qemu_version"] = qemu_version()
        results.step("guest_image", time.monotonic() - t)

        t = time.monotonic()
        # An OOM kill anywhere in the guest fails the run too (with its console excerpt) once the session ends.
        with guest_session(lab.vm, kernel_build.bzimage, image, results.dir / "console.log",
                           watch=("panic", "oops", "bug", "oom")) as session:
            results.manifest["accel"] = {"used": session.accel.accel, "why": session.accel.reason}
            results.manifest["boot"] = {"console_ready_s": round(session.console_ready_s, 2),
                                        "ssh_ready_s": round(session.ssh_ready_s, 2)}
            results.step("boot", time.monotonic() - t)
            notify(f"guest up in {session.ssh_ready_s:.1f} s ({session.accel.accel}: {session.accel.reason})")

            t = time.monotonic()
            setup_zram(session, lab, results)
            tracing = lab.chains and lab.tracing.enabled
            probes = setup_tracing(session, lab, used.version, results) if tracing else None
            results.step("setup", time.monotonic() - t)

            profiler = None
            if lab.branch_profile.enabled:
                missing = branch_profile_missing(session, kernel_build.config)
                if missing:
                    notify(f"note: branch profile: {missing}")
                    results.write("branches.json", branches.unavailable(missing))
                    results.manifest["branch_profile"] = {"available": False, "why": missing}
                else:
                    profiler = BranchProfiler(session, results)

            t = time.monotonic()
            records = []
            with Sampler(session, used.version, lab.sampling.interval_s, results.dir / "samples.jsonl") as sampler:
                if lab.run_workloads == "parallel":
                    threads_out: dict[str, dict] = {}
                    workers = [threading.Thread(target=lambda w=w: threads_out.__setitem__(
                        w.name, run_workload(session, w, results))) for w in lab.workloads]
                    if profiler:
                        profiler.before("all-workloads")
                    for worker in workers:
                        worker.start()
                    for worker in workers:
                        worker.join()
                    if profiler:
                        profiler.after("all-workloads")
                    records = [threads_out[w.name] for w in lab.workloads if w.name in threads_out]
                    for record in records:
                        _fail_workload(record, session)
                else:
                    for workload in lab.workloads:
                        notify(f"workload {workload.name}: {workload_command(workload)}")
                        if profiler:
                            profiler.before(workload.name)
                        records.append(run_workload(session, workload, results))
                        _fail_workload(records[-1], session)
                        if profiler:
                            profiler.after(workload.name)
            results.step("workloads", time.monotonic() - t)

            if probes:
                t = time.monotonic()
                collect_tracing(session, probes, lab.tracing.table_size, results)
                results.step("collect_trace", time.monotonic() - t)
        summary = zram.summarize(sampler.samples)
        summary["workload_seconds"] = {record["name"]: record["seconds"] for record in records}
        results.write("summary.json", summary)
        if profiler:
            spec = lab.branch_profile
            branch_data = branches.branch_report(
                branches.per_workload(profiler.snapshots), spec.functions, spec.question.functions,
                spec.question.source_matches, summary, lambda site: branches.find_site_source(used.tree, site),
                profiler.baseline)
            results.write("branches.json", branch_data)
            results.manifest["branch_profile"] = {"available": True, "question": branch_data["question"]}
        if probes:
            t = time.monotonic()
            verdicts = verify_results(results.dir)
            results.manifest["chains"] = {r.name: {"holds": r.holds, "hits": r.hits, "expect": r.expect, "ok": r.ok}
                                          for r in verdicts}
            results.step("verify", time.monotonic() - t)
        results.manifest["status"] = "complete"
    except KeyboardInterrupt:
        results.manifest.update(status="incomplete", why="interrupted (Ctrl-C)")
        raise
    except Exception as error:
        results.manifest.update(status="incomplete", why=str(error).splitlines()[0])
        raise
    finally:
        results.manifest["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        results.manifest.setdefault("steps_s", {})["total"] = round(time.monotonic() - results.started, 2)
        results.save()
        if results.manifest["status"] != "complete":
            _report_incomplete(results.dir, notify)
    notify(f"report: {report.write_report(results.dir)}")
    return results.dir


def _report_incomplete(folder: Path, notify: Callable[[str], None]) -> None:
    """A failed run still gets a report that says why; its own failure must not hide the run's."""
    try:
        notify(f"report of the incomplete run: {report.write_report(folder)}")
    except Exception as error:  # noqa: BLE001 - the run's error is the one to raise
        notify(f"no report for the incomplete run: {error}")


def run_sweep(lab: Lab, lab_path: Path, cache: Cache, results_root: Path, *, shard: Shard | None = None,
              kernel: str | None = None, notify: Callable[[str], None] = print) -> tuple[Path, list[dict]]:
    """Run the lab's sweep (or one shard of it) into one folder with a comparison report; one kernel build
    serves every variant that does not change the kernel section. Returns the folder and each variant's outcome."""
    variants = experiment.expand_sweep(lab, str(lab_path))
    for variant in variants:  # every variant's chain specs, before the first one builds anything
        specs.check_specs([use.spec for use in variant.lab.chains], f"{lab_path} ({variant.label})")
    selected = experiment.select_shard(variants, shard)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = results_root / lab.name / (f"sweep-{stamp}" + (f"-shard-{shard.number}-of-{shard.count}" if shard else ""))
    folder.mkdir(parents=True)
    plan = {"lab_file": str(lab_path), "sweep": lab.sweep, "shard": str(shard) if shard else None,
            "variants": [{"index": v.index, "label": v.label, "params": v.params, "dir": v.slug,
                          "in_shard": v in selected, "status": "pending" if v in selected else "other shard"}
                         for v in variants]}
    write_json_atomic(folder / "sweep.json", plan)
    notify(f"sweep: {len(variants)} variants" + (f", shard {shard} runs {len(selected)}" if shard else ""))
    outcomes = []
    for variant in selected:
        notify(f"variant {variant.index + 1}/{len(variants)}: {variant.label}")
        entry = plan["variants"][variant.index]  # the plan lists every variant in index order
        command = f"inv lab.sweep --lab {lab_path}" + (f" --shard {shard}" if shard else "")
        try:
            run_lab(variant.lab, lab_path, cache, folder, kernel=kernel, notify=notify,
                    results_dir=folder / variant.slug, command=command,
                    extra={"sweep": {"index": variant.index, "params": variant.params, "label": variant.label}})
            entry["status"] = "complete"
        except KernlabError as error:  # the other variants still say something; the sweep fails at the end
            entry.update(status="incomplete", why=str(error).splitlines()[0])
            notify(f"variant {variant.label} failed: {entry['why']}")
        outcomes.append(entry)
        write_json_atomic(folder / "sweep.json", plan)
    runs = [folder / o["dir"] for o in outcomes if (folder / o["dir"]).exists()]
    title = f"{lab.name}: sweep" + (f" (shard {shard})" if shard else "")
    notify(f"comparison: {report.write_comparison(runs, folder, title)}")
    return folder, outcomes
