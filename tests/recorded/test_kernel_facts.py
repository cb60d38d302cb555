"""The kernel facts of tests/unit/test_kernel_facts.py (each chain spec's version guards, with their mainline
commits) held against recorded runs of 5.15.135, 6.1 and 6.12: each meets the default lab's expectations."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernlab.config.lab import load_lab
from kernlab.paths import DEFAULT_LAB
from kernlab.results.folder import ResultsFolder
from kernlab.verify.evidence import verify_results
from tests.common import recorded_run
from tests.unit.test_kernel_facts import RW_PAGE, RW_PAGE_CHAINS


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
