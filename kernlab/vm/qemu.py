"""The VM: QEMU's command line (pure), the running guest with its console watched, and a shutdown that always reaps."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pexpect

from kernlab import tools
from kernlab.arch import X86_64, Arch, by_name
from kernlab.config.lab import VmSpec
from kernlab.errors import KernlabError, Terminated
from kernlab.vm import accel as accelcache

log = logging.getLogger(__name__)

READY = re.compile(rb"KERNLAB-READY")
KVM_PROBE_SECONDS = 8.0


def qemu_command(spec: VmSpec, *, kernel: Path, initrd: Path | None, ssh_port: int, accel: str,
                 qmp_socket: Path, clock_args: str = "") -> list[str]:
    """Everything QEMU is told; the guest network is user-mode, restricted, forwarded from 127.0.0.1 only.
    clock_args: the guest clock's kernel parameters (kernlab.vm.hostclock.guest_clock_args)."""
    arch = by_name(spec.arch)
    base = f"console={arch.console} panic=-1 oops=panic"
    append = " ".join(part for part in (base, arch.kernel_args, clock_args, spec.append) if part)
    command = [
        arch.qemu, "-machine", ",".join(arch.machine), "-accel", accel_option(accel),
        "-cpu", "host" if accel == "kvm" else arch.tcg_cpu,
        "-smp", smp_topology(spec.cpus, arch), "-m", str(spec.memory_mib),
        "-kernel", str(kernel), "-append", append,
        "-nodefaults", "-display", "none", "-serial", "mon:stdio", "-no-reboot",
        "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
        "-device", "virtio-net-pci,netdev=n0",
        "-qmp", f"unix:{qmp_socket},server=on,wait=off",
    ]
    if initrd is not None:
        command[command.index("-append"):command.index("-append")] = ["-initrd", str(initrd)]
    return command


def accel_option(accel: str) -> str:
    """-accel. TCG runs every vCPU in one host thread (thread=single): with a thread per vCPU (MTTCG, QEMU's
    default for x86 on x86) a 6.1 SMP guest jumped to address 0 from do_user_addr_fault while ftrace patched
    kernel text under a running workload (a lab run of 2026-12-03: "BUG: kernel NULL pointer dereference ...
    RIP: 0010:0x0"). The guest still has every CPU the lab asks for; they take turns on one host core."""
    return "tcg,thread=single" if accel == "tcg" else accel


def smp_topology(cpus: int, arch: Arch) -> str:
    """-smp for this guest. x86: one CPU per socket. Since QEMU 6.2, `-smp 2` means one socket with two cores,
    and SeaBIOS writes only the first logical CPU of each package into the MP table (mptable_setup()), which is
    where a kernel without ACPI learns its CPUs: it would bring up 1 ("Processors: 1") of the 2 asked for."""
    return f"{cpus},sockets={cpus},cores=1,threads=1" if arch is X86_64 else str(cpus)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (QEMU failing to bind it is retried by the caller)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def qemu_version(arch: Arch = X86_64) -> str:
    tools.require_tool(arch.qemu, arch.qemu_package)
    first = tools.output([arch.qemu, "--version"]).splitlines()[0]
    match = re.search(r"version (\S+)", first)
    return match.group(1) if match else first


# ---- console patterns -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConsoleProblem:
    kind: str  # panic | oops | bug | oom
    line: str
    excerpt: str

    def summary(self) -> str:
        what = {"panic": "guest kernel panicked", "oops": "guest kernel oopsed", "bug": "guest kernel hit a BUG",
                "oom": "guest OOM killer killed a task"}[self.kind]
        return f"{what}: {self.line.strip()}"


CONSOLE_PATTERNS = [
    ("panic", re.compile(r"Kernel panic - not syncing:.*")),
    ("oops", re.compile(r"(Oops: .*|BUG: unable to handle .*)")),
    ("bug", re.compile(r"(kernel BUG at .*|BUG: .*)")),
    ("oom", re.compile(r"Out of memory: Killed process .*")),
]
EXCERPT_BEFORE, EXCERPT_AFTER = 3, 25


def scan_console(text: str, kinds: tuple[str, ...] = ("panic", "oops", "bug", "oom")) -> ConsoleProblem | None:
    """The first (most severe first: panic, oops, BUG, OOM) problem in a console log, with the lines around it."""
    lines = text.splitlines()
    for kind, pattern in CONSOLE_PATTERNS:
        if kind not in kinds:
            continue
        for index, line in enumerate(lines):
            if match := pattern.search(line):
                # The first sign of trouble (an Oops before its panic) starts the excerpt.
                start = index
                for earlier, previous in enumerate(lines[:index]):
                    if any(p.search(previous) for k, p in CONSOLE_PATTERNS if k in ("oops", "bug")):
                        start = earlier
                        break
                excerpt = "\n".join(lines[max(0, start - EXCERPT_BEFORE):index + EXCERPT_AFTER])
                return ConsoleProblem(kind, match.group(0), excerpt)
    return None


# ---- the running VM ---------------------------------------------------------------------------------------------

class GuestFailed(KernlabError):
    """The guest died or the console showed a failure; the excerpt is in .excerpt and console.log."""

    def __init__(self, message: str, excerpt: str = "") -> None:
        super().__init__(message)
        self.excerpt = excerpt


@dataclass
class AccelChoice:
    accel: str
    reason: str
    cached: bool = False  # auto's verdict came from an earlier probe on this host (kernlab.vm.accel)


def _kvm_usable() -> str | None:
    if not os.path.exists(accelcache.KVM_DEVICE):
        return f"no {accelcache.KVM_DEVICE}"
    if not os.access(accelcache.KVM_DEVICE, os.R_OK | os.W_OK):
        return f"{accelcache.KVM_DEVICE} is not writable by this user (add it to the kvm group, or a udev rule)"
    return None


def _probe(spec: VmSpec, kernel: Path, workdir: Path) -> AccelChoice:
    """A short KVM boot of the lab's kernel: does it print kernel output in time?"""
    probe_spec = spec.model_copy(update={"memory_mib": 128, "cpus": 1})
    command = qemu_command(probe_spec, kernel=kernel, initrd=None, ssh_port=free_port(), accel="kvm",
                           qmp_socket=workdir / "kvm-probe.qmp")
    log.debug("kvm probe: %s", " ".join(command))
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    started = time.monotonic()
    try:
        output = _read_for(process, KVM_PROBE_SECONDS, b"Linux version")
        exited = process.poll()  # QEMU gone before the deadline: its own words say why
    finally:
        _kill(process.pid)
        process.wait()
    return probe_verdict(output, exited, time.monotonic() - started)


def choose_accel(spec: VmSpec, kernel: Path, workdir: Path, verdicts: Path | None = None) -> AccelChoice:
    """kvm or tcg. `kvm` must work or the run fails at once, saying why (never a silent fallback); `auto` uses
    KVM only if a short probe boot prints kernel output in time. The probe's verdict is kept in `verdicts`
    (per host: kernlab.vm.accel) and reused, so it is paid once."""
    if spec.accel == "tcg":
        return AccelChoice("tcg", "asked for tcg")
    arch = by_name(spec.arch)
    if not arch.host_runs_it():
        problem = f"an {arch.name} guest on this {platform.machine()} host runs only under TCG"
        if spec.accel == "kvm":
            raise KernlabError(f"accel kvm asked for, but {problem}")
        return AccelChoice("tcg", f"auto: {problem}")
    if problem := _kvm_usable():
        if spec.accel == "kvm":
            raise KernlabError(f"accel kvm asked for, but {problem}")
        return AccelChoice("tcg", f"auto: {problem}")
    key = accelcache.host_key(qemu_version()) if verdicts is not None else {}
    kept = accelcache.load(verdicts, key) if verdicts is not None else None
    if kept is not None:
        choice = AccelChoice(kept.accel, f"{kept.reason} (probe verdict kept since {kept.probed})", cached=True)
    else:
        choice = _probe(spec, kernel, workdir)
        if verdicts is not None:
            accelcache.store(verdicts, key, choice.accel, choice.reason)
    if spec.accel == "kvm":
        shown = choice.reason.removeprefix("auto: ")
        if choice.accel != "kvm":
            raise KernlabError(f"accel kvm asked for, but KVM does not work here: {shown}")
        return AccelChoice("kvm", f"asked for kvm; {shown}", choice.cached)
    return choice


def probe_verdict(output: bytes, exit_code: int | None, seconds: float) -> AccelChoice:
    """What the KVM probe boot showed: kernel output (use KVM), QEMU exiting (and why), or silence."""
    if b"Linux version" in output:
        return AccelChoice("kvm", "auto: kvm probe boot printed kernel output")
    if exit_code is not None:
        lines = output.decode(errors="replace").strip().splitlines()
        said = f": {lines[-1].strip()[:200]}" if lines else " without a word"
        return AccelChoice("tcg", f"auto: kvm probe QEMU exited with code {exit_code} after {seconds:.1f} s{said}")
    return AccelChoice("tcg", f"auto: kvm probe boot printed no kernel output in {KVM_PROBE_SECONDS:.0f} s")


def _read_for(process: subprocess.Popen, seconds: float, until: bytes) -> bytes:
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    data = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end and until not in data and process.poll() is None:
        chunk = process.stdout.read(4096)
        if chunk:
            data += chunk
        else:
            time.sleep(0.1)
    return data


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def qmp_quit(qmp_socket: Path, timeout: float = 2.0) -> bool:
    """Ask QEMU to quit over QMP; False if it did not listen."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(qmp_socket))
            sock.recv(4096)  # greeting
            for command in ("qmp_capabilities", "quit"):
                sock.sendall(json.dumps({"execute": command}).encode() + b"\n")
                sock.recv(4096)
        return True
    except OSError:
        return False


@dataclass
class RunningVM:
    """A QEMU process whose serial console is copied to console.log and watched for failures."""

    command: list[str]
    console_log: Path
    qmp_socket: Path
    ssh_port: int
    accel: AccelChoice
    watch: tuple[str, ...] = ("panic", "oops", "bug")
    child: pexpect.spawn | None = None
    text: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _reader: threading.Thread | None = None
    started_at: float = 0.0

    def start(self) -> None:
        self.console_log.parent.mkdir(parents=True, exist_ok=True)
        log.debug("qemu: %s", " ".join(self.command))
        self.started_at = time.monotonic()
        self.child = pexpect.spawn(self.command[0], self.command[1:], timeout=None, echo=False)
        self._reader = threading.Thread(target=self._read_console, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child else None

    def _read_console(self) -> None:
        assert self.child is not None
        with open(self.console_log, "ab") as out:
            while True:
                try:
                    chunk = self.child.read_nonblocking(65536, timeout=0.2)
                except pexpect.TIMEOUT:
                    continue
                except (pexpect.EOF, OSError, ValueError):
                    return
                out.write(chunk)
                out.flush()
                with self._lock:
                    self.text += chunk.decode(errors="replace").replace("\r\n", "\n")

    def alive(self) -> bool:
        return self.child is not None and self.child.isalive()

    def exit_text(self) -> str | None:
        """None while QEMU runs; else how it ended ("exited with code 1", "was killed by signal 9")."""
        if self.child is None or self.alive():
            return None
        if self.child.signalstatus is not None:
            return f"was killed by signal {self.child.signalstatus}"
        return f"exited with code {self.child.exitstatus}"

    def check(self) -> None:
        """Raise GuestFailed if the console shows a watched problem or QEMU is gone."""
        with self._lock:
            text = self.text
        if problem := scan_console(text, self.watch):
            time.sleep(0.5)  # let the rest of the trace arrive for the excerpt
            with self._lock:
                problem = scan_console(self.text, self.watch) or problem
            raise GuestFailed(f"{problem.summary()} (console: {self.console_log})", problem.excerpt)
        if not self.alive():
            tail = "\n".join(text.splitlines()[-15:])
            raise GuestFailed(f"QEMU exited unexpectedly (console: {self.console_log})", tail)

    def wait_for_console(self, pattern: re.Pattern[bytes], deadline_s: float) -> float:
        """Seconds until `pattern` showed on the console; failures on the way raise."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            with self._lock:
                if pattern.search(self.text.encode(errors="replace")):
                    return time.monotonic() - self.started_at
            self.check()
            time.sleep(0.05)
        raise GuestFailed(f"guest did not print {pattern.pattern.decode()} within {deadline_s:.0f} s "
                          f"(console: {self.console_log})", "\n".join(self.text.splitlines()[-15:]))

    def stop(self, guest_reboot: Callable[[], None] | None = None) -> str:
        """Stop QEMU for sure: guest reboot (QEMU exits: -no-reboot), QMP quit, SIGTERM, SIGKILL. Returns how."""
        if self.child is None:
            return "never started"
        how = "already exited"
        steps: list[tuple[str, Callable[[], object]]] = []
        if guest_reboot is not None:
            steps.append(("guest reboot", guest_reboot))
        steps += [("qmp quit", lambda: qmp_quit(self.qmp_socket)),
                  ("SIGTERM", lambda: _kill(self.child.pid, signal.SIGTERM)),
                  ("SIGKILL", lambda: _kill(self.child.pid, signal.SIGKILL))]
        for name, step in steps:
            if not self.child.isalive():
                break
            try:
                step()
            except Exception as error:  # a failed step only moves on to the next one
                log.debug("stop: %s failed: %s", name, error)
            end = time.monotonic() + 5
            while self.child.isalive() and time.monotonic() < end:
                time.sleep(0.05)
            how = name
        self.child.close(force=True)  # reaps the process
        if self._reader:
            self._reader.join(timeout=2)
        self.qmp_socket.unlink(missing_ok=True)
        return how


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM to kernlab unwinds like Ctrl-C, so the VM below is still reaped."""
    def handler(signum, frame):  # noqa: ARG001
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def boot_interactive(command: list[str]) -> int:
    """QEMU in the foreground on this terminal (Ctrl-A X leaves); returns its exit code once reaped."""
    process = subprocess.Popen(command)
    try:
        with sigterm_as_interrupt():
            return process.wait()
    except KeyboardInterrupt:
        # Ctrl-C belongs to the guest console; it only reaches here if the terminal sent SIGINT to us too.
        process.terminate()
        return process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
