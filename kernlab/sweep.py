"""Several runs of one lab into one folder with a comparison report: a sweep (every variant of the lab's `sweep:`,
or one shard of them) or a kernel matrix (the same lab on each kernel)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from kernlab import experiment, report, specs
from kernlab.cache import Cache
from kernlab.errors import KernlabError
from kernlab.experiment import Shard, Variant
from kernlab.lab import Lab
from kernlab.results import SweepPlan, SweepVariant, write_sweep
from kernlab.run import run_lab


def run_sweep(lab: Lab, lab_path: Path, cache: Cache, results_root: Path, *, shard: Shard | None = None,
              kernel: str | None = None, notify: Callable[[str], None] = print) -> tuple[Path, list[SweepVariant]]:
    """Run the lab's sweep (or one shard of it) into one folder with a comparison report; one kernel build
    serves every variant that does not change the kernel section. Returns the folder and each variant's outcome."""
    variants = experiment.expand_sweep(lab, str(lab_path))
    command = f"inv lab.sweep --lab {lab_path}" + (f" --shard {shard}" if shard else "")
    return _run_variants(lab, lab_path, variants, cache, results_root, "sweep", command, shard=shard, kernel=kernel,
                         notify=notify)


def run_matrix(lab: Lab, lab_path: Path, cache: Cache, results_root: Path, kernels: list[str], *,
               shard: Shard | None = None, notify: Callable[[str], None] = print) -> tuple[Path, list[SweepVariant]]:
    """The same lab on each kernel (each its own build and results folder), then one comparison whose chain
    tables put every documented line's verdict on each kernel side by side."""
    variants = experiment.kernel_variants(lab, kernels, str(lab_path))
    command = f"inv lab.matrix --lab {lab_path} --kernels {','.join(kernels)}" + (f" --shard {shard}" if shard else "")
    return _run_variants(lab, lab_path, variants, cache, results_root, "matrix", command, shard=shard, notify=notify)


def _run_variants(lab: Lab, lab_path: Path, variants: list[Variant], cache: Cache, results_root: Path, kind: str,
                  command: str, *, shard: Shard | None, notify: Callable[[str], None],
                  kernel: str | None = None) -> tuple[Path, list[SweepVariant]]:
    for variant in variants:  # every variant's chain specs, before the first one builds anything
        specs.check_specs([use.spec for use in variant.lab.chains], f"{lab_path} ({variant.label})")
    selected = experiment.select_shard(variants, shard)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = f"-shard-{shard.number}-of-{shard.count}" if shard else ""
    folder = results_root / lab.name / f"{kind}-{stamp}{suffix}"
    folder.mkdir(parents=True)
    swept = lab.sweep if kind == "sweep" else {"kernel": [v.params["kernel"] for v in variants]}
    plan = SweepPlan(lab_file=str(lab_path), sweep=swept, shard=str(shard) if shard else None, variants=[
        SweepVariant(index=v.index, label=v.label, params=v.params, dir=v.slug, in_shard=v in selected,
                     status="pending" if v in selected else "other shard") for v in variants])
    write_sweep(folder, plan)
    notify(f"{kind}: {len(variants)} variants" + (f", shard {shard} runs {len(selected)}" if shard else ""))
    outcomes = []
    for variant in selected:
        notify(f"variant {variant.index + 1}/{len(variants)}: {variant.label}")
        entry = plan.variants[variant.index]  # the plan lists every variant in index order
        try:
            point = {"index": variant.index, "params": variant.params, "label": variant.label}
            outcome = run_lab(variant.lab, lab_path, cache, folder, kernel=kernel, notify=notify,
                              results_dir=folder / variant.slug, command=command, extra={"sweep": point})
            entry.status, entry.expectations_met = "complete", outcome.ok
        except KernlabError as error:  # the other variants still say something; the run fails at the end
            entry.status, entry.why = "incomplete", str(error).splitlines()[0]
            notify(f"variant {variant.label} failed: {entry.why}")
        outcomes.append(entry)
        write_sweep(folder, plan)
    runs = [folder / o.dir for o in outcomes if (folder / o.dir).exists()]
    title = f"{lab.name}: {kind}" + (f" (shard {shard})" if shard else "")
    notify(f"comparison: {report.write_comparison(runs, folder, title)}")
    return folder, outcomes
