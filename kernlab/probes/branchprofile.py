"""The branch profile in a running guest: trace_stat/branch_annotated read around each workload (the table is never
reset, so deltas), or why this kernel cannot give it."""

from __future__ import annotations

import contextlib
from pathlib import Path

from kernlab.probes import branches
from kernlab.results.folder import ResultsFolder
from kernlab.vm.session import GuestSession


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
