"""The GitHub Actions workflow (.github/workflows/lab.yml) as a file: a valid workflow, every job bounded, the
builds restored where needed, a failing key step failing its job. (Its jobs rehearsed on this machine:
tests/vm/test_workflow.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from kernlab.paths import REPO

WORKFLOW = REPO / ".github" / "workflows" / "lab.yml"


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_the_workflow_is_a_valid_github_workflow() -> None:
    """The schema GitHub workflows follow (SchemaStore's, vendored by check-jsonschema: it needs no network;
    actionlint itself runs in the workflow's fast-tests job, where GitHub is reachable)."""
    checker = shutil.which("check-jsonschema", path=str(REPO / ".venv" / "bin")) or shutil.which("check-jsonschema")
    assert checker, "check-jsonschema is a dev dependency (pyproject.toml)"
    result = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = workflow()["jobs"]
    assert set(jobs) == {"fast-tests", "kernel", "lab", "sweep", "merge"}
    for job in jobs.values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step  # run lines read shell variables only
    assert jobs["sweep"]["strategy"]["matrix"]["shard"] == [1, 2] and workflow()["env"]["SHARDS"] == "2"


def test_every_job_is_bounded_and_the_run_reads_no_more_than_it_needs() -> None:
    document = workflow()
    jobs = document["jobs"]
    assert all(0 < job["timeout-minutes"] <= 90 for job in jobs.values()), {n: j.get("timeout-minutes")
                                                                          for n, j in jobs.items()}
    assert document["permissions"] == {"contents": "read"}
    assert document["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    assert jobs["merge"]["if"] == "${{ !cancelled() }}"  # not always(): a cancelled run merges nothing


def test_the_jobs_that_need_the_build_restore_it() -> None:
    jobs = workflow()["jobs"]
    for name, job in jobs.items():
        if "kernel" not in (job.get("needs") or []):
            continue
        restored = [step["with"]["path"] for step in job["steps"] if step.get("uses", "").startswith("actions/cache")]
        assert "${{ env.KERNLAB_CACHE }}/builds/${{ needs.kernel.outputs.key }}" in restored, name
        assert "${{ env.KERNLAB_CACHE }}/tarballs" in restored, name
        runs = " ".join(step.get("run", "") for step in job["steps"])
        assert '--accel "$ACCEL"' in runs and "ACCEL=kvm" in runs and "::warning::" in runs, name
    assert {name for name, job in jobs.items() if "kernel" in (job.get("needs") or [])} == {"lab", "sweep"}
    # ccache keeps its own key with restore-keys, so a build miss still finds the last run's objects
    ccache = next(step for step in jobs["kernel"]["steps"]
                  if step.get("with", {}).get("path") == "${{ env.CCACHE_DIR }}")
    assert ccache["with"]["restore-keys"].split() == ["ccache-${{", "steps.key.outputs.key", "}}-", "ccache-"]


def test_a_failing_key_step_fails_the_job(tmp_path: Path) -> None:
    """`echo "key=$(...)"` once hid a failing kernel.key (the next jobs got an empty key)."""
    step = next(step for step in workflow()["jobs"]["kernel"]["steps"] if step.get("id") == "key")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    fake = tmp_path / ".venv" / "bin" / "inv"
    outputs = tmp_path / "github-output"
    for code, printed in ((1, ""), (0, "")):  # a failing command, and one that prints no key
        fake.write_text(f"#!/bin/sh\necho '{printed}'\nexit {code}\n")
        fake.chmod(0o755)
        outputs.write_text("")
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                                cwd=tmp_path, env={**os.environ, "GITHUB_OUTPUT": str(outputs), "LAB": "x",
                                                   "KERNEL": "y"}, capture_output=True, text=True)
        assert result.returncode != 0 and outputs.read_text() == "", (code, result)
    fake.write_text("#!/bin/sh\necho 0123456789abcdef\n")
    assert subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], cwd=tmp_path,
                          env={**os.environ, "GITHUB_OUTPUT": str(outputs), "LAB": "x", "KERNEL": "y"}).returncode == 0
    assert outputs.read_text() == "key=0123456789abcdef\n"
