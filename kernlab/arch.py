"""What differs between the guest architectures kernlab runs: toolchain, kernel image, QEMU machine, probes.

x86_64 guests run natively (KVM when usable) or under TCG; arm64 guests, the article's own architecture
(arch/arm64/mm/fault.c: do_page_fault > __do_page_fault), run under TCG on the x86_64 machines users and CI
have, from a cross-built kernel and a guest image unpacked from Debian's arm64 packages.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from kernlab.errors import KernlabError


@dataclass(frozen=True)
class Arch:
    name: str  # as a lab says it (vm.arch)
    make_arch: str  # the kernel's ARCH=
    kconfig_dir: str  # arch/<dir> in the kernel tree
    cross_compile: str | None  # the kernel's CROSS_COMPILE= (None: the host's gcc)
    gcc: str  # compiles the kernel and the static guest workloads
    gcc_packages: tuple[str, ...]  # the apt packages that have it
    image: str  # the boot image: make target and published name
    image_path: str  # where make leaves it in the object tree
    qemu: str
    qemu_package: str
    machine: tuple[str, ...]  # QEMU's -machine and its options
    tcg_cpu: str  # -cpu under TCG: fast to emulate, with what the lab's kernels need
    console: str  # the serial console's device name
    kernel_args: str  # kernel command line this arch needs beyond the common part
    debian_arch: str  # for arm64 guest packages (apt-get download NAME:ARCH)
    library_dirs: tuple[str, ...]  # where the guest's dynamic loader looks
    # The return address at a function's first instruction, as a kprobe fetch argument: on the stack on
    # x86_64, still in the link register on arm64 (the callee has not saved it yet).
    return_address: str
    # An entry kprobe's stack trace lacks the probed function's caller on arm64: the trap's frame record holds
    # the probed pc, the next one already the caller's caller (the caller's return address is only in x30;
    # checked on 5.15.135: vfs_read+0x0 > __arm64_sys_read, without ksys_read). Stack probes then also key
    # their histogram on the return address, and the parser puts the caller back (kernlab.verify.hist).
    stack_skips_caller: bool
    elf_machine: int  # e_machine of its vmlinux
    binutils_prefix: str  # addr2line reads this vmlinux's DWARF: the host's, or the cross binutils
    binutils_package: str
    fragment: str | None  # the kconfigs/ fragment this arch's guest needs beyond guest-base

    def fragments(self, fragments: list[str]) -> list[str]:
        """A lab's fragments for this arch: another arch's own fragment swapped for this one's (after guest-base)."""
        others = {arch.fragment for arch in ARCHES.values() if arch is not self}
        kept = [name for name in fragments if name not in others]
        if self.fragment and self.fragment not in kept:
            at = kept.index("guest-base") + 1 if "guest-base" in kept else 0
            kept.insert(at, self.fragment)
        return kept

    def tool(self, name: str) -> str:
        """A binutils program for this architecture's ELF files (aarch64-linux-gnu-addr2line on arm64)."""
        return f"{self.binutils_prefix}{name}"

    def host_runs_it(self) -> bool:
        """KVM is possible only for the host's own architecture."""
        return HOST_MACHINE.get(platform.machine()) == self.name


X86_64 = Arch(
    name="x86_64", make_arch="x86_64", kconfig_dir="x86", cross_compile=None, gcc="gcc",
    gcc_packages=("build-essential",), image="bzImage", image_path="arch/x86/boot/bzImage",
    qemu="qemu-system-x86_64", qemu_package="qemu-system-x86", machine=("q35",), tcg_cpu="max", console="ttyS0",
    # Seed the CRNG from RDRAND at boot, or dropbear waits ~1.5 s for entropy under TCG.
    kernel_args="random.trust_cpu=on", debian_arch="amd64",
    library_dirs=("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"),
    return_address="$stack0", stack_skips_caller=False, elf_machine=62, binutils_prefix="",
    binutils_package="binutils", fragment=None,
)
ARM64 = Arch(
    name="arm64", make_arch="arm64", kconfig_dir="arm64", cross_compile="aarch64-linux-gnu-",
    gcc="aarch64-linux-gnu-gcc", gcc_packages=("gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"),
    image="Image", image_path="arch/arm64/boot/Image", qemu="qemu-system-aarch64", qemu_package="qemu-system-arm",
    machine=("virt",), tcg_cpu="cortex-a57", console="ttyAMA0", kernel_args="", debian_arch="arm64",
    library_dirs=("/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib", "/usr/lib"),
    return_address="%x30", stack_skips_caller=True, elf_machine=183, binutils_prefix="aarch64-linux-gnu-",
    binutils_package="binutils-aarch64-linux-gnu", fragment="guest-arm64",
)
ARCHES = {arch.name: arch for arch in (X86_64, ARM64)}
HOST_MACHINE = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def of_elf(path: Path) -> Arch:
    """The architecture a vmlinux was built for, from its ELF header's e_machine."""
    with open(path, "rb") as handle:
        header = handle.read(20)
    machine = int.from_bytes(header[18:20], "little") if header[:4] == b"\x7fELF" else None
    for arch in ARCHES.values():
        if arch.elf_machine == machine:
            return arch
    raise KernlabError(f"{path}: not an ELF file of {' or '.join(ARCHES)} (e_machine {machine})")


def by_name(name: str) -> Arch:
    try:
        return ARCHES[name]
    except KeyError:
        raise KernlabError(f"vm.arch: {name!r} is not one of {', '.join(ARCHES)}") from None
