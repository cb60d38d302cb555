"""Trees as the article publishes them (issue 26): its two code blocks, pasted byte for byte into `tree:`, read by
visual column with the tab width the block needs, comments gone, calls read out of assignments, pointer calls
resolved by the block's own initializers; verified on recorded runs of 5.15.135 and 6.1 they give every line the
verdict the hand-written specs (article-pageout, article-pagein) give it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kernlab.config import articletree, specs
from kernlab.paths import CHAIN_DIR, REPO
from kernlab.results.folder import ResultsFolder
from kernlab.verify import chains, pointers
from kernlab.verify.evidence import load_evidence, pointer_setters
from tests.test_trees import copy_results

FIXTURES = Path(__file__).parent / "fixtures"
ARTICLE = REPO.parent / "shared" / "articles" / "000_aaa9728bd9bcf988.txt"
RUNS = {"5.15.135": "results-5.15.135-windows", "6.1.192": "results-6.1-windows"}


def article_blocks() -> list[str]:
    if not ARTICLE.exists():
        pytest.skip(f"no article at {ARTICLE} (../shared sits beside the repository in CI)")
    return re.findall(r"```c\n(.*?)```", ARTICLE.read_text(), re.S)


def pasted(name: str, block: str) -> specs.ChainSpec:
    """The hand-written spec's variants and graph root, its tree replaced by the article's block as published."""
    hand = specs.load_chain(CHAIN_DIR / f"{name}.yaml")
    return hand.model_copy(update={"name": f"pasted-{name}", "tree": block, "indirect": []})


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


@pytest.mark.parametrize("version", list(RUNS))
@pytest.mark.parametrize(("name", "block"), [("article-pageout", 0), ("article-pagein", 1)])
def test_pasted_blocks_give_the_hand_written_verdicts(version: str, name: str, block: int, tmp_path: Path) -> None:
    """Every line the hand spec checks gets the same verdict and hits; the pagein block's ops->rw_page, which its
    block leaves open, is resolved from the run (zram_rw_page right below bdev_read_page on the stacks, and
    zram_devops.rw_page set to it in the image: trace/pointers.json, recorded from the run's vmlinux)."""
    folder = copy_results(FIXTURES / RUNS[version], tmp_path)
    arch = "x86_64"
    hand = specs.load_chain(CHAIN_DIR / f"{name}.yaml").resolve(version, arch)
    spec = pasted(name, article_blocks()[block])
    evidence = load_evidence(folder, [hand])
    setters = pointer_setters(ResultsFolder.open(folder), None)  # the recorded facts only: no vmlinux here
    mine = pointers.resolve(spec, spec.resolve(version, arch), evidence, setters, version, arch)
    evidence = load_evidence(folder, [hand, mine])
    theirs = chains.verify_chain(hand, evidence)
    ours = chains.verify_chain(mine, evidence)
    checked = {line.function: (line.verdict, line.hits) for line in theirs.lines if line.function}
    got = {line.function: (line.verdict, line.hits) for line in ours.lines if line.function}
    assert checked == got
    assert ours.holds == theirs.holds
    indirect = {line.indirect["call"]: line.indirect["status"] for line in ours.lines if line.indirect}
    assert indirect == {"mapping->a_ops->writepage": "resolved", "ops->rw_page": "resolved"} if name == \
        "article-pageout" else {"ops->rw_page": "resolved"}
    open_lines = [line for line in ours.lines if line.function is None and line.verdict != "annotation"]
    if name == "article-pagein":  # swap_readpage's SWP_FS branch (swap files on a filesystem), not zram's
        (readpage,) = open_lines
        assert (readpage.text, readpage.verdict, readpage.label) == ("mapping->a_ops->readpage", "not taken",
                                                                     "branch not taken")
        assert readpage.evidence.startswith("swap_readpage called bdev_read_page (")
        assert "branches this run did not take: mapping->a_ops->readpage" in " ".join(ours.notes)
        # the summary keeps "every line proved" apart from "proved but for a branch the run did not take"
        from kernlab.report.chainviews import chain_verdict

        summary = chain_verdict(ours)
        assert ours.holds and summary.holds_text == "holds except 1 branch not taken"
        assert chain_verdict(theirs).holds_text == "holds"
    else:
        assert open_lines == []
        assert any(note.startswith("tree read with tabs 4 columns wide") for note in ours.notes)


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


def test_the_imported_lab_on_the_recorded_515_run(tmp_path: Path) -> None:
    """The article-as-published lab's verdicts, from the recorded 5.15.135 evidence: the swap-out block holds;
    the swap-in block enters through arm64's do_page_fault, which x86_64 does not have."""
    from kernlab.config.lab import load_lab

    article_blocks()
    folder = copy_results(FIXTURES / RUNS["5.15.135"], tmp_path)
    resolved = [spec.resolve("5.15.135", "x86_64")
                for spec in load_lab(REPO / "labs" / "article-as-published.yaml").chain_specs("lab")]
    evidence = load_evidence(folder, resolved)
    pageout, pagein = (chains.verify_chain(chain, evidence) for chain in resolved)
    assert pageout.holds and pageout.hits > 0
    lines = {line.function: line for line in pagein.lines if line.function}
    assert not pagein.holds
    for entry in ("do_page_fault", "__do_page_fault"):
        assert lines[entry].verdict == "missing" and "no such function" in lines[entry].evidence
    # a root the kernel does not have leaves the lines below it to the run: only the arm64 entry is missing
    assert [line.function for line in pagein.lines if line.verdict == "missing"] == ["do_page_fault",
                                                                                     "__do_page_fault"]
    assert lines["handle_mm_fault"].verdict == "observed" and lines["handle_mm_fault"].hits > 0
    assert lines["handle_pte_fault"].label == "inlined into __handle_mm_fault"
    assert lines["zs_map_object"].verdict == "observed" and not pagein.holds and pagein.hits == 0


def test_a_function_inlined_on_other_paths_is_not_gone_where_a_path_skips_it(tmp_path: Path) -> None:
    """5.15's do_swap_page calls swap_readpage itself for a SWP_SYNCHRONOUS_IO device (zram), past
    swapin_readahead and the swap_vma_readahead gcc inlined into it: on that path swap_vma_readahead is not on
    this path, not gone (it has no symbol, yet the same stacks show it inlined elsewhere)."""
    from kernlab.config.lab import load_lab
    from kernlab.verify.instead import recorded_paths

    article_blocks()
    folder = copy_results(FIXTURES / RUNS["5.15.135"], tmp_path)
    pagein = [spec.resolve("5.15.135", "x86_64")
              for spec in load_lab(REPO / "labs" / "article-as-published.yaml").chain_specs("lab")][1]
    steps = [step for path in recorded_paths(pagein, load_evidence(folder, [pagein]), top=5) for step in path.steps
             if step.documented == "swap_vma_readahead"]
    assert {step.status for step in steps} == {"inlined into swapin_readahead", "not on this path"}
