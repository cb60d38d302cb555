"""The results folder's contract without a recorded run: a folder that is not one is refused, a run's steps are
recorded on every exit path, a workload's name cannot escape the folder. (The recorded runs through the models:
tests/recorded/test_results.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from kernlab.errors import KernlabError
from kernlab.lab.recorder import RunRecorder
from kernlab.results.folder import ResultsFolder, find_folders
from kernlab.results.schema import Manifest, WorkloadRecord


def test_not_a_results_folder(tmp_path: Path) -> None:
    with pytest.raises(KernlabError, match="no such results folder"):
        ResultsFolder.open(tmp_path / "nope")
    with pytest.raises(KernlabError, match=r"not a results folder \(no manifest\.json\)"):
        ResultsFolder.open(tmp_path)
    with pytest.raises(KernlabError, match="no results folder here"):
        find_folders(tmp_path)


def test_steps_are_timed_and_a_failed_step_is_named(tmp_path: Path) -> None:
    folder = ResultsFolder.create(tmp_path, "lab")
    assert ResultsFolder.create(tmp_path, "lab").path != folder.path  # two runs in the same second
    run = RunRecorder(folder, Manifest(lab={"name": "lab"}, status="running"))
    with run.step("kernel"):
        pass
    with pytest.raises(KernlabError), run.step("boot"):
        raise KernlabError("guest did not boot: no console output\nmore detail")
    run.finish(KernlabError("guest did not boot"))
    manifest = ResultsFolder.open(folder.path).manifest()
    assert manifest.status == "incomplete" and manifest.failed_step == "boot"
    assert manifest.why == "guest did not boot: no console output"
    assert set(manifest.steps_s) == {"kernel", "boot", "total"}
    assert not list(folder.path.rglob("*.tmp"))


def test_an_interrupted_step_and_a_clean_finish(tmp_path: Path) -> None:
    folder = ResultsFolder.create(tmp_path, "lab")
    run = RunRecorder(folder, Manifest(lab={"name": "lab"}, status="running"))
    with pytest.raises(KeyboardInterrupt), run.step("workloads"):
        raise KeyboardInterrupt
    assert folder.manifest().why == "interrupted (Ctrl-C)"
    clean = RunRecorder(ResultsFolder.create(tmp_path, "other"), Manifest(status="running"))
    with clean.step("kernel"):
        pass
    clean.finish()
    manifest = clean.folder.manifest()
    assert manifest.status == "complete" and manifest.failed_step is None and manifest.finished


def test_a_workload_name_cannot_escape_the_folder(tmp_path: Path) -> None:
    folder = ResultsFolder.create(tmp_path, "lab")
    with pytest.raises(KernlabError):
        folder.write_workload(WorkloadRecord(name="../../evil"))
    assert not (tmp_path / "evil.json").exists()
