"""The `kernlab` command (issue 28): installed by bootstrap as a console script, it runs kernlab's tasks from any
folder, with paths relative to that folder, and says which kernlab it is."""

from __future__ import annotations

import subprocess
from pathlib import Path

from kernlab.provenance import kernlab_record
from tests.test_trees import copy_results

REPO = Path(__file__).resolve().parent.parent
KERNLAB = REPO / ".venv" / "bin" / "kernlab"
RUN = REPO / "tests" / "fixtures" / "results-6.1-unhooked"


def kernlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(KERNLAB), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_version_names_kernlab_and_its_commit(tmp_path: Path) -> None:
    done = kernlab("--version", cwd=tmp_path)
    record = kernlab_record()
    assert done.returncode == 0 and done.stdout.startswith(f"kernlab {record.version} (commit {record.commit[:12]}")


def test_it_runs_from_another_folder_with_paths_relative_to_it(tmp_path: Path) -> None:
    listed = kernlab("--list", cwd=tmp_path)
    assert listed.returncode == 0 and "lab.verify" in listed.stdout and "kernel.build" in listed.stdout
    copy_results(RUN, tmp_path)  # tmp_path/results-6.1-unhooked, named relative to tmp_path below
    done = kernlab("lab.verify", RUN.name, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "chain pageout: holds" in done.stdout and (tmp_path / RUN.name / "reverified" / "chains.json").is_file()
    # a usage error is still exit 2, one line
    bad = kernlab("kernel.key", "--bogus", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("usage:")


def test_inv_in_the_checkout_still_finds_the_tasks() -> None:
    done = subprocess.run([str(REPO / ".venv" / "bin" / "inv"), "--list"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "lab.verify" in done.stdout
