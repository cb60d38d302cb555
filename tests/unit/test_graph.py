"""The function graph's pure parts: lost-events lines, each chain's graph root, the window script and its times.
(The parser and merge on real recorded traces: tests/recorded/test_graph.py.)"""

from __future__ import annotations

import pytest

from kernlab.config.lab import GraphSpec, load_lab
from kernlab.paths import LABS_DIR
from kernlab.probes import graphwindow
from kernlab.verify import graph
from kernlab.verify.evidence import lab_chains


def test_lost_events_lines() -> None:
    # As kernel/trace/trace.c prints them into the trace when a reader fell behind (none in the recordings).
    text = "CPU:0 [LOST 1234 EVENTS]\nCPU:1 [LOST 6 EVENTS]\n"
    assert graph.parse_trace(text, ["do_swap_page"]).lost_events == 1240


@pytest.mark.parametrize(("version", "roots"), [
    ("5.15.135", ["shrink_page_list", "do_swap_page"]),
    ("6.1.192", ["shrink_folio_list", "do_swap_page"]),
])
def test_graph_roots_of_the_default_lab(version: str, roots: list[str]) -> None:
    """Each chain's graph_root, renamed for the kernel; wrong-read-under-writepage's root (swap_writepage) is
    under shrink_page_list in the pageout chain, so its calls are in those trees already."""
    lab = load_lab(LABS_DIR / "zram-swap.yaml")
    assert graphwindow.chain_roots([chain for chain, _ in lab_chains(lab, version)]) == roots


def test_window_times_and_commands() -> None:
    spec = GraphSpec(enabled=True, window_s=0.5, start_pswpin=100)
    script = graphwindow.window_script(spec, ["shrink_page_list", "do_swap_page"])
    assert "sleep 0.5" in script and "-lt 100" in script
    # The close narrows the hooks with a filter (keeps the buffer) instead of nop (which resets it).
    assert script.index("tracing_on") < script.index("set_ftrace_filter") and "current_tracer\n" not in script
    assert graphwindow.window_times("window-opened 41.20\nwindow-closed 41.73\n") == (41.2, 41.73)
    assert graphwindow.window_times(f"{graphwindow.NOT_OPENED}\n") == (None, None)
    assert graphwindow.graph_symbols(["do_swap_page", "exc_page_fault"], {"do_swap_page": "do_swap_page"}) == (
        ["do_swap_page"], {"exc_page_fault": "not in available_filter_functions"})
