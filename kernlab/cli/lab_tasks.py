"""The lab.* tasks: a run, a sweep, a kernel matrix, a rerun, the observer effect, comparisons, reports and
verification again, each with its terminal output and its CI files."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from kernlab.cli.common import Context, count_option, exit_code, run_folders
from kernlab.config.lab import Lab
from kernlab.errors import KernlabError, RunFailed, RunInterrupted
from kernlab.lab import experiment, observer, run
from kernlab.lab import sweep as sweeps
from kernlab.probes.live import LiveFeed, LiveFigures
from kernlab.report import cireport, render, terminal
from kernlab.results import aggregate, seal
from kernlab.results.chainrecords import ChainRecord
from kernlab.results.folder import ResultsFolder, find_folders
from kernlab.verify import reverify
from kernlab.verify.evidence import verify_results


def observe(ctx: Context, kernel: str | None = None, results: str = "results", repeat: str | None = None) -> int:
    """`inv lab.observe`: traced against untraced, each key figure with its noise verdict (a measurement: exit 0
    whatever it finds, 1 only when a side has no complete run)."""
    count = count_option("--repeat", repeat, observer.MIN_REPEAT, observer.MIN_REPEAT)
    effect = observer.measure(ctx.lab, ctx.lab_path, ctx.cache, Path(results), repeat=count, kernel=kernel,
                              notify=lambda line: ctx.console.print(line))
    terminal.print_observer(ctx.console, effect)
    return 0


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
    return exit_code([outcome])


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
    return lab.model_copy(update={"repeat": count_option("--repeat", flag, 1, 1)})


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
        ci_outputs(ctx.console, run_folders(folder, outcomes), junit)
        ctx.console.print(f"results: {folder} ({time.monotonic() - started:.0f} s)")
        return exit_code(outcomes)
    try:
        outcome = run.run_lab(ctx.lab, ctx.lab_path, ctx.cache, Path(results), kernel=kernel,
                              notify=lambda line: ctx.console.print(line), live=live_figures(ctx.console))
    except (RunFailed, RunInterrupted) as stopped:  # a run that stopped still tells CI why, in the same files
        ci_outputs(ctx.console, [stopped.folder], junit)
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
    ci_outputs(ctx.console, run_folders(folder, outcomes), junit)
    ctx.console.print(f"results: {folder} ({time.monotonic() - started:.0f} s)")
    return exit_code(outcomes)


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
    return exit_code(outcomes)


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
    """Every run folder's evidence as its run sealed it, or a refusal naming what changed (kernlab.results.seal)."""
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


@dataclasses.dataclass(frozen=True)
class Verified:
    """A recorded run verified again: complete by definition; its chains as the lab expects or not."""

    expectations_met: bool
    status: str = "complete"


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
    return exit_code([Verified(all(chain.expectation_met() for chain in outcome))])


def results_schema(console: Console, out: Path) -> None:
    """`inv results.schema`: the JSON Schema of every file in a results folder, from the models kernlab reads
    and writes them with."""
    from kernlab.results.schemafiles import write_schemas

    for path in write_schemas(out):
        console.print(f"wrote {path}")
