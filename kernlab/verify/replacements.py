"""What stands where a documented leaf was: for a leaf no stack reached (the kernel no longer calls it), the
function graph's callees of the deepest line the run proved above it, matched to the leaf they replace.

A chain written from 5.15's mm/memory.c and run on Debian 6.12: do_anonymous_page (inlined into
__handle_mm_fault) no longer calls page_add_new_anon_rmap and lru_cache_add_inactive_or_unevictable; the graph
under __handle_mm_fault shows folio_add_new_anon_rmap and folio_add_lru_vma. Pure: verdicts and graph trees in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence

from kernlab.config.specs import ResolvedChain
from kernlab.results.chainrecords import LineRecord, RecordedPathRecord
from kernlab.verify.chains import PROVEN
from kernlab.verify.graph import Node
from kernlab.verify.instead import aligned_step

# The folio conversion (5.16 on) renamed page_* helpers to folio_*: the words that say which unit a function
# takes are not what it does.
UNIT_WORDS = frozenset({"page", "pages", "folio", "folios"})
MIN_SHARED_WORDS = 2  # a callee shares at least this many words with the leaf it is said to replace
SHOWN_CALLEES = 3  # when nothing matches: the host's most called callees, as what it does there


def words(name: str) -> set[str]:
    return {word for word in name.strip("_").split("_") if word and word not in UNIT_WORDS}


def _nodes(roots: Mapping[str, Node], name: str) -> Iterator[Node]:
    stack = list(roots.values())
    while stack:
        node = stack.pop()
        if node.name == name:
            yield node
        stack.extend(node.children.values())


def callees(roots: Mapping[str, Node], host: str) -> tuple[int, Counter[str]]:
    """(the host's calls in the graph, its direct callees' calls), over every place the host appears."""
    calls, below = 0, Counter[str]()
    for node in _nodes(roots, host):
        calls += node.calls
        for child in node.children.values():
            below[child.name] += child.calls
    return calls, below


def best_match(leaf: str, candidates: Counter[str]) -> str | None:
    """The callee that shares most words with the leaf (then the larger share of its words, then the most
    called); None when none shares MIN_SHARED_WORDS."""
    wanted = words(leaf)
    scored = [(len(wanted & words(name)), len(wanted & words(name)) / len(wanted | words(name)), calls, name)
              for name, calls in candidates.items() if words(name)]
    scored = [score for score in scored if score[0] >= MIN_SHARED_WORDS]
    return max(scored)[3] if scored else None


def _host(line: LineRecord) -> str | None:
    """Where a proved line's calls appear in a graph: its own node, or the node of the function it is inlined in."""
    if line.verdict == "observed":
        return line.function
    return line.into if line.verdict == "inlined" else None


def graph_paths(chain: ResolvedChain, lines: Sequence[LineRecord], roots: Mapping[str, Node],
                stacked: set[str]) -> list[RecordedPathRecord]:
    """Per leaf line with no stacks of its own (`stacked`: the functions that have) and no proof: the documented
    path down to its deepest proved line, then the callee the graph shows there in the leaf's place."""
    paths: list[RecordedPathRecord] = []
    taken: set[str] = set()
    documented = {line.function for line in chain.lines if line.function}
    for index in chain.leaf_lines():
        leaf = lines[index]
        if leaf.function is None or leaf.function in stacked or leaf.verdict in PROVEN:
            continue
        path = chain.path_to(index)
        proved = [at for at in path[:-1] if lines[at].verdict in PROVEN and _host(lines[at])]
        if not proved:
            continue
        host = _host(lines[proved[-1]]) or ""
        calls, below = callees(roots, host)
        candidates = Counter({name: n for name, n in below.items() if name not in documented | taken})
        if not calls or not candidates:
            continue
        steps = [aligned_step(lines[at].function, lines[at].function, lines[at].label) if lines[at].verdict in PROVEN
                 else aligned_step(lines[at].function, None, lines[at].label, lines[at].evidence) for at in path[:-1]]
        match = best_match(leaf.function, candidates)
        if match is None:
            steps.append(aligned_step(leaf.function, None, leaf.label, leaf.evidence))
            steps += [aligned_step(None, name, "new") for name, _ in candidates.most_common(SHOWN_CALLEES)]
            hits = sum(n for _, n in candidates.most_common(SHOWN_CALLEES))
        else:
            taken.add(match)
            steps.append(aligned_step(leaf.function, match, "in its place",
                                     f"{host} calls {match}, which shares the words "
                                     f"{', '.join(sorted(words(leaf.function) & words(match)))}"))
            hits = candidates[match]
        paths.append(RecordedPathRecord(leaf=leaf.function, hits=hits, share=round(hits / calls, 4), steps=steps,
                                        source="graph", under=host))
    return paths
