"""One-time machine setup (stdlib only, so it runs before anything is installed): apt packages and the venv.

    python3 -m kernlab.bootstrap          # apt-get packages (as root, or through sudo), then .venv with kernlab
    python3 -m kernlab.bootstrap --arm64  # also arm64 guests: the cross toolchain, qemu-system-aarch64, the
                                          # arm64 architecture in dpkg, and the arm64 guest image built once

Debian 12 and Ubuntu 22.04/24.04 (GitHub's x86 runners): the same tools everywhere; a distribution's
linux-source packages only where they fit kernlab's `debian:X.Y` kernels (Debian's 6.1 is the offline fallback).
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from kernlab.arch import ARM64
from kernlab.paths import LABS_DIR, REPO

OS_RELEASE = Path("/etc/os-release")
# What kernlab runs on the host, by the package that has it (the same names on Debian 12 and Ubuntu 22.04/24.04).
HOST_PACKAGES = [
    "build-essential", "flex", "bison", "bc", "libelf-dev", "libssl-dev", "cpio", "xz-utils", "kmod",
    "ccache",
    "qemu-system-x86",
    "busybox-static", "dropbear-bin",  # the guest's shell and SSH server
    "stress-ng",  # optional outside workload, packaged into the guest when present
    "binutils",  # addr2line for inline-frame resolution
    "python3-venv",
]


# Debian's kernel sources (kernlab.kernel.source reads /usr/src/linux-source-X.Y.tar.xz as `debian:X.Y`): 6.1 is the
# offline fallback of the default lab; 6.12 where apt has it (Debian 12 offers 6.12.117-1~deb12u1 in
# bookworm-backports/security). Ubuntu's linux-source-* ship another layout and are not installed.
DEBIAN_REQUIRED = {"12": ["linux-source-6.1"]}
DEBIAN_OPTIONAL = ["linux-source-6.12"]
# Only for arm64 guests (kernlab.arch.ARM64), so that x86-only users do not pay for them.
ARM64_PACKAGES = [*ARM64.gcc_packages, ARM64.binutils_package, ARM64.qemu_package]
ARM64_LAB = LABS_DIR / "zram-swap-arm64.yaml"
PYTHON_NEEDED = (3, 11)
UBUNTU_2204_PYTHON = ["python3.11", "python3.11-venv"]


class Unsupported(Exception):
    pass


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines, quotes removed (os-release(5))."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            fields[key] = value.strip().strip('"').strip("'")
    return fields


def distro_packages(release: dict[str, str], arm64: bool = False) -> tuple[list[str], list[str]]:
    """(packages to install, packages to install where apt has a candidate) for this distribution."""
    distro, version = release.get("ID", ""), release.get("VERSION_ID", "")
    if distro == "debian":
        return HOST_PACKAGES + DEBIAN_REQUIRED.get(version, []) + (ARM64_PACKAGES if arm64 else []), DEBIAN_OPTIONAL
    if distro == "ubuntu":
        if arm64:
            raise Unsupported(f"{OS_RELEASE}: ID=ubuntu: --arm64 is set up on Debian only for now (the arm64 "
                              "guest packages come from Debian's archive; Ubuntu serves arm64 from ports.ubuntu.com)")
        # kernlab needs Python >= 3.11 (pyproject.toml); 22.04's python3 is 3.10, its archive has 3.11 beside it.
        return list(HOST_PACKAGES) + (UBUNTU_2204_PYTHON if version == "22.04" else []), []
    raise Unsupported(f"{OS_RELEASE}: ID={distro or '(none)'}: kernlab installs with apt on Debian and Ubuntu only; "
                      "install its tools yourself and pass --no-apt")


def venv_python(running: tuple[int, int], executable: str, which) -> str:  # noqa: ANN001 - shutil.which
    """The Python the venv is made with: this one when it is new enough, else python3.11 or later on PATH."""
    if running >= PYTHON_NEEDED:
        return executable
    for minor in range(13, PYTHON_NEEDED[1] - 1, -1):
        if found := which(f"python3.{minor}"):
            return found
    return _python_missing(running)


def _python_missing(running: tuple[int, int]) -> str:
    raise Unsupported(f"kernlab needs Python >= {'.'.join(map(str, PYTHON_NEEDED))} and this is "
                      f"{running[0]}.{running[1]} with no python3.11 on PATH: install python3.11 and python3.11-venv "
                      "(on Ubuntu 22.04: apt-get install python3.11 python3.11-venv), then run this again")


def privileged(cmd: list[str], euid: int, have_sudo: bool) -> list[str]:
    """cmd as root: directly when root (a CI container has no sudo), else through sudo."""
    if euid == 0:
        return cmd
    if have_sudo:
        return ["sudo", "--preserve-env=DEBIAN_FRONTEND", *cmd]
    raise Unsupported("apt-get needs root and there is no sudo: run as root, or pass --no-apt")


def available(packages: list[str]) -> list[str]:
    """The packages apt knows a candidate version of."""
    found = []
    for package in packages:
        shown = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True).stdout
        if "Candidate:" in shown and "Candidate: (none)" not in shown:
            found.append(package)
    return found


def run(cmd: list[str], **kwargs) -> None:
    print(f"+ {shlex.join(cmd)}", flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def foreign_architectures() -> list[str]:
    return subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True).stdout.split()


def main(argv: list[str]) -> int:
    skip_apt, arm64 = "--no-apt" in argv, "--arm64" in argv
    if unknown := [arg for arg in argv if arg not in ("--no-apt", "--arm64")]:
        print(f"kernlab.bootstrap: unknown option {unknown[0]} (have: --arm64, --no-apt)", file=sys.stderr)
        return 2
    if not skip_apt:
        try:
            required, optional = distro_packages(parse_os_release(OS_RELEASE.read_text()), arm64)
            as_root = functools.partial(privileged, euid=os.geteuid(), have_sudo=shutil.which("sudo") is not None)
            update = as_root(["apt-get", "update"])
        except (Unsupported, OSError) as error:
            print(f"kernlab.bootstrap: {error}", file=sys.stderr)
            return 1
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if arm64 and ARM64.debian_arch not in foreign_architectures():
            # The arm64 guest's busybox and dropbear are Debian's arm64 packages, downloaded, never installed.
            run(as_root(["dpkg", "--add-architecture", ARM64.debian_arch]))
        run(update, env=env)
        run(as_root(["apt-get", "install", "-y", "--no-install-recommends", *required, *available(optional)]), env=env)
    venv = REPO / ".venv"
    if not (venv / "bin" / "python").exists():
        try:
            python = venv_python(sys.version_info[:2], sys.executable, shutil.which)
        except Unsupported as error:
            print(f"kernlab.bootstrap: {error}", file=sys.stderr)
            return 1
        run([python, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "--quiet", "-e", f"{REPO}[dev]"])
    if arm64:  # fetches the guest's arm64 packages into the kernlab cache now, while apt's archive is at hand
        run([str(venv / "bin" / "inv"), "--search-root", str(REPO), "guest.build", "--lab", str(ARM64_LAB)])
    print(f"kernlab: ready; run {venv / 'bin' / 'inv'} --list")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
