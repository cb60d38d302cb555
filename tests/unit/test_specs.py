"""Chain specs (kernlab.config.specs): trees and paths as written, resolved for a kernel and an architecture, which
leaves get full stacks, and errors that name the file, the line and the key. (The version facts the library's specs
cite: test_kernel_facts.py; trees verified on recorded runs: tests/recorded/test_trees.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from kernlab.config import specs
from kernlab.errors import KernlabError
from kernlab.paths import CHAIN_DIR


def test_article_trees_parse_as_written() -> None:
    pageout = specs.resolve_chain("article-pageout", "5.15.135")
    assert [(line.depth, line.function) for line in pageout.lines[:5]] == [
        (0, "shrink_inactive_list"), (1, "shrink_page_list"), (2, "pageout"), (3, "swap_writepage"),
        (4, "__swap_writepage")]
    assert pageout.lines[3].via == "mapping->a_ops->writepage"
    assert pageout.indirect["mapping->a_ops->writepage"].ops == "swap_aops"
    assert pageout.leaves == ["zcomp_compress", "zs_malloc"]
    note = pageout.lines[-1]
    assert note.function is None and note.text.startswith("note: memcpy") and note.depth == 10 and note.parent == 9

    pagein = specs.resolve_chain("article-pagein", "5.15.135")
    by_function = {line.function: line for line in pagein.lines if line.function}
    # The side branch: swap_readpage is swap_vma_readahead's child, a sibling of __read_swap_cache_async.
    parent = pagein.lines[by_function["swap_readpage"].parent].function
    assert parent == "swap_vma_readahead"
    assert pagein.lines[by_function["__read_swap_cache_async"].parent].function == "swap_vma_readahead"
    assert pagein.leaves == ["pagecache_get_page", "zram_get_handle", "zcomp_stream_get", "zs_map_object"]
    assert pagein.functions()[:2] == ["exc_page_fault", "do_user_addr_fault"]
    on_61 = specs.resolve_chain("article-pagein", "6.1.192").functions()
    assert "__filemap_get_folio" in on_61 and "pagecache_get_page" not in on_61


@pytest.mark.parametrize(("tree", "number", "message"), [
    ("a\n  b\nc\n", 3, "'c' is a second root"),
    ("a\n  p->f => 9b\n", 2, r"'p->f => 9b' is not a function name"),
    ("note: x\n", 1, "an annotation cannot be the root"),
    ("a\n  p->f => b\n", 2, r"'p->f' has no entry in `indirect`"),
])
def test_bad_tree_names_file_and_line(tmp_path: Path, tree: str, number: int, message: str) -> None:
    spec = tmp_path / "bad.yaml"
    indented = "".join(f"  {line}\n" for line in tree.splitlines())
    spec.write_text(f"name: bad\ndocumented: d\nsource: s\ntree: |\n{indented}")
    # the file's line (the tree starts below `tree: |`, line 4), with the tree's own line beside it
    with pytest.raises(KernlabError, match=rf"bad.yaml: line {4 + number} \(tree line {number}\): {message}"):
        specs.load_chain(spec).resolve("5.15.135", where=str(spec))


def test_tree_or_path_not_both(tmp_path: Path) -> None:
    spec = tmp_path / "both.yaml"
    spec.write_text("name: x\ndocumented: d\nsource: s\ntree: a\npath: [a]\nleaves: [b]\n")
    with pytest.raises(KernlabError, match=r"both.yaml: \(top level\): give either a tree or a path and leaves"):
        specs.load_chain(spec)


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


def test_a_leaf_with_no_symbol_is_probed_at_its_nearest_hookable_ancestor() -> None:
    """5.15.135: scan_swap_map_slots is inlined into get_swap_pages (no symbol): get_swap_pages gets full stacks;
    zram_get_handle's nearest hookable ancestor already has hookable leaves below it, so nothing is added."""
    on_515 = specs.load_chain(CHAIN_DIR / "add-to-swap.yaml").resolve("5.15.135")
    hookable = {"shrink_page_list", "add_to_swap", "get_swap_page", "get_swap_pages", "add_to_swap_cache"}
    assert on_515.probe_leaves(hookable.__contains__) == ["scan_swap_map_slots", "add_to_swap_cache",
                                                          "get_swap_pages"]
    pagein = specs.load_chain(CHAIN_DIR / "article-pagein.yaml").resolve("5.15.135")
    assert "__zram_bvec_read" not in pagein.probe_leaves(lambda name: name != "zram_get_handle")


def write_spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return path


def test_a_path_and_its_leaves_are_a_tree_of_one_branch(tmp_path: Path) -> None:
    spec = specs.load_chain(write_spec(tmp_path, "name: mine\ndocumented: a > b > c\nsource: s\n"
                                                 "path: [a, b, c]\nleaves: [x, y]\n"))
    chain = spec.resolve("6.1.192")
    assert [(line.depth, line.function, line.parent) for line in chain.lines] == [
        (0, "a", None), (1, "b", 0), (2, "c", 1), (3, "x", 2), (3, "y", 2)]
    assert chain.leaves == ["x", "y"] and chain.leaf_lines() == [3, 4]
    assert chain.path_to(4) == [0, 1, 2, 4] and chain.function_above(4) == "c"
    assert chain.graph_root == "a" and chain.renamed == {} and chain.gone == {}
    assert chain.expected("hold") == specs.Expected("hold")


def test_a_variant_renames_for_its_kernel_and_arch_only(tmp_path: Path) -> None:
    spec = specs.load_chain(write_spec(tmp_path, (
        "name: mine\ndocumented: d\nsource: s\npath: [a, b]\nleaves: [x]\nvariants:\n"
        "  - kernel: '>= 6.3'\n    commit: {id: 0123456789ab, title: t, release: '6.3'}\n    rename: {a: a2}\n"
        "  - arch: arm64\n    rename: {b: b_arm64}\n")))
    assert spec.resolve("6.2.1").functions() == ["a", "b", "x"]
    on_63 = spec.resolve("6.3.0")
    assert on_63.functions() == ["a2", "b", "x"] and on_63.renamed == {"a": "a2"}
    assert on_63.graph_root == "a2"  # the root, as this kernel names it
    assert on_63.notes == ['a is a2 on linux >= 6.3 (0123456789ab "t", Linux 6.3)']
    assert spec.resolve("6.3.0", "arm64").functions() == ["a2", "b_arm64", "x"]


def test_a_graph_root_must_be_a_function_of_the_chain(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "name: mine\ndocumented: d\nsource: s\npath: [a, b]\nleaves: [x]\n"
                                "graph_root: nowhere\n")
    with pytest.raises(KernlabError, match=r"mine.yaml: .*graph_root 'nowhere' is not a function of the chain"):
        specs.load_chain(path)
    path.write_text(path.read_text().replace("nowhere", "b"))
    assert specs.load_chain(path).resolve("6.1.192").graph_root == "b"


def test_a_spec_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    with pytest.raises(KernlabError, match=rf"^{tmp_path / 'nope.yaml'}: cannot read chain spec: No such file"):
        specs.load_chain(tmp_path / "nope.yaml")
    with pytest.raises(KernlabError, match=r"mine.yaml: \(top level\): give a tree, or a path and leaves"):
        specs.load_chain(write_spec(tmp_path, "name: mine\ndocumented: d\nsource: s\npath: [a]\n"))
