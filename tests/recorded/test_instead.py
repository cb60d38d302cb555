"""What the kernel does instead (kernlab.verify.instead), on recorded runs: a chain that holds has nothing instead;
the recorded paths to a leaf, aligned with the documented path (observed, inlined, renamed, tail call, gone, not on
this path), on kernels where the article's path is taken. (Where 6.12 breaks it: test_kernel_612.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from kernlab.config import specs
from kernlab.config.lab import load_lab
from kernlab.paths import REPO
from kernlab.verify import chains
from kernlab.verify.evidence import load_evidence, verify_results
from kernlab.verify.instead import recorded_paths
from tests.common import article_blocks, recorded_run


def test_a_function_inlined_on_other_paths_is_not_gone_where_a_path_skips_it(tmp_path: Path) -> None:
    """5.15's do_swap_page calls swap_readpage itself for a SWP_SYNCHRONOUS_IO device (zram), past
    swapin_readahead and the swap_vma_readahead gcc inlined into it: on that path swap_vma_readahead is not on
    this path, not gone (it has no symbol, yet the same stacks show it inlined elsewhere)."""
    article_blocks()
    folder = recorded_run("results-5.15.135-windows", tmp_path)
    pagein = [spec.resolve("5.15.135", "x86_64")
              for spec in load_lab(REPO / "labs" / "article-as-published.yaml").chain_specs("lab")][1]
    steps = [step for path in recorded_paths(pagein, load_evidence(folder, [pagein]), top=5) for step in path.steps
             if step.documented == "swap_vma_readahead"]
    assert {step.status for step in steps} == {"inlined into swapin_readahead", "not on this path"}


def test_chains_that_hold_have_nothing_instead(tmp_path: Path) -> None:
    for fixture in ("results-5.15.135-trees", "results-6.1-trees"):
        chains = {chain.name: chain for chain in verify_results(recorded_run(fixture, tmp_path))}
        assert chains["article-pageout"].holds and chains["article-pageout"].instead == []
        assert not chains["wrong-read-under-writepage"].holds and chains["wrong-read-under-writepage"].instead


@pytest.mark.parametrize(("fixture", "version", "pageout", "writepage"), [
    ("results-5.15.135-trees", "5.15.135", ("pageout", "pageout", "inlined into shrink_page_list"),
     ("swap_writepage", None, "tail call")),  # a tail call leaves no frame: said so, not "not on this path"
    ("results-6.1-trees", "6.1.192", ("pageout", "pageout", "observed"), ("swap_writepage", None, "tail call")),
])
def test_alignment_on_515_and_61_stacks(tmp_path: Path, fixture: str, version: str, pageout: tuple,
                                        writepage: tuple) -> None:
    """The alignment itself, run on kernels where the article's path is taken: nothing gone, nothing new between
    bdev_write_page and zcomp_compress, and the rename on 6.1."""
    chain = specs.resolve_chain("article-pageout", version)
    evidence = load_evidence(recorded_run(fixture, tmp_path), [chain])
    verified = chains.verify_chain(chain, evidence)
    tail_calls = {line.function for line in verified.lines if line.verdict == "tail call"}
    path = next(path for path in recorded_paths(chain, evidence, tail_calls) if path.leaf == "zcomp_compress")
    aligned = [(step.documented, step.recorded, step.status) for step in path.steps]
    assert pageout in aligned and writepage in aligned
    assert not [step for step in aligned if step[2] == "gone"]
    names = [recorded for _, recorded, _ in aligned]
    assert names[names.index("bdev_write_page"):] == ["bdev_write_page", "zram_rw_page", "zram_bvec_rw",
                                                       "zram_bvec_write", "__zram_bvec_write", "zcomp_compress"]
    shrink = next(step for step in aligned if step[0] == "shrink_page_list")
    assert shrink == (("shrink_page_list", "shrink_page_list", "observed") if version.startswith("5.15")
                      else ("shrink_page_list", "shrink_folio_list", "renamed"))
