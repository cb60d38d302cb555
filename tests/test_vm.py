"""The VM: QEMU's command line, console problem detection on recorded real logs, and real boots that always reap."""

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
from kernlab.vm import accel as accelcache
from kernlab.vm import qemu as vm

FIXTURES = Path(__file__).parent / "fixtures" / "console"


def test_qemu_command_from_spec(tmp_path: Path) -> None:
    spec = VmSpec(cpus=3, memory_mib=384, append="loglevel=4")
    command = vm.qemu_command(spec, kernel=Path("/k/bzImage"), initrd=Path("/i.cpio"), ssh_port=40022, accel="tcg",
                              qmp_socket=tmp_path / "q.sock")
    joined = " ".join(command)
    assert command[0] == "qemu-system-x86_64"
    assert "-machine q35" in joined and "-accel tcg,thread=single" in joined and "-cpu max" in joined
    # one CPU per socket: SeaBIOS's MP table lists one logical CPU per package (a kernel without ACPI saw 1 of 2)
    assert "-smp 3,sockets=3,cores=1,threads=1" in joined and "-m 384" in joined and "-no-reboot" in joined
    assert "-netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22" in joined
    assert "-device virtio-net-pci,netdev=n0" in joined
    assert command[command.index("-append") + 1] == "console=ttyS0 panic=-1 oops=panic random.trust_cpu=on loglevel=4"
    assert command[command.index("-initrd") + 1] == "/i.cpio"
    assert f"unix:{tmp_path / 'q.sock'},server=on,wait=off" in command
    assert "host" not in command  # never -cpu host under TCG


def test_qemu_command_for_an_arm64_guest(tmp_path: Path) -> None:
    """arm64: QEMU's virt machine with a Cortex-A57 under TCG, the PL011 console, the same restricted network."""
    spec = VmSpec(arch="arm64", cpus=2, memory_mib=192)
    command = vm.qemu_command(spec, kernel=Path("/k/Image"), initrd=Path("/i.cpio"), ssh_port=40022, accel="tcg",
                              qmp_socket=tmp_path / "q.sock")
    joined = " ".join(command)
    assert command[0] == "qemu-system-aarch64"
    assert "-machine virt" in joined and "-accel tcg,thread=single" in joined and "-cpu cortex-a57" in joined
    assert "-netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22" in joined
    assert "-device virtio-net-pci,netdev=n0" in joined and "-kernel /k/Image" in joined
    assert command[command.index("-append") + 1] == "console=ttyAMA0 panic=-1 oops=panic"


def test_an_arm64_guest_runs_under_tcg_and_kvm_is_refused_at_once(tmp_path: Path) -> None:
    choice = vm.choose_accel(VmSpec(arch="arm64"), Path("/k/Image"), tmp_path, tmp_path / "accel")
    assert choice.accel == "tcg" and choice.reason == "auto: an arm64 guest on this x86_64 host runs only under TCG"
    assert not (tmp_path / "accel").exists()  # nothing probed, nothing kept
    with pytest.raises(KernlabError, match=r"^accel kvm asked for, but an arm64 guest on this x86_64 host runs "):
        vm.choose_accel(VmSpec(arch="arm64", accel="kvm"), Path("/k/Image"), tmp_path)


def test_free_ports_differ() -> None:
    ports = {vm.free_port() for _ in range(5)}
    assert len(ports) >= 4 and all(1024 < port < 65536 for port in ports)


def test_clean_boot_has_no_problem() -> None:
    text = (FIXTURES / "boot-6.1-ok.log").read_text()
    assert "KERNLAB-READY" in text
    assert vm.scan_console(text) is None


def test_panic_detected_with_call_trace() -> None:
    problem = vm.scan_console((FIXTURES / "sysrq-panic-6.1.log").read_text())
    assert problem is not None and problem.kind == "panic"
    assert problem.summary() == "guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash"
    assert "sysrq_handle_crash" in problem.excerpt and "Call Trace" in problem.excerpt


def test_oom_kill_detected_only_when_watched() -> None:
    text = (FIXTURES / "oom-kill-6.1.log").read_text()
    assert vm.scan_console(text, ("panic", "oops", "bug")) is None
    problem = vm.scan_console(text)
    assert problem is not None and problem.kind == "oom"
    assert "Killed process" in problem.line and "(memhog)" in problem.line
    assert "oom-kill:constraint" in problem.excerpt


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


def test_kept_verdicts_are_per_host_and_a_damaged_one_is_probed_again(tmp_path: Path) -> None:
    key = accelcache.host_key("7.2.22")
    assert accelcache.load(tmp_path, key) is None
    kept = accelcache.store(tmp_path, key, "tcg", "auto: kvm probe boot printed no kernel output in 8 s")
    assert accelcache.load(tmp_path, key) == kept
    assert accelcache.load(tmp_path, {**key, "qemu": "8.2.2"}) is None  # another QEMU probes again
    (path,) = tmp_path.glob("kvm-probe-*.json")
    path.write_text("{not json")
    assert accelcache.load(tmp_path, key) is None


def test_accel_from_the_flag_or_the_environment() -> None:
    from kernlab.cli.common import accel_override
    from kernlab.errors import UsageError

    assert accel_override("kvm", {"KERNLAB_ACCEL": "tcg"}) == "kvm"
    assert accel_override(None, {"KERNLAB_ACCEL": "tcg"}) == "tcg"
    assert accel_override(None, {}) is None and accel_override(None, {"KERNLAB_ACCEL": ""}) is None
    with pytest.raises(UsageError, match=r"^--accel: 'fast' is not kvm, tcg or auto$"):
        accel_override("fast", {})
    with pytest.raises(KernlabError, match=r"^KERNLAB_ACCEL: 'KVM' is not kvm, tcg or auto$"):
        accel_override(None, {"KERNLAB_ACCEL": "KVM"})


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
