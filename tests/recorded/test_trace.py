"""The hist parser (kernlab.verify.hist) on recorded runs' histograms: stacks start at the probed function, return
sites count every call, copies merge keeping their keys. (Every recorded hist file and damaged copies:
test_histfile.py; arm64's and 6.12's own formats: test_arm64.py, test_kernel_612.py; small made-up files and the
probes' commands: tests/unit/test_trace.py.)"""

from __future__ import annotations

from kernlab.verify.hist import merged_histogram, parse_hist
from tests.common import FIXTURES

SIZING = FIXTURES / "results-6.1-sizing"
RUN = FIXTURES / "results-6.1-trees"


def test_parse_recorded_histograms() -> None:
    stacks = parse_hist("zs_map_object", (SIZING / "trace/hist/zs_map_object.hist").read_text())
    assert stacks.dropped == 0 and stacks.entries == len(stacks.stacks) > 3
    assert sum(count.hits for count in stacks.stacks) == stacks.hits
    assert all(count.stack[0].name == "zs_map_object" for count in stacks.stacks)  # probe frames stripped
    callers = parse_hist("swap_writepage", (SIZING / "trace/hist/swap_writepage.hist").read_text())
    assert set(callers.callers) == {"pageout+0xe3/0x1bb", "shmem_writepage+0x1f7/0x239"}
    assert sum(callers.callers.values()) == callers.hits


def test_merged_stacks_and_return_sites_keep_their_keys() -> None:
    stacks = parse_hist("zcomp_compress", (RUN / "trace/hist/zcomp_compress.hist").read_text())
    callers = parse_hist("swap_readpage", (RUN / "trace/hist/swap_readpage.hist").read_text())
    for histogram in (stacks, callers):
        merged = merged_histogram([histogram, histogram])
        assert (merged.hits, merged.entries, merged.dropped) == (2 * histogram.hits, histogram.entries,
                                                                 2 * histogram.dropped)
        assert merged.callers == {site: 2 * hits for site, hits in histogram.callers.items()}
        assert [(c.stack, c.hits) for c in merged.stacks] == [(c.stack, 2 * c.hits) for c in histogram.stacks]
