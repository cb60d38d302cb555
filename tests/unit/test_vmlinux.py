"""kernlab.vmlinux: InlineNode on its own, addr2line's output, and files that are no kernel image.
(Static facts read from the real 6.1 and 5.15 lab kernels' vmlinux: tests/vm/test_vmlinux.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kernlab.errors import KernlabError
from kernlab.vmlinux.dwarf import parse_addr2line
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


def test_parse_addr2line_output() -> None:
    text = ("0xffffffff81201cae\n__zram_bvec_write\ndrivers/block/zram/zram_drv.c:1398\nzram_bvec_write\n"
            "drivers/block/zram/zram_drv.c:1520\nzram_bvec_rw\ndrivers/block/zram/zram_drv.c:1581\n"
            "0xffffffff81201eae\nzram_bvec_rw\ndrivers/block/zram/zram_drv.c:1588\n")
    assert parse_addr2line(text) == {0xffffffff81201cae: ["__zram_bvec_write", "zram_bvec_write", "zram_bvec_rw"],
                                     0xffffffff81201eae: ["zram_bvec_rw"]}
