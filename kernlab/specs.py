"""Chain specs: documented call chains and trees (labs/chains/*.yaml), parsed and resolved for one kernel.

A spec is a path plus leaves, or an indented call tree written the way the article writes it; variants
rename functions per kernel version or architecture, or mark those a version no longer has. A variant for a
kernel version cites the mainline commit it comes from and that commit's first release: what a chain is
expected to do on any kernel follows from those facts, written once, not from version ranges in each lab.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kernlab import yamlfile
from kernlab.errors import KernlabError
from kernlab.lab import validation_message
from kernlab.paths import CHAIN_DIR
from kernlab.version import KernelVersion, parse_guard

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NOTE_PREFIX = "note:"
COMMIT_ID = re.compile(r"^[0-9a-f]{12,40}$")
RELEASE = re.compile(r"^\d+\.\d+$")


class KernelCommit(BaseModel):
    """The mainline commit a version fact comes from, and the first release that has it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str  # 12 to 40 hex digits
    title: str
    release: str  # e.g. "6.3"

    @field_validator("id")
    @classmethod
    def _commit_id(cls, value: str) -> str:
        if not COMMIT_ID.match(value):
            raise ValueError(f"{value!r} is not a commit id: 12 to 40 lowercase hex digits")
        return value

    @field_validator("release", mode="before")
    @classmethod
    def _release(cls, value: object) -> object:
        if isinstance(value, int | float):  # YAML reads 6.10 as the number 6.1
            raise ValueError(f"{value!r}: quote the release, e.g. \"6.10\" (unquoted, YAML reads 6.10 as 6.1)")
        if isinstance(value, str) and not RELEASE.match(value):
            raise ValueError(f"{value!r} is not a release like \"6.3\"")
        return value

    def cite(self) -> str:
        return f'{self.id[:12]} "{self.title}", Linux {self.release}'


def _guard_from_release(guard: str, commit: KernelCommit) -> str | None:
    """Why `guard` does not fit the commit: one of its bounds (>= R, or < R for before it) must be its release."""
    release = KernelVersion.parse(commit.release)
    if any(op in (">=", "<") and bound == release for op, bound in parse_guard(guard)):
        return None
    return (f"kernel {guard!r} does not start or end at the release of commit {commit.cite()}: "
            f"write '>= {commit.release}' (or '< {commit.release}' for the kernels before it)")


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kernel: str | None = None  # version guard, e.g. ">= 6.1"
    # Where a version guard comes from: required with `kernel`, whose bound is the commit's release.
    commit: KernelCommit | None = None
    arch: str | None = None
    rename: dict[str, str] = Field(default_factory=dict)
    # Functions the documented code calls that this version no longer has: function -> why (reported, not dropped).
    gone: dict[str, str] = Field(default_factory=dict)

    @field_validator("kernel")
    @classmethod
    def _valid_guard(cls, guard: str | None) -> str | None:
        if guard is not None:
            try:
                parse_guard(guard)
            except KernlabError as error:  # a load error naming the file and key, not a failure at resolve time
                raise ValueError(str(error)) from None
        return guard

    @model_validator(mode="after")
    def _cited(self) -> Variant:
        if self.gone and self.kernel is None:
            raise ValueError("gone needs `kernel`: the releases that no longer have it")
        if self.kernel is not None and self.commit is None:
            raise ValueError(f"kernel {self.kernel!r} needs `commit`: the mainline commit (id, title, release) "
                             "that made this version differ")
        if self.commit is not None and self.kernel is None:
            raise ValueError("commit needs `kernel`: the version guard it sets")
        wrong = _guard_from_release(self.kernel, self.commit) if self.kernel and self.commit else None
        if wrong:
            raise ValueError(wrong)
        return self

    def applies_to(self) -> str:
        return " ".join(filter(None, [self.arch, f"linux {self.kernel}" if self.kernel else None]))


class IndirectClaim(BaseModel):
    """`call` (e.g. mapping->a_ops->writepage) reaches the tree line's function through an initialised ops table."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    call: str
    ops: str  # the initialised structure variable, e.g. swap_aops
    member: str  # its member, e.g. writepage
    file: str  # the source file that defines `ops` (finds its DWARF unit)
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


def parse_tree(text: str, where: str) -> list[TreeLine]:
    """The article's indented tree: one function per line, children indented under their caller.

    `note: ...` lines are annotations (memcpy, comments), `EXPR => function` a call through a pointer.
    Trailing `# comments` are dropped.
    """
    lines: list[TreeLine] = []
    stack: list[tuple[int, int]] = []  # (indent, index) of the open function lines
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise KernlabError(f"{where}: tree line {number}: indent with spaces, not tabs")
        indent = len(raw) - len(raw.lstrip(" "))
        body = raw.strip()
        if not body.startswith(NOTE_PREFIX):
            body = body.split(" #", 1)[0].strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if lines and not stack:
            raise KernlabError(f"{where}: tree line {number}: {body!r} is a second root; a tree has one first line")
        parent = stack[-1][1] if stack else None
        depth = len(stack)
        if body.startswith(NOTE_PREFIX):
            if parent is None:
                raise KernlabError(f"{where}: tree line {number}: an annotation cannot be the root")
            lines.append(TreeLine(number, depth, body, parent))
            continue
        via, _, function = body.rpartition("=>")
        function, via = function.strip(), via.strip() or None
        if not IDENTIFIER.match(function):
            raise KernlabError(f"{where}: tree line {number}: {body!r} is not a function name, "
                               "`CALL => function` or `note: text`")
        lines.append(TreeLine(number, depth, body, parent, function, via))
        stack.append((indent, len(lines) - 1))
    if not lines:
        raise KernlabError(f"{where}: tree: no lines")
    return lines


def linear_tree(path: list[str], leaves: list[str]) -> list[TreeLine]:
    """`path` + `leaves` as a tree: each path function calls the next, the last calls every leaf."""
    lines = [TreeLine(i + 1, i, name, i - 1 if i else None, name) for i, name in enumerate(path)]
    return lines + [TreeLine(len(path) + i + 1, len(path), leaf, len(path) - 1, leaf) for i, leaf in enumerate(leaves)]


class ChainSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    documented: str
    source: str
    # Either a chain (path, outermost first, then the leaves the last function calls) or a call tree.
    path: list[str] = Field(default_factory=list)
    leaves: list[str] = Field(default_factory=list)
    tree: str | None = None
    indirect: list[IndirectClaim] = Field(default_factory=list)
    absent: list[str] = Field(default_factory=list)
    variants: list[Variant] = Field(default_factory=list)
    # Where a function graph of this chain starts (set_graph_function): a documented function called once per
    # page, so the graph shows the path and not every page fault or reclaim pass. Default: the first function.
    graph_root: str | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> ChainSpec:
        if self.tree is None and (not self.path or not self.leaves):
            raise ValueError("give a tree, or a path and leaves")
        if self.tree is not None and (self.path or self.leaves):
            raise ValueError("give either a tree or a path and leaves, not both")
        return self

    @model_validator(mode="after")
    def _graph_root_documented(self) -> ChainSpec:
        if self.graph_root is not None and self.graph_root not in {line.function for line in self.lines(self.name)}:
            raise ValueError(f"graph_root {self.graph_root!r} is not a function of the chain")
        return self

    def lines(self, where: str) -> list[TreeLine]:
        lines = parse_tree(self.tree, where) if self.tree is not None else linear_tree(self.path, self.leaves)
        calls = {claim.call for claim in self.indirect}
        for line in lines:
            if line.via and line.via not in calls:
                raise KernlabError(f"{where}: tree line {line.number}: {line.via!r} has no entry in `indirect`")
        return lines

    def resolve(self, kernel_version: str, arch: str = "x86_64", where: str | None = None) -> ResolvedChain:
        version = KernelVersion.parse(kernel_version)
        rename: dict[str, str] = {}
        gone: dict[str, GoneFunction] = {}  # by the documented name
        notes = []
        for variant in self.variants:
            if variant.arch and variant.arch != arch:
                continue
            if variant.kernel and not version.satisfies(variant.kernel):
                continue
            rename.update(variant.rename)
            cited = f" ({variant.commit.cite()})" if variant.commit else ""
            notes += [f"{old} is {new} on {variant.applies_to()}{cited}" for old, new in variant.rename.items()]
            if variant.commit is not None:  # a variant with `gone` has one (Variant._cited)
                gone.update({name: GoneFunction(why, variant.commit.cite()) for name, why in variant.gone.items()})
        lines = [replace(line, function=rename.get(line.function, line.function)) if line.function else line
                 for line in self.lines(where or self.name)]
        root = self.graph_root or next(line.function for line in lines if line.function)
        return ResolvedChain(
            name=self.name, documented=self.documented, lines=lines, absent=[rename.get(f, f) for f in self.absent],
            renamed=rename, gone={rename.get(name, name): why for name, why in gone.items()},
            indirect={claim.call: claim for claim in self.indirect}, notes=notes, graph_root=rename.get(root, root))


@dataclass(frozen=True)
class GoneFunction:
    """A documented function this kernel no longer has: why, and the commit that removed it."""

    why: str
    commit: str  # KernelCommit.cite()

    @property
    def evidence(self) -> str:
        return f"{self.why} ({self.commit})"


@dataclass(frozen=True)
class Expected:
    """What a lab expects of a chain on one kernel, and why when the chain spec's facts decided it."""

    want: str  # hold, not-hold or report
    reason: str = ""


@dataclass(frozen=True)
class ResolvedChain:
    """A chain spec for one kernel: renames applied, lines this version lacks marked gone."""

    name: str
    documented: str
    lines: list[TreeLine]
    absent: list[str]
    renamed: dict[str, str]
    gone: dict[str, GoneFunction]
    indirect: dict[str, IndirectClaim]
    notes: list[str]
    graph_root: str | None = None

    def functions(self) -> list[str]:
        return list(dict.fromkeys(line.function for line in self.lines if line.function))

    def expected(self, asked: str) -> Expected:
        """`hold` asks for the chain where the kernel still has it: on a kernel without one of its documented
        functions (a `gone` of the spec, with the commit that removed it) the chain cannot hold, so not-hold."""
        missing = [function for function in self.functions() if function in self.gone]
        if asked != "hold" or not missing:
            return Expected(asked)
        commits = "; ".join(dict.fromkeys(self.gone[function].commit for function in missing))
        return Expected("not-hold", f"this kernel has no {', '.join(missing)}: {commits}")

    def leaf_lines(self) -> list[int]:
        """Function lines that call no other listed function: each ends its own root-to-leaf path."""
        parents = {line.parent for line in self.lines if line.function}
        return [i for i, line in enumerate(self.lines) if line.function and i not in parents]

    @property
    def leaves(self) -> list[str]:
        return list(dict.fromkeys(self.lines[i].function for i in self.leaf_lines()))

    def path_to(self, index: int) -> list[int]:
        """Line indexes from the root down to `index`."""
        path = []
        at: int | None = index
        while at is not None:
            path.append(at)
            at = self.lines[at].parent
        return path[::-1]


TREE_LINE = re.compile(r"tree line (\d+):")


def file_lines(message: str, text: str) -> str:
    """A tree error's "tree line N" as the line of the file it is on (the block after `tree: |`)."""
    start = next((number for number, line in enumerate(text.splitlines(), 1) if re.match(r"tree:\s*[|>]", line)),
                 None)
    if start is None:
        return message
    return TREE_LINE.sub(lambda match: f"line {start + int(match.group(1))} (tree line {match.group(1)}):", message)


def load_chain(path: Path) -> ChainSpec:
    try:
        text = path.read_text()
    except OSError as error:
        raise KernlabError(f"{path}: cannot read chain spec: {error.strerror}") from None
    try:
        spec = ChainSpec.model_validate(yamlfile.load(text, str(path)))
        spec.lines(str(path))  # a tree's errors now, while the file's line numbers are at hand
        return spec
    except ValidationError as error:
        raise KernlabError(file_lines(validation_message(str(path), error), text)) from None
    except KernlabError as error:
        raise KernlabError(file_lines(str(error), text)) from None


def resolve_chain(spec: str, kernel_version: str, arch: str = "x86_64") -> ResolvedChain:
    """labs/chains/<spec>.yaml resolved for a kernel and the guest's architecture; tree errors name the file."""
    path = CHAIN_DIR / f"{spec}.yaml"
    return load_chain(path).resolve(kernel_version, arch, where=str(path))


def check_specs(names: list[str], source: str) -> None:
    """Before anything is built: every chain spec a lab names exists and parses (errors name the lab key)."""
    for index, name in enumerate(names):
        path = CHAIN_DIR / f"{name}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in CHAIN_DIR.glob("*.yaml")))
            raise KernlabError(f"{source}: chains.{index}.spec: no chain spec {name!r} ({path} is missing; "
                               f"known: {known})")
        load_chain(path).lines(str(path))
