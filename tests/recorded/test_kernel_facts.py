"""What a chain is expected to do on a kernel follows from the chain specs' version facts, each written once with
its mainline commit and release (labs/chains/*.yaml), not from version ranges in each lab:

- 3222d8c2a7f8 "block: remove ->rw_page" (Christoph Hellwig; in "MM updates for 6.3-rc1", merged after v6.2)
  took bdev_read_page(), bdev_write_page() and zram_rw_page() away: the article's chains hold up to 6.2 and
  cannot from 6.3 on;
- 49fd9b6df54e "mm/vmscan: fix a lot of comments" and a0d3374b0707 "mm/swap: convert __read_swap_cache_async()
  to use a folio" (both 6.1): shrink_folio_list and filemap_get_folio > __filemap_get_folio, not on 6.0;
- 82ca875d2549, ffb0a9e66562 and 6aa4b839e7a4 (zram, 6.4): zram_bvec_rw gone, __zram_bvec_{read,write} renamed;
- c9bdf768dd93 "mm: convert swap_readpage() to swap_read_folio()" (6.8).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kernlab.config.lab import load_lab
from kernlab.paths import DEFAULT_LAB
from kernlab.results.folder import ResultsFolder
from kernlab.verify.evidence import verify_results
from tests.common import recorded_run

RW_PAGE = "3222d8c2a7f8"
RW_PAGE_CHAINS = ("pageout", "pagein-swapcache", "pagein-skip-swapcache", "article-pageout", "article-pagein")


@pytest.mark.parametrize("fixture", ["results-5.15.135-trees", "results-6.1-trees", "results-6.12-trees"])
def test_recorded_runs_meet_the_default_labs_expectations(tmp_path: Path, fixture: str) -> None:
    folder = ResultsFolder(recorded_run(fixture, tmp_path))
    manifest = folder.manifest()
    manifest.lab["chains"] = load_lab(DEFAULT_LAB).model_dump(mode="json")["chains"]
    folder.write(manifest)
    verified = {chain.name: chain for chain in verify_results(folder)}
    assert all(chain.expectation_met() for chain in verified.values()), {
        name: (chain.holds, chain.expect) for name, chain in verified.items()}
    on_612 = fixture.endswith("6.12-trees")
    assert [chain.name for chain in verified.values() if chain.expect_reason] == (list(RW_PAGE_CHAINS) if on_612
                                                                                   else [])
    # Recorded in chains.json, as the report reads it back.
    chains = ResultsFolder.open(folder.path).chains()
    assert chains is not None and all((RW_PAGE in chain.expect_reason) == (on_612 and chain.name in RW_PAGE_CHAINS)
                                      for chain in chains.chains)
