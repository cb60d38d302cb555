"""The `kernlab` command (a console script): Invoke's Program over kernlab.cli.tasks, from any folder; lab files and
results paths are the user's, relative to where it runs."""

from __future__ import annotations

from invoke import Program


class KernlabProgram(Program):
    def print_version(self) -> None:
        """kernlab's version and the commit of its checkout (git is asked only here, not at every start)."""
        from kernlab.lab.provenance import kernlab_record

        record = kernlab_record()
        commit = f" (commit {record.commit[:12]}{', modified' if record.dirty else ''})" if record.commit else ""
        print(f"kernlab {record.version}{commit}")


def main() -> None:
    from kernlab.cli import tasks

    KernlabProgram(namespace=tasks.namespace, name="kernlab", binary="kernlab").run()
