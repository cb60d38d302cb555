"""Call-chain specs and the verifier: for each documented chain, does the traced kernel take it, function by function?

Evidence is a stack histogram per probed function (kernlab.trace),
the set of functions ftrace can trace (available_filter_functions), vmlinux's
symbols, and an inline resolver over its DWARF (kernlab.dwarf). No I/O here
beyond reading chain spec files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kernlab.errors import KernlabError
from kernlab.kconfig import Request
from kernlab.trace import Frame, Histogram, task_kind


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kernel: str | None = None  # version guard, e.g. ">= 6.0"
    arch: str | None = None
    rename: dict[str, str] = Field(default_factory=dict)


class ChainSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    documented: str
    source: str
    path: list[str] = Field(min_length=1)
    leaves: list[str] = Field(min_length=1)
    absent: list[str] = Field(default_factory=list)
    variants: list[Variant] = Field(default_factory=list)

    def resolve(self, kernel_version: str, arch: str = "x86_64") -> ResolvedChain:
        rename: dict[str, str] = {}
        notes = []
        for variant in self.variants:
            if variant.arch and variant.arch != arch:
                continue
            if variant.kernel and not Request("X", "y", self.name, variant.kernel).applies_to(kernel_version):
                continue
            rename.update(variant.rename)
            notes += [f"{old} is {new} on {variant.arch or ''}{' ' if variant.arch and variant.kernel else ''}"
                      f"{'linux ' + variant.kernel if variant.kernel else ''}" for old, new in variant.rename.items()]
        return ResolvedChain(
            name=self.name, documented=self.documented, path=[rename.get(f, f) for f in self.path],
            leaves=[rename.get(f, f) for f in self.leaves], absent=[rename.get(f, f) for f in self.absent],
            renamed=rename, notes=notes)


@dataclass(frozen=True)
class ResolvedChain:
    name: str
    documented: str
    path: list[str]
    leaves: list[str]
    absent: list[str]
    renamed: dict[str, str]
    notes: list[str]

    def functions(self) -> list[str]:
        return self.path + self.leaves


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
        key = ".".join(str(p) for p in first["loc"])
        raise KernlabError(f"{path}: {key}: {first['msg']}") from None


Verdict = Literal["observed", "inlined", "tail call", "not traceable", "missing"]


@dataclass
class FunctionVerdict:
    function: str
    verdict: Verdict
    evidence: str
    into: str | None = None  # for inlined: the frame it was inlined into

    def label(self) -> str:
        return f"inlined into {self.into}" if self.verdict == "inlined" else self.verdict


@dataclass
class Evidence:
    """What the verifier knows about the traced kernel."""

    histograms: dict[str, Histogram]  # base name of the probed function -> its stack histogram
    traceable: set[str]  # base names from available_filter_functions
    has_symbol: Callable[[str], bool]  # System.map has an out-of-line copy
    is_noinstr: Callable[[str], bool]
    inlined_at: Callable[[Frame], list[str]]  # frame -> names inlined at its return site, outermost first
    lost_events: int = 0


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
class ChainResult:
    name: str
    documented: str
    expect: str
    holds: bool
    hits: int
    leaves: list[LeafResult]
    notes: list[str]
    lost_events: int

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


def _match(chain: list[str], entries: list[PathEntry], callers: dict[str, set[str]]) -> list[PathEntry | str | None]:
    """Greedy in-order match of chain functions against the path; tail calls are proved from return sites.

    Returns per chain function its PathEntry, the string "tail call", or None.
    """
    found: list[PathEntry | str | None] = []
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
        # A tail call leaves no frame: f jumps to g, so g returns where f would have.
        # Proved when f's own calls return to the exact call instruction that, on this
        # stack, leads straight into g's frame.
        previous = found[-1] if found else None
        callee = chain[index + 1] if index + 1 < len(chain) else None
        if isinstance(previous, PathEntry) and previous.inlined_into is None and callee is not None:
            here = entries.index(previous)
            next_frame = next((e for e in entries[here + 1:] if e.inlined_into is None), None)
            if next_frame is not None and next_frame.name == callee \
                    and str(previous.frame) in callers.get(function, set()):
                found.append("tail call")
                continue
        found.append(None)
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


def verify_leaf(chain: ResolvedChain, leaf: str, evidence: Evidence, callers: dict[str, set[str]]) -> LeafResult:
    functions = chain.path + [leaf]
    histogram = evidence.histograms.get(leaf)
    stacks = histogram.stacks if histogram else []
    best: tuple[int, list[PathEntry | str | None], list[PathEntry]] | None = None
    hits = 0
    by_task: Counter[str] = Counter()
    example: list[PathEntry] = []
    for count in stacks:
        entries = expand(list(reversed(count.stack)), evidence.inlined_at)  # outermost first
        found = _match(functions, entries, callers)
        score = sum(item is not None for item in found)
        if any(entry.name in chain.absent for entry in entries):
            score -= 1
            holds = False
        else:
            holds = all(item is not None for item in found)
        if holds:
            hits += count.hits
            by_task[task_kind(count.stack)] += count.hits
        if best is None or score > best[0] or (holds and not example):
            best = (score, found, entries)
            if holds and not example:
                example = entries
    verdicts: list[FunctionVerdict] = []
    found = best[1] if best else [None] * len(functions)
    for function, item in zip(functions, found, strict=True):
        if isinstance(item, PathEntry) and item.inlined_into is None:
            verdicts.append(FunctionVerdict(function, "observed", f"frame {item.frame}"))
        elif isinstance(item, PathEntry):
            verdicts.append(FunctionVerdict(function, "inlined", f"DWARF inline record at the return site of "
                                            f"{item.frame}", into=item.inlined_into))
        elif item == "tail call":
            verdicts.append(FunctionVerdict(function, "tail call", "its calls return to the call site that leads "
                                            f"straight into {functions[functions.index(function) + 1]} "
                                            f"({', '.join(sorted(callers.get(function, [])))}); never a frame"))
        else:
            verdicts.append(_why_not(function, evidence))
    shown = example or (best[2] if best else [])
    return LeafResult(
        leaf=leaf, holds=hits > 0, hits=hits, stacks_seen=len(stacks), by_task=dict(by_task), functions=verdicts,
        example=[entry.name if entry.inlined_into is None else f"{entry.name} (inlined into {entry.inlined_into})"
                 for entry in shown])


def verify_chain(chain: ResolvedChain, evidence: Evidence, expect: str = "hold") -> ChainResult:
    callers = _callers(evidence.histograms.values())
    leaves = [verify_leaf(chain, leaf, evidence, callers) for leaf in chain.leaves]
    notes = list(chain.notes)
    if evidence.lost_events:
        notes.append(f"the trace lost {evidence.lost_events} events: hit counts are lower bounds, and a "
                     "missing function may have been lost rather than absent")
    return ChainResult(
        # Every leaf ends its own copy of the path; the chain is taken as often as its least-taken leaf.
        name=chain.name, documented=chain.documented, expect=expect, holds=all(leaf.holds for leaf in leaves),
        hits=min(leaf.hits for leaf in leaves), leaves=leaves, notes=notes, lost_events=evidence.lost_events)
