"""Chain verification on a recorded real results folder (6.1 lab kernel, TCG), offline; DWARF inline records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kernlab.config import specs
from kernlab.errors import KernlabError
from kernlab.frames import Frame, base_name
from kernlab.paths import CHAIN_DIR
from kernlab.probes.kprobes import probe_event_name
from kernlab.results.chainrecords import ChainRecord, LeafRecord
from kernlab.verify import chains
from kernlab.verify.evidence import verify_results
from kernlab.verify.hist import parse_hist
from kernlab.vmlinux.dwarf import InlineResolver, SymbolTable, parse_addr2line

FIXTURE = Path(__file__).parent / "fixtures" / "results-6.1-sizing"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A copy of the recorded folder whose vmlinux is out of reach: verification uses only what it holds."""
    folder = tmp_path / "results"
    shutil.copytree(FIXTURE, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["kernel"]["build_dir"] = str(tmp_path / "no-such-build")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


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


def test_parse_recorded_histograms() -> None:
    stacks = parse_hist("zs_map_object", (FIXTURE / "trace/hist/zs_map_object.hist").read_text())
    assert stacks.dropped == 0 and stacks.entries == len(stacks.stacks) > 3
    assert sum(count.hits for count in stacks.stacks) == stacks.hits
    assert all(count.stack[0].name == "zs_map_object" for count in stacks.stacks)  # probe frames stripped
    callers = parse_hist("swap_writepage", (FIXTURE / "trace/hist/swap_writepage.hist").read_text())
    assert set(callers.callers) == {"pageout+0xe3/0x1bb", "shmem_writepage+0x1f7/0x239"}
    assert sum(callers.callers.values()) == callers.hits


def test_frames_and_clone_suffixes() -> None:
    frame = Frame.parse("zram_bvec_rw.isra.0+0xc3/0x324")
    assert (frame.symbol, frame.name, frame.offset, frame.size) == ("zram_bvec_rw.isra.0", "zram_bvec_rw", 0xc3, 0x324)
    assert base_name("__zram_bvec_read.constprop.0") == "__zram_bvec_read"
    assert base_name("foo.part.1.cold") == "foo"
    assert probe_event_name("zram_bvec_rw.isra.0") == "kl_zram_bvec_rw_isra_0"


def test_spec_variants_resolve_per_kernel_and_arch() -> None:
    pageout = specs.load_chain(CHAIN_DIR / "pageout.yaml")
    assert pageout.resolve("5.15.177").functions()[0] == "shrink_page_list"
    assert pageout.resolve("6.1.192").functions()[0] == "shrink_folio_list"
    pagein = specs.load_chain(CHAIN_DIR / "pagein-swapcache.yaml")
    assert pagein.resolve("6.1.192", "x86_64").functions()[:2] == ["exc_page_fault", "do_user_addr_fault"]
    assert pagein.resolve("6.1.192", "arm64").functions()[:2] == ["do_page_fault", "__do_page_fault"]


def test_bad_chain_spec_names_file_and_key(tmp_path: Path) -> None:
    spec = tmp_path / "x.yaml"
    spec.write_text("name: x\ndocumented: a\nsource: b\npath: [a]\nleaves: [b]\nextra: 1\n")
    with pytest.raises(KernlabError, match=r"x.yaml: extra: unknown key"):
        specs.load_chain(spec)


def test_symbol_table_knows_noinstr() -> None:
    symbols = SymbolTable.parse((FIXTURE / "System.map").read_text())
    assert symbols.is_noinstr("exc_page_fault")
    assert not symbols.is_noinstr("do_swap_page")
    assert symbols.by_base["zram_bvec_rw"] == ["zram_bvec_rw.isra.0"]
    assert not symbols.has_function("zram_bvec_write")  # inlined everywhere: no symbol of its own


def test_parse_addr2line_output() -> None:
    text = ("0xffffffff81201cae\n__zram_bvec_write\ndrivers/block/zram/zram_drv.c:1398\nzram_bvec_write\n"
            "drivers/block/zram/zram_drv.c:1520\nzram_bvec_rw\ndrivers/block/zram/zram_drv.c:1581\n"
            "0xffffffff81201eae\nzram_bvec_rw\ndrivers/block/zram/zram_drv.c:1588\n")
    assert parse_addr2line(text) == {0xffffffff81201cae: ["__zram_bvec_write", "zram_bvec_write", "zram_bvec_rw"],
                                     0xffffffff81201eae: ["zram_bvec_rw"]}


@pytest.mark.slow
def test_real_vmlinux_dwarf_gives_recorded_inlines(kernel_build) -> None:
    """addr2line over the project's own vmlinux resolves the recorded frames to the recorded inline chains."""
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    # Same source, compiler and .config give the same vmlinux, whatever else went into the build key.
    if kernel_build.info["config"]["config_sha256"] != manifest["kernel"]["config_sha256"]:
        pytest.skip("the fixture was recorded on a differently configured build")
    symbols = SymbolTable.parse(kernel_build.system_map.read_text())
    resolver = InlineResolver(kernel_build.vmlinux, symbols)
    recorded = json.loads((FIXTURE / "trace" / "inline.json").read_text())
    frames = [Frame.parse(text) for text in recorded]
    resolver.prime(frames)
    assert {str(frame): resolver.inlined_at(frame) for frame in frames} == recorded
    assert resolver.inlined_at(Frame.parse("zram_bvec_rw.isra.0+0x31/0x324")) == ["zram_bvec_read"]
