"""The recorded stacks as the verifier reads them: what it knows about the traced kernel (Evidence), a stack
expanded with the functions inlined at each return site, the return sites of each probed function, and the
frames that stand below a function. Pure; kernlab.verify.chains, kernlab.verify.instead and kernlab.verify.pointers
build on it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from kernlab.frames import Frame, base_name
from kernlab.verify.hist import Histogram


class InlineTree(Protocol):
    """What the verifier needs of a function's DWARF inline tree (kernlab.vmlinux.facts.InlineNode)."""

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
    # "variable.member" of an initialised ops structure -> kernlab.vmlinux.facts.OpsMember as a dict
    ops: Mapping[str, dict] = field(default_factory=dict)
    windowed: bool = False  # the stacks were recorded in probe windows only (kernlab.probes.probewindows)


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


def return_sites(histograms: Iterable[Histogram]) -> dict[str, set[str]]:
    """function -> the return sites (`caller+0xOFF/0xLEN`) its calls return to, from its caller or stack probe."""
    seen: dict[str, set[str]] = {}
    for histogram in histograms:
        sites = seen.setdefault(histogram.function, set())
        sites.update(histogram.callers)
        sites.update(str(count.stack[1]) for count in histogram.stacks if len(count.stack) > 1)
    return seen


def frames_below(caller: str, evidence: Evidence) -> Counter[str]:
    """Hits of each real frame that stands right below `caller` on the recorded stacks."""
    found: Counter[str] = Counter()
    for histogram in evidence.histograms.values():
        for count in histogram.stacks:
            entries = [e for e in expand(list(reversed(count.stack)), evidence.inlined_at) if e.inlined_into is None]
            for at, entry in enumerate(entries[:-1]):
                if base_name(entry.name) == caller:
                    found[base_name(entries[at + 1].name)] += count.hits
    return found
