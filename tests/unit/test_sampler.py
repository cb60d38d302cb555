"""The sampler over a connection that drops: a failed sample is a counted gap, five in a row fail the run.
The sample text is a real guest's (tests/fixtures/sysfs/6.1); only the SSH connection is played."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from kernlab.errors import KernlabError
from kernlab.probes.sampler import Sampler
from kernlab.results.folder import ResultsFolder
from kernlab.vm.ssh import CommandResult
from tests.common import FIXTURES

SAMPLE = (FIXTURES / "sysfs" / "6.1" / "sample-06-swapout.txt").read_text()
LOST = "ssh: connection to the guest lost during sampling zram and vmstat: Channel closed."


class PlayedConnection:
    """Answers each sampling command from a plan ('ok' or 'lost'), then 'ok' for ever."""

    def __init__(self, plan: list[str]) -> None:
        self.plan, self.calls, self.reconnects, self.closed = list(plan), 0, 0, False
        self.done = threading.Event()

    def close(self) -> None:
        self.closed = True

    def run(self, command: str, **_: object) -> CommandResult:
        self.calls += 1
        step = self.plan.pop(0) if self.plan else "ok"
        if not self.plan:
            self.done.set()
        if step == "lost":
            self.reconnects = 1
            raise KernlabError(LOST)
        return CommandResult(command, 0, SAMPLE, "", 0.01)


def sampler(tmp_path: Path, plan: list[str]) -> tuple[Sampler, PlayedConnection]:
    """A sampler whose own connection (GuestSSH.sibling of the session's) is the played one."""
    connection = PlayedConnection(plan)
    folder = ResultsFolder.create(tmp_path, "lab")
    main = SimpleNamespace(reconnects=0, sibling=lambda: connection)
    return Sampler(SimpleNamespace(ssh=main), "6.1.192", 0.01, folder), connection  # type: ignore[arg-type]


def wait_for(event: threading.Event) -> None:
    assert event.wait(30), "the sampler never got through its plan"
    time.sleep(0.05)


def test_a_dropped_sample_is_a_gap_and_sampling_goes_on(tmp_path: Path) -> None:
    taken, connection = sampler(tmp_path, ["ok", "ok", "lost", "lost", "ok", "ok"])
    with taken:
        wait_for(connection.done)
    record = taken.connection_record()
    assert record.reconnects == 1 and record.samples_missed == 2 and record.first_miss == LOST
    assert len(taken.samples) == connection.calls - 2
    assert len(taken.folder.samples()) == len(taken.samples)
    assert connection.closed  # the sampler's own connection ends with it


def test_five_lost_samples_in_a_row_fail_the_run(tmp_path: Path) -> None:
    taken, connection = sampler(tmp_path, ["ok", "ok", *["lost"] * Sampler.MAX_MISSED_IN_A_ROW])
    failed = r"^sampling failed: ssh: connection to the guest lost during sampling"
    with pytest.raises(KernlabError, match=failed), taken:
        wait_for(connection.done)
    assert taken.connection_record().samples_missed == Sampler.MAX_MISSED_IN_A_ROW
