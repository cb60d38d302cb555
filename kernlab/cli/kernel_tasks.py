"""The kernel.*, guest.* and vm.* tasks: fetch, configure and build a kernel, its build key, the guest image, and a
guest booted by hand."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from kernlab import progress as ci_progress
from kernlab.cache import read_json, write_json_atomic
from kernlab.cli.common import Context, to_stderr
from kernlab.errors import KernlabError
from kernlab.guest.image import GuestImage, build_guest_image
from kernlab.kernel import build, source
from kernlab.paths import KCONFIG_DIR
from kernlab.units import MIB
from kernlab.vm import qemu
from kernlab.vm.hostclock import guest_clock_args
from kernlab.vm.ssh import GuestSSH


def fetch(ctx: Context, kernel: str | None = None, install: bool = False, mirror: str | None = None,
          strict: bool | None = None) -> source.KernelSource:
    progress = Progress(TextColumn("download"), BarColumn(), TextColumn("{task.completed:,.0f} B"),
                        console=ctx.console, transient=True)
    task = None

    def on_progress(done: int, total: int | None) -> None:
        nonlocal task
        if task is None:  # a bar only when something is downloaded
            progress.start()
            task = progress.add_task("download", total=total)
        progress.update(task, completed=done, total=total)

    try:
        used = source.fetch_source(ctx.lab.kernel, ctx.cache, kernel=kernel, install=install, mirror=mirror,
                                   strict=strict, on_progress=on_progress,
                                   notify=lambda line: ctx.console.print(f"[yellow]note:[/] {line}"))
    finally:
        progress.stop()
    ctx.console.print(f"source: {used.describe()} at {used.tree}")
    return used


def configure(ctx: Context, kernel: str | None = None, install: bool = False, strict: bool | None = None) -> Path:
    used = fetch(ctx, kernel=kernel, install=install, strict=strict)
    out, info = build.prepare_config(used, ctx.lab.kernel, ctx.cache, KCONFIG_DIR, ctx.lab.arch)
    ctx.console.print(f"config: {out / 'obj' / '.config'} ({info['requested']} symbols requested and verified, "
                      f"sha256 {info['config_sha256'][:12]})")
    return out / "obj" / ".config"


def build_kernel(ctx: Context, kernel: str | None = None, install: bool = False, strict: bool | None = None,
                 jobs: int | None = None) -> build.KernelBuild:
    used = fetch(ctx, kernel=kernel, install=install, strict=strict)
    started = time.monotonic()
    if not ctx.console.is_terminal:  # a log file or CI: plain lines, since a transient bar prints nothing there
        with ci_progress.group(f"build linux {used.version}", ctx.console.print), \
                ci_progress.Heartbeat(f"building linux {used.version}", ctx.console.print) as heartbeat:
            result = build.build_kernel(used, ctx.lab.kernel, ctx.cache, KCONFIG_DIR, arch=ctx.lab.arch, jobs=jobs,
                                        on_line=heartbeat.on_line,
                                        on_start=lambda log_file: ctx.console.print(f"build log: {log_file}"))
        return _built(ctx, result, time.monotonic() - started)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.fields[objects]} objects"),
                  TimeElapsedColumn(), TextColumn("[dim]{task.fields[log]}"),
                  console=ctx.console, transient=True) as progress:
        task = progress.add_task(f"building linux {used.version}", total=None, objects=0, log="")

        def on_start(log_file: Path) -> None:
            progress.update(task, log=f"log: {log_file}")

        def on_line(line: str) -> None:
            if ci_progress.OBJECT_LINE.match(line):
                progress.update(task, objects=progress.tasks[0].fields["objects"] + 1)

        result = build.build_kernel(used, ctx.lab.kernel, ctx.cache, KCONFIG_DIR, arch=ctx.lab.arch, jobs=jobs,
                                    on_line=on_line, on_start=on_start)
    return _built(ctx, result, time.monotonic() - started)


def _built(ctx: Context, result: build.KernelBuild, seconds: float) -> build.KernelBuild:
    if result.cached:
        ctx.console.print(f"kernel: cached, nothing to do ({seconds:.2f} s): {result.describe()}")
    else:
        ctx.console.print(f"kernel: built in {result.duration_s:.0f} s: {result.describe()}")
    ctx.console.print(f"  {result.image}\n  {result.vmlinux}\n  {result.dir / 'build.json'}")
    return result


def kernel_key(ctx: Context, kernel: str | None = None, install: bool = False, strict: bool | None = None) -> str:
    """The kernel's build key (the cache folder builds/<key>), without building: a CI cache key. Only the key
    goes to stdout; what fetching the source says goes to stderr. A kernel.org release or tarball whose sha256
    is known is neither downloaded nor extracted for it."""
    known = source.known_source_key(ctx.lab.kernel, kernel)
    used = known or fetch(to_stderr(ctx), kernel=kernel, install=install, strict=strict)
    key = build_key_of(ctx, used)
    print(key)
    return key


def build_key_of(ctx: Context, used: source.KernelSource | str) -> str:
    return build.build_key(used, ctx.lab.kernel, KCONFIG_DIR, build.compiler_version(ctx.lab.arch), ctx.lab.arch)


def guest_image(ctx: Context) -> GuestImage:
    image = build_guest_image(ctx.lab, ctx.cache)
    state = "cached" if image.cached else f"built in {image.info['build_s']:.1f} s"
    ctx.console.print(f"guest image: {state}: {image.path} ({image.info['bytes'] / MIB:.1f} MiB, "
                      f"sha256 {image.sha256[:12]})")
    return image


def _vm_state_file(ctx: Context) -> Path:
    return ctx.cache.dir("run") / f"{ctx.lab.name}.json"


def vm_boot(ctx: Context, kernel: str | None = None) -> int:
    """Interactive boot on this terminal; `inv vm.ssh` reaches it while it runs."""
    kernel_build = build_kernel(ctx, kernel=kernel)
    image = guest_image(ctx)
    accel = qemu.choose_accel(ctx.lab.vm, kernel_build.image, ctx.cache.dir("run"), ctx.cache.dir("accel"))
    port = qemu.free_port()
    command = qemu.qemu_command(ctx.lab.vm, kernel=kernel_build.image, initrd=image.path, ssh_port=port,
                                accel=accel.accel, qmp_socket=ctx.cache.dir("run") / f"{ctx.lab.name}.qmp",
                                clock_args=guest_clock_args(ctx.lab.vm.arch, accel.accel))
    state = _vm_state_file(ctx)
    write_json_atomic(state, {"port": port, "client_key": str(image.keys.client_private),
                              "host_public": image.keys.host_public})
    ctx.console.print(f"booting ({accel.accel}: {accel.reason}); Ctrl-A X leaves; "
                      f"`inv vm.ssh --lab {ctx.lab_path} -- CMD` runs a command in it")
    try:
        return qemu.boot_interactive(command)
    finally:
        state.unlink(missing_ok=True)


def vm_ssh(ctx: Context, command: str) -> int:
    state = read_json(_vm_state_file(ctx))
    if state is None:
        raise KernlabError(f"no running VM for lab {ctx.lab.name}: start one with `inv vm.boot --lab {ctx.lab_path}`")
    session = GuestSSH(state["port"], Path(state["client_key"]), state["host_public"])
    session.connect(deadline_s=10)
    try:
        result = session.run(command, check=False, timeout=3600)
    finally:
        session.close()
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.exit_code
