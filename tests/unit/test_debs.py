"""Foreign-architecture Debian packages for the guest: version order, the cached fallback, the errors, unpacking.

Nothing here downloads: apt is only asked what it knows (local package lists), KERNLAB_OFFLINE keeps fetch from
downloading, and the .debs unpacked are built here with dpkg-deb.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kernlab.errors import KernlabError
from kernlab.guest import debs
from kernlab.paths import REPO

NO_SUCH = "kernlab-no-such-package"


def test_versions_sort_as_dpkg_sorts_them() -> None:
    """Epochs, tildes, revisions and Debian's own version strings, in dpkg's order (checked against
    `dpkg --compare-versions` when it was written)."""
    ascending = ["0", "1.0~~", "1.0~", "1.0~rc1", "1.0~rc1-1", "1.0", "1.0-1", "1.0-1+b1", "1.0a", "1.0+", "1.0.",
                 "1.0.1", "1.2.13.dfsg-1", "2.36-9+deb12u7", "2.36-9+deb12u14", "9", "10", "1:0.9",
                 "1:1.35.0-4", "1:1.35.0-4+deb12u1+b1", "2:6.2.1+dfsg1-1.1"]
    for i, low in enumerate(ascending):
        for high in ascending[i + 1:]:
            assert debs.compare_versions(low, high) < 0 < debs.compare_versions(high, low), (low, high)
        assert debs.compare_versions(low, low) == 0
    assert debs.compare_versions("1.0", "1.00") == 0 and debs.compare_versions("1.0", "1.0-0") == 0


def test_cached_debs_are_read_from_apt_file_names_newest_first(tmp_path: Path) -> None:
    for name in (f"{NO_SUCH}_1.0-9_arm64.deb", f"{NO_SUCH}_1.0-10_arm64.deb", f"{NO_SUCH}_1%3a0.1_arm64.deb",
                 f"{NO_SUCH}_2.0_amd64.deb", f"{NO_SUCH}-dev_9.0_arm64.deb", f"{NO_SUCH}_0.5_all.deb"):
        (tmp_path / name).write_bytes(name.encode())
    found = debs.cached_debs(tmp_path, NO_SUCH, "arm64")
    assert [version for version, _ in found] == ["1:0.1", "1.0-10", "1.0-9", "0.5"]
    assert found[0][1].name == debs.deb_name(NO_SUCH, "1:0.1", "arm64") == f"{NO_SUCH}_1%3a0.1_arm64.deb"


def test_a_cached_deb_is_used_when_apt_has_no_candidate(tmp_path: Path) -> None:
    """Offline, or the architecture not added to dpkg: the newest cached .deb, with its sha256."""
    for version in ("1.0-9", "1.0-10"):
        (tmp_path / debs.deb_name(NO_SUCH, version, "arm64")).write_bytes(version.encode())
    [deb] = debs.fetch(tmp_path, "arm64", [NO_SUCH])
    assert (deb.package, deb.version, deb.file) == (NO_SUCH, "1.0-10", tmp_path / f"{NO_SUCH}_1.0-10_arm64.deb")
    assert deb.sha256 == hashlib.sha256(b"1.0-10").hexdigest()
    assert deb.record() == {"package": NO_SUCH, "version": "1.0-10", "sha256": deb.sha256}


def test_no_cached_deb_and_no_candidate_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(KernlabError) as raised:
        debs.fetch(tmp_path / "debs", "arm64", [NO_SUCH])  # apt answers from its local lists: no network
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{NO_SUCH}:arm64: no .deb in {tmp_path / 'debs'} and apt has no candidate version")
    assert "python3 -m kernlab.bootstrap --arm64" in message and "dpkg --add-architecture arm64" in message


def test_offline_fetch_downloads_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """KERNLAB_OFFLINE set and nothing cached: an error naming the package, and no file appears."""
    monkeypatch.setenv("KERNLAB_OFFLINE", "1")
    with pytest.raises(KernlabError, match=r"^busybox-static:arm64: no \.deb in .*") as raised:
        debs.fetch(tmp_path, "arm64", ["busybox-static"])
    assert "\n" not in str(raised.value)
    if debs.apt_candidates(["busybox-static"], "arm64"):  # apt knows it: the candidate is named, not fetched
        assert "is not downloaded (offline: KERNLAB_OFFLINE is set): unset it" in str(raised.value)
    assert not list(tmp_path.glob("*.deb"))


def _build_deb(directory: Path, package: str, version: str, files: dict[str, bytes]) -> Path:
    tree = directory / f"{package}-tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(f"Package: {package}\nVersion: {version}\nArchitecture: arm64\n"
                                             "Maintainer: kernlab tests <tests@kernlab.invalid>\n"
                                             "Description: test package\n")
    for path, data in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(data)
    deb = directory / debs.deb_name(package, version, "arm64")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)],
                   check=True, capture_output=True)
    shutil.rmtree(tree)
    return deb


def test_unpack_extracts_the_debs_once_into_one_tree(tmp_path: Path) -> None:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb not installed")
    (tmp_path / "debs").mkdir()
    for package, files in (("kernlab-test-a", {"bin/a": b"A"}), ("kernlab-test-b", {"usr/lib/b.so": b"B"})):
        _build_deb(tmp_path / "debs", package, "1:1.0-1", files)
    fetched = debs.fetch(tmp_path / "debs", "arm64", ["kernlab-test-a", "kernlab-test-b"])
    root = debs.unpack(fetched, tmp_path / "unpacked")
    assert (root / "bin/a").read_bytes() == b"A" and (root / "usr/lib/b.so").read_bytes() == b"B"
    listing = json.loads((root.parent / "debs.json").read_text())
    assert [(entry["package"], entry["version"]) for entry in listing] == [("kernlab-test-a", "1:1.0-1"),
                                                                           ("kernlab-test-b", "1:1.0-1")]
    # Done once: the same set again (in another order) is the same tree, not extracted again.
    (root / "bin/a").write_bytes(b"marker")
    assert debs.unpack(list(reversed(fetched)), tmp_path / "unpacked") == root
    assert (root / "bin/a").read_bytes() == b"marker"
    # Another set is another tree.
    other = debs.unpack(fetched[:1], tmp_path / "unpacked")
    assert other != root and (other / "bin/a").read_bytes() == b"A" and not (other / "usr/lib/b.so").exists()


def test_a_deb_that_is_not_one_is_a_one_line_error(tmp_path: Path) -> None:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb not installed")
    (tmp_path / debs.deb_name(NO_SUCH, "1.0", "arm64")).write_bytes(b"not an ar archive")
    fetched = debs.fetch(tmp_path, "arm64", [NO_SUCH])
    with pytest.raises(KernlabError, match=rf"^dpkg-deb -x {NO_SUCH}_1\.0_arm64\.deb failed \(exit \d+\): ") as raised:
        debs.unpack(fetched, tmp_path / "unpacked")
    assert "\n" not in str(raised.value)
    assert not [path for path in (tmp_path / "unpacked").iterdir() if not path.name.startswith(".")]


def test_debs_imports_only_the_standard_library() -> None:
    """kernlab.bootstrap calls it before the venv (pydantic, paramiko, ...) exists."""
    # -S: no site-packages at all, so importing anything else would fail; and the modules it loaded are listed.
    code = ("import sys, kernlab.guest.debs; "
            "print(*sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names) - {'__main__'}))")
    loaded = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["kernlab"]
