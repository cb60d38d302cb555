"""Tables on the terminal that keep their verdicts and numbers whole at any width from 80 columns: rich drops or
cuts the columns it cannot fit (a chain's verdict column, hits as `237,…`), so every column that must stay whole
gets the width it needs and only free text (a documented line, evidence, a status) gives way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from kernlab.report.chainviews import ChainView
from kernlab.report.format import fmt, verdict_style
from kernlab.report.graphviews import GraphTreeView
from kernlab.results.sweeprecords import SweepVariant

# The documented line is cut with … beyond this (a note in the tree): the report has it whole.
LINE_MAX_WIDTH = 52
# Narrower, evidence beside the line reads as a column of fragments: it goes under the line instead.
EVIDENCE_MIN_WIDTH = 32
PATH_MAX_WIDTH = 80  # a function graph's call path is cut with … beyond this
UNBOUNDED = 1_000_000  # a width no table reaches


def overhead(columns: int) -> int:
    """What a boxed rich table spends besides its cells: an edge each side, a divider between two columns and a
    space of padding each side of every cell."""
    return 2 + (columns - 1) + 2 * columns


def widest(header: str, cells: Iterable[str]) -> int:
    return max(cell_len(text) for text in (header, *cells))


def unbroken_width(header: str, cells: Iterable[str], wrap_header: bool = True) -> int:
    """A column whose cells (numbers, yes/no) never wrap nor get cut; its header wraps at spaces, if need be."""
    return max(cell_len(text) for text in (*(header.split() if wrap_header else [header]), *cells))


def narrowest(console: Console, table: Table) -> int:
    """A table's width with every wrappable cell wrapped as far as it goes (measured as if the terminal had no
    edge: rich measures within the width it is given)."""
    return console.measure(table, options=console.options.update_width(UNBOUNDED)).minimum


@dataclass(frozen=True)
class ChainRow:
    """A row of a chain's table: a documented line (or a leaf's call) with its verdict, hits and evidence."""

    line: str  # indented by its depth in the tree
    verdict: str
    hits: str
    detail: str  # what the verdict's label adds to the verdict word ("into zram_bvec_rw")
    evidence: str

    def cells(self) -> tuple[Text, Text, Text, Text]:
        """The line (never wrapped: cut with …), the verdict, the hits and the evidence (wrapped, long words
        folded)."""
        colour = verdict_style(self.verdict).colour
        evidence = Text.assemble(*([(self.detail, colour), ": "] if self.detail else []), (self.evidence, "dim"),
                                 overflow="fold")
        line = Text(self.line, no_wrap=True, overflow="ellipsis")
        return line, Text(self.verdict, style=colour), Text(self.hits), evidence

    @property
    def indent(self) -> int:
        return len(self.line) - len(self.line.lstrip(" "))


def chain_rows(view: ChainView) -> list[ChainRow]:
    """The tree's lines; chains.json files from before call trees: each leaf's path, its hits on the first call."""
    if view.tree:
        return [ChainRow("  " * t.depth + t.text, t.verdict, t.hits, t.label_detail, t.evidence) for t in view.tree]
    return [ChainRow(("↓ " if index else "") + call.function, call.verdict, "" if index else leaf.hits,
                     call.label_detail, call.evidence)
            for leaf in view.leaves for index, call in enumerate(leaf.calls)]


def chain_table(title: str, rows: Sequence[ChainRow], width: int) -> Table:
    """Verdict and hits right after the documented line, each exactly as wide as its longest cell, so rich never
    drops or cuts them; only the line (cut with …) and the evidence (wrapped) give way. The evidence has a column
    when the lines leave it EVIDENCE_MIN_WIDTH, else it is wrapped under its line, in the line's cell."""
    verdict_width = widest("verdict", (row.verdict for row in rows))
    hits_width = widest("hits", (row.hits for row in rows))
    line_width = min(widest("documented line", (row.line for row in rows)), LINE_MAX_WIDTH)
    beside = width - overhead(4) - verdict_width - hits_width - line_width >= EVIDENCE_MIN_WIDTH
    # Beside: the evidence column takes the rest of the width; under: the line's cell as much as it needs.
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, expand=beside)
    table.add_column("documented line" if beside else "documented line, evidence under it",
                     width=line_width if beside else None)
    table.add_column("verdict", no_wrap=True, width=verdict_width)
    table.add_column("hits", justify="right", no_wrap=True, width=hits_width)
    if beside:
        table.add_column("evidence", ratio=1)
    cell_width = width - overhead(3) - verdict_width - hits_width  # a line's cell, with its evidence under it
    for row in rows:
        line, verdict, hits, evidence = row.cells()
        if beside:
            table.add_row(line, verdict, hits, evidence)
        else:  # indented under its line, unless a deep line would leave it too narrow
            indent = min(row.indent + 2, max(cell_width - EVIDENCE_MIN_WIDTH, 0))
            table.add_row(Group(line, Padding(evidence, (0, 0, 0, indent))), verdict, hits)
    return table


def graph_tree_table(tree: GraphTreeView, width: int) -> Table:
    """A merged tree: documented functions bold, the rest dim, the cut-off lines dim italic; the numbers take the
    width they need, the call path what is left (cut with …)."""
    table = Table(title=f"{escape(tree.root)}: {tree.calls:,} calls", title_justify="left", box=box.SIMPLE_HEAD)
    numbers = {"calls": [row.calls for row in tree.rows], "mean µs": [row.mean_us for row in tree.rows],
               "share": [row.share for row in tree.rows]}
    room = width - overhead(1 + len(numbers)) - sum(widest(name, cells) for name, cells in numbers.items())
    table.add_column("call path", no_wrap=True, overflow="ellipsis",
                     max_width=max(len("call path"), min(PATH_MAX_WIDTH, room)))
    for name in numbers:
        table.add_column(name, justify="right", no_wrap=True)
    for row in tree.rows:
        style = "dim italic" if row.cut else "bold" if row.documented else "dim"
        table.add_row(f"[{style}]{escape(row.text)}[/]", row.calls, row.mean_us, row.share)
    return table


def sweep_table(title: str, variants: Sequence[SweepVariant], figures: Mapping[str, Sequence[str]],
                wrap_headers: bool) -> Table:
    """variant, then its verdicts (status, chains as expected), then the figures, one column each."""
    table = Table(title=title, title_justify="left")
    table.add_column("variant", no_wrap=True)  # its folder's name: short, and where to look
    table.add_column("status")  # wrapped, at least as wide as its longest word: the verdict stays whole
    expected = [fmt(variant.expectations_met) for variant in variants]
    for header, cells in {"chains as expected": expected, **figures}.items():
        table.add_column(header, width=unbroken_width(header, cells, wrap_headers))
    for index, variant in enumerate(variants):
        runs = f" ({variant.runs_complete}/{variant.repeat} runs)" if variant.repeat > 1 else ""
        table.add_row(variant.dir, variant.status + runs + (f": {variant.why}" if variant.why else ""),
                      expected[index], *(cells[index] for cells in figures.values()))
    return table


def fitting_sweep_table(console: Console, title: str, variants: Sequence[SweepVariant],
                        figures: Mapping[str, Sequence[str]]) -> Table | None:
    """The sweep's table with whole headers if it fits the terminal, else with wrapped ones, else None."""
    for wrap_headers in (False, True):
        table = sweep_table(title, variants, figures, wrap_headers)
        if narrowest(console, table) <= console.width:
            return table
    return None


def figures_by_variant(dirs: Sequence[str], figures: Mapping[str, Sequence[str]], width: int) -> list[Table]:
    """The figures with a row each and a column per variant, in as many tables as the width needs."""
    label_width = max(cell_len(label) for label in figures)
    widths = [unbroken_width(name, (cells[index] for cells in figures.values())) for index, name in enumerate(dirs)]
    tables, start = [], 0
    while start < len(dirs):
        end = start + 1
        while end < len(dirs) and overhead(2 + end - start) + label_width + sum(widths[start:end + 1]) <= width:
            end += 1
        table = Table(title="figures", title_justify="left")
        table.add_column("figure", no_wrap=True)
        for index in range(start, end):
            table.add_column(dirs[index], justify="right", width=widths[index])
        for label, cells in figures.items():
            table.add_row(label, *cells[start:end])
        tables.append(table)
        start = end
    return tables
