"""What each `inv` task does, with its terminal output; tasks.py only parses arguments and calls these."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from kernlab import branches, build, chains, experiment, reliability, report, run, source, trace, verify, vm
from kernlab.cache import Cache, load_json_object, read_json, write_json_atomic
from kernlab.errors import KernlabError
from kernlab.guest import GuestImage, build_guest_image
from kernlab.lab import Lab, load_lab
from kernlab.ssh import GuestSSH

REPO = Path(__file__).resolve().parent.parent
DEFAULT_LAB = REPO / "labs" / "zram-swap.yaml"
KCONFIG_DIR = REPO / "kconfigs"
OBJECT_LINE = re.compile(r"^\s+(CC|AS|LD|AR)\s")


@dataclass
class Context:
    """What every task needs: the lab, the cache, and where to print."""

    lab: Lab
    lab_path: Path
    cache: Cache
    console: Console

    @classmethod
    def create(cls, lab: str | None = None, cache: str | None = None, verbose: bool = False) -> Context:
        logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s")
        lab_path = Path(lab) if lab else DEFAULT_LAB
        return cls(load_lab(lab_path), lab_path, Cache.at(cache), plain_console())


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
    out, info = build.prepare_config(used, ctx.lab.kernel, ctx.cache, KCONFIG_DIR)
    ctx.console.print(f"config: {out / 'obj' / '.config'} ({info['requested']} symbols requested and verified, "
                      f"sha256 {info['config_sha256'][:12]})")
    return out / "obj" / ".config"


def build_kernel(ctx: Context, kernel: str | None = None, install: bool = False, strict: bool | None = None,
                 jobs: int | None = None) -> build.KernelBuild:
    used = fetch(ctx, kernel=kernel, install=install, strict=strict)
    started = time.monotonic()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.fields[objects]} objects"),
                  TimeElapsedColumn(), TextColumn("[dim]{task.fields[log]}"),
                  console=ctx.console, transient=True) as progress:
        task = progress.add_task(f"building linux {used.version}", total=None, objects=0, log="")

        def on_start(log_file: Path) -> None:
            progress.update(task, log=f"log: {log_file}")

        def on_line(line: str) -> None:
            if OBJECT_LINE.match(line):
                progress.update(task, objects=progress.tasks[0].fields["objects"] + 1)

        result = build.build_kernel(used, ctx.lab.kernel, ctx.cache, KCONFIG_DIR, jobs=jobs,
                                    on_line=on_line, on_start=on_start)
    seconds = time.monotonic() - started
    if result.cached:
        ctx.console.print(f"kernel: cached, nothing to do ({seconds:.2f} s): {result.describe()}")
    else:
        ctx.console.print(f"kernel: built in {result.info['duration_s']:.0f} s: {result.describe()}")
    ctx.console.print(f"  {result.bzimage}\n  {result.vmlinux}\n  {result.dir / 'build.json'}")
    return result


def _inv(*args: str, env: dict[str, str]) -> float:
    """Seconds one `inv` command takes in a fresh process (start-up included, as a user sees it)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), *args], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return round(time.monotonic() - started, 2)


def bench(ctx: Context, output: Path, kernel: str | None = None, cold: bool = True) -> dict:
    """Benchmark figures as JSON; with cold, the first lab runs from an empty cache (kernel build without ccache)."""
    figures: dict = {"machine": {"cpus": os.cpu_count()}, "lab": str(ctx.lab_path), "cold": cold}
    with tempfile.TemporaryDirectory(prefix="kernlab-bench-") as scratch:
        cache = Cache(Path(scratch) / "cache") if cold else ctx.cache
        results = Path(scratch) / "results"
        env = dict(os.environ, **({"CCACHE_DISABLE": "1"} if cold else {}))
        common = ["--lab", str(ctx.lab_path), "--cache", str(cache.root)] + (["--kernel", kernel] if kernel else [])
        first = _inv("lab", *common, "--results", str(results), env=env)
        figures["lab_cold_s" if cold else "lab_first_s"] = first
        used = source.fetch_source(ctx.lab.kernel, cache, kernel=kernel, notify=lambda _: None)
        kernel_build = build.build_kernel(used, ctx.lab.kernel, cache, KCONFIG_DIR)
        figures["kernel_build_s"] = kernel_build.info.get("duration_s")
        figures["kernel_noop_rebuild_s"] = _inv("kernel.build", *common, env=env)
        figures["lab_warm_s"] = _inv("lab", *common, "--results", str(results), env=env)
        warm = sorted((results / ctx.lab.name).iterdir())[-1]
        manifest = read_json(warm / "manifest.json") or {}
        figures["boot_to_ssh_ready_s"] = manifest.get("boot", {}).get("ssh_ready_s")
        figures["accel"] = manifest.get("accel")
        started = time.monotonic()
        build_guest_image(ctx.lab, Cache(Path(scratch) / "image-only"))
        figures["guest_image_build_s"] = round(time.monotonic() - started, 2)
        traced = read_json(warm / "summary.json") or {}
        if ctx.lab.chains and ctx.lab.tracing.enabled:
            untraced_lab = ctx.lab.model_copy(update={"tracing": ctx.lab.tracing.model_copy(update={"enabled": False})})
            plain = run.run_lab(untraced_lab, ctx.lab_path, cache, results, kernel=kernel, notify=lambda _: None)
            untraced = read_json(plain / "summary.json") or {}
            with_s, without_s = (sum(s.get("workload_seconds", {}).values()) for s in (traced, untraced))
            figures["workload_s_traced"], figures["workload_s_untraced"] = with_s, without_s
            figures["tracing_overhead_x"] = round(with_s / without_s, 2) if without_s else None
            started = time.monotonic()
            verify.verify_results(warm)
            seconds = time.monotonic() - started
            hists = list((warm / "trace" / "hist").glob("*.hist"))
            lines = sum(len(path.read_text().splitlines()) for path in hists)
            events = sum(trace.parse_hist(p.stem, p.read_text()).hits for p in hists)
            figures["verify_s"] = round(seconds, 3)
            figures["verify_trace_lines_per_s"] = round(lines / seconds)
            figures["verify_traced_events_per_s"] = round(events / seconds)
    # The fault suite over the user's cache: what it breaks it breaks in temporary caches of its own, so the
    # entries it finds here must all still be here after.
    figures["reliability"] = reliability.fault_suite_figures(ctx.cache)
    output.write_text(json.dumps(figures, indent=2) + "\n")
    ctx.console.print_json(json.dumps(figures))
    return figures


def run_tests(fast: bool = False, expression: str | None = None) -> int:
    """pytest over tests/; real kernels come from the normal cache, and nothing reaches kernel.org."""
    cmd = [sys.executable, "-m", "pytest", str(REPO / "tests")]
    if fast:
        cmd += ["-m", "not slow and not vm"]
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
    accel = vm.choose_accel(ctx.lab.vm, kernel_build.bzimage, ctx.cache.dir("run"))
    port = vm.free_port()
    command = vm.qemu_command(ctx.lab.vm, kernel=kernel_build.bzimage, initrd=image.path, ssh_port=port,
                              accel=accel.accel, qmp_socket=ctx.cache.dir("run") / f"{ctx.lab.name}.qmp")
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


# What a person asks first; summary.json has the rest.
FIRST_FIGURES = ["pswpout_pages", "pswpin_pages", "pgmajfault", "peak_orig_data_mib", "peak_compr_data_mib",
                 "peak_mem_used_total_mib", "compression_ratio", "same_pages_peak", "huge_pages_peak",
                 "pgscan_kswapd", "pgscan_direct", "min_mem_free_kib", "workload_seconds", "duration_s"]


def print_summary(console: Console, results_dir: Path) -> None:
    manifest = read_json(results_dir / "manifest.json") or {}
    summary = read_json(results_dir / "summary.json") or {}
    kernel = manifest.get("kernel", {})
    table = Table(title=f"{manifest.get('lab', {}).get('name', '?')}: linux {kernel.get('version', '?')} "
                        f"({kernel.get('source', '?')}), accel {manifest.get('accel', {}).get('used', '?')}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in FIRST_FIGURES:
        if key not in summary:
            continue
        value = summary[key]
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)


VERDICT_COLOUR = {"observed": "green", "inlined": "cyan", "tail call": "cyan", "annotation": "dim",
                  "gone": "yellow", "not traceable": "yellow"}


def print_chains(console: Console, outcome: list[chains.ChainResult]) -> None:
    """Each chain as its documented tree, indented like the article, every line with its verdict and hits."""
    for result in outcome:
        verdict = "[green]holds[/]" if result.holds else "[red]does not hold[/]"
        expectation = "" if result.expect == "report" else f" (expected {result.expect}: " + (
            "[green]ok[/])" if result.ok else "[red]FAILED[/])")
        table = Table(title=f"chain {result.name}: {verdict}, {result.hits:,} hits{expectation}",
                      title_justify="left", box=box.SIMPLE_HEAD, expand=True)
        # The tree reads like the article's code block; a long note line is cut here (the report has it whole).
        table.add_column("documented line", no_wrap=True, overflow="ellipsis", max_width=52)
        table.add_column("hits", justify="right", no_wrap=True)
        table.add_column("verdict: evidence", overflow="fold", ratio=1)
        for line in result.lines:
            colour = VERDICT_COLOUR.get(line.verdict, "red")
            table.add_row("  " * line.depth + escape(chains.shown_text(line.text, line.function)),
                          f"{line.hits:,}" if line.hits is not None else "-",
                          f"[{colour}]{line.label}[/]: [dim]{escape(line.evidence)}[/]")
        console.print(table)
        for line in result.lines:
            if line.indirect:
                status = line.indirect["status"]
                mark = "green" if status == "resolved" else "yellow" if status == "not checked" else "red"
                console.print(f"  indirect call {escape(line.indirect['call'])}: {escape(line.indirect['claim'])}: "
                              f"[{mark}]{status}[/] ({escape(line.indirect['evidence'])})")
        for note in result.notes:
            console.print(f"  note: {note}")


def print_branches(console: Console, results_dir: Path) -> bool:
    """The branch-profile answer, if the lab asked for one; False when the kernel could not count branches."""
    data = read_json(results_dir / "branches.json")
    if data is None:
        return True
    if not data.get("available"):
        console.print(f"[red]branch profile unavailable:[/] {data.get('why')}")
        return False
    table = Table(title="annotated branches on the swap path (counted during the workloads)", title_justify="left")
    for column in ("function", "source", "annotation", "correct", "incorrect", "wrong"):
        table.add_column(column, justify="right" if column in ("correct", "incorrect", "wrong") else "left")
    for site in data["swap_path"]:
        total = site["total"]
        share = branches.Counts(**total).wrong_share
        wrong = f"{share:.1%}" if share is not None else "-"
        table.add_row(site["function"], f"{site['file']}:{site['line']}", site.get("annotation") or "?",
                      f"{total['correct']:,}", f"{total['incorrect']:,}", wrong)
    console.print(table)
    console.print(f"[bold]answer:[/] {data['answer']}")
    return True


def _finish_run(ctx: Context, out: Path) -> int:
    """Summary, chains, branches and the report of one finished run; the exit code for it."""
    print_summary(ctx.console, out)
    code = 0
    if (out / "chains.json").exists():
        outcome = verify.verify_results(out)
        print_chains(ctx.console, outcome)
        code = 0 if all(r.ok for r in outcome) else 3
    if not print_branches(ctx.console, out):
        code = code or 3
    return code


def lab(ctx: Context, kernel: str | None = None, results: str = "results") -> int:
    started = time.monotonic()
    if ctx.lab.sweep:
        ctx.console.print(f"[yellow]note:[/] {ctx.lab_path} declares a sweep; this runs the lab as written, "
                          f"`inv lab.sweep --lab {ctx.lab_path}` runs every variant")
    out = run.run_lab(ctx.lab, ctx.lab_path, ctx.cache, Path(results), kernel=kernel,
                      notify=lambda line: ctx.console.print(line))
    code = _finish_run(ctx, out)
    ctx.console.print(f"results: {out} ({time.monotonic() - started:.0f} s)")
    return code


def sweep(ctx: Context, shard: str | None = None, kernel: str | None = None, results: str = "results") -> int:
    if not ctx.lab.sweep:
        raise KernlabError(f"{ctx.lab_path}: sweep: the lab declares no sweep (e.g. sweep: "
                           "{zram.comp_algorithm: [lz4, zstd]}); run it with `inv lab`")
    started = time.monotonic()
    chosen = experiment.parse_shard(shard) if shard else None
    folder, outcomes = run.run_sweep(ctx.lab, ctx.lab_path, ctx.cache, Path(results), shard=chosen, kernel=kernel,
                                     notify=lambda line: ctx.console.print(line))
    table = Table(title=f"sweep {ctx.lab.name}" + (f", shard {chosen}" if chosen else ""), title_justify="left")
    for column in ("variant", "status", "compression ratio", "swap-out MiB", "workload s"):
        table.add_column(column)
    for outcome in outcomes:
        summary = read_json(folder / outcome["dir"] / "summary.json") or {}
        table.add_row(outcome["label"], outcome["status"] + (f": {outcome['why']}" if outcome.get("why") else ""),
                      str(summary.get("compression_ratio", "-")), str(summary.get("pswpout_mib", "-")),
                      str(report.total_workload_seconds(summary) or "-"))
    ctx.console.print(table)
    ctx.console.print(f"results: {folder} ({time.monotonic() - started:.0f} s)")
    return 0 if all(o["status"] == "complete" for o in outcomes) else 1


def rerun(ctx: Context, manifest_path: Path, results: str = "results") -> int:
    manifest = load_json_object(manifest_path)
    lab_to_run, pins = experiment.rerun_plan(manifest, str(manifest_path))
    ctx.console.print(f"rerun of {manifest_path.parent}: linux {pins.kernel_version} ({lab_to_run.kernel.version}), "
                      f"pinned to config {str(pins.config_sha256)[:12]} and the original image inputs")
    lab_path = Path(manifest.get("lab_file", ctx.lab_path))
    out = run.run_lab(lab_to_run, lab_path, ctx.cache, Path(results), pins=pins,
                      notify=lambda line: ctx.console.print(line), command=f"inv lab.rerun {manifest_path}",
                      extra={"rerun_of": str(manifest_path.resolve().parent)})
    code = _finish_run(ctx, out)
    compare_runs(ctx.console, manifest_path.parent, out)
    return code


def _manifest_dir(path: Path) -> Path:
    folder = path.parent if path.name == "manifest.json" else path
    if not (folder / "manifest.json").is_file():
        raise KernlabError(f"{path}: not a results folder (no manifest.json)")
    return folder


def compare_runs(console: Console, a: Path, b: Path) -> None:
    """What differs between two runs: settings first, then figures."""
    a, b = _manifest_dir(a), _manifest_dir(b)
    manifests = [load_json_object(folder / "manifest.json") for folder in (a, b)]
    summaries = [read_json(folder / "summary.json") or {} for folder in (a, b)]
    settings = experiment.compare(*(experiment.run_settings(m) for m in manifests))
    figures = experiment.compare(*(experiment.flatten(s) for s in summaries), numbers_only=True)
    for title, rows in ((f"settings that differ: A={a}  B={b}", settings), ("figures", figures)):
        table = Table(title=title, title_justify="left")
        for column in ("key", "A", "B", "change"):
            table.add_column(column, overflow="fold", justify="right" if column == "change" else "left")
        for row in rows:
            table.add_row(row.key, str(row.a), str(row.b), row.change)
        console.print(table if rows else f"{title}: none")


def lab_report(paths: list[Path], console: Console) -> list[Path]:
    """A report for each run folder; a comparison when given several runs or a folder of runs (a sweep)."""
    written = []
    runs: list[Path] = []
    for path in paths:
        if (path / "manifest.json").is_file():
            runs.append(path)
        else:
            found = sorted(p.parent for p in path.glob("*/manifest.json")) + sorted(
                p.parent for p in path.glob("*/*/manifest.json"))
            if not found:
                raise KernlabError(f"{path}: no results folder here (no manifest.json in it or below it)")
            runs += found
    for folder in runs:
        written.append(report.write_report(folder))
        console.print(f"report: {written[-1]}")
    if len(runs) > 1:
        out = paths[0] if len(paths) == 1 else runs[0].parent
        written.append(report.write_comparison(runs, out, f"comparison of {len(runs)} runs"))
        console.print(f"comparison: {written[-1]}")
    return written


def plain_console() -> Console:
    """Plain output; logs and CI (not a tty) get whole tables, 120 columns wide."""
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 120)


def lab_verify(results_dir: Path, console: Console) -> int:
    outcome = verify.verify_results(results_dir)
    print_chains(console, outcome)
    return 0 if all(r.ok for r in outcome) else 3


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

    parse_argv.exits_2 = True  # type: ignore[attr-defined]
    Parser.parse_argv = parse_argv  # type: ignore[method-assign]
