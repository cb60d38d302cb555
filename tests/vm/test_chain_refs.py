"""Chains that live with the experiment, end to end: a lab outside the checkout that names a spec file beside it and
writes a second one inline, run by `inv lab` on the 5.15 kernel kernlab built."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kernlab.config.lab import load_lab
from kernlab.paths import CHAIN_DIR, LABS_DIR, REPO


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
