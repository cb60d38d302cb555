"""Static facts from a built vmlinux (ELF symbols + DWARF): which function an ops member points to, what gcc inlined.

Everything here is read from the image as linked: an ops member's value is the initialiser the kernel was built
with (run-time writes are not seen), and an inline tree is what gcc emitted as DW_TAG_inlined_subroutine records.
"""

from __future__ import annotations

import bisect
import struct
from collections import deque
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
from kernlab.trace import base_name

STT_OBJECT, STT_FUNC, STT_FILE = 1, 2, 4
SHN_UNDEF = 0
NEIGHBOURS = 16  # local data symbols either side of a global variable tried for locating its CU
MAX_BETWEEN = 64  # CUs between those neighbours worth walking before the walk over every CU
DW_OP_ADDR, DW_OP_PLUS_UCONST = 0x03, 0x23
QUALIFIERS = {"DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type", "DW_TAG_restrict_type",
              "DW_TAG_atomic_type"}
AGGREGATES = {"DW_TAG_structure_type", "DW_TAG_union_type"}
CONCRETE_SCOPES = {"DW_TAG_lexical_block"}  # blocks that may hold inlined subroutines but are not one themselves

# what pyelftools raises on a damaged or unexpected file
READ_ERRORS = (ELFError, DWARFError, ConstructError, ValueError, AssertionError)

# OpsMember.status values
RESOLVED = "resolved"
NULL = "null"
UNRESOLVED = "unresolved"  # a non-NULL pointer with no function symbol at that address
NO_MEMBER = "no such member"
NO_VARIABLE = "no such variable"


@dataclass(frozen=True)
class OpsMember:
    """One function-pointer member of an initialised ops structure, as linked into vmlinux."""

    variable: str
    member: str
    struct: str | None  # "address_space_operations"; None when the variable was not found
    offset: int | None  # byte offset of the member in the struct
    pointer: int | None  # the 8 bytes read at variable + offset
    target: str | None  # function symbol the pointer names (may carry a clone suffix), None if NULL/unresolved
    status: str  # resolved | null | unresolved | no such member | no such variable
    evidence: str  # one line a person reads

    @property
    def resolved(self) -> bool:
        return self.status == RESOLVED


@dataclass(frozen=True)
class InlineNode:
    """A function and, beneath it, the functions gcc inlined into it (each callee once per level)."""

    name: str
    children: tuple[InlineNode, ...] = ()

    @classmethod
    def build(cls, name: str, children: list[InlineNode] | tuple[InlineNode, ...]) -> InlineNode:
        """A node whose children are merged: one child per callee name, their own children merged likewise."""
        return cls(name, merge(children))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "children": [child.to_dict() for child in self.children]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InlineNode:
        return cls(data["name"], tuple(cls.from_dict(child) for child in data.get("children", [])))

    def names(self) -> set[str]:
        """Every function name in the tree below this node (not this node's own)."""
        found: set[str] = set()
        for child in self.children:
            found.add(child.name)
            found |= child.names()
        return found

    def find_path(self, names: list[str]) -> list[str] | None:
        """Whether `names` occur as a descending chain of inlined instances below this node.

        Each name must be a descendant (child or deeper) of the previous name's node; the first a descendant of this
        node. Returns the names of every node on the shortest such descent, from a child of this node down to the
        node of the last name, intermediate inlined functions included (so names is a subsequence of the result);
        the leftmost one when several are equally short.
        None when there is no such chain; [] for an empty `names`.
        """
        if not names:
            return []
        queue: deque[tuple[InlineNode, int, list[str]]] = deque([(self, 0, [])])
        while queue:  # breadth first: the first chain found is a shortest one, leftmost among equals
            node, matched, trail = queue.popleft()
            for child in node.children:
                walked = [*trail, child.name]
                now = matched + (child.name == names[matched])
                if now == len(names):
                    return walked
                queue.append((child, now, walked))
        return None

    def render(self, indent: str = "  ") -> str:
        """The tree as indented text, one function a line."""
        lines: list[str] = []

        def walk(node: InlineNode, depth: int) -> None:
            lines.append(f"{indent * depth}{node.name}")
            for child in node.children:
                walk(child, depth + 1)

        walk(self, 0)
        return "\n".join(lines)


def merge(nodes: list[InlineNode] | tuple[InlineNode, ...]) -> tuple[InlineNode, ...]:
    """Nodes with the same name folded into one (first position kept), their children merged recursively."""
    order: list[str] = []
    grouped: dict[str, list[InlineNode]] = {}
    for node in nodes:
        if node.name not in grouped:
            order.append(node.name)
            grouped[node.name] = []
        grouped[node.name].extend(node.children)
    return tuple(InlineNode(name, merge(grouped[name])) for name in order)


# ---------------------------------------------------------------------------------------------------------------
# ELF side: symbols and section bytes, read with struct (pyelftools' per-symbol objects are slow on 100k symbols)


@dataclass(frozen=True)
class _Symbol:
    name: str
    value: int
    size: int
    kind: int  # STT_*
    local: bool
    group: int  # index of the STT_FILE group a local symbol belongs to; -1 for globals


@dataclass(frozen=True)
class _Section:
    name: str
    addr: int
    size: int
    offset: int
    nobits: bool


class _Image:
    """One open vmlinux: its symbols, allocated sections and DWARF, with the lookups both public functions need."""

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
                _Section(s.name, s["sh_addr"], s["sh_size"], s["sh_offset"], s["sh_type"] == "SHT_NOBITS")
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
        self._clones: dict[str, list[_Symbol]] | None = None  # base name -> zram_bvec_rw.isra.0 and the like
        self._locals: list[tuple[int, int]] | None = None  # (address, STT_FILE group) of local data symbols

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> _Image:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- symbols

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
        self.by_name: dict[str, list[_Symbol]] = {}
        self.functions_at: dict[int, list[str]] = {}
        self.groups: list[list[_Symbol]] = []  # local symbols after each STT_FILE symbol
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
            symbol = _Symbol(name, value, size, kind, local, group if local else -1)
            self.by_name.setdefault(name, []).append(symbol)
            if local and group >= 0:
                self.groups[group].append(symbol)
            if kind == STT_FUNC:
                self.functions_at.setdefault(value, []).append(name)

    def function_symbol(self, function: str) -> _Symbol | None:
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

    def section_at(self, address: int) -> _Section | None:
        for section in self.sections:
            if section.addr <= address < section.addr + section.size:
                return section
        return None

    def read(self, address: int, size: int) -> tuple[bytes, _Section] | None:
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
            self._cu_names = [(_text(cu.get_top_DIE(), "DW_AT_name") or "", cu.cu_offset)
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
                    _path_endswith(_text(cu.get_top_DIE(), "DW_AT_name") or "", suffix):
                found[cu.cu_offset] = cu
        if found:
            return list(found.values())
        return [self.dwarf.get_CU_at(offset) for name, offset in self.cu_names() if _path_endswith(name, suffix)]

    def cus_of_symbol(self, symbol: _Symbol) -> list[CompileUnit]:
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
            found = _text(current, "DW_AT_name")
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

    def subprogram_at(self, cu: CompileUnit, address: int) -> DIE | None:
        """The concrete (out-of-line) DW_TAG_subprogram whose code covers address, matched by range not by name."""
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
        return None

    def inlined_below(self, die: DIE) -> list[InlineNode]:
        nodes: list[InlineNode] = []
        for child in die.iter_children():
            if child.tag == "DW_TAG_inlined_subroutine":
                nodes.append(InlineNode(self.name(child) or f"<DIE {child.offset:#x}>",
                                        tuple(self.inlined_below(child))))
            elif child.tag in CONCRETE_SCOPES and child.has_children:
                nodes.extend(self.inlined_below(child))
        return nodes

    def inline_tree(self, function: str) -> InlineNode | None:
        symbol = self.function_symbol(function)
        if symbol is None:
            return None
        cu = self.cu_at_address(symbol.value)
        die = self.subprogram_at(cu, symbol.value) if cu is not None else None
        if die is None:
            return None
        return InlineNode.build(symbol.name, self.inlined_below(die))

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


def _text(die: DIE, attribute: str) -> str | None:
    value = die.attributes.get(attribute)
    if value is None or not isinstance(value.value, bytes):
        return None
    return value.value.decode(errors="replace")


def _path_endswith(path: str, suffix: str) -> bool:
    suffix = suffix.lstrip("./")
    return path == suffix or path.endswith("/" + suffix)


def _location_address(die: DIE) -> int | None:
    """The static address of a variable whose DW_AT_location is a plain DW_OP_addr."""
    location = die.attributes.get("DW_AT_location")
    if location is None or not isinstance(location.value, list) or not location.value:
        return None
    expr = location.value
    size = die.cu["address_size"]
    if expr[0] != DW_OP_ADDR or len(expr) != 1 + size:
        return None
    return int.from_bytes(bytes(expr[1:]), "little" if die.dwarfinfo.config.little_endian else "big")


def _strip(die: DIE | None) -> DIE | None:
    seen = 0
    while die is not None and die.tag in QUALIFIERS and seen < 32:
        die = die.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in die.attributes else None
        seen += 1
    return die


def _uleb(data: list[int], start: int) -> int:
    value, shift = 0, 0
    for byte in data[start:]:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return value


def _member_offset(member: DIE) -> int:
    location = member.attributes.get("DW_AT_data_member_location")
    if location is None:
        return 0  # union members
    if isinstance(location.value, int):
        return location.value
    expr = location.value
    if expr and expr[0] == DW_OP_PLUS_UCONST:
        return _uleb(expr, 1)
    raise KernlabError(f"member {_text(member, 'DW_AT_name')}: unsupported DW_AT_data_member_location {expr}")


def _find_member(aggregate: DIE, member: str) -> tuple[DIE, int] | None:
    """The member DIE and its byte offset, looking inside anonymous struct/union members too."""
    for child in aggregate.iter_children():
        if child.tag != "DW_TAG_member":
            continue
        name = _text(child, "DW_AT_name")
        if name == member:
            return child, _member_offset(child)
        if name is None and "DW_AT_type" in child.attributes:
            inner = _strip(child.get_DIE_from_attribute("DW_AT_type"))
            if inner is not None and inner.tag in AGGREGATES and (found := _find_member(inner, member)):
                return found[0], _member_offset(child) + found[1]
    return None


def _type_name(aggregate: DIE) -> str:
    name = _text(aggregate, "DW_AT_name")
    if name is not None:
        return name
    return "<anonymous>"


def _open(vmlinux: Path) -> _Image:
    return _Image(Path(vmlinux))


def _guard(vmlinux: Path, error: Exception) -> KernlabError:
    return KernlabError(f"{vmlinux}: unreadable DWARF ({type(error).__name__}: {error})")


# ---------------------------------------------------------------------------------------------------------------
# public API


def read_ops_member(vmlinux: Path, variable: str, member: str, cu_hint: str | None = None) -> OpsMember:
    """The function an initialised ops structure's member points to, e.g. swap_aops.writepage -> swap_writepage.

    cu_hint ("mm/swap_state.c") picks among static variables of the same name and limits the DWARF walk to that
    compilation unit; without it the CU is found through the symbol table (the variable's STT_FILE group).
    """
    with _open(vmlinux) as image:
        try:
            return _read_ops_member(image, variable, member, cu_hint)
        except READ_ERRORS as error:
            raise _guard(vmlinux, error) from None


def _read_ops_member(image: _Image, variable: str, member: str, cu_hint: str | None) -> OpsMember:
    candidates = [s for s in image.by_name.get(variable, []) if s.kind == STT_OBJECT]
    if not candidates:
        return OpsMember(variable, member, None, None, None, None, NO_VARIABLE,
                         f"no object symbol {variable} in {image.path.name}")
    found = _variable_die(image, variable, candidates, cu_hint)
    if found is None:
        where = f" in a CU named {cu_hint}" if cu_hint else ""
        raise KernlabError(f"{image.path}: symbol {variable} has no DWARF variable{where}")
    die, symbol = found
    aggregate = _strip(image.type_of(die))
    if aggregate is None or aggregate.tag not in AGGREGATES:
        kind = aggregate.tag.removeprefix("DW_TAG_") if aggregate is not None else "no type"
        raise KernlabError(f"{image.path}: {variable} is not a struct ({kind})")
    struct_name = _type_name(aggregate)
    cu_name = _text(die.cu.get_top_DIE(), "DW_AT_name") or "?"
    located = _find_member(aggregate, member)
    if located is None:
        return OpsMember(variable, member, struct_name, None, None, None, NO_MEMBER,
                         f"struct {struct_name} ({variable}, {cu_name}) has no member {member}")
    member_die, offset = located
    member_type = _strip(member_die.get_DIE_from_attribute("DW_AT_type")) if "DW_AT_type" in member_die.attributes \
        else None
    if member_type is None or member_type.tag != "DW_TAG_pointer_type":
        kind = member_type.tag.removeprefix("DW_TAG_") if member_type is not None else "no type"
        raise KernlabError(f"{image.path}: {struct_name}.{member} is not a pointer ({kind})")
    read = image.read(symbol.value + offset, image.pointer_size)
    if read is None:
        raise KernlabError(f"{image.path}: {variable}+{offset:#x} ({symbol.value + offset:#x}) is in no loaded section")
    data, section = read
    pointer = int.from_bytes(data, "little" if image.little else "big")
    where = f"{variable}+{offset:#x} (struct {struct_name}.{member}, {section.name}) = {pointer:#x}"
    if pointer == 0:
        return OpsMember(variable, member, struct_name, offset, 0, None, NULL, f"{where} (not set)")
    target = image.function_at(pointer)
    if target is None:
        return OpsMember(variable, member, struct_name, offset, pointer, None, UNRESOLVED,
                         f"{where} -> no function symbol at that address")
    return OpsMember(variable, member, struct_name, offset, pointer, target, RESOLVED, f"{where} -> {target}")


def _variable_die(image: _Image, variable: str, candidates: list[_Symbol],
                  cu_hint: str | None) -> tuple[DIE, _Symbol] | None:
    """The variable's DWARF definition and the symbol it describes, walking as few CUs as possible."""
    seen: set[int] = set()

    def search(cus: list[CompileUnit]) -> tuple[DIE, _Symbol] | None:
        for cu in cus:
            if cu.cu_offset in seen:
                continue
            seen.add(cu.cu_offset)
            if cu_hint and not _path_endswith(_text(cu.get_top_DIE(), "DW_AT_name") or "", cu_hint):
                continue
            for die in image.variable_dies(cu, variable):
                address = _location_address(die)
                if address is None:
                    if len(candidates) == 1:
                        return die, candidates[0]
                    continue
                symbol = next((s for s in candidates if s.value == address), None)
                if symbol is not None:
                    return die, symbol
        return None

    found = search([cu for symbol in candidates for cu in image.cus_of_symbol(symbol)])
    if found is None and cu_hint:
        found = search(image.cus_named(cu_hint))
    if found is None:  # globals, or a symbol table without STT_FILE groups: walk every CU's file scope
        found = search([image.dwarf.get_CU_at(offset) for _, offset in image.cu_names()])
    return found


def inline_tree(vmlinux: Path, function: str) -> InlineNode | None:
    """What gcc inlined into one out-of-line function (clone suffix optional), or None if it has no symbol.

    The root is named as the symbol (zram_bvec_rw.isra.0); below it each DW_TAG_inlined_subroutine, named through
    its abstract origin, with repeated callees at one level merged.
    """
    return inline_trees(vmlinux, [function]).get(function)


def inline_trees(vmlinux: Path, functions: list[str]) -> dict[str, InlineNode]:
    """inline_tree for many functions with one open image (each CU parsed once); functions without a symbol or
    without a DWARF subprogram covering it are left out. Keys are the names as asked."""
    trees: dict[str, InlineNode] = {}
    with _open(vmlinux) as image:
        for function in functions:
            try:
                tree = image.inline_tree(function)
            except READ_ERRORS as error:
                raise _guard(vmlinux, error) from None
            if tree is not None:
                trees[function] = tree
    return trees
