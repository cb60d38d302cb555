"""What ran a lab: kernlab's commit and CI run ids in the manifest (kernlab.provenance)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from kernlab import __version__
from kernlab.lab import provenance
from kernlab.report.views import ci_text, kernlab_text


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_the_commit_and_whether_tracked_files_changed(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "tasks.py").write_text("one\n")
    git(tmp_path, "add", "tasks.py")
    git(tmp_path, "commit", "-qm", "first")
    clean = provenance.kernlab_record(tmp_path)
    assert clean.version == __version__ and re.fullmatch(r"[0-9a-f]{40}", clean.commit or "") and clean.dirty is False
    (tmp_path / "results").mkdir()  # untracked output is no change to kernlab
    (tmp_path / "results" / "x.json").write_text("{}")
    assert provenance.kernlab_record(tmp_path).dirty is False
    (tmp_path / "tasks.py").write_text("two\n")
    changed = provenance.kernlab_record(tmp_path)
    assert changed.dirty is True and changed.commit == clean.commit
    assert kernlab_text(changed) == f"{__version__} at commit {clean.commit[:12]} with uncommitted changes"


def test_no_checkout_is_only_the_version(tmp_path: Path) -> None:
    record = provenance.kernlab_record(tmp_path)
    assert (record.commit, record.dirty) == (None, None)
    assert kernlab_text(record) == f"{__version__} (no git checkout)"


def test_ci_ids_from_the_environment() -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "1234", "GITHUB_RUN_ATTEMPT": "2", "GITHUB_JOB": "lab",
           "GITHUB_REPOSITORY": "kernlab/kernlab", "GITHUB_SHA": "f" * 40}
    record = provenance.ci_record(env)
    assert record is not None
    assert (record.provider, record.run_id, record.run_attempt) == ("github-actions", "1234", "2")
    assert ci_text(record).startswith("github-actions: run_id 1234, run_attempt 2, job lab")
    assert provenance.ci_record({"CI": "true"}).provider == "unknown"
    assert provenance.ci_record({}) is None
