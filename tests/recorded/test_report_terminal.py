"""The report's views on the terminal: what `inv lab`, `inv lab.verify`, `inv lab.sweep` and `inv lab.rerun` print."""

from __future__ import annotations

import io
import json
import re
import typing
from pathlib import Path

import pytest
from rich.console import Console

from kernlab.report import terminal
from kernlab.report.format import fmt
from kernlab.results.chainrecords import ChainRecord
from kernlab.results.folder import ResultsFolder
from kernlab.results.sweeprecords import SweepVariant
from kernlab.verify import chains
from tests.common import FIXTURES, SHARED_FIXTURES, recorded_run

TRACED = FIXTURES / "results-6.1-sizing"
UNTRACED = FIXTURES / "results-6.1-untraced"
TREES = FIXTURES / "results-5.15.135-trees"
GRAPH = FIXTURES / "results-5.15.135-graph"


# Every recorded run with chains.json: here and, where ../shared sits beside the repository, the project's own.
RECORDED = sorted(folder for root in (FIXTURES, SHARED_FIXTURES)
                  for folder in root.glob("results-*") if (folder / "chains.json").is_file())


VERDICT_WORDS = "|".join(re.escape(word) for word in typing.get_args(chains.Verdict))


# A table row's first line: the documented line (maybe cut with …), then the verdict word, then the hits, if any.
CHAIN_ROW = re.compile(rf"^  (?P<line>.*?\S)\s{{2,}}(?P<verdict>{VERDICT_WORDS})(\s+(?P<hits>[\d,]+|-))?"
                       r"(\s{3,}\S.*)?\s*$")


def console(width: int = 200) -> Console:
    return Console(record=True, width=width, highlight=False, color_system=None, file=io.StringIO())


def text(out: Console) -> str:
    return out.export_text(clear=False)


def test_summary_shows_the_key_figures_and_an_incomplete_run_says_why(tmp_path: Path) -> None:
    out = console()
    terminal.print_summary(out, TRACED)
    printed = text(out)
    assert "sizing: linux 6.1.192 (debian:6.1), accel tcg" in printed
    assert re.search(r"pswpout \(pages\)\s+│\s+229,186", printed)
    assert "status:" not in printed
    folder = recorded_run(TRACED, tmp_path, folder="run")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(status="incomplete", why="guest did not answer SSH", failed_step="boot")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "summary.json").unlink()
    out = console()
    terminal.print_summary(out, folder / "manifest.json")
    printed = text(out)
    assert "status: INCOMPLETE: guest did not answer SSH (failed step: boot)" in printed
    assert "No summary.json" in printed


def test_chains_print_as_trees_with_verdicts_indirect_calls_and_notes() -> None:
    recorded = ResultsFolder.open(TREES).chains()
    assert recorded is not None
    out = console()
    terminal.print_chains(out, recorded.chains)
    printed = text(out)
    assert "chain article-pageout: holds, 229,139 hits (expected to hold: ok)" in printed
    assert "chain wrong-read-under-writepage: does not hold, 0 hits (expected not to hold: ok)" in printed
    assert re.search(r"    pageout\s+inlined\s+231,043\s+into shrink_page_list: DWARF inline record", printed)
    assert "indirect call mapping->a_ops->writepage: swap_aops.writepage = swap_writepage: resolved" in printed
    assert "note: do_page_fault is exc_page_fault on x86_64" in printed


def expected_rows(chain: ChainRecord) -> list[tuple[str, str, str | None]]:
    """(documented line as indented, verdict word, hits as kernlab writes numbers) of each row of a chain's table;
    a leaf's path (chains.json from before call trees) has its hits on its first call only."""
    if chain.lines:
        return [("  " * line.depth + chains.shown_text(line.text, line.function), line.verdict,
                 fmt(line.hits, none="-")) for line in chain.lines]
    return [(("↓ " if index else "") + call.function, call.verdict, None if index else fmt(leaf.hits))
            for leaf in chain.leaves for index, call in enumerate(leaf.functions)]


@pytest.mark.parametrize("width", [80, 100, 120])
@pytest.mark.parametrize("folder", RECORDED, ids=lambda folder: folder.name)
def test_every_chain_line_keeps_its_verdict_and_whole_hits_at_any_width(folder: Path, width: int) -> None:
    """A graph note or a long line once made rich drop the verdict column and cut hits to 237,…: each documented
    line's first printed line has its verdict word and its whole hit count, at 80 columns too."""
    recorded = ResultsFolder.open(folder).chains()
    assert recorded is not None and recorded.chains
    for chain in recorded.chains:
        out = console(width)
        terminal.print_chains(out, [chain])
        printed = text(out)
        assert not re.search(r"\d…|…\d", printed), printed  # no number cut
        rows = [match for line in printed.splitlines() if (match := CHAIN_ROW.match(line))]
        expected = expected_rows(chain)
        assert [(row["verdict"], row["hits"]) for row in rows] == [(v, hits) for _, v, hits in expected], printed
        for row, (line, _, _) in zip(rows, expected, strict=True):
            shown = row["line"]
            assert shown == line or (shown.endswith("…") and line.startswith(shown[:-1])), (shown, line)
        assert all(len(line) <= width for line in printed.splitlines())


def test_the_graph_notes_go_below_the_table_and_the_trampoline_note_into_the_graph_section() -> None:
    recorded = ResultsFolder.open(GRAPH).chains()
    assert recorded is not None
    out = console(80)
    terminal.print_chains(out, [chain for chain in recorded.chains if chain.name == "pagein-swapcache"])
    printed = text(out)
    table, below = printed.split("function graph, ", 1)
    assert "outside the window" not in table and "too few calls" not in table
    notes = " ".join(("function graph, " + below).split())
    assert "function graph, not seen (too few calls to tell: 0.1 expected): swapin_readahead" in notes
    assert "function graph, seen 9 times: zram_bvec_rw, zs_map_object" in notes
    out = console(80)
    terminal.print_summary(out, GRAPH)
    assert "return_to_handler" not in text(out)  # the top box: the kernel's figures, not kernlab's probes
    out = console(80)
    terminal.print_graph(out, GRAPH)
    assert re.search(r"^  do_swap_page +2 +1,829.5 +100.0%", text(out), re.MULTILINE)  # every number column
    section = " ".join(text(out).split())
    assert section.startswith("function graph: function_graph of")
    assert "trampoline (return_to_handler) instead of the call site: 344 at __swap_writepage" in section


def test_chains_without_trees_print_their_leaves() -> None:
    recorded = ResultsFolder.open(TRACED).chains()
    assert recorded is not None and not recorded.chains[0].lines
    out = console()
    terminal.print_chains(out, recorded.chains[:1])
    assert re.search(r"↓ swap_writepage\s+tail call\s+its calls return", text(out))


def test_branches_answer_or_say_why_not(tmp_path: Path) -> None:
    folder = recorded_run(UNTRACED, tmp_path, folder="run")
    out = console()
    assert terminal.print_branches(out, folder) is True and terminal.print_branches(out, None) is True
    assert text(out) == ""
    (folder / "branches.json").write_text(json.dumps({
        "available": True, "answer": "wrong 25.0 % of the time",
        "swap_path": [{"function": "do_swap_page", "file": "mm/memory.c", "line": 3820, "annotation": "unlikely",
                       "total": {"correct": 276385, "incorrect": 0}}]}))
    assert terminal.print_branches(out, folder) is True
    assert re.search(r"do_swap_page\s+│\s+mm/memory.c:3820\s+│\s+unlikely\s+│\s+276,385\s+│\s+0\s+│\s+0.0 %", text(out))
    assert "answer: wrong 25.0 % of the time" in text(out)
    (folder / "branches.json").write_text(json.dumps({"available": False, "why": "no CONFIG_PROFILE_ANNOTATED"}))
    out = console()
    assert terminal.print_branches(out, ResultsFolder.open(folder).branches()) is False
    assert "branch profile unavailable: no CONFIG_PROFILE_ANNOTATED" in text(out)


def test_sweep_table_and_run_diff(tmp_path: Path) -> None:
    recorded_run(TRACED, tmp_path, folder="traced")
    recorded_run(UNTRACED, tmp_path, folder="untraced")
    variants = [SweepVariant(index=0, label="tracing.enabled=true", dir="traced", status="complete",
                             expectations_met=True),
                SweepVariant(index=1, label="tracing.enabled=false", dir="untraced", status="incomplete", why="x"),
                SweepVariant(index=2, label="never ran", dir="missing", status="incomplete", why="build failed")]
    out = console()
    terminal.print_sweep(out, tmp_path, variants, "sweep sizing")
    printed = text(out)
    assert re.search(r"traced\s+│\s+complete\s+│\s+yes\s+│\s+1.95\s+│\s+6.51\s+│", printed)
    assert re.search(r"untraced\s+│\s+incomplete: x\s+│\s+unknown\s+│\s+1.94\s+│", printed)
    assert re.search(r"missing\s+│\s+incomplete: build failed\s+│\s+unknown\s+│\s+unknown\s+│", printed)
    out = console()
    terminal.print_run_diff(out, tmp_path / "traced", tmp_path / "untraced" / "manifest.json")
    printed = text(out)
    assert re.search(r"lab.tracing.enabled\s+│\s+True\s+│\s+False", printed)
    assert re.search(r"compression_ratio\s+│\s+1.95\s+│\s+1.94\s+│\s+-0.5%", printed)
    out = console()
    terminal.print_differences(out, [("settings that differ", [])])
    assert text(out).strip() == "settings that differ: none"


def test_a_sweep_too_wide_for_the_terminal_gives_its_figures_a_table_of_their_own(tmp_path: Path) -> None:
    recorded_run(TRACED, tmp_path, folder="traced")
    recorded_run(UNTRACED, tmp_path, folder="untraced")
    variants = [SweepVariant(index=0, label="tracing.enabled=true", dir="traced", status="complete",
                             expectations_met=True),
                SweepVariant(index=1, label="tracing.enabled=false", dir="untraced", status="incomplete", why="x")]
    out = console(80)
    terminal.print_sweep(out, tmp_path, variants, "sweep sizing")
    printed = text(out)
    assert "…" not in printed and all(len(line) <= 80 for line in printed.splitlines())
    assert re.search(r"untraced\s+│\s+incomplete: x\s+│\s+unknown\s+│", printed)  # the verdicts whole
    assert re.search(r"pswpout pages\s+│\s+229,186\s+│\s+224,460\s+│", printed)  # one row per figure
