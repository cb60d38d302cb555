"""The kprobe stack histograms in a running guest: which functions get which probe, setting them up (in probe windows
where the kernel allows it, with the function graph's windows when the lab asks), and reading them back."""

from __future__ import annotations

from pathlib import Path

from kernlab.arch import by_name
from kernlab.config.lab import Lab
from kernlab.config.specs import ResolvedChain
from kernlab.frames import base_name, traceable_symbols
from kernlab.probes import graphwindow, probewindows
from kernlab.probes.kprobes import (
    PROBE_GROUP,
    REFUSED_WHY,
    TRACEFS,
    hist_setup_commands,
    hist_teardown_commands,
    pause_commands,
    probe_event_name,
    refused_probes,
)
from kernlab.probes.windows import EvidenceWindows
from kernlab.results.evidencerecords import GraphCapture, ProbeSet
from kernlab.results.folder import ResultsFolder
from kernlab.verify.evidence import lab_chains
from kernlab.vm.session import GuestSession


def probe_set(lab: Lab, resolved_chains: list[ResolvedChain], traceable: dict[str, str]) -> ProbeSet:
    """Full stacks at each chain's leaves, and only the return address at the chain's other traceable
    functions (the cheap evidence that proves a tail call)."""
    leaves: list[str] = []
    others: list[str] = []
    for resolved in resolved_chains:
        leaves += resolved.probe_leaves(lambda name: name in traceable)
        others += resolved.functions()
    leaves += lab.tracing.extra_functions
    if lab.arch.stack_skips_caller:
        # arm64 spends 7 of the hist's 16 stack frames on kprobes' trap, so a leaf's stack stops short of the
        # fault entry; the chains' graph roots (do_swap_page: once per page, shallow) get full stacks too, from
        # which kernlab.verify.chains.joined_stacks continues the cut ones.
        leaves += graphwindow.chain_roots(resolved_chains)
    probes = ProbeSet(table_size=lab.tracing.table_size, arch=lab.arch.name)
    for name in dict.fromkeys(leaves + others):
        if name not in traceable:
            probes.not_probed[name] = "not in available_filter_functions"
        elif name in leaves:
            probes.stack.append(traceable[name])
        else:
            probes.caller.append(traceable[name])
    return probes


def setup_tracing(session: GuestSession, lab: Lab, kernel_version: str, config: Path,
                  folder: ResultsFolder) -> tuple[ProbeSet, EvidenceWindows | None]:
    """The stack histograms, armed in probe windows where the kernel allows it, and the function graph's windows
    when the lab asks for them."""
    available = session.run(f"cat {TRACEFS}/available_filter_functions", timeout=60).stdout
    folder.write_file("trace/available_filter_functions", available)
    traceable = traceable_symbols(available)
    chains = [resolved for resolved, _ in lab_chains(lab, kernel_version)]  # the specs read once
    probes = probe_set(lab, chains, traceable)
    if lab.tracing.sample:
        probes.armed_why = probewindows.windows_missing(config.read_text())
        if probes.armed_why is None:
            probes.armed, probes.every_s = "windows", lab.tracing.sample.every_s
    folder.write(probes)
    # Windowed probes are registered disarmed, so they count nothing outside a window (setup commands included).
    disarm = [probewindows.disarm_command()] if probes.armed == "windows" else []
    # One exec: each kprobe registration patches kernel text, slow enough under TCG without extra round trips.
    said = session.run(" && ".join(disarm + hist_setup_commands(probes.stack, probes.caller,
                                                                      lab.tracing.table_size, lab.arch)),
                       timeout=300, what="tracing setup").stdout
    if refused := refused_probes(said):
        probes.stack = [symbol for symbol in probes.stack if symbol not in refused]
        probes.caller = [symbol for symbol in probes.caller if symbol not in refused]
        probes.not_probed |= {base_name(symbol): REFUSED_WHY for symbol in refused}
        folder.write(probes)
    if not lab.tracing.graph.enabled:
        return probes, EvidenceWindows(session, lab, probes, None, folder) if probes.armed == "windows" else None
    spec = lab.tracing.graph
    roots = spec.roots or graphwindow.chain_roots(chains)
    symbols, not_traced = graphwindow.graph_symbols(roots, traceable)
    recorded = (graphwindow.recorded_symbols(chains, symbols, spec.functions, traceable)
                if spec.record == "chains" else None)
    capture = GraphCapture(roots=symbols, not_traced=not_traced, max_depth=spec.max_depth, window_s=spec.window_s,
                           start_pswpin=spec.start_pswpin, buffer_kb=spec.buffer_kb, recorded=recorded)
    folder.write(capture)
    if not symbols:
        return probes, EvidenceWindows(session, lab, probes, None, folder) if probes.armed == "windows" else None
    session.run(" && ".join(graphwindow.setup_commands(spec, symbols, recorded or ())), timeout=300,
                what="function graph setup")
    return probes, EvidenceWindows(session, lab, probes, capture, folder)


def collect_tracing(session: GuestSession, probes: ProbeSet, folder: ResultsFolder) -> None:
    # Paused first: reading a hist faults pages in the guest, and a probe that counts faults (first-touch's
    # __handle_mm_fault, armed throughout) would count the reads, its Totals landing after its entries (6.12,
    # 2026-12-03: entries 182,776 hits, Totals 182,778).
    pause = pause_commands(probes.stack, probes.caller, probes.table_size or 0, by_name(probes.arch))
    session.run("; ".join(pause), check=False, timeout=300)
    for symbol in probes.stack + probes.caller:
        event = f"{TRACEFS}/events/{PROBE_GROUP}/{probe_event_name(symbol)}/hist"
        folder.write_file(f"trace/hist/{base_name(symbol)}.hist", session.run(f"cat {event}", timeout=60).stdout)
    rearm = [probewindows.rearm_command()] if probes.armed == "windows" else []
    session.run("; ".join(rearm + hist_teardown_commands(probes.stack, probes.caller, probes.table_size or 0,
                                                               by_name(probes.arch))),
                check=False, timeout=300)
