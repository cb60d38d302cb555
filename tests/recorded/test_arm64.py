"""arm64 guests (issue 16) on the recorded 5.15.135 arm64 run: the caller its stack traces lack, put back from the
return address the probes read, and the run verified offline with joined stacks."""

from __future__ import annotations

from kernlab.results.folder import ResultsFolder
from kernlab.verify.evidence import verify_results
from kernlab.verify.hist import PLUMBING, parse_hist
from tests.common import FIXTURES, recorded_run

RUN_ARM64 = FIXTURES / "results-5.15.135-arm64"


def test_recorded_arm64_stacks_get_their_caller_back_and_are_marked_cut() -> None:
    text = (RUN_ARM64 / "trace" / "hist" / "zs_map_object.hist").read_text()
    assert "{ stacktrace:" in text and ", ret: [" in text and "el1h_64_sync+" in text
    histogram = parse_hist("zs_map_object", text)
    assert sum(count.hits for count in histogram.stacks) == histogram.hits == sum(histogram.callers.values())
    for count in histogram.stacks:
        assert count.stack[0].name == "zs_map_object" and not any(PLUMBING.match(f.symbol) for f in count.stack)
        # The caller the trap's frame records skip, put back from x30: the return site is the second frame.
        assert str(count.stack[1]) in histogram.callers
    assert any(count.truncated for count in histogram.stacks)


def test_the_recorded_arm64_run_verifies_offline_with_joined_stacks(tmp_path) -> None:
    folder = ResultsFolder(recorded_run(RUN_ARM64, tmp_path))
    chains = {chain.name: chain for chain in verify_results(folder)}
    assert {name: chain.expectation_met() for name, chain in chains.items()} == dict.fromkeys(chains, True)
    pagein = {line.function: line for line in chains["article-pagein"].lines if line.function}
    assert pagein["do_page_fault"].verdict == "observed"
    assert pagein["__do_page_fault"].label == "inlined into do_page_fault"
    assert pagein["zram_get_handle"].verdict == "inlined"  # DWARF, past arm64's patchable-entry NOPs
    leaf = next(leaf for leaf in chains["article-pagein"].leaves if leaf.leaf == "zs_map_object")
    assert leaf.joined is not None and leaf.joined.anchor.startswith("do_swap_page") and leaf.joined.hits > 0
    # Without the anchors' stacks, the cut swap-in stacks cannot reach the fault entry: the chain does not hold.
    (folder.path / "trace" / "hist" / "do_swap_page.hist").unlink()
    alone = {chain.name: chain for chain in verify_results(folder)}
    assert not alone["article-pagein"].holds and alone["article-pageout"].holds
