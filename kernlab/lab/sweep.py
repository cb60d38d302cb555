"""Several runs of one lab into one folder with a comparison report: a sweep (every variant of the lab's `sweep:`,
or one shard of them), a kernel matrix (the same lab on each kernel), or the lab's own repeats; with `repeat:`
above 1 each variant runs that many times beside an aggregate of them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kernlab.cache import Cache
from kernlab.config.lab import Lab
from kernlab.errors import KernlabError
from kernlab.lab import experiment, preflight
from kernlab.lab.experiment import LabVariant, Shard
from kernlab.lab.run import run_lab
from kernlab.probes.live import LiveFeed
from kernlab.report import render
from kernlab.results import aggregate
from kernlab.results.folder import AGGREGATE, new_timestamped_folder, write_sweep
from kernlab.results.sweeprecords import SweepPlan, SweepVariant


def run_sweep(lab: Lab, lab_path: Path, cache: Cache, results_root: Path, *, shard: Shard | None = None,
              kernel: str | None = None, notify: Callable[[str], None] = print,
              live: LiveFeed | None = None) -> tuple[Path, list[SweepVariant]]:
    """Run the lab's sweep (or one shard of it), each variant lab.repeat times, into one folder with a comparison
    report; one kernel build serves every variant that does not change the kernel section. Returns the folder and
    each variant's outcome."""
    variants = experiment.expand_sweep(lab, str(lab_path))
    command = f"inv lab.sweep --lab {lab_path}" + (f" --shard {shard}" if shard else "") + _repeat_flag(lab)
    return _run_variants(lab, lab_path, variants, cache, results_root, "sweep", command, shard=shard, kernel=kernel,
                         notify=notify, live=live)


def run_matrix(lab: Lab, lab_path: Path, cache: Cache, results_root: Path, kernels: list[str], *,
               shard: Shard | None = None, notify: Callable[[str], None] = print,
               live: LiveFeed | None = None) -> tuple[Path, list[SweepVariant]]:
    """The same lab on each kernel (each its own build and results folder, lab.repeat runs each), then one
    comparison whose chain tables put every documented line's verdict on each kernel side by side."""
    variants = experiment.kernel_variants(lab, kernels, str(lab_path))
    command = (f"inv lab.matrix --lab {lab_path} --kernels {','.join(kernels)}" + (f" --shard {shard}" if shard else "")
               + _repeat_flag(lab))
    return _run_variants(lab, lab_path, variants, cache, results_root, "matrix", command, shard=shard, notify=notify,
                         live=live)


def run_repeats(lab: Lab, lab_path: Path, cache: Cache, results_root: Path, *, kernel: str | None = None,
                notify: Callable[[str], None] = print, live: LiveFeed | None = None) -> tuple[Path, list[SweepVariant]]:
    """The lab as written, lab.repeat times (each a fresh boot of one kernel build), into one folder: the runs
    in repeat-1..N, their aggregate, and a comparison of them."""
    if lab.repeat < 2:
        raise KernlabError(f"{lab_path}: repeat: {lab.repeat}: a repeat set needs 2 or more runs (`inv lab` runs one)")
    variant = LabVariant(0, {}, lab.model_copy(update={"repeat": 1, "sweep": {}}))
    command = f"inv lab --lab {lab_path}" + (f" --kernel {kernel}" if kernel else "") + _repeat_flag(lab)
    return _run_variants(lab, lab_path, [variant], cache, results_root, "repeats", command, shard=None, kernel=kernel,
                         notify=notify, live=live)


def _repeat_flag(lab: Lab) -> str:
    return f" --repeat {lab.repeat}" if lab.repeat > 1 else ""


def _run_variants(lab: Lab, lab_path: Path, variants: list[LabVariant], cache: Cache, results_root: Path, kind: str,
                  command: str, *, shard: Shard | None, notify: Callable[[str], None],
                  kernel: str | None = None, live: LiveFeed | None = None) -> tuple[Path, list[SweepVariant]]:
    for variant in variants:  # every variant's chain specs, before the first one builds anything
        variant.lab.chain_specs(f"{lab_path} ({variant.label})")
    selected = experiment.select_shard(variants, shard)
    for variant in selected:  # every variant's room and rights before the folder that holds them all
        preflight.check(variant.lab, results_root)
    folder = new_timestamped_folder(results_root / lab.name, f"{kind}-",
                                    f"-shard-{shard.number}-of-{shard.count}" if shard else "")
    swept = {"kernel": [v.params["kernel"] for v in variants]} if kind == "matrix" else lab.sweep
    # A lab's own repeats are the folder itself: repeats-<time>/repeat-1, not repeats-<time>/00/repeat-1.
    dirs = ["."] if kind == "repeats" else [v.slug for v in variants]
    plan = SweepPlan(lab_file=str(lab_path), sweep=swept, shard=str(shard) if shard else None, variants=[
        SweepVariant(index=v.index, label=v.label, params=v.params, dir=dirs[v.index], in_shard=v in selected,
                     status="pending" if v in selected else "other shard", repeat=lab.repeat) for v in variants])
    write_sweep(folder, plan)
    if kind == "repeats":
        notify(f"repeats: {lab.repeat} runs of {lab.name}, each on a fresh boot")
    else:
        runs_text = f" of {lab.repeat} runs each" if lab.repeat > 1 else ""
        notify(f"{kind}: {len(variants)} variants{runs_text}"
               + (f", shard {shard} runs {len(selected)}" if shard else ""))
    outcomes = []
    for variant in selected:
        entry = plan.variants[variant.index]  # the plan lists every variant in index order
        _run_variant(variant, entry, len(variants), lab, lab_path, cache, folder, command, kernel, notify, live)
        outcomes.append(entry)
        write_sweep(folder, plan)
    groups = [folder / o.dir for o in outcomes if (folder / o.dir).exists()]
    title = f"{lab.name}: {kind}" + (f" (shard {shard})" if shard else "")
    notify(f"comparison: {render.write_comparison(groups, folder, title)}")
    return folder, outcomes


def _run_variant(variant: LabVariant, entry: SweepVariant, count: int, lab: Lab, lab_path: Path, cache: Cache,
                 folder: Path, command: str, kernel: str | None, notify: Callable[[str], None],
                 live: LiveFeed | None) -> None:
    """A variant's runs (one, or lab.repeat into repeat-1..N beside their aggregate.json), recorded in entry."""
    group = folder / entry.dir
    names = [aggregate.REPEAT_DIR.format(n) for n in range(1, lab.repeat + 1)] if lab.repeat > 1 else ["."]
    failures, met = [], []
    for number, name in enumerate(names, 1):
        which = ", ".join(part for part in (
            f"variant {variant.index + 1}/{count}: {variant.label}" if variant.label else "",
            f"repeat {number}/{lab.repeat}" if lab.repeat > 1 else "") if part)
        notify(which)
        extra: dict = {}
        if variant.params:
            extra["sweep"] = {"index": variant.index, "params": variant.params, "label": variant.label}
        if lab.repeat > 1:
            extra["repeat"] = {"index": number, "of": lab.repeat}
        try:
            outcome = run_lab(variant.lab, lab_path, cache, folder, kernel=kernel, notify=notify,
                              results_dir=group / name if name != "." else group, command=command, extra=extra,
                              live=live)
            met.append(outcome.expectations_met)
        except KernlabError as error:  # the other runs still say something; the run fails at the end
            why = str(error).splitlines()[0]
            failures.append(why if name == "." else f"{name}: {why}")
            notify(f"{which} failed: {why}")
    entry.runs_complete = len(names) - len(failures)
    entry.status = "incomplete" if failures else "complete"
    entry.why = "; ".join(failures) or None
    entry.expectations_met = all(met) if met else None
    if lab.repeat > 1:
        done = aggregate.write_for(group, names, repeat=lab.repeat, lab_name=lab.name, label=variant.label,
                                   params=variant.params)
        notify(f"aggregate of {len(done.complete)}/{lab.repeat} complete runs: {group / AGGREGATE}")
