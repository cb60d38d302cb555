"""Probes unhooked for the graph's windows (issue 24): the triggers removed are exactly the ones set up, and what
the histograms held before a window adds up with what they counted after it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from kernlab.arch import ARM64, X86_64
from kernlab.config.lab import GraphSpec, SampleSpec
from kernlab.probes import probewindows
from kernlab.probes.kprobes import hist_setup_commands, rehook_commands, unhook_commands
from kernlab.probes.windows import REHOOK_SCRIPT, UNHOOK_SCRIPT
from kernlab.results.folder import HELD_HIST_DIR
from kernlab.verify.evidence import verify_results
from kernlab.verify.hist import merged_histogram, parse_hist
from kernlab.vm.ssh import MAX_COMMAND_BYTES
from tests.test_trees import copy_results

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RUN = FIXTURES / "results-6.1-trees"


def test_unhook_removes_the_triggers_setup_wrote_and_rehook_writes_them_again() -> None:
    # hist_unregister_trigger removes the trigger whose keys, vals, sort and size match: the same text, with "!".
    for arch in (X86_64, ARM64):
        probes = ["zs_map_object"], ["swap_readpage"], 256, arch
        setup = " ".join(hist_setup_commands(*probes))
        unhook = unhook_commands(*probes, "/tmp/held")
        rehook = " ".join(rehook_commands(*probes))
        written = re.findall(r"echo '(hist:[^']+)' > (\S+/trigger)", setup)
        removed = re.findall(r"echo '!(hist:[^']+)' >> (\S+/trigger)", " ".join(unhook))
        assert len(written) == 2 and written == removed == re.findall(r"echo '(hist:[^']+)' >> (\S+/trigger)", rehook)
        # each histogram is copied before its trigger goes (the removal frees the table)
        command = next(c for c in unhook if "zs_map_object/hist" in c)
        assert command.index("> /tmp/held/zs_map_object.hist") < command.index("echo '!hist:")
        assert unhook[0] == "mkdir -p /tmp/held"


def test_the_held_histograms_and_the_later_ones_add_up(tmp_path: Path) -> None:
    """The run's histograms held as if before a graph window, and counted again after it: every line's hits
    double and no verdict changes."""
    alone = verify_results(copy_results(RUN, tmp_path / "alone"))
    folder = copy_results(RUN, tmp_path / "held")
    for hist in sorted((folder / "trace/hist").glob("*.hist")):
        (folder / HELD_HIST_DIR / "shared-hog").mkdir(parents=True, exist_ok=True)
        shutil.copy(hist, folder / HELD_HIST_DIR / "shared-hog" / hist.name)
    held = verify_results(folder)
    assert [(c.holds, c.hits) for c in held] == [(c.holds, 2 * c.hits) for c in alone]
    pairs = [(a, b) for c, d in zip(alone, held, strict=True) for a, b in zip(c.lines, d.lines, strict=True)]
    assert [b.label for _, b in pairs] == [a.label for a, _ in pairs]
    counted = [(a.hits, b.hits) for a, b in pairs if a.hits]
    assert counted and all(b == 2 * a for a, b in counted), counted


def test_merged_stacks_and_return_sites_keep_their_keys() -> None:
    stacks = parse_hist("zcomp_compress", (RUN / "trace/hist/zcomp_compress.hist").read_text())
    callers = parse_hist("swap_readpage", (RUN / "trace/hist/swap_readpage.hist").read_text())
    for histogram in (stacks, callers):
        merged = merged_histogram([histogram, histogram])
        assert (merged.hits, merged.entries, merged.dropped) == (2 * histogram.hits, histogram.entries,
                                                                 2 * histogram.dropped)
        assert merged.callers == {site: 2 * hits for site, hits in histogram.callers.items()}
        assert [(c.stack, c.hits) for c in merged.stacks] == [(c.stack, 2 * c.hits) for c in histogram.stacks]


def test_the_window_script_fits_in_one_guest_command() -> None:
    """The unhook and rehook commands live in guest files the window script sources: inline, a 6.1 run's 20
    probes made a 9,736-byte script that dropbear refused, dropping the connection mid-workload."""
    script = probewindows.window_script(SampleSpec(), (GraphSpec(enabled=True), ["shrink_folio_list", "do_swap_page"]),
                                        [f". {UNHOOK_SCRIPT}"], [f". {REHOOK_SCRIPT}"])
    assert len(script.encode()) < MAX_COMMAND_BYTES / 2
