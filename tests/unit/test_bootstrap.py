"""Machine setup per distribution (kernlab.bootstrap), from os-release files of real hosts
(tests/fixtures/os-release/, see the fixtures README)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kernlab import bootstrap
from kernlab.paths import REPO
from tests.common import FIXTURES

RELEASES = FIXTURES / "os-release"


def packages(name: str) -> tuple[list[str], list[str]]:
    return bootstrap.distro_packages(bootstrap.parse_os_release((RELEASES / name).read_text()))


def test_debian_12_gets_its_kernel_sources() -> None:
    required, optional = packages("debian-12")
    assert "linux-source-6.1" in required and optional == ["linux-source-6.12"]
    assert {"qemu-system-x86", "busybox-static", "dropbear-bin", "build-essential"} <= set(required)


@pytest.mark.parametrize("name", ["ubuntu-22.04", "ubuntu-24.04"])
def test_ubuntu_gets_the_tools_and_no_debian_kernel_source(name: str) -> None:
    required, optional = packages(name)
    assert required[:len(bootstrap.HOST_PACKAGES)] == bootstrap.HOST_PACKAGES and optional == []
    assert not any(package.startswith("linux-source") for package in required)


def test_arm64_tools_only_when_asked_for_and_on_debian() -> None:
    release = bootstrap.parse_os_release((RELEASES / "debian-12").read_text())
    plain, _ = bootstrap.distro_packages(release)
    with_arm64, _ = bootstrap.distro_packages(release, arm64=True)
    assert not {"qemu-system-arm", "gcc-aarch64-linux-gnu"} & set(plain)
    assert set(with_arm64) - set(plain) == {"gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross",
                                            "binutils-aarch64-linux-gnu", "qemu-system-arm"}
    with pytest.raises(bootstrap.Unsupported, match=r"^/etc/os-release: ID=ubuntu: --arm64 is set up on Debian only"):
        bootstrap.distro_packages(bootstrap.parse_os_release((RELEASES / "ubuntu-24.04").read_text()), arm64=True)


def test_an_unknown_distribution_is_refused_naming_the_file() -> None:
    with pytest.raises(bootstrap.Unsupported, match=r"^/etc/os-release: ID=fedora: .*--no-apt"):
        bootstrap.distro_packages(bootstrap.parse_os_release('NAME="Fedora Linux"\nID=fedora\nVERSION_ID=40\n'))


def test_root_runs_apt_directly_and_a_user_through_sudo() -> None:
    assert bootstrap.privileged(["apt-get", "update"], euid=0, have_sudo=False) == ["apt-get", "update"]
    assert bootstrap.privileged(["apt-get", "update"], euid=1000, have_sudo=True)[0] == "sudo"
    with pytest.raises(bootstrap.Unsupported, match="no sudo"):
        bootstrap.privileged(["apt-get", "update"], euid=1000, have_sudo=False)


def test_os_release_quotes_and_comments() -> None:
    fields = bootstrap.parse_os_release((RELEASES / "ubuntu-24.04").read_text() + "# a comment\n")
    assert (fields["ID"], fields["VERSION_ID"], fields["PRETTY_NAME"]) == ("ubuntu", "24.04", "Ubuntu 24.04.4 LTS")


def test_ubuntu_22_04_gets_a_python_kernlab_can_run_on() -> None:
    assert packages("ubuntu-22.04")[0][-2:] == ["python3.11", "python3.11-venv"]
    assert "python3.11" not in packages("ubuntu-24.04")[0]  # 24.04's python3 is 3.12


def test_the_venv_is_made_with_a_python_of_at_least_3_11() -> None:
    on_path = {"python3.11": "/usr/bin/python3.11"}
    assert bootstrap.venv_python((3, 12), "/usr/bin/python3", on_path.get) == "/usr/bin/python3"
    assert bootstrap.venv_python((3, 10), "/usr/bin/python3", on_path.get) == "/usr/bin/python3.11"
    with pytest.raises(bootstrap.Unsupported, match=r"^kernlab needs Python >= 3.11 and this is 3.10 .*3.11-venv"):
        bootstrap.venv_python((3, 10), "/usr/bin/python3", {}.get)


def test_bootstrap_itself_runs_on_ubuntu_22_04s_python() -> None:
    """It must get as far as saying what to install under 3.10 (pyenv's, where this machine has one)."""
    found = [Path("/root/.pyenv/versions/3.10.13/bin/python3.10"), Path("/usr/bin/python3.10")]
    python310 = next((str(path) for path in found if path.exists()), None)
    if python310 is None:
        pytest.skip("no Python 3.10 here")
    done = subprocess.run([python310, "-c", "import kernlab.bootstrap as b; print(b.PYTHON_NEEDED)"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "(3, 11)", done.stderr
