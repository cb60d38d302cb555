"""`inv chains.check` against a recorded run's kernel (its System.map, available_filter_functions and recorded DWARF
facts): every documented name looked up, a gone one with its spec's commit; and a tree whose leaf is inlined
everywhere, proved on the recorded run at its nearest hookable ancestor."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from kernlab.paths import CHAIN_DIR
from tests.common import FIXTURES, recorded_run


def _check(tmp_path: Path, tree: str, results: str) -> dict[str, tuple[str, str]]:
    from kernlab.verify import chaincheck

    spec = tmp_path / "mine.yaml"
    spec.write_text(yaml.safe_dump({"name": "mine", "documented": "a tree", "source": "a test", "tree": tree}))
    (parsed,) = chaincheck.parse_specs([spec])
    kernel = chaincheck.kernel_names(FIXTURES / results)
    chain = parsed.resolve(kernel.version, kernel.arch)
    return {check.documented: (check.status, check.detail)
            for check in chaincheck.check_names(chain, {new: old for old, new in chain.renamed.items()}, kernel)}


def test_chains_check_looks_every_name_up_in_the_run_s_kernel(tmp_path: Path) -> None:
    tree = ("exc_page_fault\n  handle_mm_fault\n    do_swap_page\n      swap_readpage\n        bdev_read_page\n"
            "          zram_rw_page\n            zram_bvec_rw\n              zram_bvec_read\n"
            "              zs_map_objekt\n")
    on_515 = _check(tmp_path, tree, "results-5.15.135-windows")
    assert on_515["exc_page_fault"][0] == "noinstr"
    assert on_515["do_swap_page"] == ("traceable", "do_swap_page")
    assert on_515["zram_bvec_rw"] == ("traceable", "zram_bvec_rw.isra.0")  # a clone, as ftrace names it
    assert on_515["zram_bvec_read"] == ("inlined", "into zram_bvec_rw (DWARF inline tree)")
    assert on_515["zs_map_objekt"][0] == "no such function" and "zs_map_object" in on_515["zs_map_objekt"][1]


def test_chains_check_says_gone_with_the_spec_s_commit(tmp_path: Path) -> None:
    """The library's pageout spec on 6.12: bdev_write_page went with ->rw_page (3222d8c2a7f8, 6.3)."""
    from kernlab.verify import chaincheck

    spec = chaincheck.parse_specs([CHAIN_DIR / "pageout.yaml"])[0]
    kernel = chaincheck.kernel_names(FIXTURES / "results-6.12-windows")
    chain = spec.resolve(kernel.version, kernel.arch)
    checks = {c.documented: c for c in chaincheck.check_names(chain, {n: o for o, n in chain.renamed.items()}, kernel)}
    assert checks["bdev_write_page"].status == "gone" and "3222d8c2a7f8" in checks["bdev_write_page"].detail
    assert checks["shrink_page_list"].function == "shrink_folio_list"


def test_a_tree_whose_leaf_is_inlined_everywhere_holds_on_the_recorded_run(tmp_path: Path) -> None:
    """labs/inlined-leaf-5.15.yaml as run on 5.15.135 (fixtures README): scan_swap_map_slots has no symbol,
    get_swap_pages was probed for full stacks in its place, and the leaf is proved inside it from DWARF."""
    from kernlab.verify.evidence import verify_results

    folder = recorded_run("results-5.15.135-inlined-leaf", tmp_path)
    probes = json.loads((folder / "trace" / "probes.json").read_text())
    assert "get_swap_pages" in probes["stack"] and "scan_swap_map_slots" in probes["not_probed"]
    (chain,) = verify_results(folder, tmp_path / "verified")
    lines = {line.function: line for line in chain.lines}
    assert chain.holds and chain.hits > 0
    assert (lines["scan_swap_map_slots"].verdict, lines["scan_swap_map_slots"].into) == ("inlined", "get_swap_pages")
    assert "DWARF" in lines["scan_swap_map_slots"].evidence
    assert all(lines[name].verdict == "observed" for name in ("add_to_swap", "get_swap_page", "get_swap_pages",
                                                               "add_to_swap_cache"))
