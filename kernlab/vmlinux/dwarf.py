"""vmlinux symbols and inline records: resolve a stack frame's return address to the functions inlined there."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kernlab import tools
from kernlab.arch import of_elf
from kernlab.frames import Frame, base_name

ADDRESS_LINE = re.compile(r"^0x([0-9a-f]+)$")


@dataclass(frozen=True)
class SymbolTable:
    """System.map: text symbols and the noinstr section bounds."""

    address: dict[str, int]  # symbol as printed (with clone suffix) -> address
    by_base: dict[str, list[str]]  # base name -> symbols (zram_bvec_rw -> [zram_bvec_rw.isra.0])
    noinstr: tuple[int, int] | None

    @classmethod
    def parse(cls, system_map: str) -> SymbolTable:
        address: dict[str, int] = {}
        by_base: dict[str, list[str]] = {}
        for line in system_map.splitlines():
            parts = line.split()
            if len(parts) != 3:
                continue
            value, kind, name = parts
            if name in ("__noinstr_text_start", "__noinstr_text_end"):
                address[name] = int(value, 16)
            elif kind in "tTW":
                address.setdefault(name, int(value, 16))
                by_base.setdefault(base_name(name), []).append(name)
        bounds = None
        if "__noinstr_text_start" in address and "__noinstr_text_end" in address:
            bounds = (address["__noinstr_text_start"], address["__noinstr_text_end"])
        return cls(address, by_base, bounds)

    def has_function(self, name: str) -> bool:
        return name in self.by_base

    def is_noinstr(self, name: str) -> bool:
        if not self.noinstr or name not in self.by_base:
            return False
        start, end = self.noinstr
        return any(start <= self.address[symbol] < end for symbol in self.by_base[name])

    def return_site(self, frame: Frame) -> int | None:
        """The address inside the call instruction that a stack frame returns to."""
        if frame.offset is None or frame.symbol not in self.address or frame.offset == 0:
            return None
        return self.address[frame.symbol] + frame.offset - 1


def parse_addr2line(text: str) -> dict[int, list[str]]:
    """`addr2line -a -i -f` output -> address: function names, innermost inlined first, the real function last."""
    chains: dict[int, list[str]] = {}
    current: list[str] | None = None
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        if match := ADDRESS_LINE.match(line):
            current = chains.setdefault(int(match.group(1), 16), [])
            index += 1
            continue
        if current is not None and line and line != "??":
            current.append(line)
        elif current is not None and line == "??":
            current.append("??")
        index += 2  # function line, then its file:line
    return chains


class InlineResolver:
    """Frame -> the functions gcc inlined at its return site (outermost first), from vmlinux DWARF via addr2line."""

    def __init__(self, vmlinux: Path, symbols: SymbolTable) -> None:
        self.vmlinux = vmlinux
        self.symbols = symbols
        self._cache: dict[int, list[str]] = {}

    def prime(self, frames: Iterable[Frame]) -> None:
        """Resolve many frames with one addr2line run."""
        wanted = {site for frame in frames if (site := self.symbols.return_site(frame)) is not None}
        wanted -= self._cache.keys()
        if not wanted:
            return
        arch = of_elf(self.vmlinux)  # an arm64 vmlinux needs the cross binutils' addr2line
        addr2line = tools.require_tool(arch.tool("addr2line"), arch.binutils_package)
        stdin = "\n".join(f"{site:#x}" for site in sorted(wanted)).encode()
        text = tools.output([addr2line, "-a", "-i", "-f", "-e", self.vmlinux], input_bytes=stdin,
                           what="addr2line")
        for site, names in parse_addr2line(text).items():
            self._cache[site] = names
        for site in wanted:
            self._cache.setdefault(site, [])

    def inlined_at(self, frame: Frame) -> list[str]:
        site = self.symbols.return_site(frame)
        if site is None:
            return []
        if site not in self._cache:
            self.prime([frame])
        names = [base_name(name) for name in self._cache.get(site, [])]
        # The last name is the frame's own function; the ones before it were inlined into it.
        return list(reversed(names[:-1])) if len(names) > 1 else []
