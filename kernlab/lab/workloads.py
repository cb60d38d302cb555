"""The lab's workloads in the guest: each one's command in the workload memcg, its record, the real cause when one
fails, and the instruments wrapped around each (sampler, windows, branch profile, live figures)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator

from kernlab.config.lab import Lab, WorkloadSpec
from kernlab.probes.branchprofile import BranchProfiler
from kernlab.probes.live import LiveFeed
from kernlab.probes.windows import EvidenceWindows
from kernlab.results.folder import ResultsFolder
from kernlab.results.schema import WorkloadRecord
from kernlab.vm.qemu import GuestFailed, scan_console
from kernlab.vm.session import GuestSession


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
    command = workload.command_line()
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
        notify(f"workload {workload.name}: {workload.command_line()}")
        with profiled(workload.name):
            records.append(run_workload(session, workload, folder))
            _fail_workload(records[-1], session)
    return records
