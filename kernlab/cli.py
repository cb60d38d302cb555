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

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from kernlab import build, chains, run, source, trace, verify, vm
from kernlab.cache import Cache, read_json, write_json_atomic
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
        width = None if sys.stdout.isatty() else 120  # logs and CI get whole tables
        return cls(load_lab(lab_path), lab_path, Cache.at(cache), Console(highlight=False, soft_wrap=True, width=width))


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


def print_chains(console: Console, outcome: list[chains.ChainResult]) -> None:
    for result in outcome:
        verdict = "[green]holds[/]" if result.holds else "[red]does not hold[/]"
        expectation = "" if result.expect == "report" else f" (expected {result.expect}: " + (
            "[green]ok[/])" if result.ok else "[red]FAILED[/])")
        table = Table(title=f"chain {result.name}: {verdict}, {result.hits} hits{expectation}", title_justify="left")
        table.add_column("leaf")
        table.add_column("function")
        table.add_column("verdict")
        table.add_column("evidence", overflow="fold")
        for leaf in result.leaves:
            for index, function in enumerate(leaf.functions):
                label = f"{leaf.leaf} ({leaf.hits} hits, {leaf.by_task})" if index == 0 else ""
                colour = {"observed": "green", "inlined": "cyan", "tail call": "cyan"}.get(function.verdict, "red")
                table.add_row(label, function.function, f"[{colour}]{function.label()}[/]", function.evidence)
        console.print(table)
        for note in result.notes:
            console.print(f"  note: {note}")


def lab(ctx: Context, kernel: str | None = None, results: str = "results") -> int:
    started = time.monotonic()
    out = run.run_lab(ctx.lab, ctx.lab_path, ctx.cache, Path(results), kernel=kernel,
                      notify=lambda line: ctx.console.print(line))
    print_summary(ctx.console, out)
    code = 0
    if (out / "chains.json").exists():
        outcome = verify.verify_results(out)
        print_chains(ctx.console, outcome)
        code = 0 if all(r.ok for r in outcome) else 3
    ctx.console.print(f"results: {out} ({time.monotonic() - started:.0f} s)")
    return code


def lab_verify(results_dir: Path) -> int:
    outcome = verify.verify_results(results_dir)
    print_chains(Console(highlight=False, soft_wrap=True), outcome)
    return 0 if all(r.ok for r in outcome) else 3
