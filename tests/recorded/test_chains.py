"""Chain verification on a recorded real results folder (6.1 lab kernel, TCG), offline; its System.map's noinstr
functions and clones. (Its DWARF inline records against the real vmlinux: tests/vm/test_chains.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernlab.results.chainrecords import ChainRecord, LeafRecord
from kernlab.verify import chains
from kernlab.verify.evidence import verify_results
from kernlab.vmlinux.dwarf import SymbolTable
from tests.common import FIXTURES, recorded_run

FIXTURE = FIXTURES / "results-6.1-sizing"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A copy of the recorded folder whose vmlinux is out of reach: verification uses only what it holds."""
    return recorded_run(FIXTURE, tmp_path, folder="results")


def by_name(outcome: list[ChainRecord]) -> dict[str, ChainRecord]:
    return {result.name: result for result in outcome}


def verdicts(leaf: LeafRecord) -> dict[str, str]:
    return {function.function: chains.verdict_label(function.verdict, function.into) for function in leaf.functions}


def test_recorded_run_verifies_all_chains(results: Path) -> None:
    outcome = by_name(verify_results(results))
    summary = json.loads((results / "summary.json").read_text())
    assert set(outcome) == {"pageout", "pagein-swapcache", "pagein-skip-swapcache", "wrong-read-under-writepage"}

    pageout = outcome["pageout"]
    assert pageout.holds and pageout.ok
    compress, malloc = pageout.leaves
    assert (compress.leaf, malloc.leaf) == ("zcomp_compress", "zs_malloc")
    # Every anonymous page swapped out was compressed on this path (a few more went out of shmem's path).
    assert 0.95 * summary["pswpout_pages"] <= compress.hits <= summary["pswpout_pages"]
    assert verdicts(compress) == {
        "shrink_folio_list": "observed", "pageout": "observed", "swap_writepage": "tail call",
        "__swap_writepage": "observed", "bdev_write_page": "observed", "zram_rw_page": "observed",
        "zram_bvec_rw": "observed", "zram_bvec_write": "inlined into zram_bvec_rw",
        "__zram_bvec_write": "inlined into zram_bvec_rw", "zcomp_compress": "observed"}
    assert set(compress.by_task) <= {"kswapd", "direct"} and compress.by_task.get("kswapd", 0) > 0
    assert "zram_bvec_write (inlined into zram_bvec_rw)" in compress.example

    cached, direct = outcome["pagein-swapcache"], outcome["pagein-skip-swapcache"]
    assert cached.holds and direct.holds and cached.hits > 0 and direct.hits > 0
    # The two pagein paths are disjoint and together are every page swapped in.
    assert abs(cached.hits + direct.hits - summary["pswpin_pages"]) <= 0.01 * summary["pswpin_pages"]
    assert verdicts(cached.leaves[0])["zram_bvec_read"] == "inlined into zram_bvec_rw"
    assert verdicts(cached.leaves[0])["swapin_readahead"] == "observed"
    assert verdicts(cached.leaves[0])["exc_page_fault"] == "observed"  # noinstr, but a frame all the same
    assert cached.leaves[0].by_task == {"direct": cached.hits}

    wrong = outcome["wrong-read-under-writepage"]
    assert not wrong.holds and wrong.hits == 0 and wrong.ok
    assert verdicts(wrong.leaves[0])["swap_writepage"] == "missing"

    written = json.loads((results / "chains.json").read_text())
    assert written["kernel"] == "6.1.192" and written["lost_events"] == 0
    assert [c["name"] for c in written["chains"]] == [r for r in outcome]


def test_expectation_failure_is_reported(results: Path) -> None:
    manifest = json.loads((results / "manifest.json").read_text())
    manifest["lab"]["chains"] = [{"spec": "wrong-read-under-writepage", "expect": "hold"}]
    (results / "manifest.json").write_text(json.dumps(manifest))
    (result,) = verify_results(results)
    assert not result.holds and not result.ok


def test_lost_events_are_stated(results: Path) -> None:
    hist = results / "trace" / "hist" / "zs_map_object.hist"
    hist.write_text(hist.read_text().replace("Dropped: 0", "Dropped: 17"))
    outcome = by_name(verify_results(results))
    assert outcome["pagein-swapcache"].lost_events == 17
    assert any("lost 17 events" in note for note in outcome["pagein-swapcache"].notes)


def test_symbol_table_knows_noinstr() -> None:
    symbols = SymbolTable.parse((FIXTURE / "System.map").read_text())
    assert symbols.is_noinstr("exc_page_fault")
    assert not symbols.is_noinstr("do_swap_page")
    assert symbols.by_base["zram_bvec_rw"] == ["zram_bvec_rw.isra.0"]
    assert not symbols.has_function("zram_bvec_write")  # inlined everywhere: no symbol of its own
