"""Files over several runs: a sweep's plan, a variant's aggregate over its repeats, the observer effect."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kernlab.results.schema import FORMAT, Record
from kernlab.results.stats import Spread


class EffectRow(Record):
    figure: str = Field(description="summary key")
    label: str
    untraced: list[float]
    traced: list[float]
    untraced_mean: float
    traced_mean: float
    untraced_half_width: float | None = Field(description="of the 95 % interval of the mean")
    traced_half_width: float | None
    ratio: float | None = Field(description="traced / untraced")
    decision: str = Field(description="kernlab.results.stats.Decision")
    p: float | None


class ObserverEffect(Record):
    """observer.json: traced against untraced, figure by figure."""

    lab: str
    kernel: str | None
    repeat: int
    folder: str
    method: str = Field(description="kernlab.results.stats.METHOD")
    tracing_overhead_x: float | None = Field(description="mean traced workload seconds / mean untraced")
    rows: list[EffectRow]

    def outside_noise(self) -> list[str]:
        return [row.label for row in self.rows if row.decision == "significant"]


class SweepVariant(Record):
    index: int
    label: str
    params: dict[str, Any] = Field(default_factory=dict)
    dir: str
    in_shard: bool = True
    status: str = Field("pending", description="complete: every repeat completed")
    why: str | None = None
    expectations_met: bool | None = Field(
        None, description="every chain as the lab expects it on this variant's kernel")
    repeat: int = Field(1, description="runs asked for; with more than one, dir holds repeat-1... and aggregate.json")
    runs_complete: int | None = Field(None, description="of them (None in folders from before repeats)")


class AggregateFile(Record):
    """aggregate.json: a variant's repeated runs, figure by figure (kernlab.results.aggregate)."""

    format: int = FORMAT
    lab_name: str | None = None
    label: str = Field(
        "", description="the variant's settings, e.g. zram.comp_algorithm=zstd; empty for a lab's own repeats")
    params: dict[str, Any] = Field(default_factory=dict)
    swept: list[str] = Field(
        default_factory=list, description="the sweep's keys in the lab's order (params is sorted on disk)")
    repeat: int = Field(description="runs asked for")
    runs: list[str] = Field(default_factory=list, description="every run's folder, relative to this file's folder")
    complete: list[str] = Field(default_factory=list, description="the runs the figures are over")
    confidence: float
    method: str = Field("", description="how intervals and differences are computed (kernlab.results.stats.METHOD)")
    figures: dict[str, Spread] = Field(default_factory=dict, description="summary.json figures, flattened, and derived")
    chain_hits: dict[str, Spread] = Field(default_factory=dict)
    chain_holds: dict[str, int] = Field(
        default_factory=dict, description="in how many of the complete runs the chain held")


class SweepPlan(Record):
    lab_file: str | None = None
    sweep: dict[str, Any] = Field(default_factory=dict)
    shard: str | None = None
    variants: list[SweepVariant] = Field(default_factory=list)
