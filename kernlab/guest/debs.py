"""Debian packages of a foreign architecture for the guest: fetched with apt into a cache folder, then unpacked.

An arm64 guest's busybox, dropbear and dropbear's libraries come from Debian's arm64 packages (the host's own
binaries are x86_64). apt must know the architecture (`dpkg --add-architecture arm64 && apt-get update`, which
`python3 -m kernlab.bootstrap --arm64` does); once fetched, the .debs are reused without apt or network.

Stdlib only (with kernlab.cache, kernlab.tools and kernlab.errors, which are too): kernlab.bootstrap calls it
before the venv exists.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from kernlab import tools
from kernlab.cache import entry_lock, sha256_file, stable_key, staging_dir, write_json_atomic
from kernlab.errors import KernlabError

log = logging.getLogger(__name__)

# What an arm64 guest is made of: busybox, dropbear, and the libraries dropbear loads: its own Depends
# (`apt-cache depends dropbear-bin:arm64`: libc6 libcrypt1 libtomcrypt1 libtommath1 zlib1g) and libtomcrypt's
# libgmp10 (libc6's libgcc-s1 is only dlopen'ed, for thread cancellation, which dropbear does not use).
GUEST_PACKAGES = ("busybox-static", "dropbear-bin", "libc6", "libcrypt1", "libgmp10", "libtomcrypt1", "libtommath1",
                  "zlib1g")


def cache_dir(cache_root: Path) -> Path:
    """Where a kernlab cache keeps the fetched .debs (all architectures: the names say which)."""
    return cache_root / "debs"


def unpacked_dir(cache_root: Path) -> Path:
    """Where a kernlab cache keeps unpacked sets of .debs, one tree per set."""
    return cache_root / "debs-root"


@dataclass(frozen=True)
class Deb:
    package: str
    version: str
    file: Path
    sha256: str

    def record(self) -> dict[str, str]:
        """What an image's inputs and guest.json keep of it."""
        return {"package": self.package, "version": self.version, "sha256": self.sha256}


@dataclass(frozen=True)
class Candidate:
    """The version apt would install, from its package lists."""

    version: str
    arch: str  # the package's own: the requested one, or `all`
    sha256: str | None


def deb_name(package: str, version: str, arch: str) -> str:
    """The file name apt gives a downloaded package: NAME_VERSION_ARCH.deb, the epoch's colon as %3a."""
    return f"{package}_{version.replace(':', '%3a')}_{arch}.deb"


# ---- Debian version order (dpkg's verrevcmp), to pick the newest cached .deb -------------------------------------

def _order(char: str) -> int:
    if char == "" or char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    if char == "~":
        return -1
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac, bc = _order(a[i] if i < len(a) else ""), _order(b[j] if j < len(b) else "")
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        start_i, start_j = i, j
        while i < len(a) and a[i].isdigit():
            i += 1
        while j < len(b) and b[j].isdigit():
            j += 1
        left, right = int(a[start_i:i] or "0"), int(b[start_j:j] or "0")
        if left != right:
            return -1 if left < right else 1
    return 0


def compare_versions(a: str, b: str) -> int:
    """<0, 0 or >0 as Debian version a sorts before, with or after b (`dpkg --compare-versions`)."""
    def split(version: str) -> tuple[int, str, str]:
        epoch, _, rest = version.partition(":") if ":" in version else ("0", "", version)
        upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
        return int(epoch or "0"), upstream, revision

    (epoch_a, upstream_a, revision_a), (epoch_b, upstream_b, revision_b) = split(a), split(b)
    if epoch_a != epoch_b:
        return -1 if epoch_a < epoch_b else 1
    return _compare_part(upstream_a, upstream_b) or _compare_part(revision_a, revision_b)


# ---- the commands: one wrapper each ------------------------------------------------------------------------------

def apt_candidates(packages: Sequence[str], debian_arch: str) -> dict[str, Candidate]:
    """`apt-cache show --no-all-versions NAME:ARCH...` (one call: apt takes a second or more to load its lists):
    each package's candidate. A package is missing when apt does not know it for that architecture (unknown, the
    architecture not added to dpkg, no package lists); all are when there is no apt at all."""
    apt_cache = shutil.which("apt-cache")
    if apt_cache is None or not packages:
        return {}
    try:
        shown = tools.output([apt_cache, "show", "--no-all-versions", *(f"{name}:{debian_arch}" for name in packages)],
                             what=f"apt-cache show ({debian_arch})")
    except KernlabError as error:  # exit 100 when it knows none of them
        log.debug("no apt candidates for %s (%s): %s", ", ".join(packages), debian_arch, error)
        return {}
    found: dict[str, Candidate] = {}
    for stanza in shown.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            name, sep, value = line.partition(":")
            if sep and line[:1].strip():
                fields[name] = value.strip()
        package, version = fields.get("Package"), fields.get("Version")
        if package in packages and version and package not in found:
            found[package] = Candidate(version, fields.get("Architecture") or debian_arch, fields.get("SHA256"))
    return found


def apt_download(package: str, debian_arch: str, version: str, into: Path) -> Path:
    """`apt-get download NAME:ARCH=VERSION` in the folder `into` (fresh and empty): the .deb it wrote."""
    apt_get = tools.require_tool("apt-get", "apt")
    tools.run([apt_get, "download", f"{package}:{debian_arch}={version}"], cwd=into,
              what=f"apt-get download {package}:{debian_arch}={version}")
    written = sorted(into.glob("*.deb"))
    if len(written) != 1:
        raise KernlabError(f"apt-get download {package}:{debian_arch}={version} left {len(written)} .deb files "
                           f"in {into}, not one")
    return written[0]


def dpkg_extract(deb: Path, root: Path) -> None:
    """`dpkg-deb -x DEB ROOT`: the package's files under root, without running any of its scripts."""
    dpkg_deb = tools.require_tool("dpkg-deb", "dpkg")
    tools.run([dpkg_deb, "-x", deb, root], what=f"dpkg-deb -x {deb.name}")


# ---- fetch and unpack ------------------------------------------------------------------------------------------------

def cached_debs(directory: Path, package: str, debian_arch: str) -> list[tuple[str, Path]]:
    """(version, file) of the package's .debs already in directory, newest first."""
    found = []
    for path in directory.glob(f"{package}_*_*.deb"):
        parts = path.name.removesuffix(".deb").split("_")  # no `_` in Debian names; apt quotes it in versions
        if len(parts) == 3 and parts[0] == package and parts[2] in (debian_arch, "all"):
            found.append((unquote(parts[1]), path))
    return sorted(found, key=functools.cmp_to_key(lambda x, y: compare_versions(y[0], x[0])))


def _setup_hint(debian_arch: str) -> str:
    if debian_arch == "arm64":
        return ("run `python3 -m kernlab.bootstrap --arm64` (it adds the arm64 architecture: "
                "dpkg --add-architecture arm64 && apt-get update)")
    return f"add the architecture: `dpkg --add-architecture {debian_arch} && apt-get update`"


def _download(directory: Path, package: str, debian_arch: str, candidate: Candidate, final: Path) -> None:
    """The candidate's .deb at `final`, checked against apt's SHA256, moved in whole."""
    with tempfile.TemporaryDirectory(prefix=f".{final.name}.tmp-", dir=directory) as tmp:
        written = apt_download(package, debian_arch, candidate.version, Path(tmp))
        digest = sha256_file(written)
        if candidate.sha256 and digest != candidate.sha256:
            raise KernlabError(f"{package}:{debian_arch}={candidate.version}: downloaded .deb has sha256 {digest}, "
                               f"apt's package list says {candidate.sha256}")
        os.replace(written, final)
    log.info("fetched %s", final)


def _fetch_one(directory: Path, debian_arch: str, package: str, candidate: Candidate | None, offline: bool) -> Deb:
    """The package's .deb in directory: apt's candidate version (downloaded if not there yet, unless offline), else
    the newest cached one when apt cannot give it (no candidate, offline, or the download failed)."""
    problem = "apt has no candidate version"
    if candidate is not None:
        final = directory / deb_name(package, candidate.version, candidate.arch)
        if final.exists() and candidate.sha256 and sha256_file(final) != candidate.sha256:
            log.warning("%s does not match apt's sha256 %s: downloading it again", final, candidate.sha256)
            final.unlink()
        if final.exists():
            return Deb(package, candidate.version, final, sha256_file(final))
        if offline:
            problem = f"apt's candidate {final.name} is not downloaded (offline: KERNLAB_OFFLINE is set)"
        else:
            try:
                _download(directory, package, debian_arch, candidate, final)
                return Deb(package, candidate.version, final, sha256_file(final))
            except KernlabError as error:
                problem = str(error)
    cached = cached_debs(directory, package, debian_arch)
    if not cached:
        hint = "unset it to download the package" if candidate is not None and offline else _setup_hint(debian_arch)
        raise KernlabError(f"{package}:{debian_arch}: no .deb in {directory} and {problem}: {hint}")
    version, path = cached[0]
    if candidate is not None:
        log.warning("%s; using the cached %s", problem, path.name)
    return Deb(package, version, path, sha256_file(path))


def offline() -> bool:
    """KERNLAB_OFFLINE set (as `inv test` does): use what is cached, download nothing."""
    return os.environ.get("KERNLAB_OFFLINE", "") not in ("", "0")


def fetch(directory: Path, debian_arch: str, packages: Sequence[str] = GUEST_PACKAGES) -> list[Deb]:
    """Each package's .deb for debian_arch in directory (apt's candidate, downloaded once; without one, the newest
    cached), in the order given. One fetch at a time per directory (a lock beside it)."""
    candidates = apt_candidates(packages, debian_arch)
    with entry_lock(directory):
        directory.mkdir(parents=True, exist_ok=True)
        return [_fetch_one(directory, debian_arch, package, candidates.get(package), offline())
                for package in packages]


def unpack(debs: Sequence[Deb], under: Path) -> Path:
    """The debs' files in one tree, `under`/<key of their sha256s>/root: extracted once (published whole), then
    reused. A debs.json beside the tree lists the packages."""
    ordered = sorted(debs, key=lambda deb: (deb.package, deb.sha256))
    final = under / stable_key([deb.sha256 for deb in ordered])
    with entry_lock(final):
        if (final / "debs.json").exists() and (final / "root").is_dir():
            return final / "root"
        with staging_dir(final) as tmp:
            (tmp / "root").mkdir()
            for deb in ordered:
                dpkg_extract(deb.file, tmp / "root")
            write_json_atomic(tmp / "debs.json", [{**deb.record(), "file": deb.file.name} for deb in ordered])
    log.info("unpacked %d packages into %s", len(ordered), final / "root")
    return final / "root"
