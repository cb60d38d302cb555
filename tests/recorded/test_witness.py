"""The function graph as a second witness (kernlab.verify.witness): recorded function_graph traces (tests/fixtures/
graph/) against the verdicts of recorded lab runs of the same kernels. Every traceable edge of the article's swap-in
tree the window covers is seen and agrees; a call the graph never saw contradicts a proved line, unless the windows
lost events; an edge below the recorded depth is outside the window."""

from __future__ import annotations

import pytest

from kernlab.report.chainviews import graph_text
from kernlab.results.chainrecords import EdgeRecord
from kernlab.results.folder import ResultsFolder
from kernlab.verify import graph, witness
from tests.common import FIXTURES
from tests.recorded.test_graph import recorded


@pytest.mark.parametrize(("fixture", "trace", "cache_lookup"), [
    ("results-5.15.135-trees", "5.15.135-do_swap_page", "pagecache_get_page"),
    ("results-6.1-trees", "6.1.192-do_swap_page", "__filemap_get_folio"),
])
def test_the_graph_witnesses_every_traceable_edge_of_the_swap_in_tree(fixture: str, trace: str,
                                                                    cache_lookup: str) -> None:
    """Stack histograms (a recorded lab run) and the function graph (a recording of the same kernel config) agree
    on every edge of the article's swap-in tree that the do_swap_page window covers."""
    roots = graph.merge(graph.parse_trace(recorded(trace)[0], ["do_swap_page"]).calls)
    chain = next(c for c in ResultsFolder.open(FIXTURES / fixture).chains().chains
                 if c.name == "article-pagein")
    edges = {(w.caller, line.function): w for line, w in witness.graph_witness(chain, roots)}
    # Above the graph function the window sees nothing: said so, not "not seen".
    assert edges[("__handle_mm_fault", "do_swap_page")].status == "outside the window"
    # swap_vma_readahead and find_get_page are inlined (no frame in either witness): their callers stand in.
    assert ("swapin_readahead", "__read_swap_cache_async") in edges
    assert ("__read_swap_cache_async", cache_lookup) in edges
    inside = [w for w in edges.values() if w.status != "outside the window"]
    assert len(inside) == 10 and all(w.status == "seen" and w.calls > 0 and w.agrees for w in inside), inside
    assert edges[("__zram_bvec_read", "zs_map_object")].text.startswith("graph: seen ")


def test_a_call_the_graph_never_saw_contradicts_a_proved_line() -> None:
    roots = graph.merge(graph.parse_trace(recorded("5.15.135-do_swap_page")[0], ["do_swap_page"]).calls)
    chain = next(c for c in ResultsFolder.open(FIXTURES / "results-5.15.135-trees").chains().chains
                 if c.name == "article-pagein")
    del roots["do_swap_page"].children["swapin_readahead"].children["swap_readpage"]
    (edge,) = [w for line, w in witness.graph_witness(chain, roots) if line.function == "swap_readpage"]
    assert (edge.status, edge.agrees) == ("not seen", False)
    # Windows that lost events keep only their start: the same gap there contradicts nothing, and says why.
    (edge,) = [w for line, w in witness.graph_witness(chain, roots, lost=666_516)
             if line.function == "swap_readpage"]
    assert (edge.status, edge.agrees, edge.lost) == ("not seen", None, 666_516)
    record = EdgeRecord(caller=edge.caller, status=edge.status, agrees=edge.agrees, lost=edge.lost)
    assert graph_text(record) == "not seen (the windows lost 666,516 events: it may be among them)"


def test_an_edge_below_the_recorded_depth_is_outside_the_window() -> None:
    """The 5.15 recording was made with max_graph_depth 8. __zram_bvec_read is at depth 6 at the least (on the
    path that skips the swap cache: do_swap_page > swap_readpage > bdev_read_page > zram_rw_page > zram_bvec_rw
    > __zram_bvec_read). Asked as if the depth had been 6, zs_map_object's edge was never recorded: outside the
    window, not a contradiction."""
    roots = graph.merge(graph.parse_trace(recorded("5.15.135-do_swap_page")[0], ["do_swap_page"]).calls)
    chain = next(c for c in ResultsFolder.open(FIXTURES / "results-5.15.135-trees").chains().chains
                 if c.name == "article-pagein")
    at = {line.function: w for line, w in witness.graph_witness(chain, roots, max_depth=6)}
    assert at["zs_map_object"].status == "outside the window" and at["zs_map_object"].agrees is None
    assert at["__zram_bvec_read"].status == "seen"
