"""Kernel sources: Debian's linux-source package, a kernel.org or local tarball checked by sha256, or a local tree."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from kernlab import tools
from kernlab.cache import Cache, entry_lock, read_json, sha256_file, stable_key, staging_dir, write_json_atomic
from kernlab.config.lab import KernelSpec
from kernlab.errors import KernlabError
from kernlab.version import KernelVersion

log = logging.getLogger(__name__)

DEFAULT_MIRROR = "https://cdn.kernel.org/pub/linux/kernel"
DEBIAN_SOURCE_DIR = Path("/usr/src")

# sha256 of kernel.org release tarballs, copied from kernel.org's signed
# v5.x/ and v6.x/ sha256sums.asc. A version not listed takes kernel.sha256 from the lab file, or else
# its line in the mirror's sha256sums.asc (read over the same connection: its PGP signature is not checked).
PINNED_SHA256 = {
    "5.15.177": "ea9eb8088d4231f8a01b191ceef5f4d92238f6c7519f6fbcb57e448ee9e0a6e0",
    "6.1.127": "18b0d41d1a7fbad56045cde0d7fc176bfb18361d29c9f07e57109bbf21bf7876",
}

META = "kernlab-source.json"
SUMS = "sha256sums.asc"  # beside every kernel.org release, v6.x/sha256sums.asc: "<sha256>  linux-X.tar.xz"


@dataclass(frozen=True)
class KernelRef:
    kind: str  # "debian" | "kernel.org" | "tarball" | "path"
    value: str  # "6.1" | "5.15.177" | "/abs/linux-5.15.135.tar.xz" | "/abs/tree"

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}" if self.kind != "kernel.org" else self.value


@dataclass(frozen=True)
class KernelSource:
    ref: str  # what was used, e.g. "debian:6.1"
    tree: Path
    version: str  # from the tree's Makefile, e.g. "6.1.192"
    origin: str  # where it came from: a tarball path and package version, a URL, a directory
    sha256: str | None  # of the tarball; None for a local tree
    key: str  # identity for cache keys
    fallback_from: str | None = None  # the kernel asked for, when this one replaced it
    fallback_reason: str | None = None

    def describe(self) -> str:
        text = f"linux {self.version} ({self.ref})"
        if self.fallback_from:
            text += f", instead of {self.fallback_from}"
        return text


def parse_ref(text: str) -> KernelRef:
    if text.startswith("debian:"):
        return KernelRef("debian", text.removeprefix("debian:"))
    for kind in ("path", "tarball"):
        if text.startswith(f"{kind}:"):
            return KernelRef(kind, str(Path(text.removeprefix(f"{kind}:")).expanduser().resolve()))
    if re.fullmatch(r"\d+\.\d+(\.\d+)?", text):
        return KernelRef("kernel.org", text)
    raise KernlabError(f"kernel {text!r}: expected debian:X.Y, a kernel.org version like 5.15.177, "
                       "tarball:/file.tar.xz or path:/tree")


def makefile_version(makefile_text: str) -> str:
    """Kernel version from the top Makefile's VERSION/PATCHLEVEL/SUBLEVEL/EXTRAVERSION."""
    fields = {}
    for name in ("VERSION", "PATCHLEVEL", "SUBLEVEL", "EXTRAVERSION"):
        match = re.search(rf"^{name}[ \t]*=[ \t]*(\S*)[ \t]*$", makefile_text, re.MULTILINE)
        fields[name] = match.group(1) if match else ""
    if not fields["VERSION"] or not fields["PATCHLEVEL"]:
        raise KernlabError("not a kernel Makefile: no VERSION/PATCHLEVEL")
    version = f"{fields['VERSION']}.{fields['PATCHLEVEL']}"
    if fields["SUBLEVEL"]:
        version += f".{fields['SUBLEVEL']}"
    return version + fields["EXTRAVERSION"]


def tree_version(tree: Path) -> str:
    try:
        return makefile_version((tree / "Makefile").read_text())
    except OSError:
        raise KernlabError(f"{tree}: not a kernel tree (no Makefile)") from None


def tarball_url(mirror: str, version: str) -> str:
    return f"{mirror.rstrip('/')}/v{KernelVersion.parse(version).major}.x/linux-{version}.tar.xz"


def sums_url(mirror: str, version: str) -> str:
    return f"{mirror.rstrip('/')}/v{KernelVersion.parse(version).major}.x/{SUMS}"


def sums_line(text: str, name: str) -> str | None:
    """The sha256 a sums file gives `name` (`<hex>  <name>` lines; a clearsigned file's other lines are skipped)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == name and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            return parts[0]
    return None


def mirror_sha256(mirror: str, version: str, cache: Cache, offline: bool, *,
                  timeout_s: float = 30.0) -> tuple[str, str | None]:
    """linux-X.tar.xz's sha256 from the mirror's sha256sums.asc, and that file's URL; (sha256, None) when a
    tarball that matched it was kept before (kept_sha256), so a cached release needs no network.

    Raises ConnectionError when the mirror cannot be reached (the caller may fall back) and KernlabError when
    its sums file has no line for the tarball.
    """
    name = f"linux-{version}.tar.xz"
    known = (read_json(cache.dir("tarballs") / f"{name}.sha256.json") or {}).get("sha256")
    if isinstance(known, str) and re.fullmatch(r"[0-9a-f]{64}", known):
        return known, None
    url = sums_url(mirror, version)
    if offline:
        raise ConnectionError(f"{url}: offline (KERNLAB_OFFLINE is set)")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            text = response.read(1 << 22).decode("utf-8", "replace")
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as error:
        raise ConnectionError(f"{url}: {getattr(error, 'reason', None) or error}") from None
    found = sums_line(text, name)
    if found is None:
        raise KernlabError(f"{url}: no sha256 line for {name} (not a release there?): give kernel.sha256 in the "
                           "lab file")
    return found, url


def kept_sha256(cache: Cache, version: str, sha256: str, sums: str) -> None:
    """Remember a mirror's sum once its tarball matched it: later runs check the cached tarball offline."""
    write_json_atomic(cache.dir("tarballs") / f"linux-{version}.tar.xz.sha256.json", {"sha256": sha256, "from": sums})


def download(url: str, dest: Path, expected_sha256: str, *, timeout_s: float = 30.0,
             on_progress: Callable[[int, int | None], None] | None = None) -> None:
    """Download url to dest, checking sha256 while writing; on any failure nothing is left at dest.

    Raises ConnectionError when the server cannot be reached (the caller may fall
    back) and KernlabError on a checksum mismatch.
    """
    partial = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    log.info("download %s -> %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            while block := response.read(1 << 20):
                out.write(block)
                digest.update(block)
                done += len(block)
                if on_progress:
                    on_progress(done, total)
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", None) or error
        raise ConnectionError(f"{url}: {reason}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    actual = digest.hexdigest()
    if actual != expected_sha256:
        partial.unlink(missing_ok=True)
        raise KernlabError(f"{url}: sha256 mismatch: expected {expected_sha256}, got {actual}; file deleted")
    os.replace(partial, dest)


def extract(tarball: Path, final: Path, meta: dict) -> None:
    """Extract tarball's single top directory to `final` atomically, with kernlab's meta file inside."""
    tar = tools.require_tool("tar", "tar")
    with staging_dir(final) as tmp:
        log.info("extract %s -> %s", tarball, final)
        tools.run([tar, "-xf", tarball, "--strip-components=1", "-C", tmp], what=f"extracting {tarball.name}")
        if not (tmp / "Makefile").exists():
            raise KernlabError(f"{tarball}: not a kernel source tarball (no top-level Makefile)")
        meta = {**meta, "version": tree_version(tmp)}
        write_json_atomic(tmp / META, meta)


def debian_versions() -> list[str] | None:
    """The linux-source-X versions apt offers (`apt-cache search`), in version order; None without apt-cache."""
    if shutil.which("apt-cache") is None:
        return None
    found = tools.output(["apt-cache", "search", "--names-only", r"^linux-source-[0-9]"], what="apt-cache search")
    versions = [line.split()[0].removeprefix("linux-source-") for line in found.splitlines() if line.strip()]
    return sorted(versions, key=lambda v: [int(part) if part.isdigit() else 0 for part in v.split(".")])


def _debian_source(ref: KernelRef, cache: Cache, install: bool) -> KernelSource:
    package = f"linux-source-{ref.value}"
    tarball = DEBIAN_SOURCE_DIR / f"{package}.tar.xz"
    if not tarball.exists():
        offered = debian_versions()
        if offered is not None and ref.value not in offered:
            raise KernlabError(f"debian:{ref.value}: apt offers no {package}; it has "
                               f"{', '.join(f'debian:{v}' for v in offered) or 'no linux-source package'}")
        if not install:
            raise KernlabError(f"{package} is not installed: run `apt-get install -y {package}` (or pass --install)")
        tools.run(["apt-get", "install", "-y", package], what=f"apt-get install {package}")
    package_version = tools.output(["dpkg-query", "-W", "-f=${Version}", package], what=f"dpkg-query {package}")
    stat = tarball.stat()
    final = cache.root / "sources" / f"debian-{ref.value}-{package_version}"
    with entry_lock(final):  # concurrent runs extract once; the second finds it done
        meta = read_json(final / META)
        # The tarball is hashed once, at extraction; size+mtime tell if it changed since.
        if meta is None or meta.get("size") != stat.st_size or meta.get("mtime") != int(stat.st_mtime):
            extract(tarball, final, {
                "origin": f"{tarball} ({package} {package_version})",
                "sha256": sha256_file(tarball),
                "size": stat.st_size,
                "mtime": int(stat.st_mtime),
            })
            meta = read_json(final / META)
            assert meta is not None
    return KernelSource(
        ref=str(ref), tree=final, version=meta["version"], origin=meta["origin"],
        sha256=meta["sha256"], key=stable_key("debian", package_version, meta["sha256"]),
    )


def _kernelorg_source(ref: KernelRef, spec: KernelSpec, cache: Cache, mirror: str | None, offline: bool,
                      on_progress: Callable[[int, int | None], None] | None) -> KernelSource:
    version = ref.value
    base = mirror or spec.mirror or os.environ.get("KERNLAB_KERNEL_MIRROR") or DEFAULT_MIRROR
    # Checked against the lab's sha256, kernlab's pinned one, or the mirror's sums file (its line kept in the cache).
    expected, sums = spec.sha256 or PINNED_SHA256.get(version), None
    if expected is None:
        expected, sums = mirror_sha256(base, version, cache, offline)
    final = cache.root / "sources" / f"linux-{version}-{expected[:12]}"
    with entry_lock(final):  # concurrent runs extract once; the second finds it done
        meta = read_json(final / META)
        if meta is None:
            tarballs = cache.dir("tarballs")
            tarball = tarballs / f"linux-{version}.tar.xz"
            url = tarball_url(base, version)
            if tarball.exists() and sha256_file(tarball) != expected:
                tarball.unlink()
                log.warning("cached %s did not match its sha256; deleted", tarball)
            if not tarball.exists():
                if offline:
                    raise ConnectionError(f"{url}: offline (KERNLAB_OFFLINE is set)")
                download(url, tarball, expected, on_progress=on_progress)
            else:
                url = str(tarball)
            if sums:
                kept_sha256(cache, version, expected, sums)
            extract(tarball, final, {"origin": url, "sha256": expected})
            meta = read_json(final / META)
            assert meta is not None
    return KernelSource(
        ref=str(ref), tree=final, version=meta["version"], origin=meta["origin"],
        sha256=meta["sha256"], key=stable_key("kernel.org", version, meta["sha256"]),
    )


def sums_file_sha256(tarball: Path) -> str | None:
    """The tarball's line in a SHA256SUMS file beside it (`<hex>  <name>`), if there is one."""
    try:
        text = (tarball.parent / "SHA256SUMS").read_text()
    except OSError:
        return None
    return sums_line(text, tarball.name)


def _tarball_source(ref: KernelRef, expected: str | None, cache: Cache) -> KernelSource:
    """A kernel tarball on this machine: checked against its sha256, never modified or deleted."""
    tarball = Path(ref.value)
    if not tarball.is_file():
        raise KernlabError(f"tarball:{tarball}: no such file")
    expected = expected or sums_file_sha256(tarball)
    if expected is None:
        raise KernlabError(f"tarball:{tarball}: no sha256 for it: give kernel.sha256 in the lab file "
                           f"(or put a SHA256SUMS line for {tarball.name} beside it)")
    final = cache.root / "sources" / f"tarball-{expected[:16]}"
    with entry_lock(final):  # concurrent runs extract once; the second finds it done
        meta = read_json(final / META)
        stat = tarball.stat()
        seen = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        # Hashed at extraction; a tarball with the same size and mtime since is the same file.
        if meta is None or {key: meta.get(key) for key in seen} != seen:
            actual = sha256_file(tarball)
            if actual != expected:
                raise KernlabError(f"tarball:{tarball}: sha256 mismatch: expected {expected}, got {actual}; "
                                   "nothing extracted, the file is left as it is")
            if meta is None:
                extract(tarball, final, {"origin": str(tarball), "sha256": expected, **seen})
            else:  # the same bytes, copied or touched since: remember this file without extracting again
                write_json_atomic(final / META, {**meta, **seen})
            meta = read_json(final / META)
            assert meta is not None
    # Keyed by the bytes, not the path: the same tarball anywhere reuses the same builds.
    return KernelSource(ref=str(ref), tree=final, version=meta["version"], origin=str(tarball),
                        sha256=expected, key=stable_key("tarball", expected))


def _path_source(ref: KernelRef) -> KernelSource:
    tree = Path(ref.value)
    if not tree.is_dir():
        raise KernlabError(f"path:{tree}: no such directory")
    # A local tree has no checksum: it is keyed by its path, and make's own
    # dependency tracking decides what to rebuild.
    return KernelSource(ref=str(ref), tree=tree, version=tree_version(tree), origin=str(tree),
                        sha256=None, key=stable_key("path", str(tree)))


def known_source_key(spec: KernelSpec, kernel: str | None = None) -> str | None:
    """The source's cache key when the lab alone decides it, with nothing downloaded or extracted: a kernel.org
    release whose sha256 the lab or kernlab pins, a tarball whose sha256 the lab or a SHA256SUMS line beside it
    gives (the key a fetch gives once the bytes match). None when only fetching can tell (a Debian package's
    version, a release checked against its mirror's sums file)."""
    ref = parse_ref(kernel or spec.version)
    lab_sha256 = spec.sha256 if ref == parse_ref(spec.version) else None
    # Offline, a release that is not cached falls back to another kernel: only fetching says which.
    offline = os.environ.get("KERNLAB_OFFLINE", "") not in ("", "0")
    if ref.kind == "kernel.org" and not offline and (expected := lab_sha256 or PINNED_SHA256.get(ref.value)):
        return stable_key("kernel.org", ref.value, expected)
    if ref.kind == "tarball":
        tarball = Path(ref.value)
        if not tarball.is_file():
            raise KernlabError(f"tarball:{tarball}: no such file")
        if expected := lab_sha256 or sums_file_sha256(tarball):
            return stable_key("tarball", expected)
    return None


def fetch_source(spec: KernelSpec, cache: Cache, *, kernel: str | None = None, install: bool = False,
                 mirror: str | None = None, strict: bool | None = None,
                 on_progress: Callable[[int, int | None], None] | None = None,
                 notify: Callable[[str], None] = log.warning) -> KernelSource:
    """Get the source the lab (or `kernel`, overriding it) asks for into the cache.

    A kernel.org release that is neither cached nor reachable falls back to
    spec.fallback (one line through `notify`) unless strict.
    """
    wanted = kernel or spec.version
    ref = parse_ref(wanted)
    strict = spec.strict if strict is None else strict
    if ref.kind == "debian":
        return _debian_source(ref, cache, install)
    if ref.kind == "path":
        return _path_source(ref)
    if ref.kind == "tarball":
        # kernel.sha256 belongs to the lab's own version, not to a --kernel given instead of it.
        return _tarball_source(ref, spec.sha256 if ref == parse_ref(spec.version) else None, cache)
    offline = os.environ.get("KERNLAB_OFFLINE", "") not in ("", "0")
    try:
        return _kernelorg_source(ref, spec, cache, mirror, offline, on_progress)
    except ConnectionError as error:
        if strict or not spec.fallback or spec.fallback == wanted:
            raise KernlabError(f"linux-{ref.value}.tar.xz is neither cached nor reachable: {error}") from None
        notify(f"linux-{ref.value} is neither cached nor reachable ({error}); using {spec.fallback} instead")
        used = fetch_source(spec, cache, kernel=spec.fallback, install=install, strict=True)
        return replace(used, fallback_from=wanted, fallback_reason=str(error))
