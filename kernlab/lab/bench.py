"""`inv bench`: speed figures as JSON (cold and warm lab runs, kernel build, boot, tracing cost, verification
throughput, the fault suite). Speed targets live in these figures, never in timed test asserts."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

from kernlab.arch import ARCHES
from kernlab.cache import Cache
from kernlab.config.lab import Lab
from kernlab.guest.image import build_guest_image
from kernlab.kernel import build, source
from kernlab.lab import observer, reliability
from kernlab.lab.clockcheck import count_clocksources
from kernlab.lab.run import run_lab
from kernlab.paths import KCONFIG_DIR, REPO
from kernlab.report.graphviews import probe_cost
from kernlab.results.aggregate import total_workload_seconds
from kernlab.results.folder import ResultsFolder
from kernlab.results.schema import Summary
from kernlab.verify.evidence import verify_results
from kernlab.verify.hist import parse_hist
from kernlab.vm.session import guest_session


def _inv(*args: str, env: dict[str, str]) -> float:
    """Seconds one `inv` command takes in a fresh process (start-up included, as a user sees it)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(REPO), *args], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return round(time.monotonic() - started, 2)


def _workload_seconds(folder: ResultsFolder) -> float:
    return total_workload_seconds(folder.summary()) or 0.0


def tracing_figures(lab: Lab, lab_path: Path, cache: Cache, results: Path, warm: ResultsFolder,
                    kernel: str | None) -> dict[str, Any]:
    """What tracing costs the workloads (all evidence, and the stack histograms alone when the lab records a
    function graph too), and how fast verification reads the evidence back."""
    untraced_lab = lab.model_copy(update={"tracing": lab.tracing.model_copy(update={"enabled": False})})
    plain = run_lab(untraced_lab, lab_path, cache, results, kernel=kernel, notify=lambda _: None)
    with_s, without_s = _workload_seconds(warm), _workload_seconds(ResultsFolder(plain.folder))
    figures: dict[str, Any] = {}
    # The tracing buffers take guest memory: without them a guest may not swap at all (the arm64 5.15 lab's
    # 160 MiB memhogs fit in its 192 MiB untraced), and a ratio to such a run is no overhead figure.
    if not (ResultsFolder(plain.folder).summary() or Summary()).figures().get("pswpout_pages"):
        without_s = 0.0
        figures["untraced_note"] = "the untraced run did not swap (pswpout 0): no overhead figure against it"
    if lab.tracing.graph.enabled:
        no_graph = lab.tracing.model_copy(update={"graph": lab.tracing.graph.model_copy(update={"enabled": False})})
        stacks = run_lab(lab.model_copy(update={"tracing": no_graph}), lab_path, cache, results, kernel=kernel,
                         notify=lambda _: None)
        stacks_s = _workload_seconds(ResultsFolder(stacks.folder))
        graph, capture = warm.graph(), warm.graph_capture()
        unhooked = capture is not None and capture.probes_unhooked
        costs = {tree.name: cost for tree in (graph.trees if graph else []) if (cost := probe_cost(tree, unhooked))}
        figures["graph_probe_cost"] = {root: {"probes_us_per_call": cost.probes_us,
                                              "root_self_us_per_call": cost.root_self_us,
                                              "probes_share_of_root": cost.share,
                                              "probes_unhooked": cost.unhooked} for root, cost in costs.items()}
        figures |= {"workload_s_stacks_only": stacks_s,
                    "stacks_overhead_x": round(stacks_s / without_s, 2) if without_s else None,
                    "graph_windows_s": graph.window_seconds if graph else None,
                    "graph_overhead_x": round(with_s / stacks_s, 2) if stacks_s else None}
    started = time.monotonic()
    verify_results(warm)
    seconds = time.monotonic() - started
    hists = [held for path in warm.hist_paths() for held in warm.held_hist_paths(path.stem)] + warm.hist_paths()
    lines = sum(len(path.read_text().splitlines()) for path in hists)
    events = sum(parse_hist(path.stem, path.read_text(), str(path)).hits for path in hists)
    return figures | {
            "workload_s_traced": with_s, "workload_s_untraced": without_s or None,
            "tracing_overhead_x": round(with_s / without_s, 2) if without_s else None,
            "verify_s": round(seconds, 3), "verify_trace_lines_per_s": round(lines / seconds),
            "verify_traced_events_per_s": round(events / seconds)}


def arch_figures(lab: Lab, lab_path: Path, cache: Cache, results: Path, warm: ResultsFolder,
                 kernel: str | None) -> dict[str, Any]:
    """Boot to SSH and the workloads' time on x86_64 and arm64 side by side: the warm run, and the same lab on
    the other architecture (its kernel built, or found, for it)."""
    runs = {lab.arch.name: warm}
    for other in ARCHES.values():
        if other is lab.arch:
            continue
        twin = lab.model_copy(update={
            "vm": lab.vm.model_copy(update={"arch": other.name}),
            "kernel": lab.kernel.model_copy(update={"fragments": other.fragments(lab.kernel.fragments)})})
        runs[other.name] = ResultsFolder(run_lab(twin, lab_path, cache, results, kernel=kernel,
                                                 notify=lambda _: None).folder)
    figures = {}
    for name, folder in runs.items():
        manifest = folder.manifest()
        figures[name] = {"boot_to_ssh_ready_s": manifest.boot.ssh_ready_s if manifest.boot else None,
                         "workload_s": _workload_seconds(folder),
                         "accel": manifest.accel.used if manifest.accel else None}
    return {"arches": figures}


REALISTIC_FRAGMENT = "mm"  # kconfigs/mm.config: SMP, SLUB, memcg, THP, compaction (issue 23)


def _boot_seconds(lab: Lab, kernel: build.KernelBuild, cache: Cache, scratch: Path) -> float:
    """Seconds from QEMU's start to the guest answering SSH, one boot of this kernel with the lab's guest."""
    image = build_guest_image(lab, cache)
    with guest_session(lab.vm, kernel.image, image, scratch / f"console-{kernel.dir.name}.log",
                       accel_verdicts=cache.dir("accel")) as session:
        return round(session.ssh_ready_s, 2)


def config_figures(lab: Lab, cache: Cache, scratch: Path, kernel: str | None, cold: bool) -> dict[str, Any]:
    """What the realistic default kernel costs against tinyconfig's uniprocessor (the lab's fragments without
    mm): each built (or found built: its build.json's duration) and booted once, as ratios new/old."""
    if REALISTIC_FRAGMENT not in lab.kernel.fragments:
        return {"config_note": f"the lab's kernel has no {REALISTIC_FRAGMENT} fragment: nothing to compare"}
    used = source.fetch_source(lab.kernel, cache, kernel=kernel, notify=lambda _: None)
    old_spec = lab.kernel.model_copy(update={"fragments": [f for f in lab.kernel.fragments
                                                           if f != REALISTIC_FRAGMENT]})
    with mock.patch.dict(os.environ, {"CCACHE_DISABLE": "1"} if cold else {}):  # cold: both without ccache
        builds = {"old": build.build_kernel(used, old_spec, cache, KCONFIG_DIR, arch=lab.arch),
                  "new": build.build_kernel(used, lab.kernel, cache, KCONFIG_DIR, arch=lab.arch)}
    figures: dict[str, Any] = {}
    for name, built in builds.items():
        figures[f"kernel_build_s_{name}"] = built.duration_s
        figures[f"boot_to_ssh_s_{name}"] = _boot_seconds(lab, built, cache, scratch)

    def ratio(what: str) -> float | None:
        old, new = figures[f"{what}_old"], figures[f"{what}_new"]
        return round(new / old, 2) if old and new else None

    return {"realistic_kernel": figures | {"build_x": ratio("kernel_build_s"), "boot_x": ratio("boot_to_ssh_s"),
                                           "ccache_disabled": cold}}


SECTIONS = ("lab", "arch", "config", "clock", "observer", "reliability", "startup")
STARTUP_RUNS = 5


def startup_figures(lab_path: Path, cache: Cache, kernel: str | None) -> dict[str, Any]:
    """What every command pays before it starts, as a user sees it (a fresh process each): `inv --list`, `inv
    --help`, and a no-op `inv kernel.build` of a cached kernel; STARTUP_RUNS runs each, median and range."""
    env = dict(os.environ)
    common = ["--lab", str(lab_path), "--cache", str(cache.root)] + (["--kernel", kernel] if kernel else [])
    _inv("kernel.build", *common, env=env)  # built (or found) once before the timed runs
    figures: dict[str, Any] = {"runs": STARTUP_RUNS}
    for name, args in (("list", ["--list"]), ("help", ["--help", "lab"]), ("noop_kernel_build",
                                                                          ["kernel.build", *common])):
        times = sorted(_inv(*args, env=env) for _ in range(STARTUP_RUNS))
        figures[f"{name}_s"] = {"median": times[len(times) // 2], "min": times[0], "max": times[-1]}
    return {"startup": figures}


def observer_figures(lab: Lab, lab_path: Path, cache: Cache, results: Path, kernel: str | None,
                     repeat: int) -> dict[str, Any]:
    """The observer effect (kernlab.lab.observer): traced against untraced, repeat runs a side, figure by figure;
    its ratio of mean workload seconds is the bench's tracing_overhead_x."""
    effect = observer.measure(lab, lab_path, cache, results, repeat=repeat, kernel=kernel, notify=lambda _: None)
    return {"observer_effect": effect.model_dump(),
            "tracing_overhead_x": effect.tracing_overhead_x,
            "outside_noise": effect.outside_noise()}


def bench(lab: Lab, lab_path: Path, user_cache: Cache, kernel: str | None = None, cold: bool = True,
          sections: tuple[str, ...] = SECTIONS, repeat: int = observer.MIN_REPEAT, keep: Path | None = None) -> dict:
    """Benchmark figures; with cold, the first lab runs from an empty cache (kernel build without ccache).
    sections: which of SECTIONS to run (all by default); keep: where the lab runs go (default: deleted after)."""
    figures: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "lab": str(lab_path), "cold": cold,
                               "sections": list(sections)}
    with tempfile.TemporaryDirectory(prefix="kernlab-bench-") as scratch:
        cache = Cache(Path(scratch) / "cache") if cold else user_cache
        results = keep or Path(scratch) / "results"
        if "lab" in sections:
            figures |= lab_figures(lab, lab_path, cache, results, kernel, cold, Path(scratch))
        if "observer" in sections and lab.chains and lab.tracing.enabled:
            one_run = figures.pop("tracing_overhead_x", None)
            figures |= observer_figures(lab, lab_path, cache, results, kernel, repeat)
            figures["tracing_overhead_x_one_run"] = one_run
        if "config" in sections:
            figures |= config_figures(lab, cache, Path(scratch), kernel, cold)
        if "startup" in sections:
            figures |= startup_figures(lab_path, cache, kernel)
        if "clock" in sections:
            used = source.fetch_source(lab.kernel, cache, kernel=kernel, notify=lambda _: None)
            built = build.build_kernel(used, lab.kernel, cache, KCONFIG_DIR, arch=lab.arch)
            figures["clock_under_load"] = count_clocksources(lab, built.image, cache).figures()
    if "reliability" in sections:
        # The fault suite over the user's cache: what it breaks it breaks in temporary caches of its own, so the
        # entries it finds here must all still be here after.
        figures["reliability"] = reliability.fault_suite_figures(user_cache)
    return figures


def lab_figures(lab: Lab, lab_path: Path, cache: Cache, results: Path, kernel: str | None, cold: bool,
                scratch: Path) -> dict[str, Any]:
    """The lab cold (or first) and warm, the kernel build and its no-op rebuild, boot, guest image, tracing cost
    in one run each, and the other architecture beside this one."""
    figures: dict[str, Any] = {}
    env = dict(os.environ, **({"CCACHE_DISABLE": "1"} if cold else {}))
    common = ["--lab", str(lab_path), "--cache", str(cache.root)] + (["--kernel", kernel] if kernel else [])
    figures["lab_cold_s" if cold else "lab_first_s"] = _inv("lab", *common, "--results", str(results), env=env)
    used = source.fetch_source(lab.kernel, cache, kernel=kernel, notify=lambda _: None)
    built = build.build_kernel(used, lab.kernel, cache, KCONFIG_DIR, arch=lab.arch)
    figures["kernel_build_s"] = built.duration_s
    figures["kernel_noop_rebuild_s"] = _inv("kernel.build", *common, env=env)
    figures["lab_warm_s"] = _inv("lab", *common, "--results", str(results), env=env)
    # the newest run folder (a time stamp), not a sweep folder of an earlier bench kept in the same place
    warm = ResultsFolder.open(sorted(p for p in (results / lab.name).iterdir() if p.name[:1].isdigit())[-1])
    manifest = warm.manifest()
    figures["boot_to_ssh_ready_s"] = manifest.boot.ssh_ready_s if manifest.boot else None
    figures["accel"] = manifest.accel.model_dump() if manifest.accel else None
    started = time.monotonic()
    build_guest_image(lab, Cache(scratch / "image-only"))
    figures["guest_image_build_s"] = round(time.monotonic() - started, 2)
    if lab.chains and lab.tracing.enabled:
        figures |= tracing_figures(lab, lab_path, cache, results, warm, kernel)
    figures |= arch_figures(lab, lab_path, cache, results, warm, kernel)
    return figures
