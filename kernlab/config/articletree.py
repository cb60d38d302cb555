"""A call tree as articles write it: a code block pasted as published, read into tree lines.

Indentation is read by visual column whatever the mix of tabs and spaces, with the tab width that makes the block
most regular (said back: the pageout block of the article this project follows reads right only at width 4).
Comments go; `x = f(args);`, `f(args);` and `handle = f` are calls of f; a call through a pointer
(`mapping->a_ops->writepage(page, &wbc);`, `ops->rw_page`) is an indirect call whose children are its callee's;
`static const struct T name = { .member = func, ... };` in the same block is the article's claim of where that
member points. Every other line (declarations, preprocessor lines, braces, assignments) is reported as skipped.
kernlab's own dialect (`note: text`, `CALL => function`, `# comment`) reads the same way. Pure: text in, lines out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from kernlab.errors import KernlabError

TAB_WIDTHS = (4, 8, 2)  # tried in this order; the first wins a tie
NOTE_PREFIX = "note:"
# String and memory routines the compiler expands inline or the arch writes in assembly: never a traceable call,
# so a line calling one is kept as a note (arch/x86/lib/memcpy_64.S is not instrumented; gcc expands
# __builtin_memcpy of a known size).
BUILTINS = frozenset({"memcpy", "memset", "memmove", "memcmp", "strcpy", "strncpy", "strlen", "strcmp"})
IDENT = r"[A-Za-z_]\w*"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # a C function name, ASCII only
CALLEE = re.compile(rf"^(?:[\w\s*\[\]>.-]+?=\s*)?(?P<callee>{IDENT}(?:\s*(?:->|\.)\s*{IDENT})*)\s*(?:\(.*)?;?$")
INITIALIZER = re.compile(rf"^(?:static\s+)?(?:const\s+)?struct\s+(?P<type>{IDENT})\s+(?P<name>{IDENT})\s*=\s*\{{")
MEMBER = re.compile(rf"^\.(?P<member>{IDENT})\s*=\s*&?(?P<target>{IDENT})\s*,?$")
DECLARATION = re.compile(rf"^(?:(?:static|const|unsigned|signed|struct|enum|union)\s+)*{IDENT}[\s*]+{IDENT}"
                         r"(?:\s*\[[^]]*\])?\s*(?:=.*)?;$")
DEFINITION = re.compile(rf"^(?:(?:static|inline|const|struct|unsigned|enum)\s+)*{IDENT}[\s*]+{IDENT}"
                        r"\s*\([^;]*\)\s*\{?$")
CONTROL = re.compile(r"^(?:if|else|for|while|do|switch|case|default|return|goto|break|continue)\b")
KEYWORDS = frozenset({"if", "else", "for", "while", "do", "switch", "case", "default", "return", "goto", "break",
                      "continue", "sizeof", "struct", "static", "const", "unsigned", "int", "long", "char", "void",
                      "bool", "enum", "union"})


@dataclass(frozen=True)
class BlockLine:
    """One line of the tree as the block gives it, before parents are assigned."""

    number: int  # 1-based line of the block
    column: int  # visual column at the tab width chosen
    text: str  # as written, comments removed
    function: str | None  # a direct call's function; None for a note or a call through a pointer
    via: str | None = None  # the pointer expression of an indirect call (a->b->member)
    explicit: str | None = None  # `CALL => function`: the target the dialect names


@dataclass(frozen=True)
class Initializer:
    """`static const struct T name = { .member = func, ... };` as the block writes it."""

    type: str
    name: str
    members: dict[str, str]
    number: int


@dataclass
class Block:
    """What a code block holds: its tree lines, its ops initializers, what was skipped and why."""

    lines: list[BlockLine] = field(default_factory=list)
    initializers: list[Initializer] = field(default_factory=list)
    skipped: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, why)
    tab_width: int = 8
    mixed_indent: bool = False  # tabs and spaces both indent some line: the tab width mattered


def column(indent: str, tab_width: int) -> int:
    at = 0
    for char in indent:
        at = (at // tab_width + 1) * tab_width if char == "\t" else at + 1
    return at


def strip_comments(lines: list[str]) -> list[tuple[str, bool]]:
    """Each line without its comments, and whether it held any; `/* ... */` may span lines."""
    out: list[tuple[str, bool]] = []
    open_comment = False
    for raw in lines:
        text, had, at = "", open_comment, 0
        while at < len(raw):
            if open_comment:
                end = raw.find("*/", at)
                if end < 0:
                    at = len(raw)
                    continue
                open_comment, at = False, end + 2
            elif raw.startswith("/*", at):
                open_comment, had, at = True, True, at + 2
            elif raw.startswith("//", at):
                had, at = True, len(raw)
            else:
                text += raw[at]
                at += 1
        out.append((text.rstrip(), had))
    return out


def classify(text: str) -> tuple[str, str | None, str | None, str | None]:
    """(kind, function, via, why): kind is call, note, comment (kernlab's `# ...`), or skip (why says what)."""
    body = text.strip()
    if body.startswith(NOTE_PREFIX):
        return "note", None, None, None
    if "=>" in body:
        via, _, function = body.rpartition("=>")
        return "call", function.strip(), via.strip(), None
    if body.startswith("#") and not body.startswith(("#if", "#else", "#elif", "#endif", "#include", "#define")):
        return "comment", None, None, None
    if body.startswith("#"):
        return "skip", None, None, "a preprocessor line"
    if re.fullmatch(r"[{}();,\s]*", body):
        return "skip", None, None, "braces"
    if DEFINITION.match(body):
        return "skip", None, None, "a function definition"
    if CONTROL.match(body):
        return "skip", None, None, "control flow, not a call line"
    if DECLARATION.match(body) and "(" not in body.split("=", 1)[0]:
        return "skip", None, None, "a declaration"
    if re.search(r"=\s*&", body) or (("=" in body) and "(" not in body and not CALLEE.match(body)):
        return "skip", None, None, "an assignment, not a call"
    match = CALLEE.match(body)
    if not match:
        return "skip", None, None, "not a call"
    callee = re.sub(r"\s+", "", match.group("callee"))
    if "->" in callee or "." in callee:
        return "call", None, callee, None
    if callee in KEYWORDS:
        return "skip", None, None, "not a call"
    return "call", callee, None, None


def tab_width(indents: list[str]) -> int:
    """The width under which the tree's columns are most regular: fewest dedents, then the most consecutive
    steps of the block's commonest step."""
    def score(width: int) -> tuple[int, int]:
        columns = [column(indent, width) for indent in indents]
        steps = [b - a for a, b in zip(columns, columns[1:], strict=False)]
        rising = [step for step in steps if step > 0]
        common = max(rising.count(step) for step in set(rising)) if rising else 0
        return sum(step < 0 for step in steps), -common
    return min(TAB_WIDTHS, key=lambda width: (score(width), TAB_WIDTHS.index(width)))


def read_block(text: str) -> Block:
    """The block's tree lines (with columns), initializers and skipped lines."""
    block = Block()
    raw_lines = text.splitlines()
    stripped = strip_comments(raw_lines)
    pending: list[tuple[int, str, str, str | None, str | None]] = []  # (number, indent, body, function, via)
    initializer: Initializer | None = None
    for number, (body_text, _had) in enumerate(stripped, 1):
        body = body_text.strip()
        if not body:
            continue
        if initializer is not None:
            if body.startswith("}"):
                block.initializers.append(initializer)
                initializer = None
            elif member := MEMBER.match(body.rstrip(",").strip() + ("," if body.endswith(",") else "")):
                initializer.members[member.group("member")] = member.group("target")
            else:
                block.skipped.append((number, body, f"inside the initializer of {initializer.name}"))
            continue
        if match := INITIALIZER.match(body):
            initializer = Initializer(match.group("type"), match.group("name"), {}, number)
            continue
        if not body.startswith(NOTE_PREFIX) and " #" in body:  # kernlab's trailing `# comment`
            body = body.split(" #", 1)[0].strip()
        kind, function, via, why = classify(body)
        if kind == "comment":
            continue
        if function in BUILTINS:
            kind, function = "note", None
        if kind == "skip":
            block.skipped.append((number, body, why or "not a call"))
            continue
        if block.initializers:  # the tree is over once the article turns to where its pointers go
            block.skipped.append((number, body, "after the block's ops initializers: not part of the tree"))
            continue
        indent = body_text[: len(body_text) - len(body_text.lstrip())]
        pending.append((number, indent, body, function, via))
    if initializer is not None:
        block.initializers.append(initializer)
    indents = [indent for _, indent, *_ in pending]
    block.mixed_indent = any(" " in indent and "\t" in indent for indent in indents) or (
        any("\t" in indent for indent in indents) and any(" " in indent for indent in indents))
    block.tab_width = tab_width(indents) if block.mixed_indent else 8
    for number, indent, body, function, via in pending:
        explicit = function if via and function else None
        block.lines.append(BlockLine(number, column(indent, block.tab_width), body,
                                     None if via else function, via, explicit))
    return block


def member_of(via: str) -> str:
    """`mapping->a_ops->writepage` -> `writepage`."""
    return re.split(r"->|\.", via)[-1]


# ---- the tree

class IndirectClaim(BaseModel):
    """`call` (e.g. mapping->a_ops->writepage) reaches the tree line's function through an initialised ops table."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    call: str
    ops: str  # the initialised structure variable, e.g. swap_aops
    member: str  # its member, e.g. writepage
    file: str = ""  # the source file that defines `ops` (finds its DWARF unit); "": found from its symbol
    why: str = ""  # how `call` comes to point at `ops`, e.g. init_swap_address_space(): space->a_ops = &swap_aops


@dataclass(frozen=True)
class TreeLine:
    """One line of a documented call tree: a function (maybe reached indirectly) or an annotation."""

    number: int  # 1-based line in the spec's tree text (or position in path + leaves)
    depth: int
    text: str  # as documented
    parent: int | None  # index of the enclosing function line
    function: str | None = None  # None: an annotation (`note: ...`)
    via: str | None = None  # the indirect call expression that reaches `function`


@dataclass(frozen=True)
class ParsedTree:
    """A tree spec's text read: its lines, where the block's own initializers say its pointers go, what was
    skipped and why, and the tab width its indentation was read with."""

    lines: list[TreeLine]
    claims: dict[str, IndirectClaim]  # pointer expression -> the block's initializer for it
    targets: dict[str, str]  # pointer expression -> the function that initializer names
    skipped: list[tuple[int, str, str]]  # (tree line, text, why)
    tab_width: int | None  # None: no line mixed tabs and spaces, so the width did not matter
    merged: list[str]  # pointer lines whose target the next line spells out, read as one line

    def notes(self) -> list[str]:
        notes = [f"tree read with tabs {self.tab_width} columns wide (its lines mix tabs and spaces)"] \
            if self.tab_width else []
        notes += self.merged
        if self.skipped:
            shown = "; ".join(f"line {number} {text!r}: {why}" for number, text, why in self.skipped[:12])
            more = f" and {len(self.skipped) - 12} more" if len(self.skipped) > 12 else ""
            notes.append(f"tree lines skipped: {shown}{more}")
        return notes


def parse_tree(text: str, where: str) -> list[TreeLine]:
    return parse_block(text, where).lines


def parse_block(text: str, where: str, pointers: Mapping[str, tuple[str, IndirectClaim]] | None = None) -> ParsedTree:
    """The tree as the article writes it (kernlab.config.articletree reads the lines): children indented under their
    caller, one first line; a call through a pointer resolved by the block's own initializer of that member,
    and merged with the next line when that line is its target (`mapping->a_ops->writepage(page, &wbc);` over
    `swap_writepage`)."""
    block = read_block(text)
    claims, targets = _block_claims(block)
    for via, (target, claim) in (pointers or {}).items():  # resolved from a run (kernlab.verify.pointers)
        claims.setdefault(via, claim)
        targets.setdefault(via, target)
    lines: list[TreeLine] = []
    # (column, the index its children take as parent, its own index): a pointer line no initializer resolves
    # passes its children to its own parent, since it is no function a stack can show
    stack: list[tuple[int, int | None, int]] = []
    merged: list[str] = []
    for line in block.lines:
        while stack and stack[-1][0] >= line.column:
            stack.pop()
        if lines and not stack:
            raise KernlabError(f"{where}: tree line {line.number}: {line.text!r} is a second root; a tree has one "
                               "first line")
        parent = stack[-1][1] if stack else None
        opener = lines[stack[-1][2]] if stack else None
        if line.function and opener is not None and opener.via and not line.via and \
                targets.get(opener.via) == line.function and not any(x.parent == stack[-1][2] for x in lines):
            # the pointer's target, spelled out on the next line: one line, as `CALL => function` writes it
            merged.append(f"tree line {line.number} {line.function!r} is where line {opener.number}'s "
                          f"{opener.via} goes: read as one line")
            stack[-1] = (line.column, stack[-1][2], stack[-1][2])
            continue
        is_note = line.function is None and line.via is None
        if is_note and parent is None:
            raise KernlabError(f"{where}: tree line {line.number}: an annotation cannot be the root")
        function = line.explicit or line.function or (targets.get(line.via) if line.via else None)
        if function is not None and not IDENTIFIER.match(function):
            raise KernlabError(f"{where}: tree line {line.number}: {line.text!r} is not a function name, "
                               "`CALL => function` or `note: text`")
        if function is None and not is_note and parent is None:
            raise KernlabError(f"{where}: tree line {line.number}: the root {line.text!r} is a call through a "
                               "pointer that nothing resolves")
        depth = len({entry[2] for entry in stack})
        lines.append(TreeLine(line.number, depth, line.text, parent, function, line.via))
        if not is_note:
            stack.append((line.column, len(lines) - 1 if function else parent, len(lines) - 1))
    if not lines:
        raise KernlabError(f"{where}: tree: no lines")
    return ParsedTree(lines, claims, targets, block.skipped, block.tab_width if block.mixed_indent else None,
                      merged)


def _block_claims(block: Block) -> tuple[dict[str, IndirectClaim], dict[str, str]]:
    """Each pointer line's member, where exactly one of the block's initializers sets it; and its target."""
    claims, targets = {}, {}
    for line in block.lines:
        if line.via is None or line.explicit:
            continue
        member = member_of(line.via)
        setting = [init for init in block.initializers if member in init.members]
        if len(setting) == 1:
            init = setting[0]
            claims[line.via] = IndirectClaim(
                call=line.via, ops=init.name, member=member, file="",
                why=f"the block's own initializer (line {init.number}): struct {init.type} {init.name} = "
                    f"{{ .{member} = {init.members[member]} }}")
            targets[line.via] = init.members[member]
    return claims, targets


def linear_tree(path: list[str], leaves: list[str]) -> list[TreeLine]:
    """`path` + `leaves` as a tree: each path function calls the next, the last calls every leaf."""
    lines = [TreeLine(i + 1, i, name, i - 1 if i else None, name) for i, name in enumerate(path)]
    return lines + [TreeLine(len(path) + i + 1, len(path), leaf, len(path) - 1, leaf) for i, leaf in enumerate(leaves)]
