"""A run's evidence and its verification, no VM: hist stacks, System.map and vmlinux facts from a results folder,
the lab's chains verified against them (kernlab.chains) and written to chains.json.

What needs vmlinux (inline records at return sites, inline trees, ops structures) is read from it once,
while it is at hand, and kept in the folder's trace/ so later verifications run offline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

from kernlab import chains, specs, trace, vmlinux
from kernlab.dwarf import InlineResolver, SymbolTable
from kernlab.errors import KernlabError
from kernlab.instead import recorded_paths
from kernlab.lab import Lab, parse_lab
from kernlab.results import ChainRecord, ChainsFile, FactTable, Manifest, ResultsFolder
from kernlab.trace import Frame

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


def _ops(binary: Path | None, claims: dict[str, specs.IndirectClaim]) -> Callable[[list[str]], dict] | None:
    if binary is None:
        return None

    def compute(keys: list[str]) -> dict:
        found = {}
        for key in keys:
            claim = claims[key]
            found[key] = asdict(vmlinux.read_ops_member(binary, claim.ops, claim.member, claim.file))
        return found
    return compute


def lab_chains(lab: Lab, version: str) -> list[tuple[specs.ResolvedChain, str]]:
    """The lab's chains resolved for a kernel version, with what the lab expects of each."""
    return [(specs.resolve_chain(use.spec, version), use.expectation(version)) for use in lab.chains]


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


def load_evidence(results: Path | ResultsFolder, resolved: list[specs.ResolvedChain],
                  manifest: Manifest | None = None) -> chains.Evidence:
    folder = results if isinstance(results, ResultsFolder) else ResultsFolder.open(results)
    manifest = manifest or run_manifest(folder)
    histograms = {}
    for path in folder.hist_paths():
        histograms[path.stem] = trace.parse_hist(path.stem, folder.text(f"trace/hist/{path.name}", WHY_NOT_COLLECTED))
    if not histograms:
        raise KernlabError(f"{folder.path}: no trace/hist/*.hist: the lab ran without chains or tracing")
    symbols = SymbolTable.parse(folder.text("System.map", WHY_NOT_COLLECTED))
    assert manifest.kernel is not None  # run_manifest refuses a manifest without one
    binary: Path | None = Path(manifest.kernel.build_dir or "/nonexistent") / "vmlinux"
    if not binary.exists():
        binary = None
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
    return chains.Evidence(
        histograms=histograms, traceable=set(trace.traceable_symbols(available)),
        has_symbol=symbols.has_function, is_noinstr=symbols.is_noinstr, inlined_at=inlined_at,
        lost_events=sum(h.dropped for h in histograms.values()),
        inline_trees={name: vmlinux.InlineNode.from_dict(tree) for name, tree in trees.items() if tree},
        ops={key: value for key, value in ops.items() if key in claims})


def verify_results(results: Path | ResultsFolder) -> list[ChainRecord]:
    """Verify every chain the lab names against the folder's evidence; writes chains.json and returns its chains."""
    folder = results if isinstance(results, ResultsFolder) else ResultsFolder.open(results)
    manifest = run_manifest(folder)
    assert manifest.kernel is not None and manifest.kernel.version
    lab = parse_lab(manifest.lab, f"{folder.file('manifest.json')}: lab")
    version = manifest.kernel.version
    uses = lab_chains(lab, version)
    evidence = load_evidence(folder, [chain for chain, _ in uses], manifest)
    outcome = [chains.verify_chain(chain, evidence, expect) for chain, expect in uses]
    for chain, result in zip((chain for chain, _ in uses), outcome, strict=True):
        if not result.holds:
            result.instead = recorded_paths(chain, evidence, {line.function for line in result.lines
                                                              if line.function and line.verdict == "tail call"})
    written = ChainsFile.model_validate({"kernel": version, "lost_events": evidence.lost_events,
                                         "chains": [r.as_dict() for r in outcome]})
    folder.write(written)
    return written.chains
