"""The VM: QEMU's command line, the accelerator's choice and its kept verdicts, console problem detection on
recorded real logs. (Real boots that always reap: tests/vm/test_vm.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from kernlab.config.lab import VmSpec
from kernlab.errors import KernlabError
from kernlab.vm import accel as accelcache
from kernlab.vm import qemu as vm
from tests.common import FIXTURES

CONSOLES = FIXTURES / "console"


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
    text = (CONSOLES / "boot-6.1-ok.log").read_text()
    assert "KERNLAB-READY" in text
    assert vm.scan_console(text) is None


def test_panic_detected_with_call_trace() -> None:
    problem = vm.scan_console((CONSOLES / "sysrq-panic-6.1.log").read_text())
    assert problem is not None and problem.kind == "panic"
    assert problem.summary() == "guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash"
    assert "sysrq_handle_crash" in problem.excerpt and "Call Trace" in problem.excerpt


def test_oom_kill_detected_only_when_watched() -> None:
    text = (CONSOLES / "oom-kill-6.1.log").read_text()
    assert vm.scan_console(text, ("panic", "oops", "bug")) is None
    problem = vm.scan_console(text)
    assert problem is not None and problem.kind == "oom"
    assert "Killed process" in problem.line and "(memhog)" in problem.line
    assert "oom-kill:constraint" in problem.excerpt


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
