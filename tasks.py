"""kernlab's command line: `inv --list`. Each task parses its arguments and calls kernlab.cli."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, Exit, task

from kernlab import cli
from kernlab.errors import KernlabError

LAB_HELP = {"lab": "lab file (default labs/zram-swap.yaml)", "cache": "cache dir (default $KERNLAB_CACHE or XDG cache)",
            "verbose": "log every external command"}
KERNEL_HELP = {**LAB_HELP, "kernel": "override the lab's kernel: debian:6.1, 5.15.177 or path:/tree",
               "install": "apt-get install a missing linux-source package",
               "strict": "never fall back to another kernel"}


def _call(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except KernlabError as error:
        raise Exit(f"error: {error}", code=1) from None
    except KeyboardInterrupt:
        raise Exit("interrupted", code=130) from None


def _ctx(lab, cache, verbose):
    return _call(cli.Context.create, lab, cache, verbose)


@task(help={**KERNEL_HELP, "mirror": "kernel.org mirror base URL"})
def fetch(c, lab=None, kernel=None, install=False, mirror=None, strict=None, cache=None, verbose=False):
    """Get the kernel source into the cache."""
    _call(cli.fetch, _ctx(lab, cache, verbose), kernel=kernel, install=install, mirror=mirror, strict=strict)


@task(help=KERNEL_HELP)
def config(c, lab=None, kernel=None, install=False, strict=None, cache=None, verbose=False):
    """Write .config from the base and the lab's kconfigs/ fragments; fail on any symbol that did not land."""
    _call(cli.configure, _ctx(lab, cache, verbose), kernel=kernel, install=install, strict=strict)


@task(help={**KERNEL_HELP, "jobs": "make -j (default: all cores)"})
def build(c, lab=None, kernel=None, install=False, strict=None, jobs=None, cache=None, verbose=False):
    """Build the kernel out of tree (cached by source + config + compiler)."""
    _call(cli.build_kernel, _ctx(lab, cache, verbose), kernel=kernel, install=install, strict=strict,
          jobs=int(jobs) if jobs else None)


@task(help={**LAB_HELP, "kernel": "override the lab's kernel", "output": "where to write the JSON",
            "warm": "use the normal cache instead of an empty one"})
def bench(c, lab=None, kernel=None, output="bench.json", warm=False, cache=None, verbose=False):
    """Print benchmark figures as JSON (cold kernel build, no-op rebuild)."""
    _call(cli.bench, _ctx(lab, cache, verbose), Path(output), kernel=kernel, cold=not warm)


@task(help={"fast": "skip tests marked slow or vm (no kernel build, no QEMU)", "k": "pytest -k expression"})
def test(c, fast=False, k=None):
    """Run the test suite (the command CI runs)."""
    code = cli.run_tests(fast=fast, expression=k)
    if code:
        raise Exit(code=code)


kernel = Collection("kernel", fetch, config, build)
namespace = Collection(kernel, bench, test)
