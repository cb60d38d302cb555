"""kernlab.vmlinux: static facts (ops members, inline trees) read from the real 6.1 and 5.15 lab kernels' vmlinux,
and a recorded run's facts read again from its kernel's image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernlab.kernel import build
from kernlab.results.folder import ResultsFolder
from kernlab.verify.evidence import verify_results
from kernlab.verify.reverify import verdict_changes
from kernlab.vmlinux.facts import InlineNode, inline_tree, inline_trees, read_ops_member
from tests.common import recorded_run

# ---- the real 6.1 lab kernel (tinyconfig + zram, gcc 12, DWARF5)

FUNCTIONS = ["zram_bvec_rw", "__zram_bvec_read", "__handle_mm_fault", "no_such_function_anywhere"]


@pytest.fixture(scope="module")
def image(kernel_build: build.KernelBuild) -> Path:
    assert kernel_build.info["kernel_version"].startswith("6.1.")
    return kernel_build.vmlinux


@pytest.fixture(scope="module")
def trees(image: Path) -> dict[str, InlineNode]:
    return inline_trees(image, FUNCTIONS)


@pytest.mark.slow
def test_swap_aops_writepage_is_swap_writepage(image: Path) -> None:
    result = read_ops_member(image, "swap_aops", "writepage", cu_hint="mm/swap_state.c")
    assert (result.status, result.target, result.struct) == ("resolved", "swap_writepage", "address_space_operations")
    assert result.offset == 0
    assert result.evidence == f"swap_aops+0x0 (struct address_space_operations.writepage, .rodata) = " \
                              f"{result.pointer:#x} -> swap_writepage"


@pytest.mark.slow
def test_zram_devops_rw_page_is_zram_rw_page(image: Path) -> None:
    result = read_ops_member(image, "zram_devops", "rw_page", cu_hint="drivers/block/zram/zram_drv.c")
    assert (result.status, result.target, result.struct) == ("resolved", "zram_rw_page", "block_device_operations")
    # found without a hint too: the symbol table's file groups lead to the CU
    assert read_ops_member(image, "zram_devops", "rw_page") == result


@pytest.mark.slow
def test_cu_hint_picks_among_static_variables_of_one_name(image: Path) -> None:
    # kernel/trace/ftrace.c and kernel/trace/trace_events.c each have a static ftrace_avail_fops
    ftrace = read_ops_member(image, "ftrace_avail_fops", "open", cu_hint="kernel/trace/ftrace.c")
    events = read_ops_member(image, "ftrace_avail_fops", "open", cu_hint="kernel/trace/trace_events.c")
    assert (ftrace.target, events.target) == ("ftrace_avail_open", "ftrace_event_avail_open")
    assert read_ops_member(image, "ftrace_avail_fops", "open").target == "ftrace_avail_open"  # the first symbol


@pytest.mark.slow
def test_global_variable_without_a_hint(image: Path) -> None:
    result = read_ops_member(image, "def_blk_fops", "open")  # global, in block/fops.c
    assert (result.status, result.target, result.struct) == ("resolved", "blkdev_open", "file_operations")


@pytest.mark.slow
def test_unset_missing_member_and_missing_variable(image: Path) -> None:
    missing = read_ops_member(image, "zram_devops", "no_such_member", cu_hint="drivers/block/zram/zram_drv.c")
    assert (missing.status, missing.target, missing.offset) == ("no such member", None, None)
    assert "no member no_such_member" in missing.evidence
    unset = read_ops_member(image, "zram_devops", "getgeo", cu_hint="drivers/block/zram/zram_drv.c")
    assert (unset.status, unset.pointer, unset.target) == ("null", 0, None)
    nothing = read_ops_member(image, "no_such_ops_variable", "writepage")
    assert (nothing.status, nothing.struct, nothing.target) == ("no such variable", None, None)


@pytest.mark.slow
def test_zram_bvec_rw_inlines_read_and_write_but_not___zram_bvec_read(trees: dict[str, InlineNode]) -> None:
    tree = trees["zram_bvec_rw"]
    assert tree.name == "zram_bvec_rw.isra.0"  # the clone gcc emitted; its DIE is matched by address
    assert tree.find_path(["zram_bvec_write", "__zram_bvec_write"]) == ["zram_bvec_write", "__zram_bvec_write"]
    assert tree.find_path(["zram_bvec_read"]) == ["zram_bvec_read"]
    # 6.1 with -Os keeps __zram_bvec_read out of line (__zram_bvec_read.constprop.0, called from the inlined
    # zram_bvec_read), so zram_get_handle is inlined there, not below zram_bvec_rw
    assert "__zram_bvec_read" not in tree.names()
    assert tree.find_path(["zram_bvec_read", "__zram_bvec_read", "zram_get_handle"]) is None
    read = trees["__zram_bvec_read"]
    assert read.name == "__zram_bvec_read.constprop.0"
    assert read.find_path(["zram_get_handle"]) == ["zram_get_handle"]


@pytest.mark.slow
def test_handle_pte_fault_is_inlined_into___handle_mm_fault(trees: dict[str, InlineNode]) -> None:
    tree = trees["__handle_mm_fault"]
    assert tree.name == "__handle_mm_fault"
    assert tree.find_path(["handle_pte_fault"]) == ["handle_pte_fault"]
    assert tree.find_path(["handle_pte_fault", "do_fault", "do_read_fault"]) == [
        "handle_pte_fault", "do_fault", "do_read_fault"]


@pytest.mark.slow
def test_functions_without_a_symbol_are_left_out(image: Path, trees: dict[str, InlineNode]) -> None:
    assert "no_such_function_anywhere" not in trees
    assert inline_tree(image, "no_such_function_anywhere") is None


# ---- the article's kernel: 5.15.135 built from the shared tarball

@pytest.mark.slow
def test_5_15_facts(kernel_build_515: build.KernelBuild) -> None:
    image = kernel_build_515.vmlinux
    assert read_ops_member(image, "swap_aops", "writepage", cu_hint="mm/swap_state.c").target == "swap_writepage"
    assert read_ops_member(image, "zram_devops", "rw_page", cu_hint="drivers/block/zram/zram_drv.c").target == \
        "zram_rw_page"
    trees = inline_trees(image, ["shrink_page_list", "shrink_lruvec", "swapin_readahead", "__read_swap_cache_async",
                                 "zram_bvec_rw", "__zram_bvec_read", "pageout"])
    assert "pageout" not in trees  # 5.15 has no out-of-line pageout: it is inlined into shrink_page_list
    assert trees["shrink_page_list"].find_path(["pageout"]) == ["pageout"]
    assert trees["shrink_lruvec"].find_path(["shrink_inactive_list"]) == ["shrink_list", "shrink_inactive_list"]
    assert trees["swapin_readahead"].find_path(["swap_vma_readahead"]) == ["swap_vma_readahead"]
    assert trees["__read_swap_cache_async"].find_path(["find_get_page"]) == ["find_get_page"]
    assert trees["zram_bvec_rw"].find_path(["zram_bvec_read", "__zram_bvec_read"]) is None  # out of line here too
    assert trees["__zram_bvec_read"].name == "__zram_bvec_read.constprop.0"
    assert trees["__zram_bvec_read"].find_path(["zram_get_handle"]) == ["zram_get_handle"]


@pytest.mark.slow
def test_a_recorded_run_s_facts_are_what_its_kernel_s_image_says(kernel_build_515: build.KernelBuild,
                                                                 tmp_path: Path) -> None:
    """The recorded 5.15.135 run (the build kernel_build_515 finds) with its ops and inline-tree facts deleted and
    its vmlinux at hand: verifying reads them from the image again, the same facts and the same verdicts; without
    the image the facts are missing and a chain no longer holds."""
    assert kernel_build_515.dir.name == "250cdef5ada6b113"
    facts = ("ops.json", "inline-trees.json")
    folder = recorded_run("results-5.15.135-windows", tmp_path / "with", vmlinux=kernel_build_515.vmlinux)
    recorded = {name: json.loads((folder / "trace" / name).read_text()) for name in facts}
    for name in facts:
        (folder / "trace" / name).unlink()
    again = verify_results(folder, tmp_path / "again")
    assert {name: json.loads((folder / "trace" / name).read_text()) for name in facts} == recorded
    assert verdict_changes(ResultsFolder.open(folder).chains(), again, with_hits=True) == []
    without = recorded_run("results-5.15.135-windows", tmp_path / "without")
    for name in facts:
        (without / "trace" / name).unlink()
    assert [chain.name for chain in verify_results(without, tmp_path / "unread") if not chain.holds] == [
        "wrong-read-under-writepage", "article-pagein"]
