"""Trees as the article publishes them (issue 26): its two code blocks, pasted byte for byte into `tree:`, read by
visual column with the tab width the block needs, comments gone, calls read out of assignments, pointer calls
resolved by the block's own initializers; `inv chains.import` writes them as chain specs. (Verified on recorded runs
they give every line the hand-written specs' verdict: tests/recorded/test_article_trees.py.)"""

from __future__ import annotations

from pathlib import Path

from kernlab.config import articletree, specs
from kernlab.paths import CHAIN_DIR, REPO
from tests.common import ARTICLE, article_blocks


def edges(lines: list[articletree.TreeLine]) -> list[tuple[str, str | None]]:
    """(function, its nearest function ancestor) for every function line."""
    def up(index: int | None) -> str | None:
        while index is not None and lines[index].function is None:
            index = lines[index].parent
        return lines[index].function if index is not None else None
    return [(line.function, up(line.parent)) for line in lines if line.function]


def test_the_pageout_block_reads_as_the_hand_written_tree() -> None:
    pageout = articletree.parse_block(article_blocks()[0], "article")
    hand = specs.load_chain(CHAIN_DIR / "article-pageout.yaml").lines("hand")
    assert pageout.tab_width == 4  # at 8, __swap_writepage (20 spaces) would fall out from under swap_writepage
    assert edges(pageout.lines) == edges(hand)
    assert {call: (claim.ops, claim.member) for call, claim in pageout.claims.items()} == {
        "mapping->a_ops->writepage": ("swap_aops", "writepage"), "ops->rw_page": ("zram_devops", "rw_page")}
    assert pageout.targets == {"mapping->a_ops->writepage": "swap_writepage", "ops->rw_page": "zram_rw_page"}
    skipped = {text: why for _, text, why in pageout.skipped}
    assert skipped["#ifdef CONFIG_MIGRATION"] == "inside the initializer of swap_aops"
    assert skipped["space->a_ops = &swap_aops;"] == "an assignment, not a call"
    assert "init_swap_address_space" in skipped  # the article's justification, after the tree
    memcpy = next(line for line in pageout.lines if line.text.startswith("memcpy"))
    assert memcpy.function is None  # a string routine: a note, not a call to trace


def test_the_pagein_block_keeps_the_line_the_hand_spec_left_out() -> None:
    pagein = articletree.parse_block(article_blocks()[1], "article")
    assert pagein.tab_width is None  # tabs only: any width reads it the same
    readpage = next(line for line in pagein.lines if line.via == "mapping->a_ops->readpage")
    assert readpage.function is None and pagein.lines[readpage.parent].function == "swap_readpage"
    # No initializer in this block says where ops->rw_page goes: the line stands, and its children are
    # bdev_read_page's (the hand spec names zram_rw_page through its `indirect:` entry).
    hand = [edge for edge in edges(specs.load_chain(CHAIN_DIR / "article-pagein.yaml").lines("hand"))
            if edge[0] != "zram_rw_page"]
    assert edges(pagein.lines) == [(f, "bdev_read_page" if p == "zram_rw_page" else p) for f, p in hand]


def test_inv_chains_import_writes_the_two_trees_and_names_the_skipped_blocks(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    blocks = article_blocks()
    inv = shutil.which("inv", path=str(Path(sys.executable).parent)) or "inv"
    done = subprocess.run([inv, "chains.import", str(ARTICLE), "--out", str(tmp_path / "specs")], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    said = done.stdout.splitlines()
    assert [line.split(":")[0] for line in said] == [
        "block 1 ('shrink_inactive_list')", "block 2 ('do_page_fault')",
        "block 3 ('struct address_space *page_mapping(struct page *page)')",
        "block 4 ('static unsigned int nr_swapfiles;')"]
    assert "is a function definition" in said[2] and "is a declaration" in said[3]
    written = sorted((tmp_path / "specs").glob("*.yaml"))
    assert [specs.load_chain(path).tree for path in written] == blocks[:2]  # byte for byte
    source = specs.load_chain(written[0]).source
    assert source.startswith("pagein和pageout的流程梳理, 2023-09-30, ")  # the front matter's title and date
    assert "# The article names Linux 5.15." in written[0].read_text()
    # the lab's copies are this import: labs/article-as-published.yaml runs the article as published
    assert [specs.load_chain(path).tree for path in sorted((REPO / "labs" / "imported").glob("*.yaml"))] == blocks[:2]
    again = subprocess.run([inv, "chains.import", str(ARTICLE), "--out", str(tmp_path / "specs")], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "exists; remove it" in again.stderr  # never overwritten
