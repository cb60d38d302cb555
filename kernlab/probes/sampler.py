"""The sampler: zram, vmstat and meminfo read every interval over an SSH connection of its own while the
workloads run."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kernlab.errors import KernlabError
from kernlab.probes import zram
from kernlab.results.folder import ResultsFolder
from kernlab.results.schema import ConnectionRecord
from kernlab.vm.session import GuestSession
from kernlab.vm.ssh import GuestSSH

log = logging.getLogger(__name__)


class Sampler:
    """Reads zram, vmstat and meminfo every interval over its own SSH channel while the workloads run.
    A sample that fails (the connection dropped and was made again) is a gap, counted; only
    MAX_MISSED_IN_A_ROW failures in a row stop the sampler and fail the run."""

    MAX_MISSED_IN_A_ROW = 5

    def __init__(self, session: GuestSession, kernel_version: str, interval_s: float, folder: ResultsFolder,
                 on_sample: Callable[[zram.Sample], None] | None = None) -> None:
        self.session, self.kernel_version, self.interval_s, self.folder = session, kernel_version, interval_s, folder
        self.on_sample = on_sample  # live figures (kernlab.probes.live.LiveFeed.sample)
        self.ssh: GuestSSH | None = None  # its own connection (GuestSSH.sibling), from __enter__ on
        self.samples: list[zram.Sample] = []
        self.error: Exception | None = None
        self.missed: list[str] = []  # why each missed sample failed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def take(self) -> None:
        assert self.ssh is not None, "samples are taken inside `with sampler`, on its own connection"
        text = self.ssh.run(zram.SAMPLE_SCRIPT, timeout=30, what="sampling zram and vmstat").stdout
        sample = zram.parse_sample(text, self.kernel_version)
        self.samples.append(sample)
        self.folder.append_sample(sample.as_row())
        if self.on_sample:
            self.on_sample(sample)

    def _loop(self) -> None:
        in_a_row = 0
        while not self._stop.wait(self.interval_s):
            try:
                self.take()
                in_a_row = 0
            except KernlabError as error:  # a gap in the samples; the workload's own failure matters more
                self.missed.append(str(error))
                in_a_row += 1
                log.warning("sample missed: %s", error)
                if in_a_row >= self.MAX_MISSED_IN_A_ROW:
                    self.error = error
                    return
            except Exception as error:  # a parser bug: reported by __exit__, never retried
                self.error = error
                return

    def connection_record(self) -> ConnectionRecord:
        own = self.ssh.reconnects if self.ssh else 0
        return ConnectionRecord(reconnects=self.session.ssh.reconnects + own, samples_missed=len(self.missed),
                                first_miss=self.missed[0] if self.missed else None)

    def __enter__(self) -> Sampler:
        self.ssh = self.session.ssh.sibling()
        self.take()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        try:
            if exc_info[0] is None:
                if self.error:
                    raise KernlabError(f"sampling failed: {self.error}")
                self.take()
        finally:
            if self.ssh is not None:
                self.ssh.close()
