"""Preflight (issue 25): results on a full disk, on a directory that cannot be written, under a lab name too long
for a path, or a cache path that is a file: `inv lab` fails before anything is fetched or booted, in one line,
exit 1, with no results folder left behind."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernlab.cache import Cache
from kernlab.config.lab import load_lab
from kernlab.errors import KernlabError
from kernlab.lab import preflight
from kernlab.paths import DEFAULT_LAB
from kernlab.units import MIB
from tests.common import inv


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB filesystem (tmpfs), as the fault probe used; mounting needs root, as CI here has."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def assert_one_line_failure(result: subprocess.CompletedProcess, said: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    assert "kernel:" not in result.stdout  # nothing fetched or built


def test_a_full_disk_is_found_before_the_run(tiny_disk: Path) -> None:
    results = tiny_disk / "results"
    result = inv("lab", "--results", str(results), "--cache", str(tiny_disk / "cache"))
    assert_one_line_failure(result, "MiB free; a run of lab zram-swap may write up to")
    assert list(tiny_disk.iterdir()) == []  # no results folder, no cache


def test_a_results_directory_that_cannot_be_written_is_found_before_the_run(tmp_path: Path) -> None:
    # /proc/self is a directory no one can create files in, root included (a read-only mount says the same)
    result = inv("lab", "--results", "/proc/self/kernlab-results", "--cache", str(tmp_path / "cache"))
    assert_one_line_failure(result, "results: /proc/self cannot be written")
    assert not (tmp_path / "cache").exists()


def test_results_under_a_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = inv("lab", "--results", str(tmp_path / "file" / "results"), "--cache", str(tmp_path / "cache"))
    assert_one_line_failure(result, "is a file, not a directory")


def test_a_cache_that_is_a_file_is_refused_by_every_task(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.write_text("not a directory")
    for task in (["lab", "--results", str(tmp_path / "results")], ["kernel.key"]):
        result = inv(*task, "--cache", str(cache))
        assert_one_line_failure(result, f"cache: {cache} is a file, not a directory")
    assert not (tmp_path / "results").exists() and cache.read_text() == "not a directory"


def test_a_lab_name_too_long_for_a_path_is_refused_at_load(tmp_path: Path) -> None:
    lab = tmp_path / "long.yaml"
    lab.write_text(DEFAULT_LAB.read_text().replace("name: zram-swap", "name: " + "n" * 300, 1))
    result = inv("lab", "--lab", str(lab), "--results", str(tmp_path / "results"), "--cache", str(tmp_path / "c"))
    assert_one_line_failure(result, "is 300 characters long: a name has at most 100")
    assert not (tmp_path / "results").exists()


def test_the_estimate_grows_with_what_the_lab_records(tmp_path: Path) -> None:
    lab = load_lab(DEFAULT_LAB)
    untraced = lab.model_copy(update={"tracing": lab.tracing.model_copy(update={"enabled": False})})
    assert preflight.estimate_bytes(untraced) < preflight.estimate_bytes(lab) < 200 * MIB
    preflight.check(lab, tmp_path / "results")  # room here: no error
    with pytest.raises(KernlabError, match="is a file, not a directory"):
        (tmp_path / "c").write_text("x")
        Cache(tmp_path / "c")  # however a Cache is made, not only by Cache.at
