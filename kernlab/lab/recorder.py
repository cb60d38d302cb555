"""A run in progress as its results folder says it: the manifest rewritten after every step (a run that stops still
says how far it got, which step failed and why), sealed when it ends; and what a finished run hands back."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kernlab import progress
from kernlab.errors import Terminated
from kernlab.results import seal
from kernlab.results.chainrecords import ChainRecord
from kernlab.results.evidencerecords import BranchesFile
from kernlab.results.folder import ResultsFolder
from kernlab.results.schema import HostRecord, Manifest, Summary

log = logging.getLogger(__name__)


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
    def status(self) -> str:
        return self.manifest.status

    @property
    def expectations_met(self) -> bool:
        """Every chain as the lab expects, and branch counts taken when the lab asked for them."""
        return all(chain.expectation_met() for chain in self.chains) and (
            self.branches is None or self.branches.available)


def host_facts() -> HostRecord:
    return HostRecord(machine=platform.machine(), python=platform.python_version(), kernel=platform.release(),
                      cpus=os.cpu_count())
