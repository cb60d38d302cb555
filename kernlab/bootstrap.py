"""One-time machine setup (stdlib only, so it runs before anything is installed): Debian packages and the venv.

    sudo python3 -m kernlab.bootstrap        # apt-get packages, then .venv with kernlab and its dev tools
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from kernlab.paths import REPO

# What kernlab runs on the host, by the Debian package that has it.
DEBIAN_PACKAGES = [
    "linux-source-6.1",  # the offline kernel source
    "build-essential", "flex", "bison", "bc", "libelf-dev", "libssl-dev", "cpio", "xz-utils", "kmod",
    "ccache",
    "qemu-system-x86",
    "busybox-static", "dropbear-bin",  # the guest's shell and SSH server
    "stress-ng",  # optional outside workload, packaged into the guest when present
    "binutils",  # addr2line for inline-frame resolution
    "python3-venv",
]


# Installed where apt has a candidate (this Debian 12 machine offers linux-source-6.12 6.12.117-1~deb12u1).
OPTIONAL_PACKAGES = ["linux-source-6.12"]


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


def main(argv: list[str]) -> int:
    skip_apt = "--no-apt" in argv
    if not skip_apt:
        if os.geteuid() != 0:
            print("kernlab.bootstrap: apt-get needs root: run `sudo python3 -m kernlab.bootstrap` (or pass --no-apt)",
                  file=sys.stderr)
            return 1
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update"], env=env)
        run(["apt-get", "install", "-y", "--no-install-recommends", *DEBIAN_PACKAGES, *available(OPTIONAL_PACKAGES)],
            env=env)
    venv = REPO / ".venv"
    if not (venv / "bin" / "python").exists():
        run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "--quiet", "-e", f"{REPO}[dev]"])
    print(f"kernlab: ready; run {venv / 'bin' / 'inv'} --list")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
