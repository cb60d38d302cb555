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
