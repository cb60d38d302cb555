"""The one error type kernlab raises for bad input or a failed step."""


class KernlabError(Exception):
    """A failure a user can act on; its message is one line naming what is wrong."""


class UsageError(KernlabError):
    """A command line kernlab cannot take (a bad option value): exit code 2, not 1."""


class BuildFailed(KernlabError):
    """make failed on this kernel: exit code 125, which `git bisect run` takes as "skip this commit", not "bad"."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (kernlab.vm.sigterm_as_interrupt): unwinds as Ctrl-C does, so every VM is reaped, but is said as
    what it was."""
