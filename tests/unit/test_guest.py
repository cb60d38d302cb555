"""Guest image: the cpio writer, ELF dependencies, memhog, and byte-identical rebuilds."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from kernlab.arch import ARM64
from kernlab.cache import Cache
from kernlab.config.lab import parse_lab
from kernlab.errors import KernlabError
from kernlab.guest import debs
from kernlab.guest import image as guest
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


def test_libraries_resolve_inside_the_root(tmp_path: Path) -> None:
    """An unpacked package's absolute symlink points into the unpacked tree, never at the host's own file."""
    root = tmp_path / "root"
    (root / "lib/aarch64-linux-gnu").mkdir(parents=True)
    (root / "lib/aarch64-linux-gnu/libz.so.1.2.13").write_bytes(b"guest libz")
    os.symlink("/lib/aarch64-linux-gnu/libz.so.1.2.13", root / "lib/aarch64-linux-gnu/libz.so.1")
    os.symlink("aarch64-linux-gnu/../aarch64-linux-gnu/libz.so.1", root / "lib/libz.so.1")
    os.symlink("loop", root / "lib/loop")
    resolved = guest._resolve_in(root, "/lib/libz.so.1")
    assert resolved == root / "lib/aarch64-linux-gnu/libz.so.1.2.13" and resolved.read_bytes() == b"guest libz"
    assert guest._resolve_in(root, "/lib/aarch64-linux-gnu/libc.so.6") is None
    assert guest._resolve_in(root, "/lib/loop") is None


# ---- arm64 guests: Debian's arm64 packages, a cross-compiled memhog -----------------------------------------------

ARM64_LAB = {"name": "arm", "vm": {"arch": "arm64"}}


def read_newc(data: bytes) -> dict[str, tuple[int, bytes]]:
    """path -> (mode, data) of a newc archive."""
    members: dict[str, tuple[int, bytes]] = {}
    offset = 0
    while True:
        assert data[offset:offset + 6] == b"070701"
        fields = [int(data[offset + 6 + 8 * i:offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, name_size = fields[1], fields[6], fields[11]
        name = data[offset + 110:offset + 110 + name_size - 1].decode()
        offset += 110 + name_size
        offset += -offset % 4
        body = data[offset:offset + size]
        offset += size + (-size % 4)
        if name == "TRAILER!!!":
            return members
        members[name] = (mode, body)


def elf_facts(data: bytes) -> tuple[str, str, bool]:
    """(e_machine, e_type, has a PT_INTERP) of an ELF file."""
    elf = ELFFile(io.BytesIO(data))
    dynamic = any(segment["p_type"] == "PT_INTERP" for segment in elf.iter_segments())
    return elf.header["e_machine"], elf.header["e_type"], dynamic


def cache_with_arm64_debs(root: Path) -> Cache:
    """A fresh cache holding the user's cached arm64 .debs (the newest of each guest package); tests download
    nothing, so without them the test is skipped."""
    source = debs.cache_dir(Cache.at().root)
    newest = {package: debs.cached_debs(source, package, ARM64.debian_arch) for package in debs.GUEST_PACKAGES}
    missing = [package for package, found in newest.items() if not found]
    if missing:
        pytest.skip(f"no arm64 .debs of {', '.join(missing)} in {source}: fetch them once with "
                    "`python3 -m kernlab.bootstrap --arm64` or "
                    "`.venv/bin/python -c 'from kernlab.guest import debs; from kernlab.cache import Cache; "
                    "debs.fetch(debs.cache_dir(Cache.at().root), \"arm64\")'`")
    if shutil.which(ARM64.gcc) is None:
        pytest.skip(f"{ARM64.gcc} not installed (apt-get install {' '.join(ARM64.gcc_packages)})")
    cache = Cache(root)
    for found in newest.values():
        shutil.copy(found[0][1], cache.dir("debs"))
    return cache


@pytest.fixture(scope="module")
def arm64_images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[guest.GuestImage, guest.GuestImage]]:
    """The same arm64 lab built in two fresh caches (the second given the first's keys), offline."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERNLAB_OFFLINE", "1")
        lab = parse_lab(ARM64_LAB, "arm.yaml")
        first_cache = cache_with_arm64_debs(tmp_path_factory.mktemp("arm64-a"))
        second_cache = cache_with_arm64_debs(tmp_path_factory.mktemp("arm64-b"))
        first = guest.build_guest_image(lab, first_cache)
        shutil.copytree(first_cache.root / "keys", second_cache.root / "keys")
        second = guest.build_guest_image(lab, second_cache)
        yield first, second


def test_arm64_image_holds_aarch64_busybox_dropbear_libraries_and_static_memhog(
        arm64_images: tuple[guest.GuestImage, guest.GuestImage]) -> None:
    image = arm64_images[0]
    assert not image.cached
    members = read_newc(image.path.read_bytes())
    for path in ("bin/busybox", "usr/sbin/dropbear", "bin/memhog", "lib/ld-linux-aarch64.so.1",
                 "lib/aarch64-linux-gnu/libc.so.6", "lib/aarch64-linux-gnu/libz.so.1",
                 "lib/aarch64-linux-gnu/libcrypt.so.1", "usr/lib/aarch64-linux-gnu/libtomcrypt.so.1",
                 "usr/lib/aarch64-linux-gnu/libtommath.so.1", "usr/lib/aarch64-linux-gnu/libgmp.so.10"):
        mode, data = members[path]
        assert stat.S_ISREG(mode), path
        assert elf_facts(data)[0] == "EM_AARCH64", path
    assert elf_facts(members["usr/sbin/dropbear"][1])[2]  # dynamic: its libraries above are what it loads
    assert elf_facts(members["bin/busybox"][1]) == ("EM_AARCH64", "ET_EXEC", False)
    assert elf_facts(members["bin/memhog"][1]) == ("EM_AARCH64", "ET_EXEC", False)  # static
    assert not any(elf_facts(data)[0] == "EM_X86_64" for path, (mode, data) in members.items()
                   if stat.S_ISREG(mode) and data[:4] == b"\x7fELF")
    assert members["bin/sh"] == (stat.S_IFLNK | 0o777, b"busybox")
    assert members["init"][1] == (REPO / "guest" / "init").read_bytes()
    info = json.loads((image.path.parent / "guest.json").read_text())
    assert info["arch"] == "arm64" and info["inputs"]["arch"] == "arm64" and info["stress_ng"] is False
    cached = {package: debs.cached_debs(image.path.parents[2] / "debs", package, "arm64")[0]
              for package in debs.GUEST_PACKAGES}
    assert [(deb["package"], deb["version"]) for deb in info["debs"]] == \
        [(package, version) for package, (version, _) in cached.items()]
    assert info["inputs"]["debs"] == info["debs"]
    assert all(len(deb["sha256"]) == 64 for deb in info["debs"])
    assert info["packages"] == {deb["package"]: deb["version"] for deb in info["debs"]}


def test_arm64_image_is_byte_identical_in_two_caches(arm64_images: tuple[guest.GuestImage, guest.GuestImage]) -> None:
    first, second = arm64_images
    assert first.path != second.path and not second.cached
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.info["key"] == second.info["key"]


def test_arm64_lab_running_stress_ng_is_refused(tmp_path: Path) -> None:
    lab = parse_lab({**ARM64_LAB, "workloads": [{"name": "hog", "memhog": {"size_mib": 8}},
                                                 {"name": "vm-stress", "command": "stress-ng --vm 1 -t 5"}]},
                    "arm.yaml")
    with pytest.raises(KernlabError, match=r"^workload vm-stress: stress-ng is not packed into arm64 guests") as raised:
        guest.build_guest_image(lab, Cache(tmp_path))
    assert "\n" not in str(raised.value)
