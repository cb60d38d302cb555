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
import yaml

from kernlab.paths import REPO

WORKFLOW = REPO / ".github" / "workflows" / "lab.yml"
TARBALL = (REPO.parent / "shared" / "kernels" / "linux-5.15.135.tar.xz").resolve()
# Steps this machine has done already (apt packages and .venv; a udev rule is not this test's to change) or that
# stand for GitHub's own services: the real kernel cache is used instead of actions/cache.
SKIPPED_IDS = {"setup", "kvm"}
SKIPPED_ACTIONS = ("actions/checkout", "actions/cache")


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
