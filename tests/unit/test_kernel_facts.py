"""What a chain is expected to do on a kernel follows from the chain specs' version facts, each written once with
its mainline commit and release (labs/chains/*.yaml), not from version ranges in each lab:

- 3222d8c2a7f8 "block: remove ->rw_page" (Christoph Hellwig; in "MM updates for 6.3-rc1", merged after v6.2)
  took bdev_read_page(), bdev_write_page() and zram_rw_page() away: the article's chains hold up to 6.2 and
  cannot from 6.3 on;
- 49fd9b6df54e "mm/vmscan: fix a lot of comments" and a0d3374b0707 "mm/swap: convert __read_swap_cache_async()
  to use a folio" (both 6.1): shrink_folio_list and filemap_get_folio > __filemap_get_folio, not on 6.0;
- 82ca875d2549, ffb0a9e66562 and 6aa4b839e7a4 (zram, 6.4): zram_bvec_rw gone, __zram_bvec_{read,write} renamed;
- c9bdf768dd93 "mm: convert swap_readpage() to swap_read_folio()" (6.8).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from kernlab.config import specs
from kernlab.config.lab import load_lab
from kernlab.errors import KernlabError
from kernlab.paths import CHAIN_DIR, DEFAULT_LAB, LABS_DIR
from kernlab.report import terminal
from kernlab.report.chainviews import chain_verdict
from kernlab.results.chainrecords import ChainRecord
from kernlab.verify.evidence import lab_chains
from kernlab.version import KernelVersion

RW_PAGE = "3222d8c2a7f8"
RW_PAGE_CHAINS = ("pageout", "pagein-swapcache", "pagein-skip-swapcache", "article-pageout", "article-pagein")
VERSIONS = ("5.15", "6.0", "6.1", "6.2", "6.3", "6.6", "6.10", "6.12")


@pytest.mark.parametrize("version", VERSIONS)
def test_the_default_lab_expects_what_each_release_can_do(version: str) -> None:
    """`expect: hold` in the lab; the article's rw_page chains hold up to 6.2 and not from 6.3 on (3222d8c2a7f8),
    the deliberately wrong chain never. Releases nobody here has built included."""
    expected = {chain.name: expect for chain, expect in lab_chains(load_lab(DEFAULT_LAB), version)}
    assert set(expected) == {*RW_PAGE_CHAINS, "wrong-read-under-writepage"}
    before_63 = KernelVersion.parse(version) < KernelVersion(6, 3)
    for name in RW_PAGE_CHAINS:
        assert expected[name].want == ("hold" if before_63 else "not-hold"), (name, version)
        assert (RW_PAGE in expected[name].reason) == (not before_63), (name, version, expected[name].reason)
    assert expected["wrong-read-under-writepage"] == specs.Expected("not-hold")


@pytest.mark.parametrize("lab", sorted(LABS_DIR.glob("*.yaml")), ids=lambda path: path.stem)
def test_kernlabs_own_labs_draw_no_version_maps(lab: Path) -> None:
    """The facts live in the chain specs: a lab says hold or not-hold, and its chains resolve on every release."""
    loaded = load_lab(lab)
    assert all(isinstance(use.expect, str) for use in loaded.chains), lab
    for version in VERSIONS:
        lab_chains(loaded, version)


@pytest.mark.parametrize(("spec", "documented", "renamed", "since", "commit"), [
    ("pageout", "shrink_page_list", "shrink_folio_list", "6.1", "49fd9b6df54e"),
    ("article-pagein", "find_get_page", "filemap_get_folio", "6.1", "a0d3374b0707"),
    ("article-pagein", "pagecache_get_page", "__filemap_get_folio", "6.1", "a0d3374b0707"),
    ("article-pagein", "__zram_bvec_read", "zram_read_page", "6.4", "ffb0a9e66562"),
    ("article-pageout", "__zram_bvec_write", "zram_write_page", "6.4", "6aa4b839e7a4"),
    ("pagein-skip-swapcache", "swap_readpage", "swap_read_folio", "6.8", "c9bdf768dd93"),
])
def test_renames_start_at_their_commits_release(spec: str, documented: str, renamed: str, since: str,
                                                commit: str) -> None:
    first = KernelVersion.parse(since)
    before = f"{first.major}.{first.minor - 1}"
    assert documented in specs.resolve_chain(spec, before).functions()
    chain = specs.resolve_chain(spec, since)
    assert renamed in chain.functions() and documented not in chain.functions()
    assert any(note.startswith(f"{documented} is {renamed} on linux >= {since} ({commit} ") for note in chain.notes)


def test_gone_functions_carry_their_commit() -> None:
    assert specs.resolve_chain("article-pageout", "6.2").gone == {}
    on_63 = specs.resolve_chain("article-pageout", "6.3")
    assert set(on_63.gone) == {"bdev_write_page", "zram_rw_page"}  # zram_bvec_rw went in 6.4 (82ca875d2549)
    assert on_63.gone["bdev_write_page"].commit == f'{RW_PAGE} "block: remove ->rw_page", Linux 6.3'
    assert set(specs.resolve_chain("article-pageout", "6.4").gone) == {"bdev_write_page", "zram_rw_page",
                                                                      "zram_bvec_rw"}
    # Asked for hold: not-hold, and why. Asked for anything else: as asked.
    expected = on_63.expected("hold")
    assert expected.want == "not-hold"
    assert expected.reason == (f'this kernel has no bdev_write_page, zram_rw_page: {RW_PAGE} '
                               '"block: remove ->rw_page", Linux 6.3')
    assert on_63.expected("report") == specs.Expected("report")
    assert specs.resolve_chain("article-pageout", "6.2").expected("hold") == specs.Expected("hold")


def test_every_version_guard_of_kernlabs_chain_specs_cites_a_commit_and_its_release() -> None:
    guarded = 0
    for path in sorted(CHAIN_DIR.glob("*.yaml")):
        for variant in specs.load_chain(path).variants:
            if variant.kernel is None:
                assert not variant.gone and variant.commit is None, path
                continue
            guarded += 1
            assert variant.commit is not None and len(variant.commit.id) >= 12, path
            assert f">= {variant.commit.release}" == variant.kernel, (path, variant.kernel)
            comments = [line for line in path.read_text().splitlines() if line.lstrip().startswith("#")]
            assert any(variant.commit.id[:12] in line for line in comments), path  # and cited where it is read
    assert guarded >= 15


def spec_with(tmp_path: Path, variant: str) -> Path:
    path = tmp_path / "facts.yaml"
    path.write_text("name: facts\ndocumented: d\nsource: s\npath: [swap_readpage, bdev_read_page]\n"
                    f"leaves: [zs_map_object]\nvariants:\n  - {variant}\n")
    return path


@pytest.mark.parametrize(("variant", "error"), [
    ("{gone: {bdev_read_page: went}}", "variants.0: gone needs `kernel`"),
    ("{kernel: '>= 6.3', gone: {bdev_read_page: went}}", "variants.0: kernel '>= 6.3' needs `commit`"),
    ("{kernel: '>= 6.1', rename: {swap_readpage: x}}", "variants.0: kernel '>= 6.1' needs `commit`"),
    ("{commit: {id: 3222d8c2a7f8, title: t, release: '6.3'}, gone: {bdev_read_page: went}}",
     "variants.0: gone needs `kernel`"),
    ("{kernel: '>= 6.0', commit: {id: 49fd9b6df54e, title: t, release: '6.1'}, rename: {swap_readpage: x}}",
     "variants.0: kernel '>= 6.0' does not start or end at the release of commit 49fd9b6df54e"),
    ("{kernel: '>= 6.10', commit: {id: 49fd9b6df54e, title: t, release: 6.10}, rename: {swap_readpage: x}}",
     "variants.0.commit.release: 6.1: quote the release"),
    ("{kernel: '>= 6.3', commit: {id: 3222d8c, title: t, release: '6.3'}, gone: {bdev_read_page: went}}",
     "variants.0.commit.id: '3222d8c' is not a commit id: 12 to 40 lowercase hex digits"),
])
def test_a_version_fact_without_its_source_is_refused_naming_file_and_key(tmp_path: Path, variant: str,
                                                                         error: str) -> None:
    path = spec_with(tmp_path, variant)
    with pytest.raises(KernlabError) as raised:
        specs.load_chain(path)
    assert str(raised.value).startswith(f"{path}: {error}"), str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_guard_ending_at_the_release_is_a_fact_about_the_kernels_before_it(tmp_path: Path) -> None:
    path = spec_with(tmp_path, "{kernel: '< 6.3', commit: {id: 3222d8c2a7f8, title: t, release: '6.3'}, "
                               "rename: {zs_map_object: zs_obj_read_begin}}")
    assert "zs_obj_read_begin" in specs.load_chain(path).resolve("6.2").functions()
    assert "zs_map_object" in specs.load_chain(path).resolve("6.3").functions()


def test_a_per_kernel_map_still_works_and_the_facts_correct_its_hold() -> None:
    """Users may keep a version map; a `hold` it picks on a kernel without the path is still not-hold."""
    lab = load_lab(DEFAULT_LAB)
    mapped = lab.model_copy(update={"chains": [lab.chains[0].model_copy(
        update={"expect": {"< 6.12": "hold", ">= 6.12": "not-hold"}})]})
    assert [expect.want for _, expect in lab_chains(mapped, "6.1")] == ["hold"]
    ((_, on_66),) = lab_chains(mapped, "6.6")  # 6.6 wrongly expected hold with that map
    assert on_66.want == "not-hold" and RW_PAGE in on_66.reason
    assert [expect.reason for _, expect in lab_chains(mapped, "6.12")] == [""]  # the map said not-hold itself


def test_the_reason_is_shown_where_the_expectation_is() -> None:
    chain = ChainRecord(name="article-pageout", holds=False, hits=0, expect="not-hold",
                        expect_reason=f'this kernel has no bdev_write_page: {RW_PAGE} "block: remove ->rw_page", '
                                      "Linux 6.3")
    assert chain_verdict(chain).header == (f'does not hold, 0 hits; expected not to hold (this kernel has no '
                                           f'bdev_write_page: {RW_PAGE} "block: remove ->rw_page", Linux 6.3): '
                                           "as expected")
    out = Console(record=True, width=300)
    terminal.print_chains(out, [chain])
    assert (f'chain article-pageout: does not hold, 0 hits (expected not to hold (this kernel has no bdev_write_page: '
            f'{RW_PAGE} "block: remove ->rw_page", Linux 6.3): ok)') in out.export_text()
    assert chain_verdict(chain.model_copy(update={"expect_reason": ""})).expect_why == "expected not to hold"
