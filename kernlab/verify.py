"""Chain verification over a results folder, no VM: load its evidence, verify the lab's chains, write chains.json.

What needs vmlinux (inline records at return sites, inline trees, ops structures) is read from it once,
while it is at hand, and kept in the folder's trace/ so later verifications run offline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

from kernlab import chains, specs, trace, vmlinux
from kernlab.cache import load_json_object, write_json_atomic
from kernlab.dwarf import InlineResolver, SymbolTable
from kernlab.errors import KernlabError
from kernlab.lab import Lab, parse_lab
from kernlab.trace import Frame


def recorded(path: Path, wanted: Iterable[str], compute: Callable[[list[str]], dict] | None) -> dict:
    """A JSON table of facts about vmlinux kept in the results folder, topped up from vmlinux when at hand."""
    table: dict = load_json_object(path) if path.exists() else {}
    missing = sorted(set(wanted) - table.keys())
    if missing and compute is not None:
        table.update(compute(missing))
        write_json_atomic(path, table)
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
    return [(specs.resolve_chain(use.spec, version), use.expect) for use in lab.chains]


def run_manifest(results: Path) -> dict:
    """A finished or stopped run's manifest, with the keys verification needs; one-line errors otherwise."""
    if not results.is_dir():
        raise KernlabError(f"{results}: no such results folder")
    manifest = load_json_object(results / "manifest.json")
    if not isinstance(manifest.get("lab"), dict):
        raise KernlabError(f"{results / 'manifest.json'}: no lab: not a kernlab run manifest")
    if not isinstance(manifest.get("kernel"), dict):
        raise KernlabError(f"{results / 'manifest.json'}: no kernel (the run stopped before its kernel was built)")
    if not manifest["kernel"].get("version"):
        raise KernlabError(f"{results / 'manifest.json'}: kernel.version: missing")
    return manifest


def _results_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise KernlabError(f"{path}: {error.strerror}: the run stopped before it was collected, or the folder "
                           "was cut short") from None


def load_evidence(results: Path, resolved: list[specs.ResolvedChain], manifest: dict | None = None) -> chains.Evidence:
    manifest = manifest or run_manifest(results)
    histograms = {}
    for path in sorted((results / "trace" / "hist").glob("*.hist")):
        histograms[path.stem] = trace.parse_hist(path.stem, _results_text(path))
    if not histograms:
        raise KernlabError(f"{results}: no trace/hist/*.hist: the lab ran without chains or tracing")
    symbols = SymbolTable.parse(_results_text(results / "System.map"))
    binary: Path | None = Path(manifest["kernel"].get("build_dir") or "/nonexistent") / "vmlinux"
    if not binary.exists():
        binary = None
    frames = {str(frame) for h in histograms.values() for count in h.stacks for frame in count.stack
              if symbols.return_site(frame) is not None}
    inline_table = recorded(results / "trace" / "inline.json", frames, _inline_records(symbols, binary))

    def inlined_at(frame: Frame) -> list[str]:
        return inline_table.get(str(frame), [])

    functions = {f for chain in resolved for f in chain.functions()}
    # Static inline trees: of every documented function with a body, and of every frame that a documented
    # function was inlined into on these stacks (a line no stack can show is proved inside them).
    hosts = {Frame.parse(site).name for site, names in inline_table.items() if functions & set(names)}
    wanted = sorted(name for name in functions | hosts if symbols.has_function(name))
    trees = recorded(results / "trace" / "inline-trees.json", wanted, _inline_trees(binary))
    claims = {f"{claim.ops}.{claim.member}": claim for chain in resolved for claim in chain.indirect.values()}
    ops = recorded(results / "trace" / "ops.json", claims, _ops(binary, claims)) if claims else {}
    available = _results_text(results / "trace" / "available_filter_functions")
    return chains.Evidence(
        histograms=histograms, traceable=set(trace.traceable_symbols(available)),
        has_symbol=symbols.has_function, is_noinstr=symbols.is_noinstr, inlined_at=inlined_at,
        lost_events=sum(h.dropped for h in histograms.values()),
        inline_trees={name: vmlinux.InlineNode.from_dict(tree) for name, tree in trees.items() if tree},
        ops={key: value for key, value in ops.items() if key in claims})


def verify_results(results: Path) -> list[chains.ChainResult]:
    """Verify every chain the lab names against the folder's evidence; writes chains.json."""
    manifest = run_manifest(results)
    lab = parse_lab(manifest["lab"], f"{results / 'manifest.json'}: lab")
    version = manifest["kernel"]["version"]
    uses = lab_chains(lab, version)
    evidence = load_evidence(results, [chain for chain, _ in uses], manifest)
    outcome = [chains.verify_chain(chain, evidence, expect) for chain, expect in uses]
    write_json_atomic(results / "chains.json", {"kernel": version, "lost_events": evidence.lost_events,
                                                "chains": [r.as_dict() for r in outcome]})
    return outcome
