"""Chains that live with the experiment: a lab names kernlab's own spec, a spec file beside it (by a path relative
to the lab file), or writes the spec inline; each resolves as the library's does and errors name the lab key."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kernlab.config.lab import load_lab
from kernlab.errors import KernlabError
from kernlab.paths import CHAIN_DIR, LABS_DIR, REPO, TESTS_DIR
from kernlab.verify.evidence import lab_chains

FIXTURES = TESTS_DIR / "fixtures"

SMOKE = LABS_DIR / "ci-smoke.yaml"


def _experiment(tmp_path: Path, chains: list[dict], spec_files: dict[str, str] | None = None) -> Path:
    """The smoke lab in a folder of its own outside the checkout, with its chains replaced."""
    folder = tmp_path / "my-experiment"
    (folder / "specs").mkdir(parents=True)
    for name, text in (spec_files or {}).items():
        (folder / "specs" / name).write_text(text)
    lab = yaml.safe_load(SMOKE.read_text())
    lab["chains"] = chains
    path = folder / "lab.yaml"
    path.write_text(yaml.safe_dump(lab, sort_keys=False))
    return path


def test_a_spec_file_beside_the_lab_resolves_like_the_library_one(tmp_path: Path) -> None:
    mine = (CHAIN_DIR / "pageout.yaml").read_text().replace("name: pageout", "name: my-pageout")
    path = _experiment(tmp_path, [{"spec": "specs/my-pageout.yaml", "expect": "hold"}], {"my-pageout.yaml": mine})
    lab = load_lab(path)
    assert lab.chains[0].spec == str(tmp_path / "my-experiment" / "specs" / "my-pageout.yaml")  # anchored
    ((chain, expected),) = lab_chains(lab, "6.1.192")
    library = load_lab(SMOKE)
    ((theirs, _),) = lab_chains(library, "6.1.192")
    assert chain.name == "my-pageout" and expected.want == "hold"
    assert chain.functions() == theirs.functions() and chain.renamed == {"shrink_page_list": "shrink_folio_list"}


def test_an_inline_chain_is_the_lab_s_own(tmp_path: Path) -> None:
    tree = "do_swap_page\n  swap_readpage\n    zs_map_object\n"
    path = _experiment(tmp_path, [{"chain": {"name": "short-pagein", "documented": "do_swap_page > ...",
                                             "source": "my notes", "tree": tree}, "expect": "report"}])
    lab = load_lab(path)
    ((chain, expected),) = lab_chains(lab, "5.15.135")
    assert chain.functions() == ["do_swap_page", "swap_readpage", "zs_map_object"] and expected.want == "report"


@pytest.mark.parametrize(("chains", "message"), [
    ([{"spec": "specs/nowhere.yaml"}], "chains.0.spec: no chain spec file .*specs/nowhere.yaml"),
    ([{"spec": "nowhere"}], r"chains.0.spec: no chain spec 'nowhere' \(.*a file of your own is named by its .yaml"),
    ([{"chain": {"name": "bad", "documented": "a", "source": "b", "tree": "a\nb\n"}}],
     "chains.0.chain: tree line 2: 'b' is a second root"),
])
def test_a_chain_that_cannot_be_read_names_its_lab_key(tmp_path: Path, chains: list[dict], message: str) -> None:
    lab = load_lab(_experiment(tmp_path, chains))
    with pytest.raises(KernlabError, match=message):
        lab.chain_specs(str(tmp_path / "my-experiment" / "lab.yaml"))


@pytest.mark.parametrize("use", [{"expect": "hold"}, {"spec": "pageout", "chain": {"name": "x", "documented": "a",
                                                                                   "source": "b", "tree": "a\n"}}])
def test_a_chain_use_names_one_spec(tmp_path: Path, use: dict) -> None:
    with pytest.raises(KernlabError, match=r"chains.0: .*give `spec`"):
        load_lab(_experiment(tmp_path, [use]))


def test_inv_refuses_a_missing_spec_file_before_anything_is_built(tmp_path: Path) -> None:
    """One line, exit 1, no results folder, through the CLI a user types."""
    path = _experiment(tmp_path, [{"spec": "specs/typo.yaml", "expect": "hold"}])
    results = tmp_path / "results"
    inv = shutil.which("inv", path=str(Path(sys.executable).parent))
    done = subprocess.run([inv or "inv", "lab", "--lab", str(path), "--results", str(results), "--cache",
                           str(tmp_path / "cache")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "chains.0.spec: no chain spec file" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not results.exists()


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


def test_inv_chains_check_parses_without_a_kernel(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndocumented: a\nsource: b\ntree: |\n  a\n  b\n")
    inv = shutil.which("inv", path=str(Path(sys.executable).parent)) or "inv"
    good = subprocess.run([inv, "chains.check", str(CHAIN_DIR / "article-pagein.yaml")], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert good.returncode == 0 and "article-pagein: 20 functions, 1 annotations (tree): parsed" in good.stdout
    refused = subprocess.run([inv, "chains.check", str(bad)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: {bad}: line 6 (tree line 2): 'b' is a second root")


@pytest.mark.vm
@pytest.mark.slow
def test_a_lab_outside_the_checkout_runs_with_its_own_spec(kernel_build_515, tmp_path: Path) -> None:
    """The issue's case end to end through `inv lab --lab`: a folder of the user's own, its lab naming a spec file
    beside it and holding a second inline; both verified on the 5.15 kernel kernlab built (cache reused by key)."""
    lab = yaml.safe_load((LABS_DIR / "zram-swap-5.15.yaml").read_text())
    lab["kernel"]["version"] = load_lab(LABS_DIR / "zram-swap-5.15.yaml").kernel.version  # the shared tarball
    lab["workloads"] = [{"name": "hog", "memhog": {"size_mib": 160, "data": "text", "passes": 1, "forks": 0}}]
    lab["tracing"] = {"graph": {"enabled": False}}
    inline = {"name": "my-pagein", "documented": "do_swap_page > swap_readpage > ... > zs_map_object",
              "source": "my notes", "tree": "do_swap_page\n  swap_readpage\n    zs_map_object\n"}
    lab["chains"] = [{"spec": "specs/my-pageout.yaml", "expect": "hold"}, {"chain": inline, "expect": "hold"}]
    folder = tmp_path / "my-experiment"
    (folder / "specs").mkdir(parents=True)
    (folder / "specs" / "my-pageout.yaml").write_text(
        (CHAIN_DIR / "pageout.yaml").read_text().replace("name: pageout", "name: my-pageout"))
    (folder / "lab.yaml").write_text(yaml.safe_dump(lab, sort_keys=False))
    inv = shutil.which("inv", path=str(Path(sys.executable).parent)) or "inv"
    done = subprocess.run([inv, "lab", "--lab", str(folder / "lab.yaml"), "--results", str(tmp_path / "results")],
                          cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    (run_folder,) = (tmp_path / "results" / "zram-swap-5.15").iterdir()
    chains = {c["name"]: c for c in json.loads((run_folder / "chains.json").read_text())["chains"]}
    assert set(chains) == {"my-pageout", "my-pagein"} and all(c["ok"] and c["hits"] > 0 for c in chains.values())
    manifest = json.loads((run_folder / "manifest.json").read_text())
    assert manifest["lab"]["chains"][0]["spec"] == str(folder / "specs" / "my-pageout.yaml")  # re-verifiable
    assert manifest["lab"]["chains"][1]["chain"]["tree"] == inline["tree"]


def test_a_leaf_with_no_symbol_is_probed_at_its_nearest_hookable_ancestor() -> None:
    """5.15.135: scan_swap_map_slots is inlined into get_swap_pages (no symbol): get_swap_pages gets full stacks;
    zram_get_handle's nearest hookable ancestor already has hookable leaves below it, so nothing is added."""
    from kernlab.config import specs

    on_515 = specs.load_chain(CHAIN_DIR / "add-to-swap.yaml").resolve("5.15.135")
    hookable = {"shrink_page_list", "add_to_swap", "get_swap_page", "get_swap_pages", "add_to_swap_cache"}
    assert on_515.probe_leaves(hookable.__contains__) == ["scan_swap_map_slots", "add_to_swap_cache",
                                                          "get_swap_pages"]
    pagein = specs.load_chain(CHAIN_DIR / "article-pagein.yaml").resolve("5.15.135")
    assert "__zram_bvec_read" not in pagein.probe_leaves(lambda name: name != "zram_get_handle")


def test_a_tree_whose_leaf_is_inlined_everywhere_holds_on_the_recorded_run(tmp_path: Path) -> None:
    """labs/inlined-leaf-5.15.yaml as run on 5.15.135 (fixtures README): scan_swap_map_slots has no symbol,
    get_swap_pages was probed for full stacks in its place, and the leaf is proved inside it from DWARF."""
    from kernlab.verify.evidence import verify_results
    from tests.test_trees import copy_results

    folder = copy_results(FIXTURES / "results-5.15.135-inlined-leaf", tmp_path)
    probes = json.loads((folder / "trace" / "probes.json").read_text())
    assert "get_swap_pages" in probes["stack"] and "scan_swap_map_slots" in probes["not_probed"]
    (chain,) = verify_results(folder, tmp_path / "verified")
    lines = {line.function: line for line in chain.lines}
    assert chain.holds and chain.hits > 0
    assert (lines["scan_swap_map_slots"].verdict, lines["scan_swap_map_slots"].into) == ("inlined", "get_swap_pages")
    assert "DWARF" in lines["scan_swap_map_slots"].evidence
    assert all(lines[name].verdict == "observed" for name in ("add_to_swap", "get_swap_page", "get_swap_pages",
                                                               "add_to_swap_cache"))
