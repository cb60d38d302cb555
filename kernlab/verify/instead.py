"""What the kernel does instead: when a documented chain does not hold, the most frequent recorded paths to each
of its leaves, aligned with the documented path (observed, inlined, renamed, gone, and what is new in between)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Set
from difflib import SequenceMatcher

from kernlab.config.specs import ResolvedChain
from kernlab.results.chainrecords import AlignedStepRecord, RecordedPathRecord
from kernlab.verify.stacks import Evidence, PathEntry, expand, return_sites

TOP_PATHS = 2  # per leaf: the most frequent recorded paths, enough to show the main path and its sibling
CONTEXT = 12  # recorded entries kept above the leaf when no documented function is on the path at all


def aligned_step(documented: str | None, recorded: str | None, status: str, why: str = "") -> AlignedStepRecord:
    """One row of an alignment: a documented function (None: one the documentation does not have), the recorded
    one (None: the documented function is not on the path), or both when they match; status: observed, inlined
    into X, renamed, new, new (inlined into X), gone, not on this path, tail call."""
    return AlignedStepRecord(documented=documented, recorded=recorded, status=status, why=why)


def _cut(entries: list[PathEntry], documented: set[str]) -> list[PathEntry]:
    """From the outermost documented function on the path down to the leaf (what the chain is about)."""
    for index, entry in enumerate(entries):
        if entry.name in documented:
            return entries[index:]
    return entries[-CONTEXT:]


def _documented_name(function: str, chain: ResolvedChain) -> str:
    """The name the documentation uses for this kernel's function (a variant may have renamed it)."""
    return next((old for old, new in chain.renamed.items() if new == function), function)


def _absent(function: str, chain: ResolvedChain, evidence: Evidence, tail_calls: Set[str],
            before: PathEntry | None, sites: dict[str, set[str]], inlined: Set[str]) -> AlignedStepRecord:
    documented = _documented_name(function, chain)
    if function in tail_calls:
        return aligned_step(documented, None, "tail call", "never a frame: it jumps to its callee (proved above)")
    # Its calls return into the frame just above this gap: it was entered there and jumped on (6.12:
    # __swap_writepage's calls return to swap_writepage+0x1e4, whose next frame is swap_writepage_bdev_sync).
    if before is not None and before.frame is not None and before.inlined_into is None \
            and str(before.frame) in sites.get(function, set()):
        return aligned_step(documented, None, "tail call", f"never a frame: its calls return to {before.frame}")
    if function in chain.gone:
        return aligned_step(documented, None, "gone", chain.gone[function].evidence)
    # No symbol, but inlined on other recorded paths (5.15: do_swap_page's SWP_SYNCHRONOUS_IO branch calls
    # swap_readpage itself, past swapin_readahead and the swap_vma_readahead inlined in it).
    if function in inlined:
        return aligned_step(documented, None, "not on this path", "inlined on other recorded paths, not on this one")
    if not evidence.has_symbol(function) and function not in evidence.traceable:
        return aligned_step(documented, None, "gone", "no such function in this kernel")
    return aligned_step(documented, None, "not on this path", "this kernel has it, but these stacks do not pass it")


def _matched(function: str, entry: PathEntry, chain: ResolvedChain) -> AlignedStepRecord:
    documented = _documented_name(function, chain)
    where = f"inlined into {entry.inlined_into}" if entry.inlined_into else "observed"
    if documented != function:
        return aligned_step(documented, function, "renamed", where)
    return aligned_step(documented, function, where)


def align(documented: list[str], entries: list[PathEntry], chain: ResolvedChain, evidence: Evidence,
          tail_calls: Set[str], sites: dict[str, set[str]],
          inlined: Set[str] = frozenset()) -> tuple[AlignedStepRecord, ...]:
    """The documented path (this kernel's names) against one recorded path, outermost first.
    sites: function -> the return sites its calls return to (kernlab.verify.stacks.return_sites); inlined: the functions
    seen inlined on any recorded path."""
    recorded = [entry.name for entry in entries]
    steps: list[AlignedStepRecord] = []
    for op, d1, d2, r1, r2 in SequenceMatcher(None, documented, recorded, autojunk=False).get_opcodes():
        if op == "equal":
            steps += [_matched(documented[d], entries[r], chain) for d, r in zip(range(d1, d2), range(r1, r2),
                                                                                 strict=True)]
            continue
        before = entries[r1 - 1] if r1 else None
        steps += [_absent(documented[d], chain, evidence, tail_calls, before, sites, inlined) for d in range(d1, d2)]
        steps += [aligned_step(None, entries[r].name, "new" if entries[r].inlined_into is None
                              else f"new (inlined into {entries[r].inlined_into})") for r in range(r1, r2)]
    return tuple(steps)


def recorded_paths(chain: ResolvedChain, evidence: Evidence, tail_calls: Set[str] = frozenset(),
                   top: int = TOP_PATHS) -> list[RecordedPathRecord]:
    """Per leaf with recorded stacks: the `top` recorded paths (from the chain's first function down) that keep
    most of the documented path, then the most frequent, each aligned with the documented path to that leaf.
    tail_calls: documented functions the verifier proved to be tail calls (never a frame, yet taken).

    (On 6.12 zs_map_object is reached from swap-out too; for a swap-in chain that path shares only the leaf.)
    """
    paths: list[RecordedPathRecord] = []
    sites = return_sites(evidence.histograms.values())
    for index in chain.leaf_lines():
        documented = [chain.lines[i].function or "" for i in chain.path_to(index)]
        histogram = evidence.histograms.get(documented[-1])
        if histogram is None or not histogram.stacks:
            continue
        counted: Counter[tuple[tuple[str, str | None], ...]] = Counter()
        shown: dict[tuple[tuple[str, str | None], ...], list[PathEntry]] = {}
        for count in histogram.stacks:
            entries = _cut(expand(list(reversed(count.stack)), evidence.inlined_at), set(documented))
            # Two stacks that differ only in return offsets are one path (aligned on its most frequent stack).
            key = tuple((e.name, e.inlined_into) for e in entries)
            counted[key] += count.hits
            shown.setdefault(key, entries)
        total = sum(counted.values())
        inlined = {name for key in counted for name, into in key if into is not None}
        aligned = [(align(documented, shown[key], chain, evidence, tail_calls, sites, inlined), hits)
                   for key, hits in counted.items()]
        aligned.sort(key=lambda pair: (-sum(step.documented is not None and step.recorded is not None
                                            for step in pair[0]), -pair[1]))
        paths += [RecordedPathRecord(leaf=documented[-1], hits=hits, share=round(hits / total, 4) if total else 0.0,
                                     steps=list(steps)) for steps, hits in aligned[:top]]
    return paths
