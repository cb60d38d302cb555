"""The fault suite in a running lab (the real 6.1 lab kernel in QEMU): a guest panic, a killed QEMU and a hung
workload are each named as such, the run ends incomplete saying why, and QEMU is reaped."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from kernlab.cache import Cache
from kernlab.config.lab import load_lab
from kernlab.errors import KernlabError
from kernlab.lab import run

# ---- faults in a running lab (slow tier: the real 6.1 lab kernel in QEMU)

def crash_lab(tmp_path: Path, command: str, timeout_s: float = 120) -> Path:
    lab = tmp_path / "fault.yaml"
    lab.write_text("name: fault\nkernel: {version: 'debian:6.1'}\nvm: {memory_mib: 192, accel: tcg}\n"
                   f"zram: {{comp_algorithm: lz4, disksize_mib: 64}}\ntracing: {{enabled: false}}\n"
                   f"workloads: [{{name: victim, command: {json.dumps(command)}, timeout_s: {timeout_s}}}]\n")
    return lab


def qemu_children() -> list[int]:
    """QEMU processes this test process started (run_lab spawns QEMU as our direct child)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(os.getpid()) and fields.get("Name", "").startswith("qemu-system"):
            found.append(int(status.parent.name))
    return found


def run_fault(lab_file: Path, real_cache: Cache, tmp_path: Path) -> tuple[str, dict]:
    with pytest.raises(KernlabError) as failure:
        run.run_lab(load_lab(lab_file), lab_file, real_cache, tmp_path / "results", notify=lambda _: None)
    (folder,) = (tmp_path / "results" / "fault").iterdir()
    assert qemu_children() == []  # reaped
    return str(failure.value), json.loads((folder / "manifest.json").read_text())


@pytest.mark.vm
@pytest.mark.slow
def test_a_guest_panic_in_a_workload_is_named_as_such(kernel_build, real_cache: Cache, tmp_path: Path) -> None:
    """Before: `workload victim failed (exit -1): no stderr` with the panic only in console.log."""
    message, manifest = run_fault(crash_lab(tmp_path, "echo c > /proc/sysrq-trigger"), real_cache, tmp_path)
    assert "guest kernel panicked: Kernel panic - not syncing: sysrq triggered crash" in message
    assert manifest["status"] == "incomplete" and "guest kernel panicked" in manifest["why"]


@pytest.mark.vm
@pytest.mark.slow
def test_a_killed_qemu_is_named_as_such(kernel_build, real_cache: Cache, tmp_path: Path) -> None:
    killed: list[int] = []

    def kill_qemu_once_the_workload_runs() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            results = list((tmp_path / "results").glob("fault/*/zram-setup.txt"))
            pids = qemu_children()
            if results and pids:
                time.sleep(3)  # the workload's sleep is running by now
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.2)

    killer = threading.Thread(target=kill_qemu_once_the_workload_runs, daemon=True)
    killer.start()
    message, manifest = run_fault(crash_lab(tmp_path, "sleep 60"), real_cache, tmp_path)
    killer.join(timeout=10)
    assert killed, "the test never saw the lab's QEMU"
    assert "QEMU" in message and "no stderr" not in message, message
    assert manifest["status"] == "incomplete" and "QEMU" in manifest["why"]


@pytest.mark.vm
@pytest.mark.slow
def test_a_hung_workload_is_named_and_the_run_ends(kernel_build, real_cache: Cache, tmp_path: Path) -> None:
    started = time.monotonic()
    message, manifest = run_fault(crash_lab(tmp_path, "sleep 600", timeout_s=5), real_cache, tmp_path)
    assert "guest command timed out after 5 s: workload victim" in message
    assert manifest["status"] == "incomplete" and "timed out" in manifest["why"]
    assert time.monotonic() - started < 120
