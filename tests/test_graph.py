"""The function_graph parser and merge on real traces recorded from the 5.15 and 6.1 lab kernels
(tests/fixtures/graph/, made by tests/fixtures/record_graph.py; see tests/fixtures/README.md)."""

from __future__ import annotations

import gzip

import pytest

from kernlab import graph, witness
from kernlab.paths import TESTS_DIR
from kernlab.results import ResultsFolder

GRAPHS = TESTS_DIR / "fixtures" / "graph"
SWAP_IN_515 = ["do_swap_page", "swapin_readahead", "swap_readpage", "bdev_read_page", "zram_rw_page",
               "zram_bvec_rw.isra.0", "__zram_bvec_read.constprop.0", "zs_map_object"]


def recorded(name: str) -> tuple[str, str]:
    text = gzip.decompress((GRAPHS / f"{name}.txt.gz").read_bytes()).decode()
    return text, (GRAPHS / f"{name}.stats").read_text()


def walk(roots: dict[str, graph.Node], path: list[str]) -> graph.Node:
    node = roots[path[0]]
    for name in path[1:]:
        node = node.children[name]
    return node


def each_call(calls: list[graph.Call]):
    for call in calls:
        yield call
        yield from each_call(call.callees)


def test_515_swap_in_graph() -> None:
    text, stats = recorded("5.15.135-do_swap_page")
    trace = graph.parse_trace(text, ["do_swap_page"])
    assert graph.overruns(stats) == 0 and trace.lost_events == 0
    assert len(trace.calls) == 143 and {call.name for call in trace.calls} == {"do_swap_page"}
    # Two calls the 0.2 s window cut; three top-level lines of tasks resumed inside a traced call.
    assert (trace.truncated, trace.other_top_level) == (2, 3)
    roots = graph.merge(trace.calls)
    assert roots["do_swap_page"].calls == 143
    # The article's swap-in path as the kernel ran it, each function once per page read from zram.
    assert [walk(roots, SWAP_IN_515[:depth]).calls for depth in range(2, 9)] == [13, 100, 100, 100, 100, 100, 100]
    decompress = walk(roots, [*SWAP_IN_515[:-1], "zcomp_decompress"])
    assert decompress.calls == 100 and decompress.mean_us > walk(roots, SWAP_IN_515).mean_us
    # A parent's time holds its callees' (a duration is inclusive), on every completed call.
    for call in each_call(trace.calls):
        if call.callees and call.duration_us is not None:
            assert call.duration_us >= sum(c.duration_us or 0 for c in call.callees) - 0.01, call.name


def test_61_swap_in_graph_and_duration_markers() -> None:
    text, stats = recorded("6.1.192-do_swap_page")  # the first 12,000 lines of the recording: cut mid-call
    trace = graph.parse_trace(text, ["do_swap_page"])
    assert graph.overruns(stats) == 0 and trace.truncated >= 1
    roots = graph.merge(trace.calls)
    swap_in = roots["do_swap_page"]
    assert "swap_cache_get_folio" in swap_in.children and "lookup_swap_cache" not in swap_in.children  # 6.1 names
    read = walk(roots, ["do_swap_page", "swapin_readahead", "swap_readpage", "bdev_read_page", "zram_rw_page"])
    assert read.calls > 50 and read.calls == read.children["zram_bvec_rw.isra.0"].calls
    # `#` marks more than 1 ms: such lines keep their value.
    marked = [line for line in text.splitlines() if "| # " in line and "/* do_swap_page */" in line]
    slowest = max(float(line.split("| # ")[1].split()[0]) for line in marked)
    assert slowest > 1000 and max(swap_in.durations_us) >= slowest
    assert swap_in.percentile_us(0.5) <= swap_in.percentile_us(0.95) <= max(swap_in.durations_us)


def test_an_overrun_window_is_counted_not_hidden() -> None:
    text, stats = recorded("5.15.135-overrun")  # 2 s at depth 10: the 4 MiB buffer wrapped
    assert graph.overruns(stats) == 551_286
    trace = graph.parse_trace(text, ["do_swap_page"])
    # The buffer kept the window's end: its first lines close calls whose start was overwritten.
    assert text.splitlines()[4].rstrip().endswith("} /* free_unref_page_prepare */")
    assert trace.truncated > 5
    assert all(call.duration_us is not None for call in trace.calls)


def test_lost_events_lines() -> None:
    # As kernel/trace/trace.c prints them into the trace when a reader fell behind (none in the recordings).
    text = "CPU:0 [LOST 1234 EVENTS]\nCPU:1 [LOST 6 EVENTS]\n"
    assert graph.parse_trace(text, ["do_swap_page"]).lost_events == 1240


@pytest.mark.parametrize(("fixture", "trace", "cache_lookup"), [
    ("results-5.15.135-trees", "5.15.135-do_swap_page", "pagecache_get_page"),
    ("results-6.1-trees", "6.1.192-do_swap_page", "__filemap_get_folio"),
])
def test_the_graph_witnesses_every_traceable_edge_of_the_swap_in_tree(fixture: str, trace: str,
                                                                    cache_lookup: str) -> None:
    """Stack histograms (a recorded lab run) and the function graph (a recording of the same kernel config) agree
    on every edge of the article's swap-in tree that the do_swap_page window covers."""
    roots = graph.merge(graph.parse_trace(recorded(trace)[0], ["do_swap_page"]).calls)
    chain = next(c for c in ResultsFolder.open(TESTS_DIR / "fixtures" / fixture).chains().chains
                 if c.name == "article-pagein")
    edges = {(w.caller, w.callee): w for w in witness.graph_witness(chain, roots)}
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
    chain = next(c for c in ResultsFolder.open(TESTS_DIR / "fixtures" / "results-5.15.135-trees").chains().chains
                 if c.name == "article-pagein")
    del roots["do_swap_page"].children["swapin_readahead"].children["swap_readpage"]
    (edge,) = [w for w in witness.graph_witness(chain, roots) if w.callee == "swap_readpage"]
    assert (edge.status, edge.agrees) == ("not seen", False)
