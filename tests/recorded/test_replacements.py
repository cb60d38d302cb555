"""A chain written from the 5.15 sources, run on Debian's 6.12 (tests/fixtures/results-6.12-first-touch): the
lines the run saw are proved (observed, or inlined per DWARF), the leaves 6.12 no longer has are missing, and what
the kernel calls in their place comes from the function graph under the deepest proved line (kernlab.replacements).
"""

from __future__ import annotations

from pathlib import Path

from kernlab.report.render import write_report
from kernlab.results.chainrecords import ChainRecord
from kernlab.results.folder import ResultsFolder
from kernlab.verify.evidence import verify_results
from tests.common import FIXTURES, recorded_run

RUN = FIXTURES / "results-6.12-first-touch"


def _verified(tmp_path: Path) -> tuple[Path, ChainRecord]:
    folder = recorded_run(RUN, tmp_path)
    (chain,) = verify_results(ResultsFolder(folder))
    return folder, chain


def test_lines_the_run_saw_are_proved_and_the_gone_leaves_are_missing(tmp_path: Path) -> None:
    _, chain = _verified(tmp_path)
    verdicts = {line.text.strip(): (line.verdict, line.into, line.hits) for line in chain.lines}
    assert verdicts["handle_mm_fault"] == ("observed", None, 185_791)
    assert verdicts["__handle_mm_fault"] == ("observed", None, 185_791)
    # static in mm/memory.c: gcc put both inside __handle_mm_fault (6.12 adds do_pte_missing between them)
    assert verdicts["handle_pte_fault"][:2] == verdicts["do_anonymous_page"][:2] == ("inlined", "__handle_mm_fault")
    for leaf in ("page_add_new_anon_rmap", "lru_cache_add_inactive_or_unevictable"):
        verdict, _, hits = verdicts[leaf]
        assert (verdict, hits) == ("missing", None)
    missing = [line for line in chain.lines if line.verdict == "missing"]
    assert all("no such function in this kernel's System.map" in line.evidence for line in missing)
    assert not chain.holds and chain.expectation_met()


def test_what_612_calls_instead_comes_from_the_graph_under_the_deepest_proved_line(tmp_path: Path) -> None:
    _, chain = _verified(tmp_path)
    by_leaf = {path.leaf: path for path in chain.instead}
    assert set(by_leaf) == {"page_add_new_anon_rmap", "lru_cache_add_inactive_or_unevictable"}
    for leaf, callee in (("page_add_new_anon_rmap", "folio_add_new_anon_rmap"),
                         ("lru_cache_add_inactive_or_unevictable", "folio_add_lru_vma")):
        path = by_leaf[leaf]
        assert (path.source, path.under) == ("graph", "__handle_mm_fault")
        last = path.steps[-1]
        assert (last.documented, last.recorded, last.status) == (leaf, callee, "in its place")
        # the documented path above it, as the verifier proved it
        assert [(step.documented, step.status) for step in path.steps[:-1]] == [
            ("handle_mm_fault", "observed"), ("__handle_mm_fault", "observed"),
            ("handle_pte_fault", "inlined into __handle_mm_fault"),
            ("do_anonymous_page", "inlined into __handle_mm_fault")]
        assert path.hits > 0 and 0 < path.share <= 1.0
    assert by_leaf["page_add_new_anon_rmap"].hits == 416
    assert by_leaf["lru_cache_add_inactive_or_unevictable"].hits == 510


def test_the_report_says_what_stands_in_the_leaves_place(tmp_path: Path) -> None:
    folder, _ = _verified(tmp_path)
    write_report(folder)
    markdown = (folder / "report.md").read_text()
    assert "in the function graph, below __handle_mm_fault, where page_add_new_anon_rmap was" in markdown
    assert "folio_add_new_anon_rmap (in place of page_add_new_anon_rmap)" in markdown
    assert "folio_add_lru_vma (in place of lru_cache_add_inactive_or_unevictable)" in markdown
