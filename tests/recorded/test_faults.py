"""The fault suite on broken results folders (copies of a recorded run): missing, empty, cut short, without a kernel
or without its trace, each task that reads one says what is wrong in one line and writes nothing into it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.common import FIXTURES, inv, recorded_run

TRACED = FIXTURES / "results-6.1-sizing"
BROKEN = ("missing", "empty", "truncated", "no-kernel", "no-trace")


def broken_folders(tmp_path: Path) -> dict[str, Path]:
    """A results folder that is missing, empty, cut short, without a kernel, or without its trace."""
    folders = {"missing": tmp_path / "missing", "empty": tmp_path / "empty"}
    folders["empty"].mkdir()
    for name in ("truncated", "no-kernel", "no-trace"):
        folders[name] = recorded_run(TRACED, tmp_path, folder=name)
    manifest = (TRACED / "manifest.json").read_text()
    (folders["truncated"] / "manifest.json").write_text(manifest[:200])
    (folders["no-kernel"] / "manifest.json").write_text('{"lab": {"name": "x"}, "status": "incomplete"}')
    shutil.rmtree(folders["no-trace"] / "trace")
    return folders


@pytest.mark.parametrize("task", ["lab.verify", "lab.compare", "lab.rerun", "lab.report"])
def test_tasks_on_broken_results_folders_say_what_is_wrong_in_one_line(tmp_path: Path, task: str) -> None:
    """Before: tracebacks from lab.verify, exit 0 with `None` everywhere from lab.compare, "no such manifest"."""
    # Only lab.verify needs everything; an incomplete run can still be compared and reported (saying why),
    # and a rerun needs only a manifest with its kernel.
    broken = {"lab.verify": BROKEN, "lab.compare": BROKEN[:3], "lab.report": BROKEN[:3], "lab.rerun": BROKEN[:4]}
    for kind, folder in broken_folders(tmp_path).items():
        if kind not in broken[task]:
            continue
        args = {"lab.compare": [str(folder), str(TRACED)], "lab.rerun": [str(folder / "manifest.json")]}
        result = inv(task, *args.get(task, [str(folder)]))
        assert result.returncode == 1, (kind, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.startswith("error: "), (kind, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (kind, result.stderr)
    assert not list((tmp_path / "empty").iterdir())  # nothing written into a folder that is not a run
