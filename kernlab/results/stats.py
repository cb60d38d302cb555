"""Run-to-run noise: the spread of a figure over repeated runs (mean, sample standard deviation, min, max, a 95 %
Student t confidence interval of the mean) and whether two sets of runs differ beyond their noise (Welch's
unequal-variances t-test, two-sided, alpha 0.05). One run has no spread, so it gets no interval and no verdict."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from kernlab.results.schema import Record

CONFIDENCE = 0.95
ALPHA = 0.05
INTERVALS = f"intervals are {CONFIDENCE:.0%} Student t confidence intervals of the mean"
METHOD = f"Welch's t-test (unequal variances, two-sided), a difference is significant at p < {ALPHA}; {INTERVALS}"
# How few runs a side needs before it has a noise estimate (a sample standard deviation).
MIN_RUNS = 2

Decision = Literal["significant", "within noise", "no noise estimate"]


class Spread(Record):
    """One figure over n runs (a variant's complete runs in aggregate.json); sd and the interval are None for a
    single run."""

    values: list[float]
    mean: float
    sd: float | None = None
    min: float
    max: float
    ci_low: float | None = Field(None, description="the mean's confidence interval (AggregateFile.confidence)")
    ci_high: float | None = None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def half_width(self) -> float | None:
        """The interval's half width: mean ± this."""
        return None if self.ci_high is None else self.ci_high - self.mean


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("no values to summarize")
    points = tuple(float(v) for v in values)
    mean = statistics.fmean(points)
    if len(points) < MIN_RUNS:
        return Spread(values=list(points), mean=mean, min=min(points), max=max(points))
    sd = statistics.stdev(points)
    # t_{(1+C)/2, n-1} * sd / sqrt(n): with 3 runs t is 4.30, so the interval is wide unless the runs agree.
    from scipy import stats as scipy_stats  # 1 s to import: here, not at start-up

    half = float(scipy_stats.t.ppf((1 + CONFIDENCE) / 2, len(points) - 1)) * sd / math.sqrt(len(points))
    return Spread(values=list(points), mean=mean, sd=sd, min=min(points), max=max(points), ci_low=mean - half,
                  ci_high=mean + half)


@dataclass(frozen=True)
class Verdict:
    """Whether b's runs differ from a's beyond the noise the runs themselves show."""

    decision: Decision
    p: float | None  # Welch's two-sided p-value, when one exists
    why: str  # the decision in words, with its basis

    @property
    def significant(self) -> bool:
        return self.decision == "significant"


def relative_change(a: Spread, b: Spread) -> float | None:
    """(mean b - mean a) / |mean a|; None when a's mean is 0."""
    return None if a.mean == 0 else (b.mean - a.mean) / abs(a.mean)


def decide(a: Spread, b: Spread) -> Verdict:
    """Welch's t-test of the two sides' means, or why it cannot be run."""
    if a.n < MIN_RUNS or b.n < MIN_RUNS:
        sizes = f"{a.n} run{'s' if a.n != 1 else ''} against {b.n}"
        return Verdict("no noise estimate", None, f"{sizes}: a noise estimate needs at least {MIN_RUNS} runs a side")
    if a.sd == 0 and b.sd == 0:
        # The t statistic is undefined (0/0 or x/0). Runs that all agree show no noise, which is not the same as
        # having none (small counts repeat by chance: workingset_activate_anon 14, 14 against 12, 12).
        if a.mean == b.mean:
            return Verdict("within noise", 1.0, "every run gave the same value")
        return Verdict("no noise estimate", None, "each side's runs all gave one value")
    # From the exact sample deviations (statistics.stdev): scipy's own moments warn of cancellation when one
    # side's runs all agree (e.g. pgscan_direct_throttle 2, 2, 2), a case Welch's test handles.
    from scipy import stats as scipy_stats

    result = scipy_stats.ttest_ind_from_stats(a.mean, a.sd, a.n, b.mean, b.sd, b.n, equal_var=False)
    p = float(result.pvalue)
    if p < ALPHA:
        return Verdict("significant", p, f"Welch's t-test p = {p:.2g} < {ALPHA}")
    return Verdict("within noise", p, f"Welch's t-test p = {p:.2g} ≥ {ALPHA}")
