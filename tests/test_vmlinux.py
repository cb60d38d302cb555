"""kernlab.vmlinux: InlineNode on its own, and static facts read from the real 6.1 lab kernel's vmlinux."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kernlab.errors import KernlabError
from kernlab.kernel import build
from kernlab.vmlinux.facts import InlineNode, inline_tree, inline_trees, read_ops_member


def node(name: str, *children: InlineNode) -> InlineNode:
    return InlineNode(name, tuple(children))


# ---- InlineNode, no kernel needed

def test_build_merges_repeated_callees_per_level() -> None:
    tree = InlineNode.build("zram_bvec_rw.isra.0", [
        node("zram_bvec_read", node("__zram_bvec_read", node("zram_get_handle"))),
        node("bio_advance"),
        node("zram_bvec_read", node("__zram_bvec_read", node("zram_get_obj_size"), node("zram_get_handle"))),
        node("zram_bvec_read", node("flush_dcache_page")),
    ])
    assert tree == node("zram_bvec_rw.isra.0",
                        node("zram_bvec_read",
                             node("__zram_bvec_read", node("zram_get_handle"), node("zram_get_obj_size")),
                             node("flush_dcache_page")),
                        node("bio_advance"))
    assert tree.names() == {"zram_bvec_read", "__zram_bvec_read", "zram_get_handle", "zram_get_obj_size",
                            "flush_dcache_page", "bio_advance"}


def test_find_path_walks_descendants_and_reports_intermediates() -> None:
    tree = node("zram_bvec_rw.isra.0",
                node("zram_bvec_write", node("__zram_bvec_write", node("zram_slot_lock"))),
                node("zram_bvec_read", node("__zram_bvec_read", node("zram_slot_lock"), node("zram_get_handle"))))
    assert tree.find_path(["zram_bvec_read", "__zram_bvec_read", "zram_get_handle"]) == [
        "zram_bvec_read", "__zram_bvec_read", "zram_get_handle"]
    # skipped levels are filled in, above and between the names asked for
    assert tree.find_path(["zram_bvec_read", "zram_get_handle"]) == [
        "zram_bvec_read", "__zram_bvec_read", "zram_get_handle"]
    assert tree.find_path(["zram_get_handle"]) == ["zram_bvec_read", "__zram_bvec_read", "zram_get_handle"]
    # the chain must descend: zram_get_handle is not below the write side
    assert tree.find_path(["zram_bvec_write", "zram_get_handle"]) is None
    assert tree.find_path(["zram_get_handle", "__zram_bvec_read"]) is None
    assert tree.find_path(["zram_bvec_rw.isra.0"]) is None  # the root itself is not below the root
    assert tree.find_path(["zram_slot_lock"]) == ["zram_bvec_write", "__zram_bvec_write", "zram_slot_lock"]
    assert tree.find_path([]) == []


def test_find_path_prefers_the_shortest_descent() -> None:
    tree = node("f", node("a", node("b", node("c", node("x")))), node("c", node("x")))
    assert tree.find_path(["c", "x"]) == ["c", "x"]


def test_dict_round_trip_through_json() -> None:
    tree = node("do_swap_page", node("swap_readpage"), node("lru_cache_add", node("folio_add_lru")))
    data = json.loads(json.dumps(tree.to_dict()))
    assert data == {"name": "do_swap_page", "children": [
        {"name": "swap_readpage", "children": []},
        {"name": "lru_cache_add", "children": [{"name": "folio_add_lru", "children": []}]}]}
    assert InlineNode.from_dict(data) == tree
    assert InlineNode.from_dict({"name": "leaf"}) == node("leaf")


def test_render_indents_one_level_per_inline_depth() -> None:
    assert node("f", node("g", node("h")), node("i")).render() == "f\n  g\n    h\n  i"


# ---- bad input

def test_non_elf_file_is_a_kernlab_error_naming_it(tmp_path: Path) -> None:
    bogus = tmp_path / "vmlinux"
    bogus.write_text("not an ELF image\n")
    with pytest.raises(KernlabError, match=str(bogus)):
        read_ops_member(bogus, "swap_aops", "writepage")
    with pytest.raises(KernlabError, match=str(bogus)):
        inline_tree(bogus, "do_swap_page")


def test_missing_file_is_a_kernlab_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-vmlinux"
    with pytest.raises(KernlabError, match=str(missing)):
        inline_trees(missing, ["do_swap_page"])


def test_elf_without_dwarf_is_a_kernlab_error(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc to make an ELF file without debug info")
    source, binary = tmp_path / "main.c", tmp_path / "nodebug"
    source.write_text("int main(void) { return 0; }\n")
    subprocess.run([gcc, "-g0", "-o", str(binary), str(source)], check=True)
    with pytest.raises(KernlabError, match=f"{binary}: no DWARF debug info"):
        read_ops_member(binary, "swap_aops", "writepage")


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
