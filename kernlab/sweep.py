"""A lab's sweep: every variant (or one shard of them) run into one folder, with a comparison report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from kernlab import experiment, report, specs
from kernlab.cache import Cache
from kernlab.errors import KernlabError
from kernlab.experiment import Shard
from kernlab.lab import Lab
from kernlab.results import SweepPlan, SweepVariant, write_sweep
from kernlab.run import run_lab


def run_sweep(lab: Lab, lab_path: Path, cache: Cache, results_root: Path, *, shard: Shard | None = None,
              kernel: str | None = None, notify: Callable[[str], None] = print) -> tuple[Path, list[SweepVariant]]:
    """Run the lab's sweep (or one shard of it) into one folder with a comparison report; one kernel build
    serves every variant that does not change the kernel section. Returns the folder and each variant's outcome."""
    variants = experiment.expand_sweep(lab, str(lab_path))
    for variant in variants:  # every variant's chain specs, before the first one builds anything
        specs.check_specs([use.spec for use in variant.lab.chains], f"{lab_path} ({variant.label})")
    selected = experiment.select_shard(variants, shard)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = results_root / lab.name / (f"sweep-{stamp}" + (f"-shard-{shard.number}-of-{shard.count}" if shard else ""))
    folder.mkdir(parents=True)
    plan = SweepPlan(lab_file=str(lab_path), sweep=lab.sweep, shard=str(shard) if shard else None, variants=[
        SweepVariant(index=v.index, label=v.label, params=v.params, dir=v.slug, in_shard=v in selected,
                     status="pending" if v in selected else "other shard") for v in variants])
    write_sweep(folder, plan)
    notify(f"sweep: {len(variants)} variants" + (f", shard {shard} runs {len(selected)}" if shard else ""))
    outcomes = []
    for variant in selected:
        notify(f"variant {variant.index + 1}/{len(variants)}: {variant.label}")
        entry = plan.variants[variant.index]  # the plan lists every variant in index order
        command = f"inv lab.sweep --lab {lab_path}" + (f" --shard {shard}" if shard else "")
        try:
            run_lab(variant.lab, lab_path, cache, folder, kernel=kernel, notify=notify,
                    results_dir=folder / variant.slug, command=command,
                    extra={"sweep": {"index": variant.index, "params": variant.params, "label": variant.label}})
            entry.status = "complete"
        except KernlabError as error:  # the other variants still say something; the sweep fails at the end
            entry.status, entry.why = "incomplete", str(error).splitlines()[0]
            notify(f"variant {variant.label} failed: {entry.why}")
        outcomes.append(entry)
        write_sweep(folder, plan)
    runs = [folder / o.dir for o in outcomes if (folder / o.dir).exists()]
    title = f"{lab.name}: sweep" + (f" (shard {shard})" if shard else "")
    notify(f"comparison: {report.write_comparison(runs, folder, title)}")
    return folder, outcomes
