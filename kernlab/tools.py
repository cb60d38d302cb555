"""Running external tools: every command is logged, and a failure becomes a KernlabError."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from kernlab.errors import KernlabError

log = logging.getLogger(__name__)


def require_tool(name: str, package: str) -> str:
    """Path of `name` on PATH, or a KernlabError saying which Debian package has it."""
    path = shutil.which(name)
    if path is None:
        raise KernlabError(f"{name} not found: install it with `apt-get install -y {package}`")
    return path


def run(
    cmd: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    what: str | None = None,
    input_bytes: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run cmd to completion; stdout+stderr go to log_file if given, else are captured.

    A non-zero exit raises KernlabError naming the command (or `what`) and the
    last line it printed (or the log file).
    """
    argv = [str(c) for c in cmd]
    log.debug("run: %s%s", shlex.join(argv), f" (cwd {cwd})" if cwd else "")
    if log_file is not None:
        with open(log_file, "ab") as out:
            out.write(f"$ {shlex.join(argv)}\n".encode())
            out.flush()
            proc = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, input=input_bytes)
    else:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, input=input_bytes)
    if proc.returncode != 0:
        label = what or shlex.join(argv[:3])
        if log_file is not None:
            detail = f"see {log_file}"
        else:
            lines = (proc.stderr or proc.stdout or b"").decode(errors="replace").strip().splitlines()
            detail = lines[-1] if lines else "no output"
        raise KernlabError(f"{label} failed (exit {proc.returncode}): {detail}")
    return proc


def output(cmd: Sequence[str | Path], **kwargs) -> str:
    """Run cmd and return its stdout as text (stripped)."""
    return run(cmd, **kwargs).stdout.decode(errors="replace").strip()


def stream(
    cmd: Sequence[str | Path],
    *,
    log_file: Path,
    on_line: Callable[[str], None] | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    what: str | None = None,
) -> None:
    """Run cmd, appending its output to log_file line by line and handing each line to on_line.

    A non-zero exit raises KernlabError pointing at the log.
    """
    argv = [str(c) for c in cmd]
    log.debug("run: %s (log %s)", shlex.join(argv), log_file)
    with open(log_file, "a", buffering=1) as out:  # line-buffered: users tail the log live
        out.write(f"$ {shlex.join(argv)}\n")
        out.flush()
        # Its own process group, so an interrupt takes make's whole tree of compilers down with it.
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, errors="replace", bufsize=1, start_new_session=True)
        try:
            assert process.stdout is not None
            for line in process.stdout:
                out.write(line)
                if on_line:
                    on_line(line.rstrip("\n"))
            code = process.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    if code != 0:
        raise KernlabError(f"{what or shlex.join(argv[:3])} failed (exit {code}): see {log_file}")


def compiler(name: str, packages: str) -> tuple[str, str]:
    """(the compiler's path, its version line): what kernel builds and the guest's static binaries are keyed by."""
    path = require_tool(name, packages)
    return path, output([path, "--version"]).splitlines()[0]
