"""Chains that live with the experiment: a lab names kernlab's own spec, a spec file beside it (by a path relative
to the lab file), or writes the spec inline; each resolves as the library's does and errors name the lab key."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kernlab.config.lab import load_lab
from kernlab.errors import KernlabError
from kernlab.paths import CHAIN_DIR, LABS_DIR, REPO
from kernlab.verify.evidence import lab_chains

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
