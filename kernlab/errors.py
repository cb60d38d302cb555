"""The one error type kernlab raises for bad input or a failed step, and the kinds a task turns into exit codes."""

from __future__ import annotations

from pathlib import Path


class KernlabError(Exception):
    """A failure a user can act on; its message is one line naming what is wrong."""


class UsageError(KernlabError):
    """A command line kernlab cannot take (a bad option value): exit code 2, not 1."""


class BuildFailed(KernlabError):
    """make failed on this kernel: exit code 125, which `git bisect run` takes as "skip this commit", not "bad"."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (kernlab.vm.qemu.sigterm_as_interrupt): unwinds as Ctrl-C does, so every VM is reaped, but is said as
    what it was."""


class RunFailed(KernlabError):
    """A lab run that stopped on an error after its results folder was made: the error (what the exit code is
    decided from) and the folder, which still says how far the run got (for CI outputs)."""

    def __init__(self, error: KernlabError, folder: Path) -> None:
        super().__init__(str(error))
        self.error, self.folder = error, folder


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a lab run, with the run's folder; unwinds as the interrupt it wraps (`error`)."""

    def __init__(self, error: KeyboardInterrupt, folder: Path) -> None:
        super().__init__(str(error))
        self.error, self.folder = error, folder
