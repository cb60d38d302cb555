"""The `kernlab` command (issue 28) on a recorded run: `kernlab lab.verify` from another folder with a path relative to
it; and kernel.key for a tarball or release the recorded run names, without a download."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from kernlab.kernel import build
from kernlab.paths import REPO
from tests.common import FIXTURES, recorded_run
from tests.unit.test_program import KERNLAB, kernlab

RUN = FIXTURES / "results-6.1-unhooked"


def test_it_runs_from_another_folder_with_paths_relative_to_it(tmp_path: Path) -> None:
    listed = kernlab("--list", cwd=tmp_path)
    assert listed.returncode == 0 and "lab.verify" in listed.stdout and "kernel.build" in listed.stdout
    recorded_run(RUN, tmp_path)  # tmp_path/results-6.1-unhooked, named relative to tmp_path below
    done = kernlab("lab.verify", RUN.name, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "chain pageout: holds" in done.stdout and (tmp_path / RUN.name / "reverified" / "chains.json").is_file()
    # a usage error is still exit 2, one line
    bad = kernlab("kernel.key", "--bogus", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("usage:")


def test_the_build_key_needs_no_download_nor_extraction(tmp_path: Path) -> None:
    """kernel.key for a tarball or kernel.org release with a known sha256: the key of the build that fetching
    and building gives, on an empty cache that stays empty (a mirror that cannot answer: nothing is asked)."""
    env = {**os.environ, "KERNLAB_KERNEL_MIRROR": "http://127.0.0.1:9/", "KERNLAB_OFFLINE": ""}
    recorded = json.loads((RUN.parent / "results-5.15.135-unhooked" / "manifest.json").read_text())["kernel"]
    tarball = subprocess.run([str(KERNLAB), "kernel.key", "--lab", str(REPO / "labs" / "zram-swap-5.15.yaml"),
                              "--cache", str(tmp_path / "cache")], cwd=tmp_path, capture_output=True, text=True,
                             env=env, timeout=120)
    assert tarball.returncode == 0, tarball.stderr
    if recorded["compiler"] == build.compiler_version():  # the recorded run's build, on this machine's gcc
        assert tarball.stdout.strip() == recorded["build_key"]
    release = subprocess.run([str(KERNLAB), "kernel.key", "--kernel", "5.15.177", "--cache", str(tmp_path / "cache")],
                             cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert release.returncode == 0 and len(release.stdout.strip()) == 16, release.stderr
    assert not (tmp_path / "cache").exists()
