"""One open vmlinux for static reads: ELF symbols and section bytes (read with struct), DWARF units and DIEs.

The lookups vmlinux.py builds its facts on; nothing here knows about ops tables or inline trees.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elftools.common.exceptions import DWARFError, ELFError
from elftools.construct.core import ConstructError
from elftools.dwarf.compileunit import CompileUnit
from elftools.dwarf.die import DIE
from elftools.dwarf.dwarfinfo import DWARFInfo
from elftools.dwarf.ranges import BaseAddressEntry
from elftools.elf.elffile import ELFFile

from kernlab.errors import KernlabError
from kernlab.frames import base_name

STT_OBJECT, STT_FUNC, STT_FILE = 1, 2, 4
SHN_UNDEF = 0
NEIGHBOURS = 16  # local data symbols either side of a global variable tried for locating its CU
MAX_BETWEEN = 64  # CUs between those neighbours worth walking before the walk over every CU

# what pyelftools raises on a damaged or unexpected file
READ_ERRORS = (ELFError, DWARFError, ConstructError, ValueError, AssertionError)


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int
    kind: int  # STT_*
    local: bool
    group: int  # index of the STT_FILE group a local symbol belongs to; -1 for globals


@dataclass(frozen=True)
class Section:
    name: str
    addr: int
    size: int
    offset: int
    nobits: bool


class Image:
    """One open vmlinux: its symbols, allocated sections and DWARF, and the lookups on them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = path.open("rb")
        except OSError as error:
            raise KernlabError(f"{path}: cannot read ({error.strerror or error})") from None
        try:
            self.elf = ELFFile(self._file)
            self.little = self.elf.little_endian
            self.pointer_size = 8 if self.elf.elfclass == 64 else 4
            self.sections = [
                Section(s.name, s["sh_addr"], s["sh_size"], s["sh_offset"], s["sh_type"] == "SHT_NOBITS")
                for s in self.elf.iter_sections() if s["sh_flags"] & 0x2 and s["sh_addr"]]  # SHF_ALLOC
            self._load_symbols()
            if not self.elf.has_dwarf_info() or self.elf.get_section_by_name(".debug_info") is None:
                raise KernlabError(f"{path}: no DWARF debug info (build with CONFIG_DEBUG_INFO)")
            # A linked image's debug sections are final; applying relocations would only cost time.
            self.dwarf: DWARFInfo = self.elf.get_dwarf_info(relocate_dwarf_sections=False)
        except KernlabError:
            self.close()
            raise
        except (*READ_ERRORS, OSError) as error:
            self.close()
            raise KernlabError(f"{path}: not a readable ELF file ({error})") from None
        self._aranges: Any = None
        self._cu_names: list[tuple[str, int]] | None = None
        self._subprograms: dict[int, list[tuple[int, int, int]]] = {}  # CU offset -> (low, high, DIE offset)
        self._names: dict[int, str | None] = {}  # DIE offset -> name through origin/specification
        self._clones: dict[str, list[Symbol]] | None = None  # base name -> zram_bvec_rw.isra.0 and the like
        self._locals: list[tuple[int, int]] | None = None  # (address, STT_FILE group) of local data symbols

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Image:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- symbols (read with struct: pyelftools' per-symbol objects are slow on 100k symbols)

    def _load_symbols(self) -> None:
        symtab = self.elf.get_section_by_name(".symtab")
        if symtab is None:
            raise KernlabError(f"{self.path}: no .symtab (stripped image?)")
        strtab = self.elf.get_section(symtab["sh_link"]).data()
        end = "<" if self.little else ">"
        if self.elf.elfclass == 64:
            layout, fields = struct.Struct(end + "IBBHQQ"), lambda t: (t[0], t[1], t[3], t[4], t[5])
        else:
            layout, fields = struct.Struct(end + "IIIBBH"), lambda t: (t[0], t[3], t[5], t[1], t[2])
        self.by_name: dict[str, list[Symbol]] = {}
        self.functions_at: dict[int, list[str]] = {}
        self.groups: list[list[Symbol]] = []  # local symbols after each STT_FILE symbol
        self.group_files: list[str] = []
        group = -1
        for raw in layout.iter_unpack(symtab.data()):
            name_offset, info, shndx, value, size = fields(raw)
            kind, local = info & 0xF, (info >> 4) == 0
            name = strtab[name_offset:strtab.index(b"\0", name_offset)].decode(errors="replace")
            if kind == STT_FILE:
                group = len(self.groups)
                self.groups.append([])
                self.group_files.append(name)
                continue
            if kind not in (STT_OBJECT, STT_FUNC) or shndx == SHN_UNDEF or not name:
                continue
            symbol = Symbol(name, value, size, kind, local, group if local else -1)
            self.by_name.setdefault(name, []).append(symbol)
            if local and group >= 0:
                self.groups[group].append(symbol)
            if kind == STT_FUNC:
                self.functions_at.setdefault(value, []).append(name)

    def function_symbol(self, function: str) -> Symbol | None:
        """The out-of-line function: the exact symbol, else a clone of that base name (not a .cold part)."""
        exact = [s for s in self.by_name.get(function, []) if s.kind == STT_FUNC]
        if exact:
            return exact[0]
        if self._clones is None:
            self._clones = {}
            for symbols in self.by_name.values():
                for symbol in symbols:
                    if symbol.kind == STT_FUNC and (base := base_name(symbol.name)) != symbol.name:
                        self._clones.setdefault(base, []).append(symbol)
        clones = self._clones.get(function, [])
        warm = [s for s in clones if ".cold" not in s.name]
        return min(warm or clones, key=lambda s: (s.value, s.name), default=None)

    def function_at(self, address: int) -> str | None:
        names = self.functions_at.get(address)
        if not names:
            return None
        plain = [name for name in names if not name.startswith("__pfx_") and not name.startswith("__cfi_")]
        return (plain or names)[0]

    def section_at(self, address: int) -> Section | None:
        for section in self.sections:
            if section.addr <= address < section.addr + section.size:
                return section
        return None

    def read(self, address: int, size: int) -> tuple[bytes, Section] | None:
        section = self.section_at(address)
        if section is None or address + size > section.addr + section.size:
            return None
        if section.nobits:
            return bytes(size), section
        self._file.seek(section.offset + (address - section.addr))
        data = self._file.read(size)
        return (data, section) if len(data) == size else None

    # ---- compile units

    def cu_at_address(self, address: int) -> CompileUnit | None:
        """The CU whose code covers address: .debug_aranges, else each CU's own ranges."""
        if self._aranges is None:
            self._aranges = self.dwarf.get_aranges() or False
        if self._aranges:
            offset = self._aranges.cu_offset_at_addr(address)
            if offset is not None:
                return self.dwarf.get_CU_at(offset)
        for cu in self.dwarf.iter_CUs():
            if any(low <= address < high for low, high in self.pc_ranges(cu.get_top_DIE())):
                return cu
        return None

    def cu_names(self) -> list[tuple[str, int]]:
        """(DW_AT_name, CU offset) of every CU: headers and top DIEs only."""
        if self._cu_names is None:
            self._cu_names = [(die_text(cu.get_top_DIE(), "DW_AT_name") or "", cu.cu_offset)
                              for cu in self.dwarf.iter_CUs()]
        return self._cu_names

    def group_cu(self, group: int) -> CompileUnit | None:
        """The CU a STT_FILE group of local symbols came from, through one of its functions' addresses."""
        if group < 0:
            return None
        for symbol in self.groups[group]:
            if symbol.kind == STT_FUNC and (cu := self.cu_at_address(symbol.value)) is not None:
                return cu
        return None

    def cus_named(self, suffix: str) -> list[CompileUnit]:
        """CUs whose DW_AT_name ends with suffix: through the STT_FILE groups of that basename when they lead there
        (cheap), else by reading every CU's name (parses every abbreviation table: ~15 s on a lab vmlinux)."""
        basename = suffix.rsplit("/", 1)[-1]
        found: dict[int, CompileUnit] = {}
        for group, file in enumerate(self.group_files):
            if file == basename and (cu := self.group_cu(group)) is not None and \
                    path_endswith(die_text(cu.get_top_DIE(), "DW_AT_name") or "", suffix):
                found[cu.cu_offset] = cu
        if found:
            return list(found.values())
        return [self.dwarf.get_CU_at(offset) for name, offset in self.cu_names() if path_endswith(name, suffix)]

    def cus_of_symbol(self, symbol: Symbol) -> list[CompileUnit]:
        """Where to look for a variable's DWARF first. A local: its own STT_FILE group's CU. A global (no group): the
        linker lays out data and .debug_info in the same link order, so the CUs from the one owning the nearest local
        data symbol below it to the one owning the nearest above."""
        if symbol.group >= 0:
            cu = self.group_cu(symbol.group)
            return [cu] if cu is not None else self.cus_named(self.group_files[symbol.group])
        if self._locals is None:
            self._locals = sorted((s.value, s.group) for group in self.groups for s in group if s.kind == STT_OBJECT)
        at = bisect.bisect_left(self._locals, (symbol.value, -1))
        below = next((cu for _, group in reversed(self._locals[max(0, at - NEIGHBOURS):at])
                      if (cu := self.group_cu(group)) is not None), None)
        above = next((cu for _, group in self._locals[at:at + NEIGHBOURS]
                      if (cu := self.group_cu(group)) is not None), None)
        if below is None or above is None or below.cu_offset > above.cu_offset:
            return [cu for cu in (below, above) if cu is not None]
        between = [cu for cu in self.dwarf.iter_CUs() if below.cu_offset <= cu.cu_offset <= above.cu_offset]
        return between[:MAX_BETWEEN]

    # ---- DIEs

    def name(self, die: DIE) -> str | None:
        """A DIE's name, following DW_AT_abstract_origin / DW_AT_specification to the DIE that carries it."""
        start = die.offset
        if start in self._names:
            return self._names[start]
        found: str | None = None
        seen: set[int] = set()
        current: DIE | None = die
        while current is not None and current.offset not in seen:
            seen.add(current.offset)
            if current.offset in self._names:
                found = self._names[current.offset]
                break
            found = die_text(current, "DW_AT_name")
            if found is not None:
                break
            current = next((current.get_DIE_from_attribute(ref) for ref in ("DW_AT_abstract_origin",
                                                                          "DW_AT_specification")
                            if ref in current.attributes), None)
        self._names[start] = found
        return found

    def pc_ranges(self, die: DIE) -> list[tuple[int, int]]:
        """The [low, high) address ranges a DIE's code occupies (low_pc/high_pc or DW_AT_ranges)."""
        attrs = die.attributes
        if "DW_AT_low_pc" in attrs and "DW_AT_high_pc" in attrs:
            low = attrs["DW_AT_low_pc"].value
            high = attrs["DW_AT_high_pc"]
            return [(low, high.value if high.form in ("DW_FORM_addr", "DW_FORM_addrx") else low + high.value)]
        if "DW_AT_ranges" not in attrs:
            return []
        lists = self.dwarf.range_lists()
        if lists is None:
            return []
        top = die.cu.get_top_DIE()
        base = top.attributes["DW_AT_low_pc"].value if "DW_AT_low_pc" in top.attributes else 0
        found: list[tuple[int, int]] = []
        for entry in lists.get_range_list_at_offset(attrs["DW_AT_ranges"].value, cu=die.cu):
            if isinstance(entry, BaseAddressEntry):
                base = entry.base_address
            elif entry.is_absolute:
                found.append((entry.begin_offset, entry.end_offset))
            else:
                found.append((base + entry.begin_offset, base + entry.end_offset))
        return found

    def subprogram_at(self, cu: CompileUnit, address: int, size: int = 1) -> DIE | None:
        """The concrete (out-of-line) DW_TAG_subprogram whose code covers address, matched by range not by name;
        failing that, the first one within [address, address + size). arm64's ftrace NOPs
        (-fpatchable-function-entry=2) lie between the symbol and DWARF's low_pc: 5.15.135's
        __zram_bvec_read.constprop.0 starts at ...ebc, its DW_AT_low_pc is ...ec4."""
        index = self._subprograms.get(cu.cu_offset)
        if index is None:
            index = [(low, high, child.offset) for child in cu.get_top_DIE().iter_children()
                     if child.tag == "DW_TAG_subprogram" for low, high in self.pc_ranges(child)]
            self._subprograms[cu.cu_offset] = index
        for low, high, offset in index:
            if low <= address < high:
                return cu.get_DIE_from_refaddr(offset)
        for die in cu.iter_DIEs():  # nested definitions are rare in C; look everywhere before giving up
            if die.tag == "DW_TAG_subprogram" and any(low <= address < high for low, high in self.pc_ranges(die)):
                return die
        starts = [(low, offset) for low, _, offset in index if address < low < address + size]
        return cu.get_DIE_from_refaddr(min(starts)[1]) if starts else None

    # ---- variables and types

    def variable_dies(self, cu: CompileUnit, variable: str) -> Iterator[DIE]:
        """File-scope DW_TAG_variable DIEs of that name in a CU, definitions (with a location) first."""
        later: list[DIE] = []
        for child in cu.get_top_DIE().iter_children():
            if child.tag != "DW_TAG_variable" or self.name(child) != variable:
                continue
            if "DW_AT_location" in child.attributes:
                yield child
            elif "DW_AT_declaration" not in child.attributes:
                later.append(child)
        yield from later

    def type_of(self, die: DIE) -> DIE | None:
        current: DIE | None = die
        seen = 0
        while current is not None and "DW_AT_type" not in current.attributes and seen < 4:
            spec = current.attributes.get("DW_AT_specification") or current.attributes.get("DW_AT_abstract_origin")
            current = current.get_DIE_from_attribute(spec.name) if spec else None
            seen += 1
        return current.get_DIE_from_attribute("DW_AT_type") if current is not None else None


def die_text(die: DIE, attribute: str) -> str | None:
    value = die.attributes.get(attribute)
    if value is None or not isinstance(value.value, bytes):
        return None
    return value.value.decode(errors="replace")


def path_endswith(path: str, suffix: str) -> bool:
    suffix = suffix.lstrip("./")
    return path == suffix or path.endswith("/" + suffix)


def unreadable(vmlinux: Path, error: Exception) -> KernlabError:
    """A READ_ERRORS exception met while walking DWARF, as a one-line error naming the image."""
    return KernlabError(f"{vmlinux}: unreadable DWARF ({type(error).__name__}: {error})")
