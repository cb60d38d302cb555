"""A booted lab guest as one context manager: VM up, console watched, SSH answering; always torn down."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kernlab.config.lab import VmSpec
from kernlab.errors import KernlabError
from kernlab.guest.image import GuestImage
from kernlab.vm.hostclock import guest_clock_args
from kernlab.vm.qemu import (
    READY,
    AccelChoice,
    GuestFailed,
    RunningVM,
    choose_accel,
    free_port,
    qemu_command,
    sigterm_as_interrupt,
)
from kernlab.vm.ssh import GuestSSH

log = logging.getLogger(__name__)


@dataclass
class GuestSession:
    vm: RunningVM
    ssh: GuestSSH
    accel: AccelChoice
    console_ready_s: float
    ssh_ready_s: float

    def run(self, command: str, **kwargs):
        """A guest command, failing with the console excerpt if the guest died meanwhile."""
        try:
            return self.ssh.run(command, **kwargs)
        except KernlabError:
            self.vm.check()
            raise


@contextmanager
def guest_session(spec: VmSpec, kernel: Path, image: GuestImage, console_log: Path, *,
                  watch: tuple[str, ...] = ("panic", "oops", "bug"),
                  accel_verdicts: Path | None = None) -> Iterator[GuestSession]:
    """Boot, wait until the init said KERNLAB-READY and SSH answers, yield; QEMU is reaped on every exit path.
    accel_verdicts: where `auto`'s KVM probe verdict is kept per host (kernlab.vm.accel)."""
    with sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="kernlab-vm-") as scratch:
        workdir = Path(scratch)
        accel = choose_accel(spec, kernel, workdir, accel_verdicts)
        vm: RunningVM | None = None
        ssh: GuestSSH | None = None
        try:
            for attempt in range(3):  # the forwarded port may be taken between free_port() and QEMU's bind
                port = free_port()
                command = qemu_command(spec, kernel=kernel, initrd=image.path, ssh_port=port, accel=accel.accel,
                                       qmp_socket=workdir / "qmp.sock",
                                       clock_args=guest_clock_args(spec.arch, accel.accel))
                vm = RunningVM(command, console_log, workdir / "qmp.sock", port, accel, watch)
                vm.start()
                time.sleep(0.3)
                if vm.alive() or "Could not set up host forwarding" not in vm.text or attempt == 2:
                    break
                vm.stop()
            assert vm is not None
            console_ready = vm.wait_for_console(READY, spec.boot_timeout_s)
            ssh = GuestSSH(vm.ssh_port, image.keys.client_private, image.keys.host_public)
            ssh.connect(deadline_s=max(10.0, spec.boot_timeout_s - console_ready))
            session = GuestSession(vm, ssh, accel, console_ready, time.monotonic() - vm.started_at)
            yield session
            vm.check()
        finally:
            if vm is not None:
                reboot = None
                if ssh is not None and ssh.client is not None and vm.alive():
                    def reboot() -> None:
                        # -no-reboot: the guest's reboot makes QEMU exit by itself.
                        ssh.run("sync; (sleep 0.2; reboot -f) >/dev/null 2>&1 &", timeout=5, check=False)
                log.debug("vm stopped by %s", vm.stop(reboot))
            if ssh is not None:
                ssh.close()


__all__ = ["GuestFailed", "GuestSession", "guest_session"]
