"""Chain specs: documented call chains and trees (labs/chains/*.yaml), parsed and resolved for one kernel.

A spec is a path plus leaves, or an indented call tree written the way the article writes it; variants
rename functions per kernel version or architecture, or mark those a version no longer has. A variant for a
kernel version cites the mainline commit it comes from and that commit's first release: what a chain is
expected to do on any kernel follows from those facts, written once, not from version ranges in each lab.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kernlab import yamlfile
from kernlab.config.articletree import IndirectClaim, ParsedTree, TreeLine, linear_tree, parse_block
from kernlab.errors import KernlabError
from kernlab.paths import CHAIN_DIR
from kernlab.version import KernelVersion, parse_guard
from kernlab.yamlfile import validation_message

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


class ChainVariant(BaseModel):
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
    def _cited(self) -> ChainVariant:
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
    variants: list[ChainVariant] = Field(default_factory=list)
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

    def parsed(self, where: str, pointers: Mapping[str, tuple[str, IndirectClaim]] | None = None) -> ParsedTree:
        if self.tree is None:
            return ParsedTree(linear_tree(self.path, self.leaves), {}, {}, [], None, [])
        parsed = parse_block(self.tree, where, pointers)
        calls = {claim.call for claim in self.indirect} | set(parsed.claims)
        for line in parsed.lines:
            if line.via and line.function and line.via not in calls:
                raise KernlabError(f"{where}: tree line {line.number}: {line.via!r} has no entry in `indirect`")
        return parsed

    def lines(self, where: str) -> list[TreeLine]:
        return self.parsed(where).lines

    def resolve(self, kernel_version: str, arch: str = "x86_64", where: str | None = None,
                pointers: Mapping[str, tuple[str, IndirectClaim]] | None = None) -> ResolvedChain:
        """For one kernel: renames and gone functions from the variants; `pointers`: calls through a pointer
        resolved from a run (kernlab.verify.pointers), for those the spec leaves open."""
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
            if variant.commit is not None:  # a variant with `gone` has one (ChainVariant._cited)
                gone.update({name: GoneFunction(why, variant.commit.cite()) for name, why in variant.gone.items()})
        parsed = self.parsed(where or self.name, pointers)
        notes = parsed.notes() + notes
        lines = [replace(line, function=rename.get(line.function, line.function)) if line.function else line
                 for line in parsed.lines]
        root = self.graph_root or next(line.function for line in lines if line.function)
        return ResolvedChain(
            name=self.name, documented=self.documented, lines=lines, absent=[rename.get(f, f) for f in self.absent],
            renamed=rename, gone={rename.get(name, name): why for name, why in gone.items()},
            indirect={**parsed.claims, **{claim.call: claim for claim in self.indirect}}, notes=notes,
            graph_root=rename.get(root, root))


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
    # pointer expressions the run's facts were asked about (kernlab.verify.pointers) and that no candidate resolved
    unset_pointers: tuple[str, ...] = ()

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

    def probe_leaves(self, can_hook: Callable[[str], bool]) -> list[str]:
        """Where full stacks are taken: each leaf; for a leaf ftrace cannot hook (inlined everywhere: no
        symbol), also its nearest ancestor line that it can, unless a hookable leaf below that ancestor proves
        the path to it already (5.15: scan_swap_map_slots in get_swap_pages gets get_swap_pages' stacks;
        zram_get_handle's __zram_bvec_read has zs_map_object below it). The leaf is proved inside it from DWARF."""
        leaves = self.leaf_lines()
        found = [self.lines[index].function for index in leaves]
        for index in leaves:
            if can_hook(self.lines[index].function or ""):
                continue
            path = self.path_to(index)[:-1]
            host = next((at for at in reversed(path) if can_hook(self.lines[at].function or "")), None)
            if host is not None and not any(host in self.path_to(other) and can_hook(self.lines[other].function
                                                                                     or "") for other in leaves):
                found.append(self.lines[host].function)
        return list(dict.fromkeys(name for name in found if name))

    def function_above(self, index: int) -> str | None:
        """The nearest function line above a tree line (a pointer line's caller)."""
        at = self.lines[index].parent
        while at is not None and self.lines[at].function is None:
            at = self.lines[at].parent
        return self.lines[at].function if at is not None else None

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


def load_chain_ref(ref: str, where: str) -> ChainSpec:
    """A lab's `spec:`: a .yaml/.yml path (absolute once the lab is loaded), or a name in labs/chains/.
    `where` names the lab key in the error when the file is not there."""
    if ref.endswith((".yaml", ".yml")):
        path = Path(ref).expanduser()
        if not path.is_file():
            raise KernlabError(f"{where}: no chain spec file {path}")
        return load_chain(path)
    path = CHAIN_DIR / f"{ref}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CHAIN_DIR.glob("*.yaml")))
        raise KernlabError(f"{where}: no chain spec {ref!r} ({path} is missing; known: {known}; "
                           "a file of your own is named by its .yaml path)")
    return load_chain(path)


def resolve_chain(spec: str, kernel_version: str, arch: str = "x86_64") -> ResolvedChain:
    """A library spec (labs/chains/<spec>.yaml) or a spec file resolved for a kernel and the guest's
    architecture; tree errors name the file."""
    return load_chain_ref(spec, spec).resolve(kernel_version, arch)
