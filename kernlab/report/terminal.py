"""The report's views on the terminal (rich), for the `inv lab...` tasks: the same words, figures and verdict
styles as report.md and report.html."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from kernlab.config.lab import VmSpec
from kernlab.errors import KernlabError
from kernlab.report.chainviews import TreeLineView, chain_verdict, chain_view, counts_cells, graph_words, site_where
from kernlab.report.comparison import FIGURE_COLUMNS, figure_cells
from kernlab.report.format import Table as FormatTable
from kernlab.report.format import figure_rows, fmt, is_number_text
from kernlab.report.graphviews import graph_view
from kernlab.report.noise import ONE_RUN_EACH, mean_text, noise_view, pair_rows, spread_table
from kernlab.report.terminal_tables import (
    chain_rows,
    chain_table,
    figures_by_variant,
    fitting_sweep_table,
    graph_tree_table,
    sweep_table,
)
from kernlab.report.views import (
    NO_SUMMARY,
    connection_text,
    fallback_note,
    guest_note,
    lab_section,
    status_of,
    vm_text,
)
from kernlab.results import stats
from kernlab.results.aggregate import first_complete_run, group_aggregate
from kernlab.results.chainrecords import ChainRecord
from kernlab.results.compare import Difference, compare, flatten, run_settings
from kernlab.results.evidencerecords import BranchesFile
from kernlab.results.folder import ResultsFolder, read_aggregate
from kernlab.results.schema import AccelRecord, KernelRecord
from kernlab.results.sweeprecords import AggregateFile, ObserverEffect, SweepVariant


def print_summary(console: Console, folder: Path) -> None:
    """The run's status (when it did not complete), a kernel fallback, the VM as the guest saw it, and its key
    figures."""
    results = ResultsFolder.open(folder)
    manifest, summary = results.manifest(), results.summary()
    kernel, accel = manifest.kernel or KernelRecord(), manifest.accel or AccelRecord()
    status = status_of(manifest)
    if not status.complete:
        console.print(f"[red]status:[/] {escape(status.text)}")
    for note in (fallback_note(manifest), guest_note(manifest), connection_text(manifest)):
        if note:
            console.print(f"[yellow]{escape(note)}[/]")
    vm = vm_text(lab_section(manifest.lab, "vm", VmSpec), manifest.guest)
    console.print(f"VM: {escape(vm)}" + ("" if manifest.guest else
                                         " [dim](as asked: what the guest brought up was not recorded)[/]"))
    rows = figure_rows(summary.figures() if summary else {}, only_key_figures=True)
    if not rows:
        console.print(NO_SUMMARY)
        return
    table = Table(title=f"{manifest.lab_name or results.path.name}: linux {fmt(kernel.version)} "
                        f"({fmt(kernel.source)}), accel {fmt(accel.used)}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)


def _verdict_title(chain: ChainRecord) -> str:
    v = chain_verdict(chain)
    holds = f"[green]{v.holds_text}[/]" if v.holds else f"[red]{v.holds_text}[/]"
    expectation = "" if v.expect == "report" else \
        f" ({escape(v.expect_why)}: [{'green' if v.ok else 'red'}]{v.outcome}[/])"
    return f"chain {escape(v.name)}: {holds}, {v.hits} hits{expectation}"


def _print_graph_words(console: Console, tree: Sequence[TreeLineView]) -> None:
    """The function graph's word on the documented calls, below their table: one wrapped paragraph per word."""
    for word in graph_words(tree):
        said = Text.assemble("function graph, ", (word.text, "red" if word.disagrees else "cyan"), ": ",
                             ", ".join(word.functions))
        console.print(Padding(said, (0, 0, 0, 2)))


def print_chains(console: Console, chains: Sequence[ChainRecord], sampling: str | None = None) -> None:
    """Each chain as its documented tree, indented like the article, every line with its verdict and hits
    (chains.json files from before call trees: each leaf's path); the function graph's word below each tree.
    sampling: chains.json's word on how the stacks and hits were taken, said first."""
    if sampling and chains:
        console.print(f"[bold]evidence[/]: {escape(sampling)}")
    for chain in chains:
        view = chain_view(chain)
        for text in view.disagreements:
            console.print(f"  [red bold]the two witnesses disagree:[/] {escape(text)}")
        console.print(chain_table(_verdict_title(chain), chain_rows(view), console.width))
        _print_graph_words(console, view.tree)
        for t in view.tree:
            if t.indirect:
                i = t.indirect
                console.print(f"  indirect call {escape(i.call)}: {escape(i.claim)}: [{i.colour}]{escape(i.status)}[/] "
                              f"({escape(i.evidence)})")
        for note in chain.notes:
            console.print(f"  note: {escape(note)}")
        if chain.instead:
            console.print("  [bold]what this kernel does instead[/] (+ new on the path, - documented but not on it):")
        for path in view.instead:
            console.print(f"    {escape(path.title)}:\n      {escape(' > '.join(path.steps))}")


def print_graph(console: Console, folder: Path, verified: Path | None = None) -> None:
    """Each root's merged function graph, indented like the article: documented functions bold, the rest dim,
    small callees in a cut-off line; then where its time goes. With `verified`, the graph and chains written
    there by a re-verification (`inv lab.verify`)."""
    results = ResultsFolder.open(folder)
    verdicts = ResultsFolder(verified) if verified is not None else results
    chains = verdicts.chains()
    accel = results.manifest().accel
    view = graph_view(verdicts.graph(), results.graph_capture(), chains.chains if chains else [],
                      accel.used if accel else None, chains.graph_hidden_returns if chains else None)
    if view is None:
        return
    console.print(f"[bold]function graph[/]: {escape(view.summary)}")
    if view.losses:
        console.print(f"[yellow]{escape(view.losses)}[/]")
    if view.hidden_returns:
        console.print(escape(view.hidden_returns))
    for tree in view.trees:
        console.print(graph_tree_table(tree, console.width))
        if tree.self_time:
            shares = ", ".join(f"{escape(name)} {us:,.1f} µs" for name, us in tree.self_time)
            console.print(f"  self time per {escape(tree.root)} call: {shares}")
        if tree.probe_cost:
            console.print(f"  {escape(tree.probe_cost)}")
    console.print(f"[dim]{escape(view.duration_note)}[/]")


def print_branches(console: Console, branches: BranchesFile | Path | None) -> bool:
    """The branch-profile answer (branches.json, or the results folder holding it), if the lab asked for one;
    False when the kernel could not count branches."""
    if isinstance(branches, Path):
        branches = ResultsFolder.open(branches).branches()
    if branches is None:
        return True
    if not branches.available:
        console.print(f"[red]branch profile unavailable:[/] {escape(branches.why or 'no reason recorded')}")
        return False
    table = Table(title="annotated branches on the swap path (counted during the workloads)", title_justify="left")
    for column in ("function", "source", "annotation", "correct", "incorrect", "% wrong"):
        number = column in ("correct", "incorrect", "% wrong")  # never wrapped, so never cut
        table.add_column(column, justify="right" if number else "left", no_wrap=number)
    for site in branches.swap_path:
        table.add_row(site.function, site_where(site), fmt(site.annotation), *counts_cells(site.total))
    console.print(table)
    console.print(f"[bold]answer:[/] {escape(branches.answer)}")
    return True


def _figures(folder: Path) -> dict:
    try:
        summary = ResultsFolder.open(folder).summary()
    except KernlabError:
        return {}
    return summary.figures() if summary else {}


def _rich(view: FormatTable, title: str) -> Table:
    """A report table (kernlab.report.format.Table) on the terminal; number columns right-aligned."""
    table = Table(title=title, title_justify="left")
    for index, header in enumerate(view.headers):
        numbers = bool(view.rows) and all(is_number_text(row[index] if isinstance(row[index], str) else
                                                         row[index].text) for row in view.rows)
        table.add_column(header, justify="right" if numbers else "left", overflow="fold")
    for row in view.rows:
        table.add_row(*(escape(cell if isinstance(cell, str) else cell.text) for cell in row))
    return table


def print_sweep(console: Console, folder: Path, variants: Sequence[SweepVariant], title: str) -> None:
    """The variants a sweep ran, with their status and the figures the comparison report compares (in a table
    of their own when one is too wide); where they were repeated, their figures over the repeats, each difference
    from its baseline marked (noise.baselines)."""
    repeated = any(variant.repeat > 1 for variant in variants)
    per_variant = [] if repeated else [figure_cells(_figures(folder / variant.dir)) for variant in variants]
    figures = {header: [cells[index] for cells in per_variant] for index, (header, _) in enumerate(FIGURE_COLUMNS)
               if per_variant}
    table = fitting_sweep_table(console, title, variants, figures)
    apart = table is None and bool(figures)  # too wide with the figures: they get tables of their own
    if table is None:
        table = fitting_sweep_table(console, title, variants, {}) or sweep_table(title, variants, {},
                                                                                  wrap_headers=True)
    console.print(table)
    if apart:
        for figures_table in figures_by_variant([variant.dir for variant in variants], figures, console.width):
            console.print(figures_table)
    if repeated:
        groups = [(v.dir, aggregate) for v in variants if (aggregate := _aggregate(folder / v.dir)) is not None]
        view = noise_view(groups)
        if view is not None:
            console.print(_rich(view.table, f"figures over the repeats: {view.baselines}"))
            console.print(f"[dim]{escape(view.method)}; {escape(view.runs_note)}[/]")


def _aggregate(folder: Path) -> AggregateFile | None:
    try:
        return read_aggregate(folder)
    except KernlabError:
        return None


def print_repeats(console: Console, folder: Path, title: str) -> None:
    """A lab's own repeats: each figure's n, mean, sd, min, max and interval."""
    aggregate = _aggregate(folder)
    if aggregate is None:
        console.print(f"[red]no aggregate[/] in {escape(str(folder))}")
        return
    console.print(_rich(spread_table(aggregate), f"{title}: {len(aggregate.complete)}/{aggregate.repeat} complete"))
    console.print(f"[dim]{escape(aggregate.method)}[/]")


def print_observer(console: Console, effect: ObserverEffect) -> None:
    """traced against untraced: each key figure's mean ± 95 % half width on each side, the ratio and the verdict."""
    table = Table(title=f"observer effect: {effect.lab}, {effect.repeat} runs a side", title_justify="left")
    for column in ("figure", "untraced", "traced", "traced/untraced", "verdict"):
        table.add_column(column, overflow="fold", justify="left" if column in ("figure", "verdict") else "right")
    for row in effect.rows:
        verdict = f"{row.decision} (p {row.p:.2g})" if row.p is not None else row.decision
        table.add_row(row.label, mean_text(row.untraced_mean, row.untraced_half_width),
                      mean_text(row.traced_mean, row.traced_half_width),
                      f"{row.ratio:.2f}x" if row.ratio is not None else "", verdict)
    console.print(table)
    console.print(f"[dim]{escape(effect.method)}; runs in {escape(effect.folder)}[/]")


def print_differences(console: Console, sections: Sequence[tuple[str, Sequence[Difference]]]) -> None:
    """Tables of differences (kernlab.results.compare.compare), one per (title, rows); "title: none" when empty."""
    for title, rows in sections:
        table = Table(title=title, title_justify="left")
        for column in ("key", "A", "B", "change"):
            table.add_column(column, overflow="fold", justify="right" if column == "change" else "left")
        for row in rows:
            table.add_row(row.key, str(row.a), str(row.b), row.change)
        console.print(table if rows else f"{title}: none")


def print_run_diff(console: Console, a: Path, b: Path) -> None:
    """What differs between two runs (folders or their manifest.json), settings first, then figures; between two
    repeat sets (or a set and a run), every figure's spread on each side and whether the difference is beyond
    the noise."""
    if read_aggregate(a) is not None or read_aggregate(b) is not None:
        print_group_diff(console, a, b)
        return
    runs = [ResultsFolder.open(path) for path in (a, b)]
    settings = compare(*(run_settings(run.manifest()) for run in runs))
    figures = compare(*(flatten(_figures(run.path)) for run in runs), numbers_only=True)
    print_differences(console, [(f"settings that differ: A={runs[0].path}  B={runs[1].path}", settings),
                                ("figures", figures)])
    if figures:
        console.print(f"[yellow]{escape(ONE_RUN_EACH)}[/]")


def print_group_diff(console: Console, a: Path, b: Path) -> None:
    sides = [group_aggregate(path) for path in (a, b)]
    for path, side in zip((a, b), sides, strict=True):
        if not side.complete:
            raise KernlabError(f"{path}: no complete run to compare")
    # The settings of each side's first complete run (a repeat set's runs share theirs).
    firsts = [ResultsFolder.open(first_complete_run(path)) for path in (a, b)]
    settings = compare(*(run_settings(run.manifest()) for run in firsts))
    print_differences(console, [(f"settings that differ: A={firsts[0].path}  B={firsts[1].path}", settings)])
    table = Table(title=f"figures: A={a}  B={b}", title_justify="left")
    for column in ("figure", "B against A", "A", "B", "change"):  # the verdict first
        table.add_column(column, overflow="fold", justify="right" if column in ("A", "B", "change") else "left")
    colours = {"significant": "bold", "within noise": "dim", "no noise estimate": "yellow"}
    for row in pair_rows(*sides):
        table.add_row(escape(row.figure), f"[{colours[row.decision]}]{escape(row.text)}[/]", row.a, row.b, row.change)
    console.print(table)
    console.print(f"[dim]{escape(sides[0].method or stats.METHOD)}[/]")
