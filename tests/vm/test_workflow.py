"""The GitHub Actions workflow (.github/workflows/lab.yml), rehearsed on this machine: its kernel, lab, sweep and
merge jobs' `run:` lines in order, with the small CI lab, GITHUB_ACTIONS=true and the step summary, outputs and
artifact paths in a temporary workspace; then what the workflow uploads must exist and the job summary and JUnit
XML must hold the runs' real verdicts."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kernlab.paths import REPO
from tests.common import SHARED_TARBALL_515
from tests.unit.test_workflow import workflow

TARBALL = SHARED_TARBALL_515.resolve()


# Steps this machine has done already (apt packages and .venv; a udev rule is not this test's to change) or that
# stand for GitHub's own services: the real kernel cache is used instead of actions/cache.
SKIPPED_IDS = {"setup", "kvm"}


SKIPPED_ACTIONS = ("actions/checkout", "actions/cache")


def run_job(name: str, job: dict, env: dict[str, str], workspace: Path, uploads: dict[str, Path]) -> None:
    for step in job["steps"]:
        uses = step.get("uses", "")
        if step.get("id") in SKIPPED_IDS or uses.startswith(SKIPPED_ACTIONS):
            continue
        if uses.startswith("actions/upload-artifact"):
            uploads[expand(step["with"]["name"], env)] = workspace / expand(step["with"]["path"], env)
            continue
        if uses.startswith("actions/download-artifact"):
            # Without merge-multiple, each artifact lands in a folder named after it.
            prefix = step["with"]["pattern"].rstrip("*")
            for artifact, path in uploads.items():
                if artifact.startswith(prefix):
                    shutil.copytree(path, workspace / step["with"]["path"] / artifact)
            continue
        if "cache-hit" in str(step.get("if", "")):
            continue  # the kernel build: this machine's cache holds it (checked by the caller)
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                                cwd=workspace, env=env, capture_output=True, text=True, timeout=1800)
        assert result.returncode == 0, f"{name}: {step.get('name')}: {result.stdout[-3000:]}{result.stderr[-3000:]}"


def expand(text: str, env: dict[str, str]) -> str:
    """The ${{ env.X }} and ${{ matrix.shard }} expressions of with: values."""
    for key, value in env.items():
        text = text.replace(f"${{{{ env.{key} }}}}", value)
    return text.replace("${{ matrix.shard }}", env.get("SHARD", ""))


@pytest.mark.vm
@pytest.mark.slow
def test_the_lab_sweep_and_merge_jobs_run_here_and_leave_what_ci_reads(kernel_build_515, real_cache,
                                                                       tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    for name in (".venv", "tasks.py", "labs"):
        (workspace / name).symlink_to(REPO / name)
    summary, outputs = tmp_path / "step-summary.md", tmp_path / "github-output"
    base = {**os.environ, **{key: str(value) for key, value in workflow()["env"].items()},
            "LAB": "labs/ci-smoke.yaml", "SWEEP_LAB": "labs/ci-smoke.yaml", "KERNEL": f"tarball:{TARBALL}",
            "KERNLAB_CACHE": str(real_cache.root), "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_OUTPUT": str(outputs)}
    uploads: dict[str, Path] = {}
    jobs = workflow()["jobs"]
    run_job("kernel", jobs["kernel"], base, workspace, uploads)
    key = outputs.read_text().strip().removeprefix("key=")
    assert key == kernel_build_515.info["key"] and (real_cache.root / "builds" / key / "build.json").is_file()
    run_job("lab", jobs["lab"], {**base, "RESULTS": "lab-results"}, workspace, uploads)
    for shard in jobs["sweep"]["strategy"]["matrix"]["shard"]:
        run_job(f"sweep {shard}", jobs["sweep"], {**base, "SHARD": str(shard), "RESULTS": f"sweep-{shard}"},
                workspace, uploads)
    run_job("merge", jobs["merge"], base, workspace, uploads)

    assert set(uploads) == {"lab-results", "sweep-shard-1", "sweep-shard-2", "sweep-comparison"}
    assert all(path.is_dir() for path in uploads.values()), uploads
    # JUnit: the lab's one chain, and one variant per shard, each with its real verdict.
    lab_suite = ET.parse(uploads["lab-results"] / "junit.xml").getroot().find("testsuite")
    assert lab_suite.get("name") == "ci-smoke on linux 5.15.135"
    assert (lab_suite.get("tests"), lab_suite.get("failures")) == ("1", "0")
    assert lab_suite.find("testcase").get("name") == "pageout: expected to hold"
    for shard in (1, 2):
        suites = ET.parse(uploads[f"sweep-shard-{shard}"] / f"junit-{shard}.xml").getroot().findall("testsuite")
        assert len(suites) == 1 and suites[0].get("failures") == "0"
    # The job summary: three runs' verdict tables, with their hits.
    text = summary.read_text()
    assert text.count("### ci-smoke: kernlab report") == 3
    assert text.count("| `pageout` | holds |") == 3
    # The merged comparison holds both shards' variants.
    comparison = (uploads["sweep-comparison"] / "comparison.md").read_text()
    assert "lz4" in comparison and "lzo-rle" in comparison
