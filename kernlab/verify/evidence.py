"""A run's evidence and its verification, no VM: hist stacks, System.map and vmlinux facts from a results folder,
the lab's chains verified against them (kernlab.verify.chains) and written to chains.json.

What needs vmlinux (inline records at return sites, inline trees, ops structures) is read from it once,
while it is at hand, and kept in the folder's trace/ so later verifications run offline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path

from kernlab.config import articletree, specs
from kernlab.config.lab import Lab, parse_lab
from kernlab.errors import KernlabError
from kernlab.frames import Frame, base_name, traceable_symbols
from kernlab.results.chainrecords import ChainRecord, ChainsFile
from kernlab.results.evidencerecords import GraphCapture, GraphFile, GraphNodeRecord
from kernlab.results.folder import FactTable, ResultsFolder
from kernlab.results.schema import Manifest, Summary
from kernlab.verify import chains, graph, pointers, replacements, stacks
from kernlab.verify.coverage import sampling_text
from kernlab.verify.hist import Histogram, hidden_returns, merged_histogram, parse_hist
from kernlab.verify.instead import recorded_paths
from kernlab.verify.witness import EdgeShare, graph_witness
from kernlab.vmlinux import facts as vmlinux
from kernlab.vmlinux.dwarf import InlineResolver, SymbolTable

WHY_NOT_COLLECTED = "the run stopped before it was collected, or the folder was cut short"


def recorded(folder: ResultsFolder, table_name: FactTable, wanted: Iterable[str],
             compute: Callable[[list[str]], dict] | None) -> dict:
    """A table of facts about vmlinux kept in the results folder, topped up from vmlinux when at hand."""
    table = folder.fact_table(table_name)
    missing = sorted(set(wanted) - table.keys())
    if missing and compute is not None:
        table.update(compute(missing))
        folder.write_fact_table(table_name, table)
    return table


def _inline_records(symbols: SymbolTable, binary: Path | None) -> Callable[[list[str]], dict] | None:
    if binary is None:
        return None
    resolver = InlineResolver(binary, symbols)

    def compute(sites: list[str]) -> dict:
        frames = [Frame.parse(site) for site in sites]
        resolver.prime(frames)
        return {str(frame): resolver.inlined_at(frame) for frame in frames}
    return compute


def _inline_trees(binary: Path | None) -> Callable[[list[str]], dict] | None:
    if binary is None:
        return None

    def compute(functions: list[str]) -> dict:
        trees = vmlinux.inline_trees(binary, functions)
        return {name: trees[name].to_dict() if name in trees else None for name in functions}
    return compute


def _ops(binary: Path | None, claims: dict[str, articletree.IndirectClaim]) -> Callable[[list[str]], dict] | None:
    if binary is None:
        return None

    def compute(keys: list[str]) -> dict:
        found = {}
        for key in keys:
            claim = claims[key]
            found[key] = asdict(vmlinux.read_ops_member(binary, claim.ops, claim.member, claim.file or None))
        return found
    return compute


def _binary(manifest: Manifest) -> Path | None:
    assert manifest.kernel is not None
    binary = Path(manifest.kernel.build_dir or "/nonexistent") / "vmlinux"
    return binary if binary.exists() else None


def pointer_setters(folder: ResultsFolder, binary: Path | None) -> pointers.SettersFacts:
    """Which initialised variables set a member to a function: recorded in trace/pointers.json, topped up from
    vmlinux while it is at hand."""
    def compute(keys: list[str]) -> dict:
        assert binary is not None
        return {key: [asdict(found) for found in vmlinux.ops_setting(binary, *key.split("=", 1))] for key in keys}

    def facts(pairs: list[tuple[str, str]]) -> dict[str, list[dict]]:
        keys = [pointers.fact_key(member, target) for member, target in pairs]
        return recorded(folder, "pointers", keys, compute if binary is not None else None) if keys else {}
    return facts


def lab_chains(lab: Lab, version: str, loaded: list[specs.ChainSpec] | None = None,
               ) -> list[tuple[specs.ResolvedChain, specs.Expected]]:
    """The lab's chains resolved for a kernel version, with what the lab expects of each there (a `hold` on a
    kernel that no longer has a documented function is not-hold, the spec's commit saying why). `loaded`: the
    lab's specs when the caller has read them already."""
    uses = []
    for use, spec in zip(lab.chains, loaded or lab.chain_specs(f"lab {lab.name}"), strict=True):
        chain = spec.resolve(version, lab.arch.name)
        uses.append((chain, chain.expected(use.expectation(version))))
    return uses


def run_manifest(folder: ResultsFolder) -> Manifest:
    """A finished or stopped run's manifest, with what verification needs; one-line errors otherwise."""
    manifest = folder.manifest()
    where = folder.file("manifest.json")
    if not manifest.lab:
        raise KernlabError(f"{where}: no lab: not a kernlab run manifest")
    if manifest.kernel is None:
        raise KernlabError(f"{where}: no kernel (the run stopped before its kernel was built)")
    if not manifest.kernel.version:
        raise KernlabError(f"{where}: kernel.version: missing")
    return manifest


def _histogram(folder: ResultsFolder, path: Path) -> Histogram:
    # A damaged file fails verification, naming itself, rather than giving another verdict (issue 25).
    return parse_hist(path.stem, folder.text(str(path.relative_to(folder.path)), WHY_NOT_COLLECTED), str(path))


def load_evidence(results: Path | ResultsFolder, resolved: list[specs.ResolvedChain],
                  manifest: Manifest | None = None) -> stacks.Evidence:
    folder = results if isinstance(results, ResultsFolder) else ResultsFolder.open(results)
    manifest = manifest or run_manifest(folder)
    histograms = {}
    for path in folder.hist_paths():
        # Counts from before each graph window, when the probes were unhooked for it, come first.
        parts = [_histogram(folder, held) for held in folder.held_hist_paths(path.stem)] + [_histogram(folder, path)]
        histograms[path.stem] = parts[0] if len(parts) == 1 else merged_histogram(parts)
    if not histograms:
        raise KernlabError(f"{folder.path}: no trace/hist/*.hist: the lab ran without chains or tracing")
    symbols = SymbolTable.parse(folder.text("System.map", WHY_NOT_COLLECTED))
    assert manifest.kernel is not None  # run_manifest refuses a manifest without one
    binary = _binary(manifest)
    frames = {str(frame) for h in histograms.values() for count in h.stacks for frame in count.stack
              if symbols.return_site(frame) is not None}
    inline_table = recorded(folder, "inline", frames, _inline_records(symbols, binary))

    def inlined_at(frame: Frame) -> list[str]:
        return inline_table.get(str(frame), [])

    functions = {f for chain in resolved for f in chain.functions()}
    # Static inline trees: of every documented function with a body, and of every frame that a documented
    # function was inlined into on these stacks (a line no stack can show is proved inside them).
    hosts = {Frame.parse(site).name for site, names in inline_table.items() if functions & set(names)}
    wanted = sorted(name for name in functions | hosts if symbols.has_function(name))
    trees = recorded(folder, "inline_trees", wanted, _inline_trees(binary))
    claims = {f"{claim.ops}.{claim.member}": claim for chain in resolved for claim in chain.indirect.values()}
    ops = recorded(folder, "ops", claims, _ops(binary, claims)) if claims else {}
    available = folder.text("trace/available_filter_functions", WHY_NOT_COLLECTED)
    return stacks.Evidence(
        histograms=histograms, traceable=set(traceable_symbols(available)),
        has_symbol=symbols.has_function, is_noinstr=symbols.is_noinstr, inlined_at=inlined_at,
        lost_events=sum(h.dropped for h in histograms.values()),
        inline_trees={name: vmlinux.InlineNode.from_dict(tree) for name, tree in trees.items() if tree},
        ops={key: value for key, value in ops.items() if key in claims},
        windowed=(probes := folder.probes()) is not None and probes.armed == "windows")


def verify_results(results: Path | ResultsFolder, out: Path | None = None) -> list[ChainRecord]:
    """Verify every chain the lab names against the folder's evidence; writes chains.json (and graph.json) into
    the folder, or into `out` (a re-verification, which leaves the run's own verdicts as recorded), and returns
    its chains. Nothing is written when verification fails."""
    folder = results if isinstance(results, ResultsFolder) else ResultsFolder.open(results)
    target = ResultsFolder(out) if out is not None else folder
    manifest = run_manifest(folder)
    assert manifest.kernel is not None and manifest.kernel.version
    lab = parse_lab(manifest.lab, f"{folder.file('manifest.json')}: lab")
    version = manifest.kernel.version
    loaded = lab.chain_specs(f"lab {lab.name}")  # read once: the pointers below resolve from the same specs
    uses = lab_chains(lab, version, loaded)
    evidence = load_evidence(folder, [chain for chain, _ in uses], manifest)
    setters = pointer_setters(folder, _binary(manifest))
    resolved = [pointers.resolve(spec, chain, evidence, setters, version, lab.arch.name)
                for spec, (chain, _) in zip(loaded, uses, strict=True)]
    if any(new.functions() != old.functions() for new, (old, _) in zip(resolved, uses, strict=True)):
        evidence = load_evidence(folder, resolved, manifest)  # the facts of the functions the pointers reach
    uses = [(new, expect) for new, (_, expect) in zip(resolved, uses, strict=True)]
    outcome = [chains.verify_chain(chain, evidence, expect.want, expect.reason) for chain, expect in uses]
    capture = folder.graph_capture()
    trees = graph_trees(folder, capture) if capture else None
    stacked = {name for name, histogram in evidence.histograms.items() if histogram.stacks}
    for chain, result in zip((chain for chain, _ in uses), outcome, strict=True):
        if not result.holds:
            result.instead = recorded_paths(chain, evidence, {line.function for line in result.lines
                                                              if line.function and line.verdict == "tail call"})
            # leaves no stack reached: what the graph shows in their place below the deepest proved line
            result.instead += replacements.graph_paths(chain, result.lines, trees[0], stacked) if trees else []
    hidden = {name: count for name, histogram in evidence.histograms.items()
              if (count := hidden_returns(histogram))}
    written = ChainsFile.model_validate({"kernel": version, "lost_events": evidence.lost_events,
                                         "chains": [r.model_dump() for r in outcome], "graph_hidden_returns": hidden,
                                         "sampling": sampling(folder)})
    if capture and trees:
        merged = graph_file(trees, capture)
        target.write(merged)
        share = edge_share(evidence.histograms)
        for chain in written.chains:
            add_graph_witness(chain, trees, capture.max_depth, share, merged.lost_events)
    target.write(written)
    return written.chains


def sampling(folder: ResultsFolder) -> str | None:
    """How the folder's stacks and hits were taken, against the run's own swap counters when it has them."""
    probes = folder.probes()
    if probes is None:
        return None
    figures = (folder.summary() or Summary()).figures()
    return sampling_text(probes, figures.get("pswpout_pages"), figures.get("pswpin_pages"))


def graph_trees(folder: ResultsFolder, capture: GraphCapture) -> tuple[dict[str, graph.Node], graph.Trace]:
    """The windows' traces parsed and merged into one tree per root, and what they lost altogether."""
    roots = [base_name(symbol) for symbol in capture.roots] + capture.roots
    total = graph.Trace([], 0, 0, 0)
    for window in capture.windows:
        if window.trace is None:
            continue
        parsed = graph.parse_trace(folder.text(window.trace, WHY_NOT_COLLECTED), roots)
        total.calls += parsed.calls
        total.truncated += parsed.truncated
        total.lost_events += parsed.lost_events + window.overruns + window.dropped
        total.other_top_level += parsed.other_top_level
    return graph.merge(total.calls), total


def _node_record(node: graph.Node, root_total_us: float) -> GraphNodeRecord:
    return GraphNodeRecord(
        name=node.name, calls=node.calls, total_us=round(node.total_us, 3), mean_us=round(node.mean_us, 3),
        p50_us=node.percentile_us(0.5), p95_us=node.percentile_us(0.95), max_us=max(node.durations_us, default=0.0),
        self_us=round(node.self_us, 3), share=round(node.total_us / root_total_us, 4) if root_total_us else 0.0,
        children=[_node_record(child, root_total_us) for child in node.children.values()])


def _walk(node: graph.Node) -> Iterator[graph.Node]:
    yield node
    for child in node.children.values():
        yield from _walk(child)


def graph_file(trees: tuple[dict[str, graph.Node], graph.Trace], capture: GraphCapture) -> GraphFile:
    roots, total = trees
    opened = [w for w in capture.windows if w.opened_s is not None and w.closed_s is not None]
    return GraphFile(trees=[_node_record(node, node.total_us) for node in roots.values()],
                     clock_step_us=graph.clock_step_us(d for root in roots.values() for node in _walk(root)
                                                       for d in node.durations_us),
                     max_depth=capture.max_depth, windows=len(opened),
                     window_seconds=round(sum(w.closed_s - w.opened_s for w in opened), 3),  # type: ignore[operator]
                     truncated_calls=total.truncated, lost_events=total.lost_events,
                     other_top_level=total.other_top_level)


def edge_share(histograms: Mapping[str, Histogram]) -> EdgeShare:
    """The share of the caller's calls (its probe's hits) that called the callee directly: the callee's hits
    whose return site (caller probe) or next frame (stack probe) lies in the caller."""
    def share(caller: str, callee: str) -> float | None:
        into, outer = histograms.get(callee), histograms.get(caller)
        if into is None or outer is None or not outer.hits:
            return None
        if into.callers:
            direct = sum(hits for site, hits in into.callers.items() if Frame.parse(site).name == caller)
        else:
            direct = sum(count.hits for count in into.stacks if len(count.stack) > 1 and count.stack[1].name == caller)
        return direct / outer.hits

    return share


def add_graph_witness(chain: ChainRecord, trees: tuple[dict[str, graph.Node], graph.Trace], max_depth: int,
                      share: EdgeShare | None = None, lost: int = 0) -> None:
    """The graph's word on each traceable edge, on the callee's line."""
    for line, witness in graph_witness(chain, trees[0], max_depth, share, lost):
        line.graph = witness
