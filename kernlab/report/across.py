"""Chains across runs (a kernel matrix): one table per documented chain, its lines as rows and the runs as
columns, each cell the line's verdict on that run's kernel; below it, what each kernel does instead where the
chain does not hold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kernlab.report.chainviews import InsteadView, chain_verdict, instead_view
from kernlab.report.format import Cell, Table, table, verdict_style
from kernlab.report.views import RunFiles
from kernlab.results.chainrecords import ChainRecord, LineRecord
from kernlab.verify.chains import verdict_label


@dataclass(frozen=True)
class ChainAcross:
    name: str
    table: Table
    instead: tuple[tuple[str, InsteadView], ...]  # (run, its most complete recorded path) where it does not hold


def run_label(run: RunFiles, others: Sequence[RunFiles]) -> str:
    """The kernel a run used when the runs differ in kernel, else the folder's name."""
    versions = {(other.manifest.kernel.version if other.manifest.kernel else None) for other in others}
    kernel = run.manifest.kernel
    if len(versions) == len(others) and kernel is not None and kernel.version:
        return f"linux {kernel.version}"
    return run.folder.name


def line_cell(line: LineRecord) -> Cell:
    """A line's verdict on one kernel, with the name this kernel uses when a variant renamed it."""
    renamed = line.function and line.function not in line.text
    label = line.label or verdict_label(line.verdict, line.into)
    if line.verdict == "missing" and line.evidence.startswith("no such function"):
        label = "no symbol (gone, or inlined everywhere)"
    text = (f"renamed to {line.function}, " if renamed else "") + label
    return Cell(text, css=verdict_style(line.verdict).css)


def chains_across(runs: Sequence[RunFiles]) -> tuple[ChainAcross, ...]:
    """Every chain any run verified, in the first run's order; a run without it says "not verified"."""
    labels = [run_label(run, runs) for run in runs]
    by_run = [{chain.name: chain for chain in run.chains.chains} if run.chains else {} for run in runs]
    names = list(dict.fromkeys(name for chains in by_run for name in chains))
    across = []
    for name in names:
        present: list[ChainRecord | None] = [chains.get(name) for chains in by_run]
        model = next(chain for chain in present if chain is not None)
        verdicts = [Cell("not verified") if chain is None else Cell(
            f"{chain_verdict(chain).holds_text}" + ("" if chain.expect == "report" else
                                                      f" (expected: {chain_verdict(chain).outcome})"),
            css="badge ok" if chain.expectation_met() else "badge bad") for chain in present]
        rows: list[tuple[str | Cell, ...]] = [("chain verdict", *verdicts)]
        for index, line in enumerate(model.lines):
            if line.function is None:
                continue  # the article's annotations are the same text on every kernel
            cells = [line_cell(chain.lines[index]) if chain is not None and index < len(chain.lines)
                     else Cell("not verified") for chain in present]
            rows.append((Cell("  " * line.depth + line.text, code=True), *cells))
        instead = tuple((label, instead_view(chain.instead[0])) for label, chain in zip(labels, present, strict=True)
                        if chain is not None and chain.instead)
        across.append(ChainAcross(name, table(("documented line", *labels), rows), instead))
    return tuple(across)
