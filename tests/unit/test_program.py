"""The `kernlab` command (issue 28): installed by bootstrap as a console script, it runs kernlab's tasks from any
folder, with paths relative to that folder, and says which kernlab it is. (On a recorded run:
tests/recorded/test_program.py.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

from kernlab.lab.provenance import kernlab_record
from kernlab.paths import REPO

KERNLAB = REPO / ".venv" / "bin" / "kernlab"


def kernlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(KERNLAB), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_version_names_kernlab_and_its_commit(tmp_path: Path) -> None:
    done = kernlab("--version", cwd=tmp_path)
    record = kernlab_record()
    assert done.returncode == 0 and done.stdout.startswith(f"kernlab {record.version} (commit {record.commit[:12]}")


def test_inv_in_the_checkout_still_finds_the_tasks() -> None:
    done = subprocess.run([str(REPO / ".venv" / "bin" / "inv"), "--list"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "lab.verify" in done.stdout


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
