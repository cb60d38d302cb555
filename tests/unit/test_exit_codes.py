"""One exit code rule for every task that runs or verifies a lab (kernlab.cli.common.exit_code): 1 when a run
failed, 3 when a chain did not behave as the lab expects, else 0. `lab.sweep` used to exit 0 on a missed
expectation."""

from __future__ import annotations

import pytest

from kernlab.cli.common import EXPECTATION_MISSED, RUN_FAILED, exit_code
from kernlab.cli.lab_tasks import Verified
from kernlab.results.sweeprecords import SweepVariant


def variant(status: str, met: bool | None) -> SweepVariant:
    return SweepVariant(index=0, label="v", dir="v", status=status, expectations_met=met)


@pytest.mark.parametrize(("outcomes", "code"), [
    ([variant("complete", True), variant("complete", None)], 0),
    ([variant("complete", True), variant("complete", False)], EXPECTATION_MISSED),
    ([variant("incomplete", None), variant("complete", False)], RUN_FAILED),  # a failed run says more than a miss
    ([Verified(True)], 0),
    ([Verified(False)], EXPECTATION_MISSED),
])
def test_every_task_decides_its_exit_code_the_same_way(outcomes: list, code: int) -> None:
    assert exit_code(outcomes) == code
    assert (RUN_FAILED, EXPECTATION_MISSED) == (1, 3)  # the README's codes


def test_a_run_that_stops_after_its_folder_is_made_raises_run_failed_with_the_folder(tmp_path) -> None:
    """The folder rides on a typed error (RunFailed), not on an attribute set on whatever was raised; the error
    that stopped the run is kept for the exit code."""
    from kernlab.cache import Cache
    from kernlab.config.lab import load_lab
    from kernlab.errors import KernlabError, RunFailed
    from kernlab.lab.run import run_lab
    from kernlab.results.folder import ResultsFolder

    lab_file = tmp_path / "x.yaml"
    lab_file.write_text("name: x\nkernel: {version: 'tarball:/nonexistent.tar.xz', sha256: '" + "0" * 64 + "'}\n")
    with pytest.raises(RunFailed) as stopped:
        run_lab(load_lab(lab_file), lab_file, Cache(tmp_path / "cache"), tmp_path / "results", notify=lambda _: None)
    assert stopped.value.folder.parent == tmp_path / "results" / "x"
    assert isinstance(stopped.value.error, KernlabError) and str(stopped.value) == str(stopped.value.error)
    manifest = ResultsFolder(stopped.value.folder).manifest()
    assert (manifest.status, manifest.failed_step) == ("incomplete", "kernel")
