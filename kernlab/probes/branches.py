"""Branch profiles: parse trace_stat/branch_annotated, count per workload, and answer the likely/unlikely question."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kernlab.errors import KernlabError

BRANCH_ANNOTATED = "/sys/kernel/tracing/trace_stat/branch_annotated"
KCONFIG_SYMBOL = "CONFIG_PROFILE_ANNOTATED_BRANCHES"
# GCC's default for __builtin_expect (param builtin-expect-probability): the hinted way is taken 90% of the time.
GCC_EXPECT_PROBABILITY = 0.90

# kernel/trace/trace_branch.c: "%8lu %8lu " (or "%8lu/%lu %*lu " for constant conditions), then the percent
# wrong ("X" when never evaluated), function (%-30.30s), file basename (%-20.20s) and line.
ROW = re.compile(r"^\s*(?P<correct>\d+)(?:/\d+)?\s+(?P<incorrect>\d+)\s+(?:\d+|X)\s+"
                 r"(?P<function>\S+)\s+(?P<file>\S+)\s+(?P<line>\d+)\s*$")
HEADER = re.compile(r"^\s*correct\s+incorrect\s+%\s+Function\s+File\s+Line\s*$")


@dataclass(frozen=True, order=True)
class Site:
    """One likely()/unlikely() as the profiler names it (the file is a basename, function names stop at 30)."""

    function: str
    file: str
    line: int


@dataclass(frozen=True)
class Counts:
    correct: int = 0
    incorrect: int = 0

    @property
    def total(self) -> int:
        return self.correct + self.incorrect

    @property
    def wrong_share(self) -> float | None:
        return self.incorrect / self.total if self.total else None

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.correct + other.correct, self.incorrect + other.incorrect)

    def __sub__(self, other: Counts) -> Counts:
        return Counts(self.correct - other.correct, self.incorrect - other.incorrect)

    def as_dict(self) -> dict:
        return {"correct": self.correct, "incorrect": self.incorrect}


Snapshot = dict[Site, Counts]


def parse_branch_annotated(text: str, source: str = "branch_annotated") -> Snapshot:
    """Counts per site. A header inlined into many files has one row per file that uses it: they are summed."""
    lines = text.splitlines()
    if not lines or not HEADER.match(lines[0]):
        raise KernlabError(f"{source}: not a trace_stat/branch_annotated table (first line {lines[:1]!r})")
    snapshot: Snapshot = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip() or set(line.split()) <= {"-------", "---------", "-", "--------", "----"}:
            continue
        match = ROW.match(line)
        if not match:
            raise KernlabError(f"{source}: line {number}: not a branch_annotated row: {line.strip()!r}")
        site = Site(match["function"], match["file"], int(match["line"]))
        snapshot[site] = snapshot.get(site, Counts()) + Counts(int(match["correct"]), int(match["incorrect"]))
    return snapshot


def difference(before: Snapshot, after: Snapshot) -> Snapshot:
    """What happened between two snapshots (the counters only grow, and the table is never reset)."""
    return {site: after[site] - before.get(site, Counts()) for site in after
            if after[site] != before.get(site, Counts())}


@dataclass(frozen=True)
class SiteSource:
    path: str  # relative to the source tree, e.g. mm/util.c
    text: str  # the annotated source line
    annotation: str | None  # "likely" or "unlikely"; None when it is hidden in a macro on that line


# Where the swap path's annotated branches live; searched in this order for a basename.
SOURCE_DIRS = ("mm", "drivers/block/zram", "include/linux", "block", "kernel", "lib", "arch/x86", "include")


def find_site_source(tree: Path, site: Site) -> SiteSource | None:
    """The source line a profiler row points at: the first file with that basename whose line has likely();
    else the first such file at all (the unlikely() is then inside a macro such as WARN_ON, annotation None)."""
    fallback = None
    for directory in SOURCE_DIRS:
        for path in sorted((tree / directory).rglob(site.file)):
            lines = path.read_text(errors="replace").splitlines()
            if site.line <= len(lines):
                text = lines[site.line - 1].strip()
                if "likely(" in text:
                    return SiteSource(str(path.relative_to(tree)), text,
                                      "unlikely" if "unlikely(" in text else "likely")
                fallback = fallback or SiteSource(str(path.relative_to(tree)), text, None)
    return fallback


@dataclass(frozen=True)
class SiteReport:
    site: Site
    source: SiteSource | None
    per_workload: dict[str, Counts]

    @property
    def total(self) -> Counts:
        return sum(self.per_workload.values(), Counts())

    def as_dict(self) -> dict:
        return {"function": self.site.function, "file": self.source.path if self.source else self.site.file,
                "line": self.site.line, "source": self.source.text if self.source else None,
                "annotation": self.source.annotation if self.source else None,
                "per_workload": {name: counts.as_dict() for name, counts in self.per_workload.items()},
                "total": self.total.as_dict()}


def per_workload(snapshots: Mapping[str, tuple[Snapshot, Snapshot]]) -> dict[str, Snapshot]:
    """{workload: (before, after)} -> {workload: what it added}."""
    return {name: difference(before, after) for name, (before, after) in snapshots.items()}


def site_reports(deltas: Mapping[str, Snapshot], functions: list[str],
                 locate: Callable[[Site], SiteSource | None]) -> list[SiteReport]:
    """Every annotated branch in `functions` that any workload evaluated, most often wrong first."""
    sites = sorted({site for delta in deltas.values() for site in delta if site.function in functions})
    reports = [SiteReport(site, locate(site), {name: delta.get(site, Counts()) for name, delta in deltas.items()})
               for site in sites]
    return sorted(reports, key=lambda r: (-(r.total.incorrect), r.site))


def question_site(reports: list[SiteReport], functions: list[str], source_matches: str) -> SiteReport | None:
    """The site the lab asks about: in one of `functions`, its source line matching the regex."""
    pattern = re.compile(source_matches)
    for report in reports:
        if (report.site.function in functions and report.source and report.source.annotation
                and pattern.search(report.source.text)):
            return report
    return None


def _share(counts: Counts) -> str:
    share = counts.wrong_share
    return "never evaluated" if share is None else f"{share:.1%} wrong"


def answer(question: SiteReport | None, summary: Mapping, functions: list[str],
           baseline: Counts | None = None) -> str:
    """One paragraph that answers from the numbers (and says so when there are none)."""
    if question is None:
        return (f"No annotated branch in {', '.join(functions)} matching the question was evaluated during the "
                "workloads, so these numbers cannot say whether the annotation is right.")
    total = question.total
    if total.total == 0:
        return (f"The annotated branch in {question.site.function}() was never evaluated during the workloads, "
                "so these numbers cannot say whether the annotation is right.")
    source = question.source
    assert source is not None  # question_site only returns sites whose source line was found
    taken = total.incorrect if source.annotation == "unlikely" else total.correct
    taken_share = taken / total.total
    hint_share = 1 - GCC_EXPECT_PROBABILITY
    workloads = "; ".join(f"{name}: {_share(counts)} of {counts.total:,}"
                          for name, counts in question.per_workload.items())
    swapped = (f" while the workloads swapped {summary['pswpout_pages']:,} pages out and "
               f"{summary.get('pswpin_pages', 0):,} in") if "pswpout_pages" in summary else ""
    text = (f"In {question.site.function}() ({source.path}:{question.site.line}, `{source.text}`) the "
            f"{source.annotation}() annotation was right {total.correct:,} times and wrong {total.incorrect:,} "
            f"times out of {total.total:,} ({_share(total)}){swapped}; per workload: {workloads}. ")
    if baseline is not None and baseline.total:
        text += (f"From boot to the first workload (no swapping yet) it was {_share(baseline)} of "
                 f"{baseline.total:,} evaluations. ")
    if source.annotation != "unlikely":
        return text + f"The branch was taken in {taken_share:.1%} of evaluations."
    gcc = (f"the {hint_share:.0%} that GCC assumes for an unlikely() branch (its default "
           "builtin-expect-probability is 90%)")
    # 5.15's page_mapping() takes a struct page; 6.1's folio_mapping() a folio.
    unit = "folios" if "folio" in question.site.function else "pages"
    if taken_share <= hint_share:
        return text + (f"So even under swap pressure the branch is taken in only {taken_share:.1%} of calls, "
                       f"within {gcc}: most {unit} that reach this function are not in the swap cache, and the "
                       "annotation keeps that common path straight.")
    return text + (f"So under swap pressure the annotation does not hold: the branch is taken in {taken_share:.1%} "
                   f"of calls, far above {gcc}. The hint describes a system whose {unit} are mostly page cache or "
                   "anonymous memory outside the swap cache; while anonymous memory cycles through zram, most "
                   f"{unit} reaching this function are in the swap cache. A wrong hint costs a taken jump on the "
                   "hot path, never a wrong result, which is why it can stay.")


def branch_report(deltas: Mapping[str, Snapshot], functions: list[str], question_functions: list[str],
                  source_matches: str, summary: Mapping, locate: Callable[[Site], SiteSource | None],
                  baseline: Snapshot | None = None) -> dict:
    """branches.json: the question's site per workload, the swap path's sites, and the answer.

    baseline: the table before the first workload (counts since boot), to contrast with the workloads.
    """
    reports = site_reports(deltas, sorted(set(functions) | set(question_functions)), locate)
    question = question_site(reports, question_functions, source_matches)
    before = baseline.get(question.site, Counts()) if question and baseline is not None else None
    data = question.as_dict() if question else None
    if data is not None and before is not None:
        data["before_workloads"] = before.as_dict()
    return {"available": True, "question": data, "swap_path": [report.as_dict() for report in reports],
            "answer": answer(question, summary, question_functions, before)}


def unavailable(why: str) -> dict:
    return {"available": False, "why": why, "question": None, "swap_path": [], "answer": why}
