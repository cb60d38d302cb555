"""kernlab's tasks, for `kernlab` (kernlab.cli.program) and `inv` in a checkout: each parses its arguments and calls
kernlab.cli."""

from __future__ import annotations

import contextlib
from pathlib import Path

import invoke
from invoke import Collection, Exit, Task

from kernlab.cli import common, kernel_tasks, lab_tasks, project_tasks
from kernlab.errors import BuildFailed, KernlabError, RunFailed, RunInterrupted, Terminated, UsageError

common.usage_errors_exit_2()

# One short flag per option, the same on every task; an option not named here has none (invoke's automatic
# letters gave -s to --strict, --shard and --spec, -j to --junit and --jobs, -m to --mirror and --more).
SHORT_FLAGS = {"lab": "l", "cache": "c", "kernel": "k", "kernels": "k", "verbose": "v", "accel": "a", "junit": "j",
               "results": "r", "repeat": "n", "shard": "s", "install": "i"}


class KernlabTask(Task):
    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204 - invoke.Task's own signature
        # Invoke fills a missing positional argument before it looks for core flags: `inv chains.check --help`
        # arrives here as spec="--help". Show the task's help, as `inv --help chains.check` does.
        if any(kwargs.get(name) in ("--help", "-h") for name in self.positional):
            _print_help(self)
            raise Exit(code=0)
        return super().__call__(*args, **kwargs)

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict:
        opts = super().arg_opts(name, default, taken_names)
        if (short := SHORT_FLAGS.get(name)) and short not in taken_names and name not in self.positional:
            opts["names"].append(short)
        return opts


def _print_help(wanted: Task) -> None:
    name = next(name for name in namespace.task_names if namespace[name].body is wanted.body)
    with contextlib.suppress(BrokenPipeError):  # piped into head
        invoke.Program(namespace=namespace, name="kernlab", binary="inv").run(["inv", "--help", name], exit=False)


def task(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - invoke.task's own signature
    return invoke.task(*args, klass=KernlabTask, auto_shortflags=False, **kwargs)

LAB_HELP = {"lab": "lab file (default labs/zram-swap.yaml)", "cache": "cache dir (default $KERNLAB_CACHE or XDG cache)",
            "verbose": "log every external command"}
SEAL_HELP = {"accept_changed": "read a folder whose evidence changed since its run sealed it (said in the output)"}
JUNIT_HELP = {"junit": "write JUnit XML here: one test case per chain expectation"}
REPEAT_HELP = {"repeat": "runs of each variant, each on a fresh boot (default: the lab's repeat:, else 1); with 2 or "
                         "more, an aggregate (mean, sd, min, max, 95 % interval) and noise verdicts in comparisons"}
BOOT_HELP = {**LAB_HELP, "accel": "kvm, tcg or auto (default: $KERNLAB_ACCEL, else the lab's vm.accel); kvm that does "
                                  "not work fails at once, saying why"}
BISECT_SKIP = 125
KERNEL_HELP = {**LAB_HELP,
               "kernel": "override the lab's kernel: debian:6.1, 5.15.177, tarball:/path/linux-X.tar.xz or path:/tree",
               "install": "apt-get install a missing linux-source package",
               "strict": "never fall back to another kernel"}


def _call(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except (RunFailed, RunInterrupted) as stopped:  # the exit code is the stopping error's
        error: BaseException = stopped.error
    except (KernlabError, KeyboardInterrupt) as raised:
        error = raised
    raise _exit(error) from None


def _exit(error: BaseException) -> Exit:
    if isinstance(error, UsageError):
        return Exit(f"usage: {error}", code=2)
    if isinstance(error, BuildFailed):  # `git bisect run inv kernel.build ...` skips a commit that does not build
        return Exit(f"error: {error}", code=BISECT_SKIP)
    if isinstance(error, KernlabError):
        return Exit(f"error: {error}", code=1)
    if isinstance(error, Terminated):
        return Exit("terminated", code=143)
    return Exit("interrupted", code=130)


def _ctx(lab, cache, verbose, accel=None):
    return _call(common.Context.create, lab, cache, verbose, accel)


@task(help={**KERNEL_HELP, "mirror": "kernel.org mirror base URL"})
def fetch(c, lab=None, kernel=None, install=False, mirror=None, strict=False, cache=None, verbose=False):
    """Get the kernel source into the cache."""
    _call(kernel_tasks.fetch, _ctx(lab, cache, verbose), kernel=kernel, install=install, mirror=mirror,
          strict=strict or None)


@task(help=KERNEL_HELP)
def config(c, lab=None, kernel=None, install=False, strict=False, cache=None, verbose=False):
    """Write .config from the base and the lab's kconfigs/ fragments; fail on any symbol that did not land."""
    _call(kernel_tasks.configure, _ctx(lab, cache, verbose), kernel=kernel, install=install, strict=strict or None)


@task(help=KERNEL_HELP)
def key(c, lab=None, kernel=None, install=False, strict=False, cache=None, verbose=False):
    """Print the kernel's build key (its cache folder builds/<key>) without building: a CI cache key."""
    _call(kernel_tasks.kernel_key, _ctx(lab, cache, verbose), kernel=kernel, install=install, strict=strict or None)


@task(help={**KERNEL_HELP, "jobs": "make -j (default 0: all cores)"})
def build(c, lab=None, kernel=None, install=False, strict=False, jobs=0, cache=None, verbose=False):
    """Build the kernel out of tree (cached by source + config + compiler)."""
    _call(kernel_tasks.build_kernel, _ctx(lab, cache, verbose), kernel=kernel, install=install, strict=strict or None,
          jobs=jobs or None)


@task(help={**BOOT_HELP, "kernel": "override the lab's kernel", "output": "where to write the JSON",
            "warm": "use the normal cache instead of an empty one",
            "only": "comma-separated sections to run: lab, arch, config, clock, observer, reliability, startup "
                    "(default all)",
            "repeat": "runs a side for the observer effect (default 3)",
            "results": "keep the bench's lab runs here (default: a temporary folder, deleted)"})
def bench(c, lab=None, kernel=None, output="bench.json", warm=False, cache=None, verbose=False, accel=None,
          only=None, repeat=None, results=None):
    """Benchmark figures as JSON: cold/warm lab, kernel build, no-op rebuild, boot, image, tracing overhead."""
    _call(project_tasks.bench, _ctx(lab, cache, verbose, accel), Path(output), kernel=kernel, cold=not warm, only=only,
          repeat=repeat, results=results)


@task(help={
    "fast": "skip tests marked slow or vm (no kernel build, no QEMU)",
    "all": "every test, every real kernel (what CI runs: `inv test --all`)",
    "expression": "pytest -k expression", "junit": "write pytest's JUnit XML here"})
def test(c, fast=False, all=False, expression=None, junit=None):  # noqa: A002 - the option is --all
    """Run the tests: the fast tier and the default lab end to end (`--fast`: the fast tier; `--all`: all, as CI)."""
    code = _call(project_tasks.run_tests, fast=fast, expression=expression, junit=junit, everything=all)
    if code:
        raise Exit(code=code)


@task(name="build", help=LAB_HELP)
def guest_build(c, lab=None, cache=None, verbose=False):
    """Build the lab's initramfs (cached; byte-identical for the same inputs)."""
    _call(kernel_tasks.guest_image, _ctx(lab, cache, verbose))


@task(name="boot", help={**BOOT_HELP, "kernel": "override the lab's kernel"})
def vm_boot(c, lab=None, kernel=None, cache=None, verbose=False, accel=None):
    """Boot the lab's kernel and image on this terminal (Ctrl-A X leaves)."""
    raise Exit(code=_call(kernel_tasks.vm_boot, _ctx(lab, cache, verbose, accel), kernel=kernel))


@task(name="ssh", help=LAB_HELP)
def vm_ssh(c, lab=None, cache=None, verbose=False):
    """Run one command in the lab VM that `inv vm.boot` started: inv vm.ssh -- uname -a"""
    command = c.remainder
    if not command:
        raise Exit("error: give the command after --, e.g. inv vm.ssh -- cat /proc/swaps", code=2)
    raise Exit(code=_call(kernel_tasks.vm_ssh, _ctx(lab, cache, verbose), command))


@task(name="run", default=True, help={**BOOT_HELP, "kernel": "override the lab's kernel",
                                      "results": "results root (default results/)", **JUNIT_HELP, **REPEAT_HELP})
def lab_run(c, lab=None, kernel=None, results="results", cache=None, verbose=False, accel=None, junit=None,
            repeat=None):
    """Run a lab end to end: kernel, guest, zram, workloads, samples, chains, results folder."""
    raise Exit(code=_call(lab_tasks.lab, _ctx(lab, cache, verbose, accel), kernel=kernel, results=results, junit=junit,
                          repeat=repeat))


@task(name="verify", help={"results_dir": "a run's results folder", **JUNIT_HELP, **SEAL_HELP,
                            "out": "write the re-verification here (default: DIR/reverified); the run's own "
                                   "chains.json is never rewritten"})
def lab_verify(c, results_dir, junit=None, out=None, accept_changed=False):
    """Verify the lab's call chains again, offline, on a results folder; print where verdicts differ."""
    raise Exit(code=_call(lab_tasks.lab_verify, Path(results_dir), common.plain_console(), junit=junit,
                          out=Path(out) if out else None, accept_changed=accept_changed))


@task(name="sweep", help={**BOOT_HELP, "shard": "run slice I/N of the variants (e.g. 1/2), for split CI runners",
                           "kernel": "override the lab's kernel", "results": "results root (default results/)",
                           **JUNIT_HELP, **REPEAT_HELP})
def lab_sweep(c, lab=None, shard=None, kernel=None, results="results", cache=None, verbose=False, accel=None,
              junit=None, repeat=None):
    """Run every variant of the lab's sweep (one kernel build) and write a comparison report."""
    raise Exit(code=_call(lab_tasks.sweep, _ctx(lab, cache, verbose, accel), shard=shard, kernel=kernel,
                          results=results, junit=junit, repeat=repeat))


@task(name="matrix", help={**BOOT_HELP,
                            "kernels": "comma-separated kernel refs (default: the lab's matrix: list), e.g. "
                                       "tarball:../shared/kernels/linux-5.15.135.tar.xz,debian:6.1,debian:6.12; a "
                                       "kernel.org release like 6.6.58 comes from kernel.mirror, checked against "
                                       "its sha256sums.asc",
                            "shard": "run slice I/N of the kernels (e.g. 1/3), for split CI runners",
                            "results": "results root (default results/)", **REPEAT_HELP})
def lab_matrix(c, lab=None, kernels=None, shard=None, results="results", cache=None, verbose=False, accel=None,
               repeat=None):
    """Run the same lab on each kernel and compare every documented line's verdict across them."""
    raise Exit(code=_call(lab_tasks.matrix, _ctx(lab, cache, verbose, accel), kernels=kernels, shard=shard,
                          results=results, repeat=repeat))


@task(name="rerun", help={"manifest": "RESULTS_DIR/manifest.json of a finished run",
                          "results": "results root (default results/)", "cache": LAB_HELP["cache"],
                          "verbose": LAB_HELP["verbose"]})
def lab_rerun(c, manifest, results="results", cache=None, verbose=False):
    """Repeat a finished run: same kernel source and sha256, config, image inputs and parameters; then compare."""
    raise Exit(code=_call(lab_tasks.rerun, _ctx(None, cache, verbose), Path(manifest), results=results))


@task(name="compare", help={"a": "results folder (or its manifest.json)", "b": "results folder to compare with",
                             **SEAL_HELP})
def lab_compare(c, a, b, accept_changed=False):
    """Show which settings and figures differ between two runs."""
    _call(lab_tasks.compare_runs, common.plain_console(), Path(a), Path(b), accept_changed=accept_changed)


@task(name="report", iterable=["more"], help={"results_dir": "a run's results folder, or a sweep folder",
                                              "more": "more results folders to compare with (repeatable)",
                                              **SEAL_HELP})
def lab_report(c, results_dir, more=None, accept_changed=False):
    """Write report.html and report.md for a run; a comparison report for a sweep or several runs."""
    _call(lab_tasks.lab_report, [Path(results_dir), *map(Path, more or [])], common.plain_console(),
          accept_changed=accept_changed)


@task(name="observe", help={**BOOT_HELP, "kernel": "override the lab's kernel", "results": "results root (default "
                            "results/)", "repeat": "runs a side, each on a fresh boot (default 3, at least 3)"})
def lab_observe(c, lab=None, kernel=None, results="results", cache=None, verbose=False, accel=None, repeat=None):
    """The observer effect: the lab with and without its evidence, and each key figure traced against untraced."""
    raise Exit(code=_call(lab_tasks.observe, _ctx(lab, cache, verbose, accel), kernel=kernel, results=results,
                          repeat=repeat))


@task(name="check", iterable=["more"], help={
    "spec": "a chain spec file", "more": "another chain spec file (repeatable)",
    "results": "a recorded run: look every name up in that run's kernel (System.map, available_filter_functions, "
               "DWARF inline trees), with the nearest names for one it does not have",
    "lab": "look the names up in this lab's kernel as built (System.map, its mcount table, DWARF), not booted",
    "kernel": "with --lab (default labs/zram-swap.yaml): this kernel instead of the lab's (5.15.177, debian:6.1, "
              "tarball:PATH, a source tree)",
    "cache": "cache dir (default $KERNLAB_CACHE or XDG cache)"})
def chains_check(c, spec, more=None, results=None, lab=None, kernel=None, cache=None):
    """Parse chain spec files without a kernel; with --results, or --lab/--kernel (a built kernel), look every
    name up in that kernel."""
    context = _ctx(lab, cache, False) if lab or kernel else None
    _call(project_tasks.chains_check, [Path(spec), *(Path(p) for p in more or [])], Path(results) if results else None,
          context, kernel)


@task(name="cache", help={"cache": LAB_HELP["cache"],
                          "older_than": "remove entries last used more than this many days ago",
                          "keep_last": "keep this many most recently used entries of each kind (builds, sources, "
                                       "guest, tarballs), remove the rest",
                          "dry_run": "say what would be removed, remove nothing"})
def cache_entries(c, older_than=None, keep_last=None, dry_run=False, cache=None):
    """List the cache's kernel builds, sources, guest images and tarballs (size, age, last use); prune them by
    age or count, never one a run is using."""
    _call(project_tasks.cache_entries, cache, older_than, keep_last, dry_run)


kernel = Collection("kernel", fetch, config, build, key)
guest = Collection("guest", guest_build)
vm = Collection("vm", vm_boot, vm_ssh)
@task(name="import", help={"article": "a Markdown or HTML file (an article as published)",
                            "out": "where to write the specs (default labs/imported/)"})
def chains_import(c, article, out="labs/imported"):
    """Write one chain spec per call-tree code block of an article; name the blocks that are not trees."""
    _call(project_tasks.chains_import, Path(article), Path(out))


@task(name="schema", help={"out": "where to write the schemas (default docs/schema/)"})
def results_schema(c, out="docs/schema"):
    """Write the JSON Schema of every file a results folder holds (manifest, summary, chains, graph, ...)."""
    _call(lab_tasks.results_schema, common.plain_console(), Path(out))


chains = Collection("chains", chains_check, chains_import)
results = Collection("results", results_schema)
lab = Collection("lab", lab_run, lab_verify, lab_sweep, lab_matrix, lab_rerun, lab_compare, lab_report, lab_observe)
namespace = Collection(kernel, guest, vm, lab, chains, results, bench, test, cache_entries)
