"""What a run says about its call chains and branch profile, as views every format draws the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kernlab.report.format import Cell, Table, fmt, table, verdict_style
from kernlab.results.chainrecords import (
    AlignedStepRecord,
    ChainRecord,
    ChainsFile,
    EdgeRecord,
    FunctionVerdictRecord,
    LeafRecord,
    LineRecord,
    RecordedPathRecord,
)
from kernlab.results.evidencerecords import BranchCounts, BranchesFile, BranchSiteRecord
from kernlab.results.schema import Manifest
from kernlab.verify.chains import shown_text, verdict_label
from kernlab.verify.witness import MIN_EXPECTED

NO_DETAIL = "(no per-function detail: chains.json is missing)"
NO_FUNCTIONS = "(no functions)"
NO_QUESTION_SITE = "No question site was found in the profile."
TRACING_DISABLED = "Tracing was disabled for this run: no call chains were verified."
NO_CHAINS_IN_LAB = "The lab names no call chains."
NO_CHAINS_FILE = "No chain verification results (chains.json is missing: the run may have stopped before verifying)."
EXPECT_TEXT = {"hold": "expected to hold", "not-hold": "expected not to hold",
               "report": "no expectation (reported only)"}


def holds_text(holds: bool, not_taken: int = 0) -> str:
    """A tree's summary: every line proved ("holds"), proved but for calls the run did not take, or not."""
    if holds and not_taken:
        return f"holds except {not_taken} branch{'es' if not_taken > 1 else ''} not taken"
    return "holds" if holds else "does not hold"


def label_detail(verdict: str, label: str) -> str:
    """What a label says beyond its verdict word: "into zram_bvec_rw" for "inlined into zram_bvec_rw", the whole
    label when it does not start with the word ("not in this kernel" for gone), nothing when it is the word."""
    if label == verdict:
        return ""
    return label.removeprefix(f"{verdict} ")


def lost_events_text(lost: int) -> str:
    return f"{lost:,} trace events were lost: a missing function may have been lost rather than absent."


@dataclass(frozen=True)
class ChainVerdict:
    """A chain's answer in one line: does it hold, on how many stacks, and was that what the lab expected."""

    name: str
    holds: bool
    hits: str
    expect: str
    ok: bool
    expect_reason: str = ""  # why the chain spec's facts changed the lab's expectation on this kernel
    not_taken: int = 0  # lines the run did not take (a pointer call to a branch of another setup: SWP_FS)

    @property
    def holds_text(self) -> str:
        return holds_text(self.holds, self.not_taken)

    @property
    def expect_text(self) -> str:
        return EXPECT_TEXT.get(self.expect, f"expected {self.expect}")

    @property
    def expect_why(self) -> str:
        """"expected not to hold (this kernel has no bdev_write_page: 3222d8c2a7f8 ...)", or just expect_text."""
        return f"{self.expect_text} ({self.expect_reason})" if self.expect_reason else self.expect_text

    @property
    def outcome(self) -> str:
        """ok / FAILED against the lab's expectation (kernlab exits 3 on FAILED)."""
        return "reported only" if self.expect == "report" else "ok" if self.ok else "FAILED"

    @property
    def header(self) -> str:
        """"holds, 227,564 hits; expected to hold: as expected"."""
        verdict = "reported only" if self.expect == "report" else "as expected" if self.ok else "NOT as expected"
        return f"{self.holds_text}, {self.hits} hits; {self.expect_why}: {verdict}"


@dataclass(frozen=True)
class IndirectView:
    call: str
    claim: str
    status: str
    evidence: str

    @property
    def colour(self) -> str:
        return "green" if self.status == "resolved" else "yellow" if self.status == "not checked" else "red"


class VerdictStyled:
    """A view of one verdict: its style and its label's detail, the same for a tree line and a call."""

    verdict: str
    label: str

    @property
    def css(self) -> str:
        return verdict_style(self.verdict).css

    @property
    def label_detail(self) -> str:
        return label_detail(self.verdict, self.label)


@dataclass(frozen=True)
class TreeLineView(VerdictStyled):
    """One documented line with its verdict; text has the name this kernel uses when a variant renamed it."""

    depth: int
    text: str
    verdict: str
    label: str
    hits: str
    evidence: str
    indirect: IndirectView | None
    graph: str = ""  # the function graph's word on the edge from the caller ("graph: seen 143 times"), if any
    graph_agrees: bool | None = None
    function: str | None = None  # the function this kernel calls on the line (None for an annotation)

    @property
    def full_evidence(self) -> str:
        """The evidence with the indirect call's claim and its check, when the line has one."""
        if self.indirect is None:
            return self.evidence
        i = self.indirect
        return f"{self.evidence}; {i.claim}: {i.status} ({i.evidence})"


@dataclass(frozen=True)
class CallView(VerdictStyled):
    function: str
    verdict: str
    label: str  # "inlined into zram_bvec_rw", "tail call", ...
    evidence: str


@dataclass(frozen=True)
class LeafView:
    leaf: str
    holds: str
    hits: str
    by_task: str
    calls: tuple[CallView, ...]


@dataclass(frozen=True)
class InsteadView:
    """A recorded path to a leaf of a chain that does not hold, aligned with the documented one."""

    title: str  # "path to zcomp_compress: 223,210 hits, 100.0% of its recorded stacks"
    steps: tuple[str, ...]  # outermost first: "pageout", "shrink_folio_list (was shrink_page_list)", "+new", ...


@dataclass(frozen=True)
class ChainView:
    verdict: ChainVerdict
    documented: str
    notes: tuple[str, ...]
    tree: tuple[TreeLineView, ...]  # empty in chains.json files from before call-tree specs: leaves then
    leaves: tuple[LeafView, ...]
    no_detail: str | None  # why there is neither a tree nor leaves
    instead: tuple[InsteadView, ...] = ()  # what the kernel does instead, when the chain does not hold
    # Edges where the function graph contradicts the stack verdict, each with both pieces of evidence.
    disagreements: tuple[str, ...] = ()
    witnessed: bool = False  # a function graph was recorded: the tree has its column


def chain_verdict(chain: ChainRecord) -> ChainVerdict:
    return ChainVerdict(name=chain.name, holds=chain.holds, hits=fmt(chain.hits), expect=chain.expect,
                        ok=chain.expectation_met(), expect_reason=chain.expect_reason,
                        not_taken=sum(line.verdict == "not taken" for line in chain.lines))


def _indirect(data: Mapping[str, Any] | None) -> IndirectView | None:
    if data is None:
        return None
    return IndirectView(*(str(data.get(key)) for key in ("call", "claim", "status", "evidence")))


def tree_line_view(line: LineRecord) -> TreeLineView:
    return TreeLineView(depth=line.depth, text=shown_text(line.text, line.function), verdict=line.verdict,
                        label=line.label or function_label(line), hits=fmt(line.hits, none="-"),
                        evidence=line.evidence, indirect=_indirect(line.indirect),
                        graph=graph_text(line.graph) if line.graph else "",
                        graph_agrees=line.graph.agrees if line.graph else None, function=line.function)


def graph_text(edge: EdgeRecord) -> str:
    if edge.status == "seen":
        return f"seen {edge.calls:,} times"
    if edge.status == "not seen" and edge.expected is not None and edge.expected < MIN_EXPECTED:
        return f"not seen (too few calls to tell: {edge.expected:,.1f} expected)"
    if edge.status == "not seen" and edge.lost and edge.agrees is None:
        return f"not seen (the windows lost {edge.lost:,} events: it may be among them)"
    return edge.status


@dataclass(frozen=True)
class GraphWord:
    """One thing the function graph says about some of a chain's documented calls ("seen 9 times")."""

    text: str
    functions: tuple[str, ...]  # the calls it says it of, in the tree's order
    disagrees: bool  # it contradicts the stacks' verdict on them


def graph_words(tree: Sequence[TreeLineView]) -> tuple[GraphWord, ...]:
    """A tree's graph column said once per word, in the order the tree first says each: a note the length of a
    sentence does not fit a column beside the verdicts."""
    grouped: dict[tuple[str, bool], list[str]] = {}
    for t in tree:
        if t.graph:
            grouped.setdefault((t.graph, t.graph_agrees is False), []).append(t.function or t.text)
    return tuple(GraphWord(text, tuple(functions), disagrees) for (text, disagrees), functions in grouped.items())


def disagreement_text(line: LineRecord) -> str:
    """Both witnesses of an edge they disagree on."""
    assert line.graph is not None
    return (f"{line.graph.caller} > {line.function}: the stacks say {line.label or function_label(line)} "
            f"({line.evidence}); the function graph: {graph_text(line.graph)} in its windows"
            + (f", which ran {line.graph.caller} {line.graph.caller_calls:,} times" if line.graph.caller_calls else ""))


def function_label(record: FunctionVerdictRecord | LineRecord) -> str:
    return verdict_label(record.verdict, record.into)


def leaf_view(leaf: LeafRecord) -> LeafView:
    calls = tuple(CallView(f.function, f.verdict, function_label(f), f.evidence) for f in leaf.functions)
    return LeafView(leaf=leaf.leaf, holds=holds_text(leaf.holds), hits=fmt(leaf.hits),
                    by_task=fmt(leaf.by_task) if leaf.by_task else "no hits", calls=calls)


def chain_records(chains: ChainsFile | None, manifest: Manifest) -> list[ChainRecord]:
    """chains.json's chains; when only the manifest's verdicts survived, those (without evidence)."""
    if chains is not None:
        return chains.chains
    return [ChainRecord(name=name, holds=o.holds, hits=o.hits, expect=o.expect, ok=o.ok)
            for name, o in manifest.chains.items()]


def step_text(step: AlignedStepRecord) -> str:
    """One aligned step as read in a path: `+new`, `-gone (gone)`, `new (was old)`, `f (inlined into g)`."""
    if step.recorded is None:
        return f"-{step.documented} ({step.status})"
    if step.status == "in its place":
        return f"{step.recorded} (in place of {step.documented})"
    if step.documented is None:
        return f"+{step.recorded}" + (step.status[len("new"):] if step.status.startswith("new ") else "")
    where = step.why if step.status == "renamed" else step.status
    name = f"{step.recorded} (was {step.documented}" + (f", {where})" if where != "observed" else ")") \
        if step.status == "renamed" else step.recorded
    return name if where == "observed" or step.status == "renamed" else f"{name} ({where})"


def instead_view(path: RecordedPathRecord) -> InsteadView:
    if path.source == "graph":
        return InsteadView(f"in the function graph, below {path.under}, where {path.leaf} was: {fmt(path.hits)} "
                           f"calls, {path.share:.1%} of {path.under}'s", tuple(step_text(step) for step in path.steps))
    return InsteadView(f"path to {path.leaf}: {fmt(path.hits)} hits, {path.share:.1%} of its recorded stacks",
                       tuple(step_text(step) for step in path.steps))


def chain_view(chain: ChainRecord) -> ChainView:
    tree = tuple(tree_line_view(line) for line in chain.lines)
    leaves = tuple(leaf_view(leaf) for leaf in chain.leaves)
    return ChainView(verdict=chain_verdict(chain), documented=chain.documented, notes=tuple(chain.notes), tree=tree,
                     leaves=leaves, no_detail=None if tree or leaves else NO_DETAIL,
                     instead=tuple(instead_view(path) for path in chain.instead),
                     disagreements=tuple(disagreement_text(line) for line in chain.lines
                                         if line.graph and line.graph.agrees is False),
                     witnessed=any(line.graph for line in chain.lines))


def chains_absent_text(manifest: Manifest) -> str:
    tracing = manifest.lab.get("tracing")
    if isinstance(tracing, Mapping) and tracing.get("enabled") is False:
        return TRACING_DISABLED
    return NO_CHAINS_FILE if manifest.lab.get("chains") else NO_CHAINS_IN_LAB


def verdict_table(verdicts: list[ChainVerdict]) -> Table:
    """The answer first: one row per chain."""
    return table(("chain", "verdict", "hits", "expectation"), [
        (Cell(v.name, code=True), Cell(v.holds_text, css="badge yes" if v.holds else "badge no"), v.hits,
         Cell(v.expect_text if v.expect == "report" else f"{v.expect_why}: {v.outcome}",
              css="" if v.expect == "report" else "badge ok" if v.ok else "badge bad"))
        for v in verdicts])


# ----- branches.json -----


def percent_wrong(counts: BranchCounts | None) -> str:
    if counts is None:
        return "unknown"
    total = counts.correct + counts.incorrect
    return f"{100 * counts.incorrect / total:.1f} %" if total else "no hits"


def counts_cells(counts: BranchCounts | None) -> tuple[str, str, str]:
    if counts is None:
        return "unknown", "unknown", "unknown"
    return fmt(counts.correct), fmt(counts.incorrect), percent_wrong(counts)


@dataclass(frozen=True)
class QuestionView:
    function: str
    where: str  # "mm/util.c:775"
    annotation: str
    source: str
    counts: Table  # per workload and in total


@dataclass(frozen=True)
class BranchView:
    """branches.json: the answer is said at the top, these tables in the detail."""

    answer: str  # "Branch profile not available: ..." when the kernel could not count branches
    available: bool
    question: QuestionView | None
    no_question: str | None
    swap_path: Table | None


def site_where(site: BranchSiteRecord) -> str:
    return fmt(site.file) + (f":{site.line}" if site.line is not None else "")


def question_view(site: BranchSiteRecord) -> QuestionView:
    rows = [(name, *counts_cells(counts)) for name, counts in site.per_workload.items()]
    return QuestionView(function=site.function, where=site_where(site), annotation=fmt(site.annotation),
                        source=site.source or "",
                        counts=table(("workload", "correct", "incorrect", "% wrong"),
                                     [*rows, ("total", *counts_cells(site.total))]))


def branch_view(branches: BranchesFile | None) -> BranchView | None:
    if branches is None:
        return None
    if not branches.available:
        return BranchView(answer=f"Branch profile not available: {branches.why or 'no reason recorded'}",
                          available=False, question=None, no_question=None, swap_path=None)
    question = question_view(branches.question) if branches.question else None
    swap_path = table(("function", "site", "annotation", "correct", "incorrect", "% wrong", "source"), [
        (s.function, site_where(s), fmt(s.annotation), *counts_cells(s.total), Cell(s.source or "", code=True))
        for s in branches.swap_path]) if branches.swap_path else None
    return BranchView(answer=f"Branch profile: {branches.answer}" if branches.answer else "", available=True,
                      question=question, no_question=None if question else NO_QUESTION_SITE, swap_path=swap_path)
