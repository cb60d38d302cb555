"""Guest image: the cpio writer, ELF dependencies, memhog, and byte-identical rebuilds."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kernlab import guest
from kernlab.cache import Cache
from kernlab.errors import KernlabError
from kernlab.lab import parse_lab
from kernlab.paths import REPO


def test_newc_is_deterministic_and_readable_by_cpio(tmp_path: Path) -> None:
    entries = [guest.regular("init", b"#!/bin/sh\n", 0o755), guest.symlink("bin/sh", "busybox"),
               guest.regular("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"), guest.char_device("dev/console", 5, 1)]
    first = guest.write_newc(entries)
    assert first == guest.write_newc(list(reversed(entries)))  # order of input does not matter
    assert len(first) % 512 == 0
    assert first.startswith(b"070701")
    assert b"TRAILER!!!\0" in first
    if shutil.which("cpio") is None:
        pytest.skip("cpio not installed")
    archive = tmp_path / "a.cpio"
    archive.write_bytes(first)
    listing = subprocess.run(["cpio", "-itv", "-F", str(archive)], capture_output=True, text=True, check=True).stdout
    names = [line.split()[-1] if "->" not in line else line.split()[-3] for line in listing.splitlines()]
    assert names == ["bin", "bin/sh", "dev", "dev/console", "etc", "etc/passwd", "init"]
    assert "root" in listing and "Jan  1  1970" in listing
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["cpio", "-id", "--quiet", "-F", str(archive), "--no-absolute-filenames", "init", "etc/passwd"],
                   cwd=out, check=True)
    assert (out / "init").read_bytes() == b"#!/bin/sh\n"


def test_shared_libraries_of_real_dropbear() -> None:
    if not guest.DROPBEAR.exists():
        pytest.skip("dropbear-bin not installed")
    libraries = guest.shared_libraries(guest.DROPBEAR)
    assert "/lib64/ld-linux-x86-64.so.2" in libraries
    names = {Path(path).name for path in libraries}
    assert {"libc.so.6", "libz.so.1", "libcrypt.so.1"} <= names
    assert all(path.exists() and not path.is_symlink() for path in libraries.values())


def test_shared_libraries_in_a_fake_root(tmp_path: Path) -> None:
    """A copy of dropbear in a root that lacks libz: the missing library is named."""
    if not guest.DROPBEAR.exists():
        pytest.skip("dropbear-bin not installed")
    root = tmp_path / "root"
    real = guest.shared_libraries(guest.DROPBEAR)
    for path, host in real.items():
        if "libz" not in path:
            (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(host, root / path.lstrip("/"))
    with pytest.raises(KernlabError, match=r"shared library libz.so.1 \(needed by dropbear\) not found"):
        guest.shared_libraries(guest.DROPBEAR, root=root)


def test_memhog_runs_and_reports_json(tmp_path: Path) -> None:
    binary = guest.compile_static(REPO / "guest" / "memhog.c", Cache(tmp_path))
    for args in (["--forks", "1"], ["--data", "random", "--passes", "1"], ["--ratio", "2.5", "--forks", "2"]):
        result = subprocess.run([binary, "--size-mib", "4", *args], capture_output=True, text=True, check=True)
        report = json.loads(result.stdout)
        assert report["ok"] is True and report["intact"] is True
        assert report["size_mib"] == 4
    bad = subprocess.run([binary, "--size-mib", "4", "--data", "noise"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown --data noise" in bad.stderr


def test_image_is_byte_identical_and_cached(tmp_path: Path) -> None:
    if not (guest.BUSYBOX.exists() and guest.DROPBEAR.exists()):
        pytest.skip("busybox-static / dropbear-bin not installed")
    lab = parse_lab({"name": "t"}, "t.yaml")
    cache = Cache(tmp_path / "cache")
    first = guest.build_guest_image(lab, cache)
    assert not first.cached
    data = first.path.read_bytes()
    # Rebuild from scratch with the same keys: the same bytes.
    shutil.rmtree(first.path.parent)
    second = guest.build_guest_image(lab, cache)
    assert second.path.read_bytes() == data and second.sha256 == first.sha256
    third = guest.build_guest_image(lab, cache)
    assert third.cached and third.sha256 == first.sha256
    info = json.loads((third.path.parent / "guest.json").read_text())
    assert info["sha256"] == first.sha256 and "busybox-static" in info["packages"]
    assert third.keys.host_public.startswith("ssh-ed25519 ")
    assert b"KERNLAB-READY" in data and third.keys.client_public.split()[1].encode() in data
