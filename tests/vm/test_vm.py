"""Real boots of the lab kernel in QEMU: SSH in, a dropped connection made again, the KVM probe kept, a calibrated
clock under host load, and QEMU reaped on a guest panic, Ctrl-C and SIGTERM."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pytest

from kernlab.config.lab import VmSpec
from kernlab.errors import KernlabError
from kernlab.paths import REPO
from kernlab.vm import qemu as vm


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def image(real_cache):
    from kernlab.config.lab import parse_lab
    from kernlab.guest.image import build_guest_image

    return build_guest_image(parse_lab({"name": "test-vm"}, "test"), real_cache)


@pytest.mark.vm
@pytest.mark.slow
def test_boot_ssh_and_reap(kernel_build, image, tmp_path: Path) -> None:
    from kernlab.vm.session import guest_session

    with guest_session(VmSpec(), kernel_build.image, image, tmp_path / "console.log") as session:
        pid = session.vm.pid
        assert pid_alive(pid)
        assert session.run("uname -r").stdout.strip() == kernel_build.info["kernel_version"]
        algorithms = session.run("cat /sys/block/zram0/comp_algorithm").stdout
        assert "lz4" in algorithms and "zstd" in algorithms and "[" in algorithms
    assert not pid_alive(pid)
    assert "KERNLAB-READY" in (tmp_path / "console.log").read_text()


@pytest.mark.vm
@pytest.mark.slow
def test_a_dropped_connection_is_made_again_once_for_all_threads(kernel_build, image, tmp_path: Path) -> None:
    """dropbear's process for kernlab's connection killed inside the guest: the command that was running says
    the connection was lost; then four threads at once run their commands on one new connection (a second
    reconnect would close the channels of the others), and dropbear's log on the console shows both logins."""
    from kernlab.vm.session import guest_session

    with guest_session(VmSpec(), kernel_build.image, image, tmp_path / "console.log") as session:
        first = session.ssh.generation
        # The command's shell is a child of the dropbear process that serves this connection.
        with pytest.raises(KernlabError, match=r"^ssh: connection to the guest lost during killing dropbear: "):
            session.ssh.run("kill -9 $PPID; sleep 30", timeout=60, what="killing dropbear")
        outputs: dict[int, str] = {}

        def echo(n: int) -> None:
            # Each command outlasts the opening of the others' channels: Debian 12's dropbear (2022.83) ends the
            # whole connection when a channel opens while another channel's command exits (mkj/dropbear#321; a
            # CI run lost `echo 3` so), which is why kernlab's own parallel work takes a sibling connection.
            outputs[n] = session.ssh.run(f"sleep 3; echo {n}", timeout=60).stdout.strip()

        threads = [threading.Thread(target=echo, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert outputs == {n: str(n) for n in range(4)}
        assert session.ssh.reconnects == 1 and session.ssh.generation == first + 1
        # A thread that took the old connection before the drop asks too late: the new one is kept.
        session.ssh._reconnect(first)
        assert session.ssh.reconnects == 1 and session.run("echo kept").stdout.strip() == "kept"
        # A sibling is a dropbear session of its own: the main one dying again leaves it untouched.
        other = session.ssh.sibling()
        with pytest.raises(KernlabError, match=r"^ssh: connection to the guest lost during killing dropbear: "):
            session.ssh.run("kill -9 $PPID; sleep 30", timeout=60, what="killing dropbear")
        assert other.run("echo alive").stdout.strip() == "alive" and other.reconnects == 0
        other.close()
    # The first login, the reconnect, the sibling, and the reconnect for the guest's reboot at the end.
    logins = re.findall(r"Pubkey auth succeeded for 'root'", (tmp_path / "console.log").read_text())
    assert len(logins) == 4


@pytest.mark.vm
@pytest.mark.slow
def test_auto_probes_kvm_once_per_host_and_kvm_never_falls_back(kernel_build, image, tmp_path: Path) -> None:
    """The first `auto` boot probes KVM and keeps the verdict; the second reuses it and says so. `kvm` either
    works (and says why) or fails at once with the reason: on this machine /dev/kvm exists but a KVM guest dies."""
    from kernlab.vm.session import guest_session

    verdicts = tmp_path / "accel"
    choices = []
    for attempt in (1, 2):
        with guest_session(VmSpec(), kernel_build.image, image, tmp_path / f"console-{attempt}.log",
                           accel_verdicts=verdicts) as session:
            choices.append(session.accel)
            clocksource = session.run("cat /sys/devices/system/clocksource/clocksource0/current_clocksource")
            # The guest's own clock says what ran: kvm-clock only under KVM.
            assert (clocksource.stdout.strip() == "kvm-clock") == (session.accel.accel == "kvm")
    first, second = choices
    assert (first.cached, second.cached) == (False, True) and first.accel == second.accel
    assert second.reason.startswith(first.reason) and "probe verdict kept since" in second.reason
    assert len(list(verdicts.glob("kvm-probe-*.json"))) == 1
    if first.accel == "tcg":
        with pytest.raises(KernlabError, match=r"^accel kvm asked for, but .*(/dev/kvm|KVM does not work here: )"):
            vm.choose_accel(VmSpec(accel="kvm"), kernel_build.image, tmp_path, verdicts)
    else:
        assert vm.choose_accel(VmSpec(accel="kvm"), kernel_build.image, tmp_path, verdicts).accel == "kvm"


@pytest.mark.vm
@pytest.mark.slow
def test_guest_panic_fails_run_with_excerpt_and_reaps(kernel_build, image, tmp_path: Path) -> None:
    from kernlab.vm.session import guest_session

    pid = None
    with pytest.raises(vm.GuestFailed) as failure, \
            guest_session(VmSpec(accel="tcg"), kernel_build.image, image, tmp_path / "console.log") as session:
        pid = session.vm.pid
        session.run("echo c > /proc/sysrq-trigger", check=False, timeout=15)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # check() raises once the panic is on the console
            session.vm.check()
            time.sleep(0.1)
    assert "guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash" in str(failure.value)
    assert "sysrq_handle_crash" in failure.value.excerpt
    assert pid is not None and not pid_alive(pid)


@pytest.mark.vm
@pytest.mark.slow
def test_interrupt_inside_session_reaps_qemu(kernel_build, image, tmp_path: Path) -> None:
    from kernlab.vm.session import guest_session

    pid = None
    with pytest.raises(KeyboardInterrupt), \
            guest_session(VmSpec(accel="tcg"), kernel_build.image, image, tmp_path / "console.log") as session:
        pid = session.vm.pid
        raise KeyboardInterrupt
    assert pid is not None and not pid_alive(pid)


SIGTERM_SCRIPT = """
import sys, time
from pathlib import Path
from kernlab.cache import Cache
from kernlab.guest.image import build_guest_image
from kernlab.config.lab import VmSpec, parse_lab
from kernlab.vm.session import guest_session
image = build_guest_image(parse_lab({"name": "test-vm"}, "test"), Cache.at(sys.argv[3]))
with guest_session(VmSpec(accel="tcg"), Path(sys.argv[1]), image, Path(sys.argv[2])) as session:
    print(session.vm.pid, flush=True)
    time.sleep(600)
"""


@pytest.mark.vm
@pytest.mark.slow
def test_sigterm_to_kernlab_reaps_qemu(kernel_build, image, real_cache, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", SIGTERM_SCRIPT, str(kernel_build.image),
                                str(tmp_path / "console.log"), str(real_cache.root)],
                               cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        pid = int(process.stdout.readline())
        assert pid_alive(pid)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not pid_alive(pid)


@pytest.mark.vm
@pytest.mark.slow
def test_every_boot_under_host_load_gets_a_calibrated_clock(kernel_build, real_cache) -> None:
    """10 boots of the lab kernel while the host runs a parallel make: under TCG the guest is handed the host's
    TSC rate (kernlab.hostclock), so none comes up on jiffies (before: 5 of 6 boots of 6.1 on a busy host)."""
    from kernlab.config.lab import load_lab
    from kernlab.lab.clockcheck import count_clocksources
    from kernlab.paths import DEFAULT_LAB

    count = count_clocksources(load_lab(DEFAULT_LAB), kernel_build.image, real_cache, boots=10)
    assert len(count.clocksources) == 10 and count.jiffies_boots == 0, count.figures()
    assert count.other_boots == 0, count.figures()  # tsc-early too is the TSC (kernlab.clockcheck)
