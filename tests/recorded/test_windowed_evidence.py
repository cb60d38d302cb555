"""Probe windows change what the evidence costs, not what it proves (issue 24): on recorded runs of 5.15.135,
6.1, 6.12 and arm64 5.15, the windowed run's verdicts, chain by chain and line by line, are those of the run
recorded with probes armed throughout; hit counts stay bracketed by the kernel's own counters."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernlab.results.chainrecords import ChainsFile
from kernlab.results.folder import ResultsFolder
from kernlab.verify.coverage import coverage, sampling_text
from kernlab.verify.evidence import verify_results
from kernlab.verify.hist import merged_histogram, parse_hist
from kernlab.verify.reverify import verdict_changes
from tests.common import FIXTURES, recorded_run

# (recorded with probes armed throughout, recorded with probe windows)
PAIRS = {
    "5.15.135": ("results-5.15.135-trees", "results-5.15.135-windows"),
    "6.1": ("results-6.1-trees", "results-6.1-windows"),
    "6.12": ("results-6.12-trees", "results-6.12-windows"),
    "arm64 5.15.135": ("results-5.15.135-arm64", "results-5.15.135-arm64-windows"),
    # probe windows with the probes unhooked for the graph's windows (unhook_commands), 2026-12-04
    "5.15.135 unhooked": ("results-5.15.135-trees", "results-5.15.135-unhooked"),
    "6.1 unhooked": ("results-6.1-trees", "results-6.1-unhooked"),
    "6.12 unhooked": ("results-6.12-trees", "results-6.12-unhooked"),
}


@pytest.mark.parametrize("kernel", list(PAIRS))
def test_windowed_verdicts_are_the_always_armed_ones(kernel: str, tmp_path: Path) -> None:
    always, windowed = (recorded_run(name, tmp_path / side) for side, name in
                        zip(("always", "windowed"), PAIRS[kernel], strict=True))
    before = verify_results(always, tmp_path / "always-verified")
    now = verify_results(windowed, tmp_path / "windowed-verified")
    assert [chain.name for chain in now] == [chain.name for chain in before]
    assert verdict_changes(ChainsFile(chains=before), now, with_hits=False) == []
    # and as the windowed run recorded them
    assert verdict_changes(ResultsFolder.open(windowed).chains(), now, with_hits=False) == []


@pytest.mark.parametrize("kernel", ["5.15.135", "6.1", "6.12", "5.15.135 unhooked", "6.1 unhooked", "6.12 unhooked"])
def test_x86_runs_were_windowed_and_say_so(kernel: str) -> None:
    folder = ResultsFolder.open(FIXTURES / PAIRS[kernel][1])
    probes = folder.probes()
    assert probes is not None and probes.armed == "windows" and probes.windows
    chains = folder.chains()
    assert chains is not None and chains.sampling == sampling_text(
        probes, folder.summary().figures()["pswpout_pages"], folder.summary().figures()["pswpin_pages"])
    assert "Nothing is scaled up to the run" in chains.sampling
    # the graph's windows paused (then unhooked) the probes: no caller hit read the graph's return trampoline
    assert chains.graph_hidden_returns == {}


@pytest.mark.parametrize("kernel", ["5.15.135", "5.15.135 unhooked"])
def test_compressions_are_bracketed_by_the_windows_pswpout(kernel: str) -> None:
    """5.15.135: one zcomp_compress per page swapped out while armed, between the counters read inside and
    outside each arming (the always-armed runs met pswpout within 1/5000); unhooked for the graph's windows,
    the histograms held before each and counted after it add up to the same."""
    folder = ResultsFolder.open(FIXTURES / PAIRS[kernel][1])
    cover = coverage(folder.probes())
    paths = folder.held_hist_paths("zcomp_compress") + [folder.path / "trace" / "hist" / "zcomp_compress.hist"]
    assert len(paths) == (3 if "unhooked" in kernel else 1)  # one copy per workload's graph window
    hits = merged_histogram([parse_hist("zcomp_compress", path.read_text()) for path in paths]).hits
    slack = 2 * folder.manifest().guest.cpus_online * cover.windows  # pages in flight across each write, per CPU
    assert cover is not None and cover.pswpout_inner - slack <= hits <= cover.pswpout + slack


def test_arm64_probes_stayed_armed_and_say_why() -> None:
    folder = ResultsFolder.open(FIXTURES / PAIRS["arm64 5.15.135"][1])
    probes = folder.probes()
    assert probes is not None and probes.armed == "always" and "KPROBES_ON_FTRACE" in (probes.armed_why or "")
    assert "every call of the run" in (folder.chains().sampling or "")
