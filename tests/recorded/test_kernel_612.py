"""Linux 6.12, recorded by kernlab on Debian's linux-source-6.12 (tests/fixtures/results-6.12-trees): the hist
key is `common_stacktrace:` and stacks start with the kprobe's own frames; the article's rw_page path is gone,
and the verifier says so and shows what the kernel does instead, across the three kernels."""

from __future__ import annotations

from pathlib import Path

from kernlab.config.lab import load_lab
from kernlab.paths import DEFAULT_LAB
from kernlab.report.across import chains_across
from kernlab.report.views import RunFiles
from kernlab.results.chainrecords import ChainRecord
from kernlab.results.folder import ResultsFolder
from kernlab.verify.evidence import verify_results
from kernlab.verify.hist import PLUMBING, parse_hist
from tests.common import FIXTURES, recorded_run

RUN_612 = FIXTURES / "results-6.12-trees"


def test_612_hist_key_and_probe_frames_are_read() -> None:
    text = (RUN_612 / "trace" / "hist" / "zcomp_compress.hist").read_text()
    assert "{ common_stacktrace:" in text and "kprobe_ftrace_handler+" in text
    histogram = parse_hist("zcomp_compress", text)
    # kswapd's and direct reclaim's stacks, every hit the kernel counted (Hits: 223210).
    assert len(histogram.stacks) == histogram.entries == 2 and histogram.dropped == 0
    assert sum(count.hits for count in histogram.stacks) == histogram.hits == 223_210
    for count in histogram.stacks:
        # The stack starts at the probed function: no kprobe handler, no bare trampoline address.
        assert count.stack[0].name == "zcomp_compress", count.stack[:3]
        assert not any(PLUMBING.match(frame.symbol) for frame in count.stack)
    # The same stack under the pre-6.4 key name parses the same.
    old = parse_hist("zcomp_compress", text.replace("common_stacktrace:", "stacktrace:"))
    assert [c.stack for c in old.stacks] == [c.stack for c in histogram.stacks]


def verify_copy(tmp_path: Path, fixture: Path, lab_chains: list | None = None) -> dict[str, ChainRecord]:
    """Verify a copy of a recorded run; lab_chains: the lab's chains as if the run had used them."""
    folder = ResultsFolder(recorded_run(fixture, tmp_path))
    if lab_chains is not None:
        manifest = folder.manifest()
        manifest.lab["chains"] = lab_chains
        folder.write(manifest)
    return {chain.name: chain for chain in verify_results(folder)}


def steps(chain: ChainRecord, leaf: str) -> list[tuple[str | None, str | None, str]]:
    path = next(path for path in chain.instead if path.leaf == leaf)
    return [(step.documented, step.recorded, step.status) for step in path.steps]


def test_the_article_pageout_tree_breaks_at_bdev_write_page_on_612_and_the_new_path_is_shown(tmp_path: Path) -> None:
    # The default lab as it is now: `expect: hold`, which the chain specs' facts turn into not-hold on 6.12 (the
    # run recorded expect: hold).
    chains = verify_copy(tmp_path, RUN_612, load_lab(DEFAULT_LAB).model_dump(mode="json")["chains"])
    pageout = chains["article-pageout"]
    assert not pageout.holds and pageout.expect == "not-hold" and pageout.expectation_met()
    # Why not-hold, as chains.json records it: 3222d8c2a7f8 "block: remove ->rw_page" (v6.3).
    assert pageout.expect_reason.startswith("this kernel has no bdev_write_page, zram_rw_page, zram_bvec_rw: ")
    assert '3222d8c2a7f8 "block: remove ->rw_page", Linux 6.3' in pageout.expect_reason
    lines = {line.function: line for line in pageout.lines if line.function}
    assert lines["swap_writepage"].verdict == "observed"  # still on the path ...
    assert lines["bdev_write_page"].verdict == "gone"  # ... and here it breaks, the spec says since when
    assert "3222d8c2a7f8" in lines["bdev_write_page"].evidence and "82ca875d2549" in lines["zram_bvec_rw"].evidence
    aligned = steps(pageout, "zcomp_compress")
    assert aligned[:4] == [("shrink_inactive_list", "shrink_inactive_list", "inlined into shrink_lruvec"),
                           ("shrink_page_list", "shrink_folio_list", "renamed"),
                           ("pageout", "pageout", "observed"), ("swap_writepage", "swap_writepage", "observed")]
    assert ("bdev_write_page", None, "gone") in aligned and ("zram_rw_page", None, "gone") in aligned
    # __swap_writepage is traceable but never a frame: its calls return into swap_writepage, it jumps on.
    assert ("__swap_writepage", None, "tail call") in aligned
    # 6aa4b839e7a4 (v6.4) renamed __zram_bvec_write; the stacks pass it under its new name.
    assert ("__zram_bvec_write", "zram_write_page", "renamed") in aligned
    new = [recorded for documented, recorded, _ in aligned if documented is None]
    # The bio path that replaced rw_page, in call order.
    for before, after in (("swap_writepage_bdev_sync", "submit_bio_wait"), ("submit_bio_wait", "__submit_bio"),
                          ("__submit_bio", "zram_submit_bio")):
        assert new.index(before) < new.index(after)
    assert aligned[-1] == ("zcomp_compress", "zcomp_compress", "observed")
    pagein = steps(chains["article-pagein"], "zs_map_object")
    assert ("__do_page_fault", "do_user_addr_fault", "renamed") in pagein
    assert (None, "swap_read_folio_bdev_sync", "new") in pagein and (None, "zram_read_from_zspool", "new") in pagein
    assert all(chain.expectation_met() for chain in chains.values())


def test_chains_across_kernels_show_the_rename_on_61_and_the_break_on_612(tmp_path: Path) -> None:
    lab_chains = load_lab(DEFAULT_LAB).model_dump(mode="json")["chains"]
    runs = []
    for name in ("results-5.15.135-trees", "results-6.1-trees", "results-6.12-trees"):
        verify_copy(tmp_path, FIXTURES / name, lab_chains)
        runs.append(RunFiles.read(tmp_path / name))
    across = {chain.name: chain for chain in chains_across(runs)}
    pageout = across["article-pageout"]
    assert pageout.table.headers == ("documented line", "linux 5.15.135", "linux 6.1.192", "linux 6.12.117")
    rows = {row[0].text.strip(): [cell.text for cell in row[1:]] for row in pageout.table.rows[1:]}
    assert [cell.text for cell in pageout.table.rows[0][1:]] == [
        "holds (expected: ok)", "holds (expected: ok)", "does not hold (expected: ok)"]
    assert rows["shrink_page_list"] == ["observed", "renamed to shrink_folio_list, observed",
                                        "renamed to shrink_folio_list, observed"]
    assert rows["pageout"] == ["inlined into shrink_page_list", "observed", "observed"]
    assert rows["bdev_write_page"][:2] == ["observed", "observed"]
    assert rows["bdev_write_page"][2] == "not in this kernel"  # the chain spec's `gone` (3222d8c2a7f8, v6.3)
    ((kernel, instead),) = pageout.instead
    assert kernel == "linux 6.12.117"
    assert "+zram_submit_bio" in instead.steps and "-bdev_write_page (gone)" in instead.steps
