"""Static facts from a built vmlinux (ELF symbols + DWARF): which function an ops member points to, what gcc inlined.

Everything here is read from the image as linked: an ops member's value is the initialiser the kernel was built
with (run-time writes are not seen), and an inline tree is what gcc emitted as DW_TAG_inlined_subroutine records.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elftools.dwarf.compileunit import CompileUnit
from elftools.dwarf.die import DIE

from kernlab.errors import KernlabError
from kernlab.vmlinux.elfimage import READ_ERRORS, STT_OBJECT, Image, Symbol, die_text, path_endswith, unreadable

DW_OP_ADDR, DW_OP_PLUS_UCONST = 0x03, 0x23
QUALIFIERS = {"DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type", "DW_TAG_restrict_type",
              "DW_TAG_atomic_type"}
AGGREGATES = {"DW_TAG_structure_type", "DW_TAG_union_type"}
CONCRETE_SCOPES = {"DW_TAG_lexical_block"}  # blocks that may hold inlined subroutines but are not one themselves

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


# ---- DWARF types and members, for ops tables


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
    raise KernlabError(f"member {die_text(member, 'DW_AT_name')}: unsupported DW_AT_data_member_location {expr}")


def _find_member(aggregate: DIE, member: str) -> tuple[DIE, int] | None:
    """The member DIE and its byte offset, looking inside anonymous struct/union members too."""
    for child in aggregate.iter_children():
        if child.tag != "DW_TAG_member":
            continue
        name = die_text(child, "DW_AT_name")
        if name == member:
            return child, _member_offset(child)
        if name is None and "DW_AT_type" in child.attributes:
            inner = _strip(child.get_DIE_from_attribute("DW_AT_type"))
            if inner is not None and inner.tag in AGGREGATES and (found := _find_member(inner, member)):
                return found[0], _member_offset(child) + found[1]
    return None


def _type_name(aggregate: DIE) -> str:
    name = die_text(aggregate, "DW_AT_name")
    if name is not None:
        return name
    return "<anonymous>"


# ---- inline trees


def _inlined_below(image: Image, die: DIE) -> list[InlineNode]:
    nodes: list[InlineNode] = []
    for child in die.iter_children():
        if child.tag == "DW_TAG_inlined_subroutine":
            nodes.append(InlineNode(image.name(child) or f"<DIE {child.offset:#x}>",
                                    tuple(_inlined_below(image, child))))
        elif child.tag in CONCRETE_SCOPES and child.has_children:
            nodes.extend(_inlined_below(image, child))
    return nodes


def _inline_tree(image: Image, function: str) -> InlineNode | None:
    symbol = image.function_symbol(function)
    if symbol is None:
        return None
    cu = image.cu_at_address(symbol.value)
    die = image.subprogram_at(cu, symbol.value, symbol.size) if cu is not None else None
    if die is None:
        return None
    return InlineNode.build(symbol.name, _inlined_below(image, die))


# ---------------------------------------------------------------------------------------------------------------
# public API


def read_ops_member(vmlinux: Path, variable: str, member: str, cu_hint: str | None = None) -> OpsMember:
    """The function an initialised ops structure's member points to, e.g. swap_aops.writepage -> swap_writepage.

    cu_hint ("mm/swap_state.c") picks among static variables of the same name and limits the DWARF walk to that
    compilation unit; without it the CU is found through the symbol table (the variable's STT_FILE group).
    """
    with Image(Path(vmlinux)) as image:
        try:
            return _read_ops_member(image, variable, member, cu_hint)
        except READ_ERRORS as error:
            raise unreadable(vmlinux, error) from None


def _read_ops_member(image: Image, variable: str, member: str, cu_hint: str | None) -> OpsMember:
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
    cu_name = die_text(die.cu.get_top_DIE(), "DW_AT_name") or "?"
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


def _variable_die(image: Image, variable: str, candidates: list[Symbol],
                  cu_hint: str | None) -> tuple[DIE, Symbol] | None:
    """The variable's DWARF definition and the symbol it describes, walking as few CUs as possible."""
    seen: set[int] = set()

    def search(cus: list[CompileUnit]) -> tuple[DIE, Symbol] | None:
        for cu in cus:
            if cu.cu_offset in seen:
                continue
            seen.add(cu.cu_offset)
            if cu_hint and not path_endswith(die_text(cu.get_top_DIE(), "DW_AT_name") or "", cu_hint):
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
    with Image(Path(vmlinux)) as image:
        for function in functions:
            try:
                tree = _inline_tree(image, function)
            except READ_ERRORS as error:
                raise unreadable(vmlinux, error) from None
            if tree is not None:
                trees[function] = tree
    return trees


# ---- which initialised structure points a member at a function

MAX_SETTERS = 8  # a function named by more ops tables than this is no single pointer's target worth listing


def ops_setting(vmlinux: Path, member: str, target: str) -> list[OpsMember]:
    """Every initialised variable whose `member` points at `target`: each place the image's data holds the
    function's address, inside an object symbol whose DWARF type has that member at that offset (read back with
    read_ops_member). zram_rw_page on 5.15: zram_devops.rw_page."""
    with Image(Path(vmlinux)) as image:
        try:
            return _ops_setting(image, member, target)
        except READ_ERRORS as error:
            raise unreadable(vmlinux, error) from None


def _ops_setting(image: Image, member: str, target: str) -> list[OpsMember]:
    function = image.function_symbol(target)
    if function is None:
        return []
    needle = function.value.to_bytes(image.pointer_size, "little" if image.little else "big")
    objects = sorted((s for symbols in image.by_name.values() for s in symbols if s.kind == STT_OBJECT and s.size),
                     key=lambda s: s.value)
    starts = [s.value for s in objects]
    found: list[OpsMember] = []
    for section in image.sections:
        if section.nobits or not section.size:
            continue
        data = image.read(section.addr, section.size)
        if data is None:
            continue
        at = data[0].find(needle)
        while at >= 0 and len(found) < MAX_SETTERS:
            address = section.addr + at
            index = bisect.bisect_right(starts, address) - 1
            holder = objects[index] if index >= 0 else None
            if holder is not None and address < holder.value + holder.size:
                try:
                    read = _read_ops_member(image, holder.name, member, None)
                except KernlabError:  # not a struct, or no DWARF for it: no ops table
                    at = data[0].find(needle, at + 1)
                    continue
                if read.status == RESOLVED and read.offset == address - holder.value and \
                        read.target is not None and read.target.split(".")[0] == target.split(".")[0]:
                    found.append(read)
            at = data[0].find(needle, at + 1)
    return found
