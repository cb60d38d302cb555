"""Trees as the article publishes them (issue 26), pasted byte for byte into `tree:` and verified on recorded runs of
5.15.135 and 6.1: they give every line the verdict the hand-written specs (article-pageout, article-pagein) give it;
the article-as-published lab on the recorded 5.15.135 run. (Reading the blocks: tests/unit/test_article_trees.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from kernlab.config import specs
from kernlab.paths import CHAIN_DIR, REPO
from kernlab.results.folder import ResultsFolder
from kernlab.verify import chains, pointers
from kernlab.verify.evidence import load_evidence, pointer_setters
from tests.common import article_blocks, recorded_run

RUNS = {"5.15.135": "results-5.15.135-windows", "6.1.192": "results-6.1-windows"}


def pasted(name: str, block: str) -> specs.ChainSpec:
    """The hand-written spec's variants and graph root, its tree replaced by the article's block as published."""
    hand = specs.load_chain(CHAIN_DIR / f"{name}.yaml")
    return hand.model_copy(update={"name": f"pasted-{name}", "tree": block, "indirect": []})


@pytest.mark.parametrize("version", list(RUNS))
@pytest.mark.parametrize(("name", "block"), [("article-pageout", 0), ("article-pagein", 1)])
def test_pasted_blocks_give_the_hand_written_verdicts(version: str, name: str, block: int, tmp_path: Path) -> None:
    """Every line the hand spec checks gets the same verdict and hits; the pagein block's ops->rw_page, which its
    block leaves open, is resolved from the run (zram_rw_page right below bdev_read_page on the stacks, and
    zram_devops.rw_page set to it in the image: trace/pointers.json, recorded from the run's vmlinux)."""
    folder = recorded_run(RUNS[version], tmp_path)
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


def test_the_imported_lab_on_the_recorded_515_run(tmp_path: Path) -> None:
    """The article-as-published lab's verdicts, from the recorded 5.15.135 evidence: the swap-out block holds;
    the swap-in block enters through arm64's do_page_fault, which x86_64 does not have."""
    from kernlab.config.lab import load_lab

    article_blocks()
    folder = recorded_run(RUNS["5.15.135"], tmp_path)
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
