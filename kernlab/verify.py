"""Chain verification over a results folder, no VM: load its evidence, verify the lab's chains, write chains.json."""

from __future__ import annotations

import json
from pathlib import Path

from kernlab import chains, trace
from kernlab.dwarf import InlineResolver, SymbolTable
from kernlab.errors import KernlabError
from kernlab.lab import parse_lab
from kernlab.trace import Frame

REPO = Path(__file__).resolve().parent.parent
CHAIN_DIR = REPO / "labs" / "chains"


class RecordedInlines:
    """Inline records resolved at collection time (trace/inline.json), topped up from vmlinux when it is at hand."""

    def __init__(self, path: Path, symbols: SymbolTable, vmlinux: Path | None) -> None:
        self.path = path
        self.symbols = symbols
        self.table: dict[str, list[str]] = json.loads(path.read_text()) if path.exists() else {}
        self.resolver = InlineResolver(vmlinux, symbols) if vmlinux and vmlinux.exists() else None

    def prime(self, frames: list[Frame]) -> None:
        missing = [f for f in frames if str(f) not in self.table and self.symbols.return_site(f) is not None]
        if missing and self.resolver:
            self.resolver.prime(missing)
            for frame in missing:
                self.table[str(frame)] = self.resolver.inlined_at(frame)
            self.path.write_text(json.dumps(self.table, indent=1, sort_keys=True) + "\n")

    def __call__(self, frame: Frame) -> list[str]:
        return self.table.get(str(frame), [])


def load_evidence(results: Path) -> tuple[chains.Evidence, str]:
    manifest = json.loads((results / "manifest.json").read_text())
    version = manifest["kernel"]["version"]
    histograms = {}
    for path in sorted((results / "trace" / "hist").glob("*.hist")):
        histograms[path.stem] = trace.parse_hist(path.stem, path.read_text())
    if not histograms:
        raise KernlabError(f"{results}: no trace/hist/*.hist: the lab ran without chains or tracing")
    symbols = SymbolTable.parse((results / "System.map").read_text())
    vmlinux = Path(manifest["kernel"]["build_dir"]) / "vmlinux"
    inlines = RecordedInlines(results / "trace" / "inline.json", symbols, vmlinux)
    inlines.prime([frame for h in histograms.values() for count in h.stacks for frame in count.stack])
    available = (results / "trace" / "available_filter_functions").read_text()
    lost = sum(h.dropped for h in histograms.values())
    evidence = chains.Evidence(
        histograms=histograms, traceable=set(trace.traceable_symbols(available)),
        has_symbol=symbols.has_function, is_noinstr=symbols.is_noinstr, inlined_at=inlines, lost_events=lost)
    return evidence, version


def verify_results(results: Path) -> list[chains.ChainResult]:
    """Verify every chain the lab names against the folder's evidence; writes chains.json."""
    manifest = json.loads((results / "manifest.json").read_text())
    lab = parse_lab(manifest["lab"], str(results / "manifest.json"))
    evidence, version = load_evidence(results)
    outcome = []
    for use in lab.chains:
        resolved = chains.load_chain(CHAIN_DIR / f"{use.spec}.yaml").resolve(version)
        outcome.append(chains.verify_chain(resolved, evidence, use.expect))
    (results / "chains.json").write_text(json.dumps(
        {"kernel": version, "lost_events": evidence.lost_events, "chains": [r.as_dict() for r in outcome]},
        indent=2) + "\n")
    return outcome
