"""Call trees verified on recorded runs of the article's kernel and 6.1: the recorded 5.15.135 run, tail calls, every
line of the article's trees proved offline, a child checked under its own parent, a removed function said gone.
(Parsing the trees: tests/unit/test_specs.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kernlab.config import specs
from kernlab.results.chainrecords import ChainRecord, LineRecord
from kernlab.verify import chains
from kernlab.verify.evidence import load_evidence, verify_results
from tests.common import FIXTURES, recorded_run

SHARED_515 = FIXTURES / "results-5.15.135-shared"


def labels(result: ChainRecord) -> dict[str, str]:
    return {line.function or line.text: line.label for line in result.lines}


def test_recorded_515_pageout_holds_through_a_tail_call_inside_an_inlined_caller(tmp_path: Path) -> None:
    """The article's kernel: pageout() is inlined into shrink_page_list(), and swap_writepage() tail-calls
    __swap_writepage() from inside it. The recorded run (shared 5.15.135 fixture) was printed "does not hold"."""
    results = recorded_run(SHARED_515, tmp_path)
    outcome = {r.name: r for r in verify_results(results)}
    pageout = outcome["pageout"]
    assert pageout.holds and pageout.ok
    assert labels(pageout) == {
        "shrink_page_list": "observed", "pageout": "inlined into shrink_page_list", "swap_writepage": "tail call",
        "__swap_writepage": "observed", "bdev_write_page": "observed", "zram_rw_page": "observed",
        "zram_bvec_rw": "observed", "zram_bvec_write": "inlined into zram_bvec_rw",
        "__zram_bvec_write": "inlined into zram_bvec_rw", "zcomp_compress": "observed", "zs_malloc": "observed"}
    tail = next(line for line in pageout.lines if line.function == "swap_writepage")
    assert "shrink_page_list+0x686/0xa65" in tail.evidence
    # Every page written by kswapd or direct reclaim on this path, shmem's own writepage path excluded.
    summary = json.loads((results / "summary.json").read_text())
    assert 0.95 * summary["pswpout_pages"] <= pageout.hits <= summary["pswpout_pages"]
    assert pageout.leaves[0].by_task["kswapd"] > 0 and pageout.leaves[0].by_task["direct"] > 0
    assert all(outcome[name].ok for name in outcome)


def test_tail_call_needs_its_return_site(tmp_path: Path) -> None:
    """Without swap_writepage's calls returning to shrink_page_list+0x686, nothing proves the tail call."""
    results = recorded_run(SHARED_515, tmp_path)
    hist = results / "trace" / "hist" / "swap_writepage.hist"
    kept = "".join(line for line in hist.read_text().splitlines(True) if "shrink_page_list" not in line)
    # As the kernel would print it: the totals of the one entry left (a file's Totals: are checked).
    hist.write_text(kept.replace("Hits: 226923", "Hits: 2011").replace("Entries: 2", "Entries: 1"))
    pageout = {r.name: r for r in verify_results(results)}["pageout"]
    assert not pageout.holds and not pageout.ok and pageout.hits == 0
    assert labels(pageout)["swap_writepage"] == "missing"
    assert labels(pageout)["pageout"] == "inlined into shrink_page_list"  # the lines above still stand


TREES_515 = FIXTURES / "results-5.15.135-trees"
TREES_61 = FIXTURES / "results-6.1-trees"
PROVEN = ("observed", "inlined", "tail call")


@pytest.mark.parametrize("fixture", [TREES_515, TREES_61], ids=["5.15.135", "6.1.192"])
def test_every_line_of_the_article_trees_is_proved_offline(fixture: Path, tmp_path: Path) -> None:
    """Recorded runs of the default lab on 5.15 and 6.1: inline trees and ops tables were kept in trace/."""
    results = recorded_run(fixture, tmp_path)
    outcome = {r.name: r for r in verify_results(results)}
    assert all(result.ok for result in outcome.values())
    for name in ("article-pageout", "article-pagein"):
        result = outcome[name]
        assert result.holds and result.hits > 0
        assert {line.text: line.label for line in result.lines if line.function and line.verdict not in PROVEN} == {}
        assert [line.verdict for line in result.lines if not line.function] == ["annotation"]
        assert {line.indirect["status"] for line in result.lines if line.indirect} == {"resolved"}
    pagein = {line.function: line for line in outcome["article-pagein"].lines if line.function}
    handle = pagein["zram_get_handle"]  # a static inline accessor: only DWARF can show it
    assert (handle.label, handle.hits) == ("inlined into __zram_bvec_read", None)
    assert "DWARF: inlined in __zram_bvec_read's body (__zram_bvec_read > zram_get_handle)" in handle.evidence
    assert pagein["swap_vma_readahead"].label == "inlined into swapin_readahead"
    assert pagein["handle_pte_fault"].label == "inlined into __handle_mm_fault"
    # The side branch and the read are each proved under their own parent, with their own counts.
    assert pagein["__read_swap_cache_async"].hits >= pagein["swap_readpage"].hits > 0
    pageout = {line.function: line for line in outcome["article-pageout"].lines if line.function}
    assert pageout["shrink_inactive_list"].label == "inlined into shrink_lruvec"
    assert pageout["swap_writepage"].label == "tail call"
    assert "swap_aops.writepage = swap_writepage" in pageout["swap_writepage"].indirect["claim"]


def test_515_and_61_differ_where_the_kernels_do(tmp_path: Path) -> None:
    old = {r.name: r for r in verify_results(recorded_run(TREES_515, tmp_path / "a"))}
    new = {r.name: r for r in verify_results(recorded_run(TREES_61, tmp_path / "b"))}

    def line(outcome: dict, chain: str, text: str) -> LineRecord:
        return next(line for line in outcome[chain].lines if line.text == text)

    assert line(old, "article-pageout", "pageout").label == "inlined into shrink_page_list"
    assert line(new, "article-pageout", "pageout").label == "observed"
    assert line(new, "article-pageout", "shrink_page_list").function == "shrink_folio_list"
    assert line(old, "article-pagein", "pagecache_get_page").evidence.startswith("frame pagecache_get_page+")
    assert line(new, "article-pagein", "pagecache_get_page").evidence.startswith("frame __filemap_get_folio+")
    assert line(new, "article-pagein", "find_get_page").function == "filemap_get_folio"


def write_spec(folder: Path, name: str, tree: str) -> specs.ResolvedChain:
    spec = folder / f"{name}.yaml"
    indented = "".join(f"  {line}\n" for line in tree.strip("\n").splitlines())
    spec.write_text(f"name: {name}\ndocumented: d\nsource: s\ntree: |\n{indented}")
    return specs.load_chain(spec).resolve("5.15.135", where=str(spec))


def test_a_child_is_checked_under_its_own_parent(tmp_path: Path) -> None:
    """pagecache_get_page is on the recorded stacks, but under __read_swap_cache_async, never under swap_readpage."""
    results = recorded_run(TREES_515, tmp_path)
    right = write_spec(tmp_path, "right", """
do_swap_page
  swapin_readahead
    pagecache_get_page
  swap_readpage
    zs_map_object
""")
    wrong = write_spec(tmp_path, "wrong", """
do_swap_page
  swap_readpage
    pagecache_get_page
    zs_map_object
""")
    evidence = load_evidence(results, [right, wrong])
    assert chains.verify_chain(right, evidence).holds
    result = chains.verify_chain(wrong, evidence)
    verdicts = {line.function: (line.verdict, line.hits) for line in result.lines}
    assert not result.holds and result.hits == 0
    assert verdicts["swap_readpage"][0] == "observed" and verdicts["swap_readpage"][1] > 0  # via zs_map_object
    assert verdicts["pagecache_get_page"] == ("missing", None)
    # it ran (its own probe's hits), just not under swap_readpage: the run shows it elsewhere, not absent
    assert re.fullmatch(r"ran \([\d,]+ hits on its own probe\), but not under the chain's lines above it on the "
                        r"recorded stacks", next(line for line in result.lines
                                                 if line.function == "pagecache_get_page").evidence)


def test_a_removed_function_is_reported_gone_not_dropped(tmp_path: Path) -> None:
    spec = tmp_path / "gone.yaml"
    spec.write_text("name: gone\ndocumented: d\nsource: s\ntree: |\n  do_swap_page\n    swap_readpage\n"
                    "      bdev_read_page\n        zs_map_object\n"
                    "variants:\n  - kernel: '>= 5.0'\n    commit: {id: 0123456789ab, title: t, release: '5.0'}\n"
                    "    gone: {bdev_read_page: 'removed with rw_page'}\n")
    chain = specs.load_chain(spec).resolve("5.15.135", where=str(spec))
    results = recorded_run(TREES_515, tmp_path / "r")
    evidence = load_evidence(results, [chain])
    evidence.histograms["zs_map_object"].stacks.clear()  # as on a kernel where the path no longer exists
    result = chains.verify_chain(chain, evidence)
    bdev = next(line for line in result.lines if line.function == "bdev_read_page")
    assert (bdev.verdict, bdev.label, bdev.evidence) == ("gone", "not in this kernel",
                                                          'removed with rw_page (0123456789ab "t", Linux 5.0)')
    assert not result.holds
