"""What each `inv` task does, with its terminal output; tasks.py only parses arguments and calls these."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from kernlab import progress as ci_progress
from kernlab.cache import Cache, read_json, write_json_atomic
from kernlab.config.lab import Lab, load_lab
from kernlab.errors import KernlabError, UsageError
from kernlab.guest.image import GuestImage, build_guest_image
from kernlab.kernel import build, source
from kernlab.lab import bench as benchmarks
from kernlab.lab import experiment, observer, run
from kernlab.lab import sweep as sweeps
from kernlab.paths import DEFAULT_LAB, KCONFIG_DIR, REPO
from kernlab.probes.live import LiveFeed, LiveFigures
from kernlab.report import cireport, render, terminal
from kernlab.results import aggregate, seal
from kernlab.results.chainrecords import ChainRecord
from kernlab.results.folder import ResultsFolder, find_folders
from kernlab.results.sweeprecords import SweepVariant
from kernlab.verify import reverify
from kernlab.verify.evidence import verify_results
from kernlab.vm import qemu as vm
from kernlab.vm.hostclock import guest_clock_args
from kernlab.vm.ssh import GuestSSH


@dataclass
class Context:
    """What every task needs: the lab, the cache, and where to print."""

    lab: Lab
    lab_path: Path
    cache: Cache
    console: Console

    @classmethod
    def create(cls, lab: str | None = None, cache: str | None = None, verbose: bool = False,
               accel: str | None = None) -> Context:
        """accel: kvm, tcg or auto over the lab's vm.accel (default: $KERNLAB_ACCEL, when set)."""
        logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s")
        # kernlab.ssh turns paramiko's failures into one-line errors; unquieted, paramiko's transport thread
        # prints a traceback for every connect attempt made while the guest's dropbear is still starting.
        logging.getLogger("paramiko").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
        lab_path = Path(lab) if lab else DEFAULT_LAB
        loaded = load_lab(lab_path)
        if chosen := accel_override(accel):
            loaded = loaded.model_copy(update={"vm": loaded.vm.model_copy(update={"accel": chosen})})
        return cls(loaded, lab_path, Cache.at(cache), plain_console())


ACCELS = ("kvm", "tcg", "auto")


def accel_override(flag: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """--accel, else $KERNLAB_ACCEL, else None (the lab's vm.accel)."""
    env = os.environ if environ is None else environ
    if flag:
        if flag not in ACCELS:
            raise UsageError(f"--accel: {flag!r} is not kvm, tcg or auto")
        return flag
    value = env.get("KERNLAB_ACCEL") or None
    if value is not None and value not in ACCELS:
        raise KernlabError(f"KERNLAB_ACCEL: {value!r} is not kvm, tcg or auto")
    return value


def fetch(ctx: Context, kernel: str | None = None, install: bool = False, mirror: str | None = None,
          strict: bool | None = None) -> source.KernelSource:
    progress = Progress(TextColumn("download"), BarColumn(), TextColumn("{task.completed:,.0f} B"),
                        console=ctx.console, transient=True)
    task = None

    def on_progress(done: int, total: int | None) -> None:
        nonlocal task
        if task is None:  # a bar only when something is downloaded
            progress.start()
            task = progress.add_task("download", total=total)
        progress.update(task, completed=done, total=total)

    try:
        used = source.fetch_source(ctx.lab.kernel, ctx.cache, kernel=kernel, install=install, mirror=mirror,
                                   strict=strict, on_progress=on_progress,
                                   notify=lambda line: ctx.console.print(f"[yellow]note:[/] {line}"))
    finally:
        progress.stop()
    ctx.console.print(f"source: {used.describe()} at {used.tree}")
    return used


def configure(ctx: Context, kernel: str | None = None, install: bool = False, strict: bool | None = None) -> Path:
    used = fetch(ctx, kernel=kernel, install=install, strict=strict)
    out, info = build.prepare_config(used, ctx.lab.kernel, ctx.cache, KCONFIG_DIR, ctx.lab.arch)
    ctx.console.print(f"config: {out / 'obj' / '.config'} ({info['requested']} symbols requested and verified, "
                      f"sha256 {info['config_sha256'][:12]})")
    return out / "obj" / ".config"


def build_kernel(ctx: Context, kernel: str | None = None, install: bool = False, strict: bool | None = None,
                 jobs: int | None = None) -> build.KernelBuild:
    used = fetch(ctx, kernel=kernel, install=install, strict=strict)
    started = time.monotonic()
    if not ctx.console.is_terminal:  # a log file or CI: plain lines, since a transient bar prints nothing there
        with ci_progress.group(f"build linux {used.version}", ctx.console.print), \
                ci_progress.Heartbeat(f"building linux {used.version}", ctx.console.print) as heartbeat:
            result = build.build_kernel(used, ctx.lab.kernel, ctx.cache, KCONFIG_DIR, arch=ctx.lab.arch, jobs=jobs,
                                        on_line=heartbeat.on_line,
                                        on_start=lambda log_file: ctx.console.print(f"build log: {log_file}"))
        return _built(ctx, result, time.monotonic() - started)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.fields[objects]} objects"),
                  TimeElapsedColumn(), TextColumn("[dim]{task.fields[log]}"),
                  console=ctx.console, transient=True) as progress:
        task = progress.add_task(f"building linux {used.version}", total=None, objects=0, log="")

        def on_start(log_file: Path) -> None:
            progress.update(task, log=f"log: {log_file}")

        def on_line(line: str) -> None:
            if ci_progress.OBJECT_LINE.match(line):
                progress.update(task, objects=progress.tasks[0].fields["objects"] + 1)

        result = build.build_kernel(used, ctx.lab.kernel, ctx.cache, KCONFIG_DIR, arch=ctx.lab.arch, jobs=jobs,
                                    on_line=on_line, on_start=on_start)
    return _built(ctx, result, time.monotonic() - started)


def _built(ctx: Context, result: build.KernelBuild, seconds: float) -> build.KernelBuild:
    if result.cached:
        ctx.console.print(f"kernel: cached, nothing to do ({seconds:.2f} s): {result.describe()}")
    else:
        ctx.console.print(f"kernel: built in {result.duration_s:.0f} s: {result.describe()}")
    ctx.console.print(f"  {result.image}\n  {result.vmlinux}\n  {result.dir / 'build.json'}")
    return result


def kernel_key(ctx: Context, kernel: str | None = None, install: bool = False, strict: bool | None = None) -> str:
    """The kernel's build key (the cache folder builds/<key>), without building: a CI cache key. Only the key
    goes to stdout; what fetching the source says goes to stderr. A kernel.org release or tarball whose sha256
    is known is neither downloaded nor extracted for it."""
    known = source.known_source_key(ctx.lab.kernel, kernel)
    used = known or fetch(_to_stderr(ctx), kernel=kernel, install=install, strict=strict)
    key = _build_key(ctx, used)
    print(key)
    return key


def _to_stderr(ctx: Context) -> Context:
    """The context with its messages on stderr: stdout carries only the command's answer."""
    return dataclasses.replace(ctx, console=Console(stderr=True, highlight=False, soft_wrap=True))


def _build_key(ctx: Context, used: source.KernelSource | str) -> str:
    return build.build_key(used, ctx.lab.kernel, KCONFIG_DIR, build.compiler_version(ctx.lab.arch), ctx.lab.arch)


def _count(flag: str, value: str | int | None, default: int, least: int) -> int:
    """A number of runs from `least` to 100 (default when not given); anything else is a usage error."""
    text = str(default if value is None else value).strip()
    if not text.isdigit() or not least <= int(text) <= 100:
        raise UsageError(f"{flag}: {value!r} is not a number of runs from {least} to 100")
    return int(text)


def bench(ctx: Context, output: Path, kernel: str | None = None, cold: bool = True, only: str | None = None,
          repeat: str | None = None, results: str | None = None) -> dict:
    """Benchmark figures as JSON; with cold, the first lab runs from an empty cache (kernel build without ccache)."""
    sections = tuple(part.strip() for part in only.split(",")) if only else benchmarks.SECTIONS
    if unknown := [part for part in sections if part not in benchmarks.SECTIONS]:
        raise UsageError(f"--only: {', '.join(unknown)}: sections are {', '.join(benchmarks.SECTIONS)}")
    figures = benchmarks.bench(ctx.lab, ctx.lab_path, ctx.cache, kernel=kernel, cold=cold, sections=sections,
                               repeat=_count("--repeat", repeat, observer.MIN_REPEAT, observer.MIN_REPEAT),
                               keep=Path(results) if results else None)
    output.write_text(json.dumps(figures, indent=2) + "\n")
    ctx.console.print_json(json.dumps(figures))
    return figures


def observe(ctx: Context, kernel: str | None = None, results: str = "results", repeat: str | None = None) -> int:
    """`inv lab.observe`: traced against untraced, each key figure with its noise verdict (a measurement: exit 0
    whatever it finds, 1 only when a side has no complete run)."""
    count = _count("--repeat", repeat, observer.MIN_REPEAT, observer.MIN_REPEAT)
    effect = observer.measure(ctx.lab, ctx.lab_path, ctx.cache, Path(results), repeat=count, kernel=kernel,
                              notify=lambda line: ctx.console.print(line))
    terminal.print_observer(ctx.console, effect)
    return 0


# The tiers: --fast, no kernel build and no QEMU; the default, the fast tier and the end-to-end run of the kernel
# the README's first command (`inv lab`) built; --all, everything (CI).
FAST_TIER = "not slow and not vm"
TIERS = {"fast": FAST_TIER, "default": f"({FAST_TIER}) or first_run", "all": None}


def run_tests(fast: bool = False, expression: str | None = None, junit: str | None = None,
              everything: bool = False) -> int:
    """pytest over tests/; real kernels come from the normal cache, and nothing reaches kernel.org."""
    if fast and everything:
        raise UsageError("--fast and --all: choose one tier")
    cmd = [sys.executable, "-m", "pytest", str(REPO / "tests")] + ([f"--junitxml={junit}"] if junit else [])
    if marks := TIERS["fast" if fast else "all" if everything else "default"]:
        cmd += ["-m", marks]
    if expression:
        cmd += ["-k", expression]
    env = dict(os.environ, KERNLAB_OFFLINE="1")
    return subprocess.run(cmd, cwd=REPO, env=env).returncode


def guest_image(ctx: Context) -> GuestImage:
    image = build_guest_image(ctx.lab, ctx.cache)
    state = "cached" if image.cached else f"built in {image.info['build_s']:.1f} s"
    ctx.console.print(f"guest image: {state}: {image.path} ({image.info['bytes'] / 2**20:.1f} MiB, "
                      f"sha256 {image.sha256[:12]})")
    return image


def _vm_state_file(ctx: Context) -> Path:
    return ctx.cache.dir("run") / f"{ctx.lab.name}.json"


def vm_boot(ctx: Context, kernel: str | None = None) -> int:
    """Interactive boot on this terminal; `inv vm.ssh` reaches it while it runs."""
    kernel_build = build_kernel(ctx, kernel=kernel)
    image = guest_image(ctx)
    accel = vm.choose_accel(ctx.lab.vm, kernel_build.image, ctx.cache.dir("run"), ctx.cache.dir("accel"))
    port = vm.free_port()
    command = vm.qemu_command(ctx.lab.vm, kernel=kernel_build.image, initrd=image.path, ssh_port=port,
                              accel=accel.accel, qmp_socket=ctx.cache.dir("run") / f"{ctx.lab.name}.qmp",
                              clock_args=guest_clock_args(ctx.lab.vm.arch, accel.accel))
    state = _vm_state_file(ctx)
    write_json_atomic(state, {"port": port, "client_key": str(image.keys.client_private),
                              "host_public": image.keys.host_public})
    ctx.console.print(f"booting ({accel.accel}: {accel.reason}); Ctrl-A X leaves; "
                      f"`inv vm.ssh --lab {ctx.lab_path} -- CMD` runs a command in it")
    try:
        return vm.boot_interactive(command)
    finally:
        state.unlink(missing_ok=True)


def vm_ssh(ctx: Context, command: str) -> int:
    state = read_json(_vm_state_file(ctx))
    if state is None:
        raise KernlabError(f"no running VM for lab {ctx.lab.name}: start one with `inv vm.boot --lab {ctx.lab_path}`")
    session = GuestSSH(state["port"], Path(state["client_key"]), state["host_public"])
    session.connect(deadline_s=10)
    try:
        result = session.run(command, check=False, timeout=3600)
    finally:
        session.close()
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.exit_code


def _print_chains(console: Console, chains: list[ChainRecord], written: Path) -> None:
    """The verified chains, after the sentence of the chains.json written at `written` on how their stacks and
    hits were taken."""
    chains_file = ResultsFolder(written).chains()
    terminal.print_chains(console, chains, chains_file.sampling if chains_file else None)


def _finish_run(ctx: Context, outcome: run.LabOutcome) -> int:
    """Summary, chains, branches of one finished run, as the runner verified them; the exit code for it."""
    terminal.print_summary(ctx.console, outcome.folder)
    _print_chains(ctx.console, outcome.chains, outcome.folder)
    terminal.print_graph(ctx.console, outcome.folder)
    if outcome.branches is not None:
        terminal.print_branches(ctx.console, outcome.branches)
    return 0 if outcome.ok else 3


def ci_outputs(console: Console, folders: list[Path], junit: str | None,
               verified: Mapping[Path, Path] | None = None) -> None:
    """JUnit XML (when asked for) and the GitHub job summary (when $GITHUB_STEP_SUMMARY is set) of these runs,
    with the verdicts of a re-verification for a run in `verified`."""
    if not folders:
        return
    if junit:
        console.print(f"junit: {cireport.write_junit(folders, Path(junit), verified)}")
    if summary := cireport.append_step_summary(folders, verified=verified):
        console.print(f"job summary: {summary}")


LIVE_PLAIN_EVERY_S = 5.0  # a log file's live figures: a line every this many seconds


def live_figures(console: Console) -> LiveFeed:
    """On a terminal one line that updates with each sample (taken down when the workload ends); in a log file
    a plain line every LIVE_PLAIN_EVERY_S seconds."""
    if not console.is_terminal:
        return LiveFeed(lambda figures: console.print(f"  {figures.text()}"), every_s=LIVE_PLAIN_EVERY_S)
    status = console.status("")
    shown = False

    def show(figures: LiveFigures) -> None:
        nonlocal shown
        status.update(escape(figures.text()))
        if not shown:
            status.start()
            shown = True

    def end() -> None:
        nonlocal shown
        if shown:
            status.stop()
            shown = False

    return LiveFeed(show, end)


def with_repeat(lab: Lab, flag: str | int | None) -> Lab:
    """--repeat N over the lab's `repeat:`; not a whole number from 1 to 100 is a usage error."""
    if flag is None:
        return lab
    return lab.model_copy(update={"repeat": _count("--repeat", flag, 1, 1)})


def _exit_code(outcomes: Sequence[SweepVariant]) -> int:
    """1 when a run failed, 3 when a chain did not behave as the lab expects, else 0."""
    if not all(o.status == "complete" for o in outcomes):
        return 1
    return 0 if all(o.expectations_met is not False for o in outcomes) else 3


def _run_folders(folder: Path, outcomes: Sequence[SweepVariant]) -> list[Path]:
    """Every run folder of a sweep, matrix or repeat set that got as far as a manifest."""
    return [run for o in outcomes if (folder / o.dir).exists() for run in find_folders(folder / o.dir)]


def lab(ctx: Context, kernel: str | None = None, results: str = "results", junit: str | None = None,
        repeat: str | None = None) -> int:
    started = time.monotonic()
    ctx = dataclasses.replace(ctx, lab=with_repeat(ctx.lab, repeat))
    if ctx.lab.sweep:
        ctx.console.print(f"[yellow]note:[/] {ctx.lab_path} declares a sweep; this runs the lab as written, "
                          f"`inv lab.sweep --lab {ctx.lab_path}` runs every variant")
    if ctx.lab.repeat > 1:
        folder, outcomes = sweeps.run_repeats(ctx.lab, ctx.lab_path, ctx.cache, Path(results), kernel=kernel,
                                              notify=lambda line: ctx.console.print(line),
                                              live=live_figures(ctx.console))
        terminal.print_repeats(ctx.console, folder, f"{ctx.lab.name}: {ctx.lab.repeat} runs")
        ci_outputs(ctx.console, _run_folders(folder, outcomes), junit)
        ctx.console.print(f"results: {folder} ({time.monotonic() - started:.0f} s)")
        return _exit_code(outcomes)
    try:
        outcome = run.run_lab(ctx.lab, ctx.lab_path, ctx.cache, Path(results), kernel=kernel,
                              notify=lambda line: ctx.console.print(line), live=live_figures(ctx.console))
    except (KernlabError, KeyboardInterrupt) as error:
        # A run that stopped still tells CI why, in the same files (its folder rides on the error).
        ci_outputs(ctx.console, [folder] if (folder := getattr(error, "results_folder", None)) else [], junit)
        raise
    code = _finish_run(ctx, outcome)
    ci_outputs(ctx.console, [outcome.folder], junit)
    ctx.console.print(f"results: {outcome.folder} ({time.monotonic() - started:.0f} s)")
    return code


def sweep(ctx: Context, shard: str | None = None, kernel: str | None = None, results: str = "results",
          junit: str | None = None, repeat: str | None = None) -> int:
    if not ctx.lab.sweep:
        raise KernlabError(f"{ctx.lab_path}: sweep: the lab declares no sweep (e.g. sweep: "
                           "{zram.comp_algorithm: [lz4, zstd]}); run it with `inv lab`")
    started = time.monotonic()
    ctx = dataclasses.replace(ctx, lab=with_repeat(ctx.lab, repeat))
    chosen = experiment.parse_shard(shard) if shard else None
    folder, outcomes = sweeps.run_sweep(ctx.lab, ctx.lab_path, ctx.cache, Path(results), shard=chosen,
                                        kernel=kernel, notify=lambda line: ctx.console.print(line),
                                        live=live_figures(ctx.console))
    title = f"sweep {ctx.lab.name}" + (f", shard {chosen}" if chosen else "")
    terminal.print_sweep(ctx.console, folder, outcomes, title)
    ci_outputs(ctx.console, _run_folders(folder, outcomes), junit)
    ctx.console.print(f"results: {folder} ({time.monotonic() - started:.0f} s)")
    return 0 if all(o.status == "complete" for o in outcomes) else 1


def matrix(ctx: Context, kernels: str | None = None, shard: str | None = None, results: str = "results",
           repeat: str | None = None) -> int:
    """Exit 0 when every kernel ran and behaved as the lab expects, 3 when a chain did not, 1 when a run failed."""
    refs = [ref.strip() for ref in kernels.split(",") if ref.strip()] if kernels else ctx.lab.matrix
    started = time.monotonic()
    ctx = dataclasses.replace(ctx, lab=with_repeat(ctx.lab, repeat))
    chosen = experiment.parse_shard(shard) if shard else None
    folder, outcomes = sweeps.run_matrix(ctx.lab, ctx.lab_path, ctx.cache, Path(results), refs, shard=chosen,
                                         notify=lambda line: ctx.console.print(line), live=live_figures(ctx.console))
    title = f"matrix {ctx.lab.name}" + (f", shard {chosen}" if chosen else "")
    terminal.print_sweep(ctx.console, folder, outcomes, title)
    ctx.console.print(f"results: {folder} ({time.monotonic() - started:.0f} s)")
    return _exit_code(outcomes)


def rerun(ctx: Context, manifest_path: Path, results: str = "results") -> int:
    original = ResultsFolder.open(manifest_path)
    manifest = original.manifest()
    lab_to_run, pins = experiment.rerun_plan(manifest, str(manifest_path))
    ctx.console.print(f"rerun of {original.path}: linux {pins.kernel_version} ({lab_to_run.kernel.version}), "
                      f"pinned to config {str(pins.config_sha256)[:12]} and the original image inputs")
    lab_path = Path(manifest.lab_file or ctx.lab_path)
    outcome = run.run_lab(lab_to_run, lab_path, ctx.cache, Path(results), pins=pins,
                          notify=lambda line: ctx.console.print(line), command=f"inv lab.rerun {manifest_path}",
                          extra={"rerun_of": str(original.path.resolve())})
    code = _finish_run(ctx, outcome)
    compare_runs(ctx.console, original.path, outcome.folder)
    return code


def compare_runs(console: Console, a: Path, b: Path, accept_changed: bool = False) -> None:
    """What differs between two runs: settings first, then figures."""
    _sealed(console, [run for side in (a, b) for run in find_folders(side.parent if side.is_file() else side)],
            accept_changed)
    terminal.print_run_diff(console, a, b)


def _sealed(console: Console, folders: list[Path], accept_changed: bool) -> None:
    """Every run folder's evidence as its run sealed it, or a refusal naming what changed (kernlab.seal)."""
    for note in seal.check(folders, accept_changed):
        console.print(f"[yellow]{escape(note)}[/]")


def lab_report(paths: list[Path], console: Console, accept_changed: bool = False) -> list[Path]:
    """A report for each run folder; a comparison when given several runs or a folder of runs (a sweep)."""
    written = []
    runs = [folder for path in paths for folder in find_folders(path)]
    _sealed(console, runs, accept_changed)
    for folder in runs:
        written.append(render.write_report(folder))
        console.print(f"report: {written[-1]}")
    if len(runs) > 1:
        out = paths[0] if len(paths) == 1 else runs[0].parent
        groups = [group for path in paths for group in aggregate.find_groups(path)]
        written.append(render.write_comparison(groups, out, f"comparison of {len(runs)} runs"))
        console.print(f"comparison: {written[-1]}")
    return written


def plain_console() -> Console:
    """Plain output; logs and CI (not a tty) get whole tables, 120 columns wide."""
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 120)


def lab_verify(results_dir: Path, console: Console, junit: str | None = None, out: Path | None = None,
               accept_changed: bool = False) -> int:
    """The run's chains verified again into `out` (default: its reverified/ folder); its own chains.json is
    kept as recorded, and where the verdicts differ from it is printed."""
    target = reverify.out_folder(results_dir, out)
    _sealed(console, [results_dir], accept_changed)
    recorded = reverify.recorded_chains(results_dir)
    outcome = verify_results(results_dir, target)
    _print_chains(console, outcome, target)
    terminal.print_graph(console, results_dir, target)
    reverify.print_changes(console, recorded, outcome, target)
    ci_outputs(console, [results_dir], junit, {results_dir: target})
    return 0 if all(chain.expectation_met() for chain in outcome) else 3


def usage_errors_exit_2() -> None:
    """Make a usage error (unknown task or option, a missing argument) exit 2, as kernlab promises, not 1.

    invoke's Program exits 1 on every ParseError; tasks are parsed after tasks.py is loaded, so wrapping the
    parser there turns those into Exit(code=2). (Core options, parsed before tasks.py loads, still exit 1.)
    """
    from invoke.exceptions import Exit, ParseError
    from invoke.parser import Parser

    original = Parser.parse_argv
    if getattr(original, "exits_2", False):
        return

    def parse_argv(self, argv):  # noqa: ANN001, ANN202 - invoke's own signature
        try:
            return original(self, argv)
        except ParseError as error:
            raise Exit(f"usage: {error}", code=2) from None
        except ValueError:  # a number option given a word: invoke's int() raises, unwrapped
            raise Exit(f"usage: {_not_a_number(list(argv))}", code=2) from None

    parse_argv.exits_2 = True  # type: ignore[attr-defined]
    Parser.parse_argv = parse_argv  # type: ignore[method-assign]


NUMBER_OPTIONS = ("--jobs",)  # the tasks' int options (kernlab.tasks)


def _not_a_number(argv: list[str]) -> str:
    """Which option of argv was given a value that is not a whole number."""
    for flag, value in zip(argv, argv[1:] + [""], strict=True):
        name, _, inline = flag.partition("=")
        given = inline or value
        if name in NUMBER_OPTIONS and not given.isdigit():
            return f"{name} {given!r}: not a whole number"
    return "an option that takes a whole number was given something else"


def chains_check(paths: list[Path], results: Path | None, ctx: Context | None = None,
                 kernel: str | None = None) -> None:
    """With ctx (--lab or --kernel given): the names against that lab's kernel as built, without booting it."""
    from kernlab.verify import chaincheck  # difflib and the DWARF reader: only this command needs them

    def built() -> tuple[chaincheck.KernelNames, str]:
        assert ctx is not None
        used = fetch(_to_stderr(ctx), kernel=kernel)
        where = build.build_dir(ctx.cache, _build_key(ctx, used))
        return chaincheck.build_names(where, used.version, ctx.lab.arch.name), f"built in {where}, never booted"

    chaincheck.command(paths, results, built=built if ctx is not None else None)


def chains_import(article: Path, out: Path) -> None:
    from kernlab.config import articleimport

    for block in articleimport.import_article(article, out):
        if block.spec is not None:
            print(f"block {block.index} ({block.first_line!r}): {block.spec}")
        else:
            print(f"block {block.index} ({block.first_line!r}): skipped: {block.why_skipped}")


def cache_entries(cache: str | None, older_than: str | None, keep_last: str | None, dry_run: bool) -> None:
    from kernlab import cacheentries

    cacheentries.command(Cache.at(cache), _number("--older-than", older_than, float),
                         _number("--keep-last", keep_last, int), dry_run)


def _number(option: str, text: str | None, kind: type) -> float | int | None:
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise UsageError(f"{option} {text!r}: not a {'whole ' if kind is int else ''}number") from None
    if value < 0:
        raise UsageError(f"{option} {text}: must not be negative")
    return value
