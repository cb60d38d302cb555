"""The function_graph parser and merge on real traces recorded from the 5.15 and 6.1 lab kernels
(tests/fixtures/graph/, made by tests/fixtures/record_graph.py; see tests/fixtures/README.md)."""

from __future__ import annotations

import gzip

from kernlab import graph
from kernlab.paths import TESTS_DIR

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
