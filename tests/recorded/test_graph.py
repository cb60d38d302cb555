"""The function_graph parser and merge on real traces recorded from the 5.15 and 6.1 lab kernels
(tests/fixtures/graph/, made by tests/fixtures/record_graph.py; see tests/fixtures/README.md); a recorded lab run
with graph windows (results-5.15.135-graph) verified again and reported. (The graph as a witness: test_witness.py.)"""

from __future__ import annotations

import gzip

import pytest

from kernlab.config.lab import GraphSpec, load_lab
from kernlab.frames import base_name, traceable_symbols
from kernlab.paths import LABS_DIR
from kernlab.probes import graphwindow
from kernlab.report.graphviews import graph_rows, graph_view, self_time, self_time_pngs
from kernlab.report.render import write_report
from kernlab.results.evidencerecords import GraphCapture
from kernlab.results.folder import ResultsFolder
from kernlab.verify import graph
from kernlab.verify.evidence import graph_file, lab_chains, verify_results
from tests.common import FIXTURES, recorded_run

GRAPHS = FIXTURES / "graph"
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


def test_tree_rows_mark_documented_functions_and_cut_small_callees() -> None:
    roots = graph.merge(graph.parse_trace(recorded("5.15.135-do_swap_page")[0], ["do_swap_page"]).calls)
    capture = GraphCapture(roots=["do_swap_page"], max_depth=8, window_s=0.2, start_pswpin=0, buffer_kb=4096)
    tree = graph_file((roots, graph.Trace([], 0, 0, 0)), capture).trees[0]
    documented = {"do_swap_page", "swapin_readahead", "swap_readpage", "zs_map_object", "zram_bvec_rw"}
    rows = graph_rows(tree, documented)
    names = [row.name for row in rows]
    # The documented path is always shown, however small its share; clones keep their names.
    assert {"swap_readpage", "zram_bvec_rw.isra.0", "zs_map_object"} <= set(names)
    assert all(row.documented == (base_name(row.name) in documented) for row in rows if not row.cut)
    cuts = [row for row in rows if row.cut]
    assert cuts and all(row.name.startswith("... ") and "of the time" in row.name for row in cuts)
    # Each of the root's callees is on a line of its own or counted in the root's cut-off line.
    top = [row for row in rows if row.depth == 1]
    assert sum(int(row.name.split()[1]) if row.cut else 1 for row in top) == len(tree.children)
    per_call = dict(self_time(tree))
    assert abs(sum(per_call.values()) - tree.total_us / tree.calls) < 0.01  # self times add up to the root's
    assert per_call["zcomp_decompress"] > per_call["zs_map_object"]


GRAPH_RUN = FIXTURES / "results-5.15.135-graph"  # a real 5.15 lab run, traces cut (fixtures README)


def test_verifying_a_recorded_graph_run_again_gives_the_same_trees_and_witnesses(tmp_path) -> None:
    folder = ResultsFolder(recorded_run(GRAPH_RUN, tmp_path, folder="run"))
    recorded_chains, recorded_graph = folder.chains(), folder.graph()
    chains = verify_results(folder)
    assert folder.graph() == recorded_graph and chains == recorded_chains.chains
    # Both windows opened, in the workloads' read passes; the cut traces lost their ends, and say so.
    capture = folder.graph_capture()
    assert [w.workload for w in capture.windows if w.opened_s] == ["shared-hog", "private-hog"]
    assert recorded_graph.truncated_calls > 0 and recorded_graph.lost_events > 6_000_000
    assert {tree.name for tree in recorded_graph.trees} == {"do_swap_page", "shrink_page_list"}
    pageout = {line.function: line.graph for line in next(c for c in chains if c.name == "article-pageout").lines}
    assert all(pageout[name].status == "seen" and pageout[name].agrees for name in
               ("swap_writepage", "__swap_writepage", "bdev_write_page", "zram_rw_page", "zcomp_compress", "zs_malloc"))
    # The cut windows ran do_swap_page twice; swapin_readahead (one call per 8 pages read ahead) was not among
    # them, and at its share of do_swap_page's calls that says nothing: not a disagreement.
    pagein = {line.function: line.graph for line in next(c for c in chains if c.name == "article-pagein").lines}
    assert (pagein["swapin_readahead"].status, pagein["swapin_readahead"].agrees) == ("not seen", None)
    assert pagein["swapin_readahead"].caller_calls == 2 and pagein["swapin_readahead"].expected < 1
    assert pagein["do_swap_page"].status == "outside the window"
    # The caller probe of __swap_writepage read the graph tracer's trampoline while a window was open.
    assert recorded_chains.graph_hidden_returns == {"__swap_writepage": 344}


def test_the_report_draws_the_graph_and_names_what_it_affected(tmp_path) -> None:
    folder = recorded_run(GRAPH_RUN, tmp_path, folder="run")
    write_report(folder)
    markdown = (folder / "report.md").read_text()
    assert "## Function graph" in markdown and "### `shrink_page_list`: 3 calls" in markdown
    # The trampoline note is about kernlab's probes, not the kernel: in the graph section, not the top box.
    top, graph_section = markdown.split("## Function graph", 1)
    assert "return_to_handler" not in top and "344 at __swap_writepage" in graph_section.split("\n## ", 1)[0]
    assert "graph: seen" in markdown and "too few calls to tell" in markdown
    assert "kprobe_ftrace_handler (kernlab's stack probe" in markdown
    assert "The two witnesses disagree" not in markdown
    assert (folder / "plots" / "graph-self-time-shrink_page_list.png").stat().st_size > 1000
    html = (folder / "report.html").read_text()
    assert "<h2>Function graph</h2>" in html and 'class="graph-tree"' in html
    top, graph_section = html.split("<h2>Function graph</h2>", 1)
    assert "return_to_handler" not in top and "(return_to_handler)" in graph_section.split("<h2>", 1)[0]


def test_a_trace_clock_on_jiffies_is_caught_and_its_durations_not_shown() -> None:
    """Recorded in a CI rehearsal on a loaded host: the 6.1 guest's TSC could not be calibrated at boot
    (clocksource refined-jiffies), so every duration is 0 or a multiple of 4 ms. The counts stand; the times
    are not shown as if they were measurements."""
    text, stats = recorded("6.1.192-jiffies")
    trace = graph.parse_trace(text, ["do_swap_page", "shrink_folio_list"])
    roots = graph.merge(trace.calls)
    durations = [d for call in each_call(trace.calls) for d in [call.duration_us] if d is not None]
    assert graph.clock_step_us(durations) == 4000.0 and graph.dropped(stats) == 1_979_890
    assert graph.clock_step_us([0.98, 12.345, 4000.0]) is None  # a fine clock: real sub-ms durations
    capture = GraphCapture(roots=["do_swap_page", "shrink_folio_list"], max_depth=10, window_s=0.3,
                           start_pswpin=50000, buffer_kb=8192)
    recorded_file = graph_file((roots, trace), capture)
    assert recorded_file.clock_step_us == 4000.0 and recorded_file.trees[0].calls > 0
    view = graph_view(recorded_file, capture, [], "tcg")
    assert view.duration_note.startswith("No durations: the guest's trace clock advanced in 4,000 µs steps")
    assert all(row.mean_us == "-" for tree in view.trees for row in tree.rows if not row.cut)
    assert all(tree.self_time == () for tree in view.trees) and self_time_pngs(view) == {}


def _without_line(text: str, ending: str) -> tuple[str, int]:
    """The trace without the first line ending so (as if a full CPU buffer had dropped that event)."""
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if line.rstrip().endswith(ending))
    return "\n".join(lines[:index] + lines[index + 1:]), index


@pytest.mark.parametrize("dropped", ["} /* swap_readpage */", "bdev_read_page() {"])
def test_a_dropped_line_cuts_one_call_and_not_the_rest_of_the_task(dropped: str) -> None:
    text, _ = recorded("5.15.135-do_swap_page")
    whole = graph.parse_trace(text, ["do_swap_page"])
    cut_text, index = _without_line(text, dropped)
    cut = graph.parse_trace(cut_text, ["do_swap_page"])
    # The closing lines' /* names */ say which call ends: every do_swap_page still completes, one call is cut.
    assert len(cut.calls) == len(whole.calls) == 143 and cut.truncated == whole.truncated + 1
    assert [call.duration_us for call in cut.calls] == [call.duration_us for call in whole.calls]

    def count(trace: graph.Trace, name: str, timed: bool = False) -> int:
        return sum(1 for call in each_call(trace.calls) if call.name == name
                   and (call.duration_us is not None or not timed))

    if dropped.startswith("}"):  # that swap_readpage is cut (no duration); its callees are all still there
        assert count(cut, "swap_readpage") == count(whole, "swap_readpage")
        assert count(cut, "swap_readpage", timed=True) == count(whole, "swap_readpage", timed=True) - 1
    else:  # that bdev_read_page is gone; its callees hang under swap_readpage, as the trace now shows them
        assert count(cut, "bdev_read_page") == count(whole, "bdev_read_page") - 1
    assert count(cut, "zram_rw_page", timed=True) == count(whole, "zram_rw_page", timed=True)
    for call in each_call(cut.calls):
        if call.callees and call.duration_us is not None:
            assert call.duration_us >= sum(c.duration_us or 0 for c in call.callees) - 0.01, (call.name, index)
    # Merged, the cut call is left out with its callees: no node outlasts its parent, as the e2e runs check.

    def nodes(node: graph.Node):
        yield node
        for child in node.children.values():
            yield from nodes(child)

    merged = graph.merge(cut.calls)["do_swap_page"]
    assert merged.calls == 143
    assert all(node.total_us + 0.01 >= sum(c.total_us for c in node.children.values()) for node in nodes(merged))


def test_a_window_records_only_what_the_chains_name() -> None:
    """`record: chains` hooks the roots, the chains' functions on this kernel (as ftrace names them, clones
    included), the lab's extra functions and the probe handler; names the kernel cannot trace are left out (one
    unknown name would make the kernel refuse the whole filter). Each window hooks them again after its close
    narrowed the hooks to the roots; teardown hooks every function again."""
    lab = load_lab(LABS_DIR / "zram-swap-5.15.yaml")
    chains = [chain for chain, _ in lab_chains(lab, "5.15.135")]
    traceable = traceable_symbols((FIXTURES / "results-5.15.135-shared" / "trace" /
                                         "available_filter_functions").read_text())
    recorded = graphwindow.recorded_symbols(chains, ["shrink_page_list", "do_swap_page"], ["no_such_function"],
                                            traceable)
    assert recorded[:2] == ["shrink_page_list", "do_swap_page"] and len(recorded) == len(set(recorded))
    assert {"zram_bvec_rw.isra.0", "zcomp_compress", "zs_malloc", "swap_readpage", "bdev_read_page"} <= set(recorded)
    # inlined (pageout), noinstr (exc_page_fault) or unknown: not in available_filter_functions
    assert not {"pageout", "exc_page_fault", "no_such_function"} & set(recorded)
    spec = GraphSpec(enabled=True)
    setup = graphwindow.setup_commands(spec, ["do_swap_page"], recorded)
    assert f"echo {' '.join(recorded)} > /sys/kernel/tracing/set_ftrace_filter" in setup
    after = graphwindow.after_window_commands(recorded)
    assert after[2] == setup[2]
    # the buffer is one page per CPU between workloads: grown as a workload starts (not at the window, when the
    # guest is short of memory), shrunk once its trace is read
    assert setup[-1] == after[1] == f"echo {graphwindow.IDLE_BUFFER_KB} > /sys/kernel/tracing/buffer_size_kb"
    script = graphwindow.window_script(GraphSpec(buffer_kb=4096), ["do_swap_page"])
    assert script.index("echo 4096 > /sys/kernel/tracing/buffer_size_kb") < script.index("pswpin")
    assert "echo  > /sys/kernel/tracing/set_ftrace_filter" in graphwindow.teardown_commands()
