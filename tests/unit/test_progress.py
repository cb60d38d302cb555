"""Progress a CI log shows (kernlab.progress): a piped kernel build says how far it is at least every interval,
and GitHub Actions gets collapsible groups."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from rich.console import Console

from kernlab import progress
from kernlab.cache import Cache
from kernlab.cli import common, kernel_tasks
from kernlab.config.lab import KernelSpec, load_lab
from kernlab.errors import KernlabError
from kernlab.paths import DEFAULT_LAB
from tests.common import fake_kernel_makefile, fake_kernel_tree

# A stand-in kernel whose bzImage step compiles six objects slowly, then fails (only the progress matters).
SLOW_BUILD = fake_kernel_makefile(998, "CONFIG_SWAP=y", [
    *(f"@echo '  CC      mm/obj{i}.o'; sleep 0.4" for i in range(6)), "@exit 1"])


def test_a_piped_kernel_build_reports_progress_every_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree, kconfigs = fake_kernel_tree(tmp_path, SLOW_BUILD)
    monkeypatch.setattr(kernel_tasks, "KCONFIG_DIR", kconfigs)
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.5)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    out = io.StringIO()
    lab = load_lab(DEFAULT_LAB).model_copy(update={"kernel": KernelSpec(version=f"path:{tree}", fragments=["one"])})
    ctx = common.Context(lab, DEFAULT_LAB, Cache(tmp_path / "cache"), Console(file=out, width=120))  # not a terminal
    started = time.monotonic()
    with pytest.raises(KernlabError, match="kernel build failed"):
        kernel_tasks.build_kernel(ctx, jobs=1)
    seconds = time.monotonic() - started
    lines = out.getvalue().splitlines()
    beats = [line for line in lines if line.startswith("building linux 5.15.998: ")]
    # One line per interval while make ran (about 2.4 s of it), the object count rising as kbuild printed them.
    assert len(beats) >= 3 and len(beats) <= seconds / 0.5 + 1, lines
    counts = [int(line.split(": ")[1].split()[0]) for line in beats]
    assert counts == sorted(counts) and counts[-1] >= 4
    group = lines.index("::group::build linux 5.15.998")
    assert lines.index("::endgroup::") > lines.index(beats[-1]) > group
    assert lines[group + 1].startswith("build log: ")


def test_groups_only_under_github_actions() -> None:
    said: list[str] = []
    with progress.group("boot", said.append, environ={}):
        said.append("inside")
    with progress.group("boot", said.append, environ={"GITHUB_ACTIONS": "true"}):
        said.append("inside")
    assert said == ["inside", "::group::boot", "inside", "::endgroup::"]
