"""Guest image: a reproducible newc initramfs from guest/ with busybox, dropbear, the workloads and per-lab keys.

An x86_64 guest gets the host's own busybox and dropbear; an arm64 guest gets them, and dropbear's libraries, from
Debian's arm64 packages (kernlab.guest.debs), and a memhog cross-compiled with the arch's gcc.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from kernlab import tools
from kernlab.arch import X86_64, Arch
from kernlab.cache import Cache, entry_lock, read_json, sha256_file, stable_key, staging_dir, write_json_atomic
from kernlab.config.lab import Lab
from kernlab.errors import KernlabError
from kernlab.guest import debs
from kernlab.paths import GUEST_DIR

log = logging.getLogger(__name__)

BUSYBOX = Path("/bin/busybox")
DROPBEAR = Path("/usr/sbin/dropbear")
DROPBEARKEY = Path("/usr/bin/dropbearkey")
STRESS_NG = Path("/usr/bin/stress-ng")
BUSYBOX_APPLETS = [
    "sh", "ash", "cat", "echo", "ls", "mkdir", "mount", "umount", "ip", "hostname", "setsid", "cttyhack", "sleep",
    "mkswap", "swapon", "swapoff", "free", "grep", "head", "tail", "wc", "cut", "tr", "sed", "awk", "ps", "kill",
    "uname", "poweroff", "reboot", "sync", "dmesg", "env", "true", "false", "test", "[", "printf", "timeout", "date",
    "find", "sort", "uniq", "id", "rm", "cp", "mv", "ln", "chmod", "top", "vi", "less", "dd", "stat", "nproc",
]


# ---- newc cpio -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One archive member; `data` is file content, a symlink target, or empty for dirs and device nodes."""

    path: str  # without leading slash
    mode: int  # full st_mode
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def directory(path: str, perms: int = 0o755) -> Entry:
    return Entry(path, stat.S_IFDIR | perms)


def regular(path: str, data: bytes, perms: int = 0o644) -> Entry:
    return Entry(path, stat.S_IFREG | perms, data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def char_device(path: str, major: int, minor: int, perms: int = 0o600) -> Entry:
    return Entry(path, stat.S_IFCHR | perms, rdev=(major, minor))


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _header(entry_path: str, ino: int, mode: int, size: int, rdev: tuple[int, int]) -> bytes:
    name = entry_path.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, rdev[0], rdev[1], len(name), 0]  # uid gid nlink mtime ...
    header = b"070701" + b"".join(f"{value:08X}".encode() for value in fields)
    return header + name + _pad4(len(header) + len(name))


def write_newc(entries: Iterable[Entry]) -> bytes:
    """A newc archive: sorted by path, owner root, mtime 0, inodes numbered in order, so equal input gives equal bytes.

    Parent directories missing from `entries` are added.
    """
    by_path: dict[str, Entry] = {}
    for entry in entries:
        by_path[entry.path.strip("/")] = entry
    for path in list(by_path):
        parent = os.path.dirname(path)
        while parent and parent not in by_path:
            by_path[parent] = directory(parent)
            parent = os.path.dirname(parent)
    chunks = []
    for ino, path in enumerate(sorted(by_path), start=1):
        entry = by_path[path]
        chunks.append(_header(path, ino, entry.mode, len(entry.data), entry.rdev))
        chunks.append(entry.data + _pad4(len(entry.data)))
    chunks.append(_header("TRAILER!!!", 0, 0, 0, (0, 0)))
    archive = b"".join(chunks)
    return archive + b"\0" * (-len(archive) % 512)


# ---- ELF dependencies ------------------------------------------------------------------------------------------

def _elf_info(path: Path) -> tuple[str | None, list[str], list[str]]:
    """(interpreter, DT_NEEDED, DT_RUNPATH/RPATH dirs) of an ELF file."""
    with open(path, "rb") as handle:
        elf = ELFFile(handle)
        interpreter = None
        for segment in elf.iter_segments():
            if segment["p_type"] == "PT_INTERP":
                interpreter = segment.get_interp_name()
        needed: list[str] = []
        search: list[str] = []
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                for tag in section.iter_tags():
                    if tag.entry.d_tag == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif tag.entry.d_tag in ("DT_RUNPATH", "DT_RPATH"):
                        search += (tag.runpath if tag.entry.d_tag == "DT_RUNPATH" else tag.rpath).split(":")
        return interpreter, needed, search


def _resolve_in(root: Path, guest_path: str) -> Path | None:
    """The file a guest path names in the tree at `root`, symlinks followed as the guest would (an absolute
    target starts again at root, never at the host's /); None if there is none."""
    if root == Path("/"):
        host = Path(guest_path)
        return host.resolve() if host.exists() else None
    pending = [part for part in guest_path.split("/") if part]
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in (".", ".."):
            if part == ".." and resolved:
                resolved.pop()
            continue
        host = root.joinpath(*resolved, part)
        if host.is_symlink():
            hops += 1
            if hops > 40:  # the kernel's limit: a loop
                return None
            target = os.readlink(host)
            if target.startswith("/"):
                resolved = []
            pending = [piece for piece in target.split("/") if piece] + pending
        elif host.exists():
            resolved.append(part)
        else:
            return None
    return root.joinpath(*resolved)


def shared_libraries(binary: Path, root: Path = Path("/"),
                     library_dirs: Sequence[str] = X86_64.library_dirs) -> dict[str, Path]:
    """Everything the loader needs to run `binary`: guest path -> host file, recursively.

    Paths are as the loader looks for them (e.g. /lib/x86_64-linux-gnu/libc.so.6), in DT_RUNPATH and then the
    arch's `library_dirs`; the host file is what that name resolves to under `root` (the host's / for an
    x86_64 guest, the unpacked Debian packages for an arm64 one).
    """
    found: dict[str, Path] = {}
    pending = [binary]
    seen: set[Path] = set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        interpreter, needed, search = _elf_info(current)
        if interpreter and interpreter not in found:
            host = _resolve_in(root, interpreter)
            if host is None:
                raise KernlabError(f"{binary}: loader {interpreter} not found" + ("" if root == Path("/") else
                                                                                  f" under {root}"))
            found[interpreter] = host
        for library in needed:
            for directory_name in [*search, *library_dirs]:
                guest_path = f"{directory_name.rstrip('/')}/{library}"
                candidate = _resolve_in(root, guest_path)
                if candidate is not None:
                    if guest_path not in found:
                        found[guest_path] = candidate
                        pending.append(candidate)
                    break
            else:
                raise KernlabError(f"{binary}: shared library {library} (needed by {current.name}) not found")
    return found


# ---- keys -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GuestKeys:
    client_private: Path  # OpenSSH private key the host logs in with
    client_public: str  # its authorized_keys line
    host_private: Path  # dropbear-format host key baked into the image
    host_public: str  # "ssh-ed25519 AAAA..." the host pins


def _make_keys(directory_path: Path, client: Path, host: Path) -> None:
    """A new client key pair and dropbear host key, published whole (the caller holds the entry's lock)."""
    keygen = tools.require_tool(str(DROPBEARKEY), "dropbear-bin")
    with staging_dir(directory_path) as tmp:
        key = Ed25519PrivateKey.generate()
        (tmp / client.name).write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
        os.chmod(tmp / client.name, 0o600)
        tools.run([keygen, "-t", "ed25519", "-f", tmp / host.name], what="dropbearkey")


def lab_keys(cache: Cache, lab_name: str) -> GuestKeys:
    """The lab's keys, made on first use and then reused (they are inputs of the image)."""
    directory_path = cache.root / "keys" / lab_name
    client, host = directory_path / "client_ed25519", directory_path / "dropbear_ed25519_host_key"
    with entry_lock(directory_path):
        if not (client.exists() and host.exists()):
            _make_keys(directory_path, client, host)
    private = serialization.load_ssh_private_key(client.read_bytes(), password=None)
    client_public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    keygen = tools.require_tool(str(DROPBEARKEY), "dropbear-bin")
    printed = tools.output([keygen, "-y", "-f", host], what="dropbearkey -y")
    host_public = next((line for line in printed.splitlines() if line.startswith("ssh-ed25519 ")), None)
    if host_public is None:
        raise KernlabError(f"{host}: dropbearkey -y printed no ssh-ed25519 public key")
    return GuestKeys(client, f"{client_public} kernlab-{lab_name}", host, " ".join(host_public.split()[:2]))


# ---- the image --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GuestImage:
    path: Path
    sha256: str
    keys: GuestKeys
    info: dict
    cached: bool


def compile_static(source: Path, cache: Cache, compiler_name: str = X86_64.gcc,
                   packages: Sequence[str] = X86_64.gcc_packages) -> Path:
    """`compiler_name -static` (the arch's gcc: a cross-compiler for arm64), cached by the source's sha256 and the
    compiler's version line."""
    gcc, compiler = tools.compiler(compiler_name, " ".join(packages))
    out = cache.root / "workloads" / stable_key(sha256_file(source), compiler) / source.stem
    with entry_lock(out):
        if not out.exists():
            tmp = out.with_name(out.name + ".tmp")
            tools.run([gcc, "-static", "-O2", "-Wall", "-Werror", "-o", tmp, source], what=f"compiling {source.name}")
            os.replace(tmp, out)
    return out


def _package_versions(packages: list[str]) -> dict[str, str]:
    text = tools.output(["dpkg-query", "-W", "-f=${Package} ${Version}\\n", *packages], what="dpkg-query")
    return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)


def _require(path: Path, package: str) -> None:
    if not path.exists():
        raise KernlabError(f"{path} not found: install it with `apt-get install -y {package}`")


def image_entries(keys: GuestKeys, binaries: dict[str, Path], init: bytes, library_root: Path = Path("/"),
                  library_dirs: Sequence[str] = X86_64.library_dirs) -> list[Entry]:
    """The guest's files: init, /etc, root's authorized key, binaries, their libraries (found under library_root),
    busybox applets."""
    entries = [
        regular("init", init, 0o755),
        char_device("dev/console", 5, 1),
        char_device("dev/null", 1, 3, 0o666),
        *(directory(d) for d in ("proc", "sys", "dev", "tmp", "run", "var", "usr/bin", "sbin", "etc/dropbear")),
        directory("root", 0o700),
        directory("root/.ssh", 0o700),
        regular("root/.ssh/authorized_keys", (keys.client_public + "\n").encode(), 0o600),
        regular("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        regular("etc/group", b"root:x:0:\n"),
        regular("etc/shells", b"/bin/sh\n"),
        regular("etc/dropbear/dropbear_ed25519_host_key", keys.host_private.read_bytes(), 0o600),
        symlink("var/run", "/run"),
    ]
    for guest_path, host in binaries.items():
        entries.append(regular(guest_path.lstrip("/"), host.read_bytes(), 0o755))
        if host.read_bytes()[:4] == b"\x7fELF" and guest_path != "bin/busybox":
            for library_path, library in shared_libraries(host, library_root, library_dirs).items():
                entries.append(regular(library_path.lstrip("/"), library.read_bytes(), 0o755))
    entries += [symlink(f"bin/{applet}", "busybox") for applet in BUSYBOX_APPLETS]
    return entries


@dataclass(frozen=True)
class _Parts:
    """What goes into an image besides guest/ and the keys, for one architecture."""

    binaries: dict[str, Path]  # guest path -> host file
    library_root: Path  # where the binaries' libraries are looked up
    packages: Callable[[], dict[str, str]]  # Debian package -> version, for guest.json (asked when building)
    extra_inputs: dict  # image inputs beyond the common ones (none on x86_64: its keys predate arm64)
    extra_info: dict  # guest.json fields beyond the common ones


def _stress_workload(lab: Lab) -> str | None:
    """The first workload that runs stress-ng (it and its libraries add ~30 MiB of guest RAM: only for them)."""
    return next((w.name for w in lab.workloads if "stress-ng" in (w.command or "")), None)


def _x86_64_parts(lab: Lab, cache: Cache) -> _Parts:
    """The host's own busybox, dropbear (and stress-ng when a workload runs it) with the host's libraries."""
    _require(BUSYBOX, "busybox-static")
    _require(DROPBEAR, "dropbear-bin")
    binaries = {"bin/busybox": BUSYBOX, "usr/sbin/dropbear": DROPBEAR,
                "bin/memhog": compile_static(GUEST_DIR / "memhog.c", cache)}
    with_stress = _stress_workload(lab) is not None
    if with_stress:
        _require(STRESS_NG, "stress-ng")
        binaries["usr/bin/stress-ng"] = STRESS_NG
    packages = ["busybox-static", "dropbear-bin"] + (["stress-ng"] if with_stress else [])
    return _Parts(binaries, Path("/"), lambda: _package_versions(packages), {}, {"stress_ng": with_stress})


def _debian_parts(lab: Lab, cache: Cache, arch: Arch) -> _Parts:
    """busybox, dropbear and dropbear's libraries from Debian's packages for the arch (fetched and unpacked once),
    memhog from the arch's cross-compiler."""
    stress = _stress_workload(lab)
    if stress is not None:
        raise KernlabError(f"workload {stress}: stress-ng is not packed into {arch.name} guests (vm.arch: "
                           f"{arch.name}): use a memhog workload, or vm.arch: x86_64")
    fetched = debs.fetch(debs.cache_dir(cache.root), arch.debian_arch, debs.GUEST_PACKAGES)
    root = debs.unpack(fetched, debs.unpacked_dir(cache.root))
    binaries = {"bin/busybox": root / "bin/busybox", "usr/sbin/dropbear": root / "usr/sbin/dropbear"}
    for guest_path, host in binaries.items():
        if not host.is_file():
            raise KernlabError(f"{host}: not in the unpacked {arch.debian_arch} packages (wanted as /{guest_path})")
    binaries["bin/memhog"] = compile_static(GUEST_DIR / "memhog.c", cache, arch.gcc, arch.gcc_packages)
    records = [deb.record() for deb in fetched]
    return _Parts(binaries, root, lambda: {deb.package: deb.version for deb in fetched},
                  {"arch": arch.name, "debs": records},
                  {"stress_ng": False, "arch": arch.name, "debs": records})


def build_guest_image(lab: Lab, cache: Cache) -> GuestImage:
    """Build (or find) the lab's initramfs; same inputs give a byte-identical image and no rebuild."""
    arch = lab.arch
    parts = _x86_64_parts(lab, cache) if arch.name == X86_64.name else _debian_parts(lab, cache, arch)
    keys = lab_keys(cache, lab.name)
    binaries = parts.binaries
    init = (GUEST_DIR / "init").read_bytes()
    inputs = {
        "init_sha256": sha256_file(GUEST_DIR / "init"),
        "binaries": {path: sha256_file(host) for path, host in sorted(binaries.items())},
        "memhog_c_sha256": sha256_file(GUEST_DIR / "memhog.c"),
        "client_public": keys.client_public,
        "host_public": keys.host_public,
        "host_key_sha256": sha256_file(keys.host_private),
        "applets": BUSYBOX_APPLETS,
        **parts.extra_inputs,
    }
    key = stable_key(inputs)
    final = cache.root / "guest" / key
    with entry_lock(final):
        info = read_json(final / "guest.json")
        if info and (final / "initramfs.cpio").exists():
            # Checked on every use (0.1 s): a damaged cached image would boot into nothing, run after run.
            if sha256_file(final / "initramfs.cpio") == info.get("sha256"):
                return GuestImage(final / "initramfs.cpio", info["sha256"], keys, info, cached=True)
            log.warning("cached guest image %s does not match its sha256 %s: rebuilding it",
                        final / "initramfs.cpio", info.get("sha256"))
        started = time.monotonic()
        with staging_dir(final) as tmp:
            image = write_newc(image_entries(keys, binaries, init, parts.library_root, arch.library_dirs))
            (tmp / "initramfs.cpio").write_bytes(image)
            info = {
                "key": key, "sha256": sha256_file(tmp / "initramfs.cpio"), "bytes": len(image), "inputs": inputs,
                "packages": parts.packages(), **parts.extra_info,
                "build_s": round(time.monotonic() - started, 2),
            }
            write_json_atomic(tmp / "guest.json", info)
        return GuestImage(final / "initramfs.cpio", info["sha256"], keys, info, cached=False)
