"""The verifier: for each documented chain or tree, does the traced kernel take it, line by line?

Evidence is a stack histogram per probed function (kernlab.probes.kprobes), the set of functions ftrace can
trace (available_filter_functions), vmlinux's symbols, the inline records at each frame's return site,
the inline trees of function bodies and the initialised ops structures (kernlab.vmlinux, recorded in
the results folder). No I/O here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from kernlab.config.articletree import TreeLine
from kernlab.config.specs import ResolvedChain
from kernlab.frames import Frame, base_name, task_kind
from kernlab.results.chainrecords import ChainRecord, FunctionVerdictRecord, JoinedRecord, LeafRecord, LineRecord
from kernlab.verify.hist import HIST_STACKTRACE_DEPTH, Histogram, StackCount
from kernlab.verify.stacks import Evidence, PathEntry, expand, frames_below, return_sites

Verdict = Literal["observed", "inlined", "tail call", "not traceable", "missing", "gone", "annotation", "not taken"]
PROVEN = ("observed", "inlined", "tail call")


def verdict_label(verdict: str, into: str | None = None) -> str:
    """A verdict as a reader sees it: "inlined into zram_bvec_rw", "not in this kernel", "tail call"."""
    if verdict == "inlined":
        return f"inlined into {into}" if into else "inlined"
    return {"annotation": "not a function: annotation", "gone": "not in this kernel",
            "not taken": "branch not taken"}.get(verdict, verdict)


def _verdict(function: str, verdict: Verdict, evidence: str, into: str | None = None) -> FunctionVerdictRecord:
    return FunctionVerdictRecord(function=function, verdict=verdict, evidence=evidence, into=into)


def _line(line: TreeLine, verdict: Verdict, evidence: str, *, function: str | None = None, into: str | None = None,
          hits: int | None = None, by_task: dict[str, int] | None = None,
          indirect: dict | None = None) -> LineRecord:
    """One documented line with its verdict: hits are stacks that prove the path from the root down to it (None:
    nothing on a stack can show this line: an annotation, a static proof, a missing function)."""
    return LineRecord(number=line.number, depth=line.depth, text=line.text, function=function, verdict=verdict,
                      label=verdict_label(verdict, into), evidence=evidence, hits=hits, by_task=by_task or {},
                      into=into, indirect=indirect)


def shown_text(text: str, function: str | None) -> str:
    """A documented line as drawn: with the name this kernel uses when a variant renamed it."""
    return text if not function or function in text else f"{text}  [{function} here]"


def _pointer_not_taken(chain: ResolvedChain, index: int, evidence: Evidence) -> LineRecord:
    """A call through a pointer nothing resolved: what its caller called instead on the recorded stacks."""
    line = chain.lines[index]
    caller = chain.function_above(index)
    below = frames_below(caller, evidence).most_common(3) if caller else []
    if not below:
        return _line(line, "annotation", f"a call through {line.via} that neither the tree nor the run resolves: "
                     f"no recorded stack shows what {caller} called")
    instead = ", ".join(f"{name} ({hits:,} hits)" for name, hits in below)
    if line.via not in chain.unset_pointers:  # the image was not asked: the frame below may be its target
        return _line(line, "annotation", f"a call through {line.via} that nothing resolved (no kernel image or "
                     f"recorded facts to ask); below {caller} the recorded stacks show {instead}")
    return _line(line, "not taken", f"{caller} called {instead} on the recorded stacks, and the kernel's image sets "
                 f"{line.via.replace('->', '.').rsplit('.', 1)[-1]} to none of them in an initialised structure: "
                 "this run did not take the call")


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


def _why_not(function: str, evidence: Evidence) -> FunctionVerdictRecord:
    if not evidence.has_symbol(function) and function not in evidence.traceable:
        return _verdict(function, "missing", "no such function in this kernel's System.map "
                               "(fully inlined elsewhere or renamed) and not seen inlined on these stacks")
    if evidence.is_noinstr(function):
        return _verdict(function, "not traceable", "noinstr (in .noinstr.text): ftrace cannot hook it")
    if function not in evidence.traceable:
        return _verdict(function, "missing", "has a symbol but is not in available_filter_functions "
                               "and is not on any recorded stack")
    recorded = "the stacks recorded in the probe windows" if evidence.windowed else "the recorded stacks"
    own = evidence.histograms.get(function)
    if own is not None and own.hits:  # it ran: the run shows it elsewhere, not absent
        return _verdict(function, "missing", f"ran ({own.hits:,} hits on its own probe), but not under "
                               f"the chain's lines above it on {recorded}")
    return _verdict(function, "missing", f"traceable, but not on {recorded} in this order")


def _proved(function: str, item: Found, callee: str | None) -> FunctionVerdictRecord | None:
    if isinstance(item, PathEntry) and item.inlined_into is None:
        return _verdict(function, "observed", f"frame {item.frame}")
    if isinstance(item, PathEntry):
        return _verdict(function, "inlined", f"DWARF inline record at {item.frame}", into=item.inlined_into)
    if isinstance(item, TailCall):
        return _verdict(function, "tail call", f"never a frame: its calls return to {item.site}, the call "
                               f"that leads straight into {callee}'s frame")
    return None


def joined_note(joined: JoinedRecord) -> str:
    return (f"{joined.leaf}: {joined.hits:,} of its {joined.of:,} hits were on stacks cut at the hist's "
            f"{HIST_STACKTRACE_DEPTH}-frame depth, continued from the stacks of {joined.anchor} where their "
            "return sites agree (hits split as the anchor's continuations split)")


def _continuations(count: StackCount, histograms: Mapping[str, Histogram]) -> tuple[str, list[StackCount]] | None:
    """A cut stack continued outward from the outermost probed function F on it (not its own leaf) whose own
    recorded stacks agree with it from F out to the cut (the same return sites, at least one frame): one stack
    per such continuation, the cut stack's hits split as F's hits split among them."""
    stack = count.stack
    for at in range(len(stack) - 2, 0, -1):
        anchor = histograms.get(stack[at].name)
        if anchor is None or anchor.function == stack[0].name:
            continue
        overlap = [str(frame) for frame in stack[at + 1:]]
        agreeing = [c for c in anchor.stacks if len(c.stack) > len(overlap) + 1
                    and [str(frame) for frame in c.stack[1:len(overlap) + 1]] == overlap]
        total = sum(c.hits for c in agreeing)
        if not total:
            continue
        shares = [count.hits * c.hits // total for c in agreeing]
        shares[shares.index(max(shares))] += count.hits - sum(shares)
        return anchor.function, [StackCount(stack + c.stack[len(overlap) + 1:], share, c.truncated)
                                 for c, share in zip(agreeing, shares, strict=True) if share]
    return None


def joined_stacks(leaf: str, stacks: list[StackCount],
                  histograms: Mapping[str, Histogram]) -> tuple[list[StackCount], JoinedRecord | None]:
    """The leaf's stacks with those the hist depth cut continued (arm64: kernlab.arch.Arch.stack_skips_caller
    probes the chains' graph roots for full stacks, as anchors); uncut stacks, and cut ones no anchor agrees
    with, stay as recorded."""
    out: list[StackCount] = []
    anchors: Counter[str] = Counter()
    cut = 0
    for count in stacks:
        if count.truncated and (continued := _continuations(count, histograms)):
            anchors[continued[0]] += count.hits
            out.extend(continued[1])
        else:
            out.append(count)
        cut += count.hits if count.truncated else 0
    if not anchors:
        return out, None
    return out, JoinedRecord(leaf=leaf, anchor=", ".join(anchors), hits=sum(anchors.values()), of=cut)


@dataclass
class _PathProof:
    """For one root-to-leaf path: per position, the stacks that prove the path down to it."""

    lines: list[int]
    hits: list[int]
    by_task: list[Counter]
    items: list[Found]  # per position: the match on the first proving stack (else on the best stack)


def _verify_path(chain: ResolvedChain, lines: list[int], evidence: Evidence,
                 callers: dict[str, set[str]]) -> tuple[LeafRecord, _PathProof]:
    functions = [chain.lines[i].function or "" for i in lines]
    leaf = functions[-1]
    if leaf not in evidence.histograms and (probed := _probed_ancestor(functions, evidence)) is not None:
        # a leaf with no probe of its own (inlined everywhere: no symbol to hook) is proved where it lives: the
        # path down to its deepest probed ancestor on that ancestor's stacks, the leaf itself from DWARF
        # (_static_inline), e.g. 5.15's scan_swap_map_slots inside get_swap_pages
        return _verify_path(chain, lines[:probed + 1], evidence, callers)
    histogram = evidence.histograms.get(leaf)
    absent = _absent_prefix(functions, evidence)
    stacks, joined = joined_stacks(leaf, histogram.stacks if histogram else [], evidence.histograms)
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
                if item is None and position < absent:
                    continue  # a root this kernel does not have: the lines below it are proved on their own
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
    result = LeafRecord(
        leaf=leaf, holds=hits > 0, hits=hits, stacks_seen=len(histogram.stacks) if histogram else 0,
        by_task=dict(proof.by_task[-1]), joined=joined,
        functions=verdicts,
        example=[entry.name if entry.inlined_into is None else f"{entry.name} (inlined into {entry.inlined_into})"
                 for entry in shown])
    return result, proof


def _absent_prefix(functions: list[str], evidence: Evidence) -> int:
    """How many of the path's outermost functions this kernel does not have at all (no symbol, not traceable):
    the article's arm64 entry, do_page_fault > __do_page_fault, on x86_64. They stay missing; the lines below
    them are not, when the run shows them (5.15 x86_64: handle_mm_fault down to zs_map_object)."""
    count = 0
    while count < len(functions) - 1 and not evidence.has_symbol(functions[count]) \
            and functions[count] not in evidence.traceable and functions[count] not in evidence.histograms:
        count += 1
    return count


def _probed_ancestor(functions: list[str], evidence: Evidence) -> int | None:
    """For a leaf ftrace cannot hook: the position of its nearest ancestor that it can, when that ancestor has
    stacks of its own (kernlab.config.specs.ResolvedChain.probe_leaves put them there); else None (zram_get_handle's
    nearest, __zram_bvec_read, is proved by its other leaves' stacks)."""
    if functions[-1] in evidence.traceable:
        return None
    at = next((at for at in range(len(functions) - 2, -1, -1) if functions[at] in evidence.traceable), None)
    histogram = evidence.histograms.get(functions[at]) if at is not None else None
    return at if histogram is not None and histogram.stacks else None


def _static_inline(chain: ResolvedChain, index: int, proofs: dict[int, tuple[FunctionVerdictRecord, Found]],
                   evidence: Evidence) -> FunctionVerdictRecord | None:
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
            return _verdict(line.function, "inlined", f"no stack can show it (it calls nothing probed); DWARF: "
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


def _notes(chain: ResolvedChain, leaves: list[LeafRecord], lines: list[LineRecord], evidence: Evidence) -> list[str]:
    """The chain's own notes, then what a reader needs to weigh its verdicts: stacks the hist depth cut, events
    lost, branches not taken, indirect calls nothing checked."""
    notes = list(chain.notes)
    notes += list(dict.fromkeys(joined_note(leaf.joined) for leaf in leaves if leaf.joined))
    if evidence.lost_events:
        notes.append(f"the trace lost {evidence.lost_events} events: hit counts are lower bounds, and a "
                     "missing function may have been lost rather than absent")
    not_taken = [r.text for r in lines if r.verdict == "not taken"]
    if not_taken:
        notes.append(f"every function line is judged; branches this run did not take: {', '.join(not_taken)}")
    unchecked = [r.indirect["call"] for r in lines if r.indirect and r.indirect["status"] == "not checked"]
    if unchecked:
        notes.append(f"indirect calls not checked (no vmlinux): {', '.join(unchecked)}")
    return notes


def verify_chain(chain: ResolvedChain, evidence: Evidence, expect: str = "hold",
                 expect_reason: str = "") -> ChainRecord:
    """Every line of the chain's tree gets a verdict, each child checked under its own parent."""
    callers = return_sites(evidence.histograms.values())
    leaves: list[LeafRecord] = []
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
    lines: list[LineRecord] = []
    proved: dict[int, tuple[FunctionVerdictRecord, Found]] = {}
    for index, line in enumerate(chain.lines):
        if line.function is None and line.via:
            lines.append(_pointer_not_taken(chain, index, evidence))
            continue
        if line.function is None:
            lines.append(_line(line, "annotation", "a note in the documented tree, not a call"))
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
            verdict = _verdict(line.function, "gone", chain.gone[line.function].evidence)
        verdict = verdict or _why_not(line.function, evidence)
        lines.append(_line(line, verdict.verdict, verdict.evidence, function=line.function, into=verdict.into,
                           hits=hits or None, by_task=dict(tasks), indirect=_indirect(chain, line, evidence)))
    notes = _notes(chain, leaves, lines, evidence)
    holds = all(r.verdict in PROVEN for r in lines if r.function) and all(
        r.indirect["status"] in ("resolved", "not checked") for r in lines if r.indirect)
    # Each probed leaf ends its own copy of the path; the chain is taken as often as its least-taken leaf.
    paired = list(zip(leaves, chain.leaf_lines(), strict=True))
    hits = min((leaf.hits for leaf, index in paired if index in probed), default=0)
    # A leaf no probe could record and DWARF proved (zram_get_handle) has no stacks to show: its line says it all.
    shown = [leaf for leaf, index in paired if index in probed or lines[index].verdict not in PROVEN]
    return ChainRecord(name=chain.name, documented=chain.documented, expect=expect, holds=holds,
                       hits=hits if holds else 0, leaves=shown, notes=notes, lost_events=evidence.lost_events,
                       lines=lines, expect_reason=expect_reason,
                       ok={"hold": holds, "not-hold": not holds}.get(expect, True))
