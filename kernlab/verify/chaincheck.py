"""`inv chains.check`: chain spec files parsed without a kernel and, given a recorded run or a built kernel (a lab's,
never booted), every name in them looked up in that kernel: traceable, a symbol ftrace cannot hook, noinstr, gone
(the spec's own commit), inlined into an ancestor line (its DWARF inline tree), or no such function, with the
nearest names the kernel has."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kernlab.config import specs
from kernlab.errors import KernlabError
from kernlab.frames import Frame, traceable_symbols
from kernlab.results.folder import ResultsFolder
from kernlab.vmlinux import facts as vmlinux
from kernlab.vmlinux import ftracesites
from kernlab.vmlinux.dwarf import SymbolTable

SUGGESTIONS = 3
# difflib's ratio: shrink_page_list against shrink_folio_list is 0.79; unrelated names of similar length stay
# under 0.6.
CLOSE_ENOUGH = 0.6


@dataclass(frozen=True)
class NameCheck:
    """One function line of a spec, as this kernel has it."""

    line: int  # the spec's tree line (or position in path + leaves)
    documented: str  # as the spec writes it
    function: str  # after the spec's renames for this kernel
    status: str  # traceable | not traceable | noinstr | gone | inlined | no such function
    detail: str = ""


@dataclass(frozen=True)
class KernelNames:
    """What a recorded run says about its kernel's names."""

    version: str
    arch: str
    symbols: SymbolTable
    traceable: Mapping[str, str]  # base name -> the symbol ftrace hooks (zram_bvec_rw -> zram_bvec_rw.isra.0)
    inline_tree: Callable[[str], vmlinux.InlineNode | None]  # what gcc inlined into an out-of-line function
    # function -> the out-of-line functions whose recorded return sites have it inlined (trace/inline.json)
    inlined_at_sites: Mapping[str, list[str]]


def parse_specs(paths: list[Path]) -> list[specs.ChainSpec]:
    """Every file parsed (tree included); the first that fails is the one-line error."""
    return [specs.load_chain(path) for path in paths]


def kernel_names(results: Path) -> KernelNames:
    """The recorded run's System.map, available_filter_functions and inline trees (the recorded ones, then the
    build's vmlinux when it is still there)."""
    folder = ResultsFolder.open(results)
    manifest = folder.manifest()
    if manifest.kernel is None or not manifest.kernel.version:
        raise KernlabError(f"{folder.file('manifest.json')}: no kernel version: not a finished run")
    build = Path(manifest.kernel.build_dir or "/nonexistent")
    # The build's own map while it is there: a recorded fixture keeps only the symbols its chains need.
    system_map = (build / "System.map").read_text() if (build / "System.map").is_file() else \
        folder.text("System.map", "the run stopped before it was collected")
    symbols = SymbolTable.parse(system_map)
    available = folder.text("trace/available_filter_functions", "the run stopped before it was collected")
    binary = build / "vmlinux"
    trees = {name: vmlinux.InlineNode.from_dict(tree) if tree else None
             for name, tree in folder.fact_table("inline_trees").items()}

    def inline_tree(function: str) -> vmlinux.InlineNode | None:
        """The recorded tree, else read from the build's vmlinux while it is there (kept in memory only: a check
        writes nothing into the run's folder)."""
        if function not in trees and binary.exists():
            trees[function] = vmlinux.inline_tree(binary, function)
        return trees.get(function)

    at_sites: dict[str, list[str]] = {}
    for site, names in folder.fact_table("inline").items():
        for name in names:
            at_sites.setdefault(name, [])
            if (host := Frame.parse(site).name) not in at_sites[name]:
                at_sites[name].append(host)
    lab = manifest.lab or {}
    return KernelNames(manifest.kernel.version, str(lab.get("vm", {}).get("arch", "x86_64")), symbols,
                       traceable_symbols(available), inline_tree, at_sites)


def build_names(build_dir: Path, version: str, arch: str) -> KernelNames:
    """A built kernel that never booted: its System.map, what its mcount table lets ftrace hook
    (kernlab.vmlinux.ftracesites, as available_filter_functions would say) and its vmlinux's inline trees."""
    system_map = build_dir / "System.map"
    if not system_map.is_file() or not (build_dir / "vmlinux").is_file():
        raise KernlabError(f"{build_dir}: no System.map and vmlinux: this kernel is not built (inv kernel.build "
                           "with the same --lab and --kernel builds it)")
    symbols = SymbolTable.parse(system_map.read_text())
    traceable = traceable_symbols("\n".join(ftracesites.hookable_functions(build_dir)))
    trees: dict[str, vmlinux.InlineNode | None] = {}

    def inline_tree(function: str) -> vmlinux.InlineNode | None:
        if function not in trees:
            trees[function] = vmlinux.inline_tree(build_dir / "vmlinux", function)
        return trees[function]

    return KernelNames(version, arch, symbols, traceable, inline_tree, {})


def check_names(chain: specs.ResolvedChain, documented: Mapping[str, str], kernel: KernelNames) -> list[NameCheck]:
    """Each function line of the chain against the kernel; `documented` maps this kernel's names back to the
    spec's (its renames)."""
    checks = []
    for index, line in enumerate(chain.lines):
        if line.function is None:
            continue
        name = line.function
        spelled = documented.get(name, name)
        if name in chain.gone:
            checks.append(NameCheck(line.number, spelled, name, "gone", chain.gone[name].evidence))
        elif kernel.symbols.is_noinstr(name):
            checks.append(NameCheck(line.number, spelled, name, "noinstr", "in .noinstr.text: ftrace cannot hook it"))
        elif kernel.symbols.has_function(name):
            if name in kernel.traceable:
                checks.append(NameCheck(line.number, spelled, name, "traceable", kernel.traceable[name]))
            else:
                symbols = ", ".join(kernel.symbols.by_base[name])
                checks.append(NameCheck(line.number, spelled, name, "not traceable",
                                        f"{symbols}: not in available_filter_functions"))
        elif (host := _inlined_into(chain, index, kernel)) is not None:
            checks.append(NameCheck(line.number, spelled, name, "inlined", f"into {host} (DWARF inline tree)"))
        elif hosts := kernel.inlined_at_sites.get(name):
            checks.append(NameCheck(line.number, spelled, name, "inlined",
                                    f"into {', '.join(hosts)} (DWARF, at the run's recorded return sites)"))
        else:
            near = difflib.get_close_matches(name, list(kernel.symbols.by_base), SUGGESTIONS, CLOSE_ENOUGH)
            checks.append(NameCheck(line.number, spelled, name, "no such function",
                                    f"nearest: {', '.join(near)}" if near else "no name close to it"))
    return checks


def _inlined_into(chain: specs.ResolvedChain, index: int, kernel: KernelNames) -> str | None:
    """The nearest ancestor line with a symbol whose DWARF inline tree holds the function, if any."""
    function = chain.lines[index].function
    for at in reversed(chain.path_to(index)[:-1]):
        ancestor = chain.lines[at].function
        if ancestor is None or not kernel.symbols.has_function(ancestor):
            continue
        tree = kernel.inline_tree(ancestor)
        if tree is not None and function in tree.names():
            return ancestor
        return None  # only the nearest out-of-line ancestor can hold an inlined callee
    return None


def command(paths: list[Path], results: Path | None, say: Callable[[str], None] = print,
            built: Callable[[], tuple[KernelNames, str]] | None = None) -> None:
    """Parse every spec file; with a recorded run (or `built`: a built kernel's names and what to call it), check
    each name against its kernel and print a table a line."""
    if not paths:
        raise KernlabError("give one or more chain spec files (e.g. labs/chains/pageout.yaml)")
    if results is not None and built is not None:
        raise KernlabError("--results and --lab/--kernel both name a kernel: give one")
    parsed = parse_specs(paths)
    kernel, where = (kernel_names(results), f"the kernel of {results}") if results is not None else \
        built() if built is not None else (None, "")
    for path, spec in zip(paths, parsed, strict=True):
        tree = spec.parsed(str(path))
        shape = "tree" if spec.tree is not None else "path and leaves"
        functions = sum(line.function is not None for line in tree.lines)
        say(f"{path}: {spec.name}: {functions} functions, {len(tree.lines) - functions} annotations ({shape}): "
            "parsed")
        if kernel is None:
            for line in tree.lines:  # as kernlab read it: what a verdict will be given for
                read = line.function or (f"note: {line.text}" if line.via is None else "open: resolved from a run")
                via = f"  [{line.via}]" if line.via else ""
                say(f"    line {line.number:<3} {'  ' * line.depth}{read}{via}")
            for note in tree.notes():
                say(f"  {note}")
            continue
        chain = spec.resolve(kernel.version, kernel.arch, where=str(path))
        back = {new: old for old, new in chain.renamed.items()}
        say(f"  on linux {kernel.version} ({kernel.arch}, {where}):")
        for check in check_names(chain, back, kernel):
            name = check.function if check.documented == check.function else f"{check.documented} -> {check.function}"
            say(f"    line {check.line:<3} {name:<44} {check.status:<16} {check.detail}")
