"""The `kernlab` command (issue 28): installed by bootstrap as a console script, it runs kernlab's tasks from any
folder, with paths relative to that folder, and says which kernlab it is."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from kernlab.kernel import build
from kernlab.lab.provenance import kernlab_record
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


def test_a_short_flag_means_one_option_on_every_task() -> None:
    from kernlab.cli.tasks import namespace

    meanings: dict[str, set[str]] = {}
    for name in namespace.task_names:
        for argument in namespace[name].get_arguments():
            long, *short = sorted(argument.names, key=len, reverse=True)
            for flag in short:
                meanings.setdefault(flag, set()).add(long)
    assert meanings and all(len(longs) == 1 or longs == {"kernel", "kernels"} for longs in meanings.values()), meanings


def test_a_word_where_a_number_goes_is_a_usage_error(tmp_path: Path) -> None:
    done = kernlab("kernel.build", "--jobs", "four", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip() == "usage: --jobs 'four': not a whole number"
    assert "Traceback" not in done.stderr


def test_a_lab_file_is_read_from_the_folder_kernlab_runs_in(tmp_path: Path) -> None:
    """`kernlab lab --lab my.yaml` in the user's experiment folder reads that folder's my.yaml (here one whose
    name kernlab refuses, so that nothing is built: the error names the file as given)."""
    (tmp_path / "my.yaml").write_text((REPO / "labs" / "zram-swap.yaml").read_text().replace(
        "name: zram-swap", "name: 'not a name!'", 1))
    done = kernlab("lab", "--lab", "my.yaml", "--results", "out", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.startswith("error: my.yaml: name:"), done.stderr
    assert not (tmp_path / "out").exists()


def test_help_after_a_task_with_a_positional_argument_shows_its_help(tmp_path: Path) -> None:
    """Invoke fills a missing positional argument before it looks for --help: `chains.check --help` read
    '--help' as a spec file."""
    for task in ("chains.check", "lab.verify", "chains.import"):
        done = kernlab(task, "--help", cwd=tmp_path)
        assert done.returncode == 0 and f"{task} [--options]" in done.stdout, done.stderr
