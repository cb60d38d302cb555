"""Call-chain specs and the verifier: for each documented chain, does the traced kernel take it, function by function?

Evidence is a stack histogram per probed function (kernlab.trace),
the set of functions ftrace can trace (available_filter_functions), vmlinux's
symbols, and an inline resolver over its DWARF (kernlab.dwarf). No I/O here
beyond reading chain spec files.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kernlab.errors import KernlabError
from kernlab.kconfig import Request
from kernlab.trace import Frame, Histogram, base_name, task_kind

CHAIN_DIR = Path(__file__).resolve().parent.parent / "labs" / "chains"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NOTE_PREFIX = "note:"


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kernel: str | None = None  # version guard, e.g. ">= 6.0"
    arch: str | None = None
    rename: dict[str, str] = Field(default_factory=dict)
    # Functions the documented code calls that this version no longer has: function -> why (reported, not dropped).
    gone: dict[str, str] = Field(default_factory=dict)


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

    @model_validator(mode="after")
    def _one_shape(self) -> ChainSpec:
        if self.tree is None and (not self.path or not self.leaves):
            raise ValueError("give a tree, or a path and leaves")
        if self.tree is not None and (self.path or self.leaves):
            raise ValueError("give either a tree or a path and leaves, not both")
        return self

    def lines(self, where: str) -> list[TreeLine]:
        lines = parse_tree(self.tree, where) if self.tree is not None else linear_tree(self.path, self.leaves)
        calls = {claim.call for claim in self.indirect}
        for line in lines:
            if line.via and line.via not in calls:
                raise KernlabError(f"{where}: tree line {line.number}: {line.via!r} has no entry in `indirect`")
        return lines

    def resolve(self, kernel_version: str, arch: str = "x86_64", where: str | None = None) -> ResolvedChain:
        rename: dict[str, str] = {}
        gone: dict[str, str] = {}
        notes = []
        for variant in self.variants:
            if variant.arch and variant.arch != arch:
                continue
            if variant.kernel and not Request("X", "y", self.name, variant.kernel).applies_to(kernel_version):
                continue
            rename.update(variant.rename)
            where_text = " ".join(filter(None, [variant.arch, f"linux {variant.kernel}" if variant.kernel else None]))
            notes += [f"{old} is {new} on {where_text}" for old, new in variant.rename.items()]
            gone.update({rename.get(name, name): why for name, why in variant.gone.items()})
        lines = [replace(line, function=rename.get(line.function, line.function)) if line.function else line
                 for line in self.lines(where or self.name)]
        return ResolvedChain(
            name=self.name, documented=self.documented, lines=lines, absent=[rename.get(f, f) for f in self.absent],
            renamed=rename, gone=gone, indirect={claim.call: claim for claim in self.indirect}, notes=notes)


@dataclass(frozen=True)
class ResolvedChain:
    """A chain spec for one kernel: renames applied, lines this version lacks marked gone."""

    name: str
    documented: str
    lines: list[TreeLine]
    absent: list[str]
    renamed: dict[str, str]
    gone: dict[str, str]
    indirect: dict[str, IndirectClaim]
    notes: list[str]

    def functions(self) -> list[str]:
        return list(dict.fromkeys(line.function for line in self.lines if line.function))

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


def load_chain(path: Path) -> ChainSpec:
    try:
        data = yaml.safe_load(path.read_text())
        return ChainSpec.model_validate(data)
    except OSError as error:
        raise KernlabError(f"{path}: cannot read chain spec: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise KernlabError(f"{path}: not valid YAML: {error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise KernlabError(f"{path}: {key}: {first['msg'].removeprefix('Value error, ')}") from None


def resolve_chain(spec: str, kernel_version: str) -> ResolvedChain:
    """labs/chains/<spec>.yaml resolved for a kernel; tree errors name the file."""
    path = CHAIN_DIR / f"{spec}.yaml"
    return load_chain(path).resolve(kernel_version, where=str(path))


Verdict = Literal["observed", "inlined", "tail call", "not traceable", "missing", "gone", "annotation"]
PROVEN = ("observed", "inlined", "tail call")


@dataclass
class FunctionVerdict:
    function: str
    verdict: Verdict
    evidence: str
    into: str | None = None  # for inlined: the frame it was inlined into

    def label(self) -> str:
        return {"inlined": f"inlined into {self.into}", "annotation": "not a function: annotation",
                "gone": "not in this kernel"}.get(self.verdict, self.verdict)


class InlineTree(Protocol):
    """What the verifier needs of a function's DWARF inline tree (kernlab.vmlinux.InlineNode)."""

    def find_path(self, names: list[str]) -> list[str] | None: ...


@dataclass
class Evidence:
    """What the verifier knows about the traced kernel."""

    histograms: dict[str, Histogram]  # base name of the probed function -> its stack histogram
    traceable: set[str]  # base names from available_filter_functions
    has_symbol: Callable[[str], bool]  # System.map has an out-of-line copy
    is_noinstr: Callable[[str], bool]
    inlined_at: Callable[[Frame], list[str]]  # frame -> names inlined at its return site, outermost first
    lost_events: int = 0
    # base name of an out-of-line function -> what gcc inlined into its body (static DWARF facts)
    inline_trees: Mapping[str, InlineTree] = field(default_factory=dict)
    # "variable.member" of an initialised ops structure -> kernlab.vmlinux.OpsMember as a dict
    ops: Mapping[str, dict] = field(default_factory=dict)


@dataclass
class LeafResult:
    leaf: str
    holds: bool
    hits: int
    stacks_seen: int  # distinct stacks recorded for the leaf
    by_task: dict[str, int]
    functions: list[FunctionVerdict]
    example: list[str] = field(default_factory=list)  # outermost first, inlined frames marked


@dataclass
class LineResult:
    """One documented line with its verdict: hits are stacks that prove the path from the root down to it."""

    number: int
    depth: int
    text: str
    function: str | None
    verdict: Verdict
    label: str
    evidence: str
    hits: int | None  # None: nothing on a stack can show this line (annotation, static proof, missing)
    by_task: dict[str, int] = field(default_factory=dict)
    into: str | None = None
    indirect: dict | None = None  # {"call", "claim", "status", "evidence"} for `CALL => function` lines


def shown_text(text: str, function: str | None) -> str:
    """A documented line as drawn: with the name this kernel uses when a variant renamed it."""
    return text if not function or function in text else f"{text}  [{function} here]"


@dataclass
class ChainResult:
    name: str
    documented: str
    expect: str
    holds: bool
    hits: int
    leaves: list[LeafResult]
    notes: list[str]
    lost_events: int
    lines: list[LineResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the lab's expectation is met."""
        return {"hold": self.holds, "not-hold": not self.holds}.get(self.expect, True)

    def as_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok}


@dataclass(frozen=True)
class PathEntry:
    name: str
    inlined_into: str | None  # None: a real frame
    frame: Frame | None


def expand(stack_outermost_first: list[Frame], inlined_at: Callable[[Frame], list[str]]) -> list[PathEntry]:
    """Real frames, each followed by the functions inlined at its call site (outer to inner)."""
    entries = []
    for frame in stack_outermost_first:
        entries.append(PathEntry(frame.name, None, frame))
        entries.extend(PathEntry(name, frame.name, frame) for name in inlined_at(frame))
    return entries


def _callers(histograms: Iterable[Histogram]) -> dict[str, set[str]]:
    """function -> the return sites (`caller+0xOFF/0xLEN`) its calls return to, from its caller or stack probe."""
    seen: dict[str, set[str]] = {}
    for histogram in histograms:
        sites = seen.setdefault(histogram.function, set())
        sites.update(histogram.callers)
        sites.update(str(count.stack[1]) for count in histogram.stacks if len(count.stack) > 1)
    return seen


@dataclass(frozen=True)
class TailCall:
    anchor: PathEntry  # the caller's entry: a frame, or a function inlined at that frame's return site

    @property
    def site(self) -> Frame | None:
        """The return site its calls return to: right after the call instruction that jumped into it."""
        return self.anchor.frame


Found = PathEntry | TailCall | None


def _tail_call(function: str, previous: PathEntry, callee: str | None, entries: list[PathEntry],
               callers: dict[str, set[str]]) -> bool:
    """A tail call leaves no frame: f jumps to g, so g returns where f's caller would have.

    Proved when f's own calls return to the exact call instruction that, on this stack, leads
    straight into g's frame, and that instruction lies in f's caller: the caller is the frame X
    that holds it, or inlined into X at that return site (5.15: pageout() is inlined into
    shrink_page_list(), and swap_writepage() tail-calls __swap_writepage() from inside it). The
    functions inlined at one return site nest outer to inner, so the call lies in each of them.
    """
    if callee is None or previous.frame is None:
        return False
    here = entries.index(previous)
    next_frame = next((e for e in entries[here + 1:] if e.inlined_into is None), None)
    return next_frame is not None and next_frame.name == callee and str(previous.frame) in callers.get(function, set())


def _match(chain: list[str], entries: list[PathEntry], callers: dict[str, set[str]]) -> list[Found]:
    """Greedy in-order match of chain functions against the path; tail calls are proved from return sites.

    Returns per chain function its PathEntry, a TailCall, or None.
    """
    found: list[Found] = []
    position = 0
    names = [entry.name for entry in entries]
    for index, function in enumerate(chain):
        try:
            at = names.index(function, position)
        except ValueError:
            at = -1
        if at >= 0:
            found.append(entries[at])
            position = at + 1
            continue
        previous = found[-1] if found else None
        callee = chain[index + 1] if index + 1 < len(chain) else None
        # (Two tail calls in a row, f > g > h with only h a frame, are not proved: g's callee h is no frame.)
        proved = isinstance(previous, PathEntry) and _tail_call(function, previous, callee, entries, callers)
        found.append(TailCall(previous) if proved and isinstance(previous, PathEntry) else None)
    return found


def _why_not(function: str, evidence: Evidence) -> FunctionVerdict:
    if not evidence.has_symbol(function) and function not in evidence.traceable:
        return FunctionVerdict(function, "missing", "no such function in this kernel's System.map "
                               "(fully inlined elsewhere or renamed) and not seen inlined on these stacks")
    if evidence.is_noinstr(function):
        return FunctionVerdict(function, "not traceable", "noinstr (in .noinstr.text): ftrace cannot hook it")
    if function not in evidence.traceable:
        return FunctionVerdict(function, "missing", "has a symbol but is not in available_filter_functions "
                               "and is not on any recorded stack")
    return FunctionVerdict(function, "missing", "traceable, but not on the recorded stacks in this order")


def _proved(function: str, item: Found, callee: str | None) -> FunctionVerdict | None:
    if isinstance(item, PathEntry) and item.inlined_into is None:
        return FunctionVerdict(function, "observed", f"frame {item.frame}")
    if isinstance(item, PathEntry):
        return FunctionVerdict(function, "inlined", f"DWARF inline record at {item.frame}",
                               into=item.inlined_into)
    if isinstance(item, TailCall):
        return FunctionVerdict(function, "tail call", f"never a frame: its calls return to {item.site}, the call "
                               f"that leads straight into {callee}'s frame")
    return None


@dataclass
class _PathProof:
    """For one root-to-leaf path: per position, the stacks that prove the path down to it."""

    lines: list[int]
    hits: list[int]
    by_task: list[Counter]
    items: list[Found]  # per position: the match on the first proving stack (else on the best stack)


def _verify_path(chain: ResolvedChain, lines: list[int], evidence: Evidence,
                 callers: dict[str, set[str]]) -> tuple[LeafResult, _PathProof]:
    functions = [chain.lines[i].function or "" for i in lines]
    leaf = functions[-1]
    histogram = evidence.histograms.get(leaf)
    stacks = histogram.stacks if histogram else []
    proof = _PathProof(lines, [0] * len(lines), [Counter() for _ in lines], [None] * len(lines))
    best: tuple[int, list[Found], list[PathEntry]] | None = None
    example: list[PathEntry] = []
    for count in stacks:
        entries = expand(list(reversed(count.stack)), evidence.inlined_at)  # outermost first
        found = _match(functions, entries, callers)
        score = sum(item is not None for item in found)
        excluded = any(entry.name in chain.absent for entry in entries)
        if excluded:
            score -= 1
        else:
            task = task_kind(count.stack)
            for position, item in enumerate(found):
                if item is None:
                    break
                if not proof.hits[position]:
                    proof.items[position] = item
                proof.hits[position] += count.hits
                proof.by_task[position][task] += count.hits
        holds = not excluded and all(item is not None for item in found)
        if best is None or score > best[0] or (holds and not example):
            best = (score, found, entries)
            if holds and not example:
                example = entries
    found = best[1] if best else [None] * len(functions)
    proof.items = [mine if proof.hits[i] else found[i] for i, mine in enumerate(proof.items)]
    verdicts = []
    for position, (function, item) in enumerate(zip(functions, found, strict=True)):
        callee = functions[position + 1] if position + 1 < len(functions) else None
        verdicts.append(_proved(function, item, callee) or _why_not(function, evidence))
    shown = example or (best[2] if best else [])
    hits = proof.hits[-1]
    result = LeafResult(
        leaf=leaf, holds=hits > 0, hits=hits, stacks_seen=len(stacks), by_task=dict(proof.by_task[-1]),
        functions=verdicts,
        example=[entry.name if entry.inlined_into is None else f"{entry.name} (inlined into {entry.inlined_into})"
                 for entry in shown])
    return result, proof


def verify_leaf(chain: ResolvedChain, leaf: str, evidence: Evidence, callers: dict[str, set[str]]) -> LeafResult:
    index = next(i for i in chain.leaf_lines() if chain.lines[i].function == leaf)
    return _verify_path(chain, chain.path_to(index), evidence, callers)[0]


def _static_inline(chain: ResolvedChain, index: int, proofs: dict[int, tuple[FunctionVerdict, Found]],
                   evidence: Evidence) -> FunctionVerdict | None:
    """A line no stack can show (it calls nothing traced) proved from DWARF: inlined in its proved caller's body."""
    line = chain.lines[index]
    if line.parent is None or line.parent not in proofs or line.function is None:
        return None
    parent_verdict, parent_item = proofs[line.parent]
    parent = chain.lines[line.parent].function or ""
    hosts: list[tuple[str, list[str]]] = []
    if parent_verdict.verdict == "inlined" and parent_verdict.into:
        hosts.append((parent_verdict.into, [parent, line.function]))
    if parent_verdict.verdict in ("observed", "tail call"):
        hosts.append((parent, [line.function]))
    for host, names in hosts:
        tree = evidence.inline_trees.get(host)
        walked = tree.find_path(names) if tree is not None else None
        if walked:
            return FunctionVerdict(line.function, "inlined", f"no stack can show it (it calls nothing probed); DWARF: "
                                   f"inlined in {host}'s body ({' > '.join([host, *walked])})", into=host)
    return None


def _indirect(chain: ResolvedChain, line: TreeLine, evidence: Evidence) -> dict | None:
    if not line.via:
        return None
    claim = chain.indirect[line.via]
    claimed = f"{claim.ops}.{claim.member} = {line.function}"
    record = evidence.ops.get(f"{claim.ops}.{claim.member}")
    result = {"call": line.via, "claim": claimed, "why": claim.why}
    if record is None:
        return result | {"status": "not checked", "evidence": "vmlinux was not at hand when this folder was verified"}
    target = record.get("target")
    if record.get("status") == "resolved" and target and base_name(target) == line.function:
        return result | {"status": "resolved", "evidence": record.get("evidence", "")}
    if record.get("status") == "resolved":
        return result | {"status": "differs", "evidence": f"{claim.ops}.{claim.member} is {target}: "
                                                          f"{record.get('evidence', '')}"}
    return result | {"status": str(record.get("status")), "evidence": record.get("evidence", "")}


def verify_chain(chain: ResolvedChain, evidence: Evidence, expect: str = "hold") -> ChainResult:
    """Every line of the chain's tree gets a verdict, each child checked under its own parent."""
    callers = _callers(evidence.histograms.values())
    leaves: list[LeafResult] = []
    proofs: dict[int, _PathProof] = {}  # line -> the path proof with the most hits for it
    probed: list[int] = []  # leaf lines with a stack histogram
    for index in chain.leaf_lines():
        leaf, proof = _verify_path(chain, chain.path_to(index), evidence, callers)
        leaves.append(leaf)
        if leaf.leaf in evidence.histograms:
            probed.append(index)
        for position, line in enumerate(proof.lines):
            if line not in proofs or proof.hits[position] > proofs[line].hits[proofs[line].lines.index(line)]:
                proofs[line] = proof
    lines: list[LineResult] = []
    proved: dict[int, tuple[FunctionVerdict, Found]] = {}
    for index, line in enumerate(chain.lines):
        if line.function is None:
            lines.append(LineResult(line.number, line.depth, line.text, None, "annotation",
                                    "not a function: annotation", "a note in the documented tree, not a call", None))
            continue
        proof = proofs.get(index)
        hits, tasks, verdict = 0, Counter(), None
        if proof is not None:
            position = proof.lines.index(index)
            hits, tasks = proof.hits[position], proof.by_task[position]
            callee = chain.lines[proof.lines[position + 1]].function if position + 1 < len(proof.lines) else None
            if hits:
                verdict = _proved(line.function, proof.items[position], callee)
                proved[index] = (verdict, proof.items[position])
        if verdict is None and (verdict := _static_inline(chain, index, proved, evidence)):
            proved[index] = (verdict, None)
        if verdict is None and line.function in chain.gone:
            verdict = FunctionVerdict(line.function, "gone", chain.gone[line.function])
        verdict = verdict or _why_not(line.function, evidence)
        lines.append(LineResult(line.number, line.depth, line.text, line.function, verdict.verdict, verdict.label(),
                                verdict.evidence, hits if hits else None, dict(tasks), verdict.into,
                                _indirect(chain, line, evidence)))
    notes = list(chain.notes)
    if evidence.lost_events:
        notes.append(f"the trace lost {evidence.lost_events} events: hit counts are lower bounds, and a "
                     "missing function may have been lost rather than absent")
    unchecked = [r.indirect["call"] for r in lines if r.indirect and r.indirect["status"] == "not checked"]
    if unchecked:
        notes.append(f"indirect calls not checked (no vmlinux): {', '.join(unchecked)}")
    holds = all(r.verdict in PROVEN for r in lines if r.function) and all(
        r.indirect["status"] in ("resolved", "not checked") for r in lines if r.indirect)
    # Each probed leaf ends its own copy of the path; the chain is taken as often as its least-taken leaf.
    paired = list(zip(leaves, chain.leaf_lines(), strict=True))
    hits = min((leaf.hits for leaf, index in paired if index in probed), default=0)
    # A leaf no probe could record and DWARF proved (zram_get_handle) has no stacks to show: its line says it all.
    shown = [leaf for leaf, index in paired if index in probed or lines[index].verdict not in PROVEN]
    return ChainResult(name=chain.name, documented=chain.documented, expect=expect, holds=holds,
                       hits=hits if holds else 0, leaves=shown, notes=notes, lost_events=evidence.lost_events,
                       lines=lines)
