"""What ran a lab: kernlab's version and git commit (and whether the checkout had uncommitted changes), and the
CI run around it when there is one, for the manifest."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from kernlab import __version__, tools
from kernlab.errors import KernlabError
from kernlab.paths import REPO
from kernlab.results.schema import CiRecord, KernlabRecord

# GitHub Actions' default variables (docs.github.com, "Variables reference"): enough to find the run again.
GITHUB_VARIABLES = {"run_id": "GITHUB_RUN_ID", "run_attempt": "GITHUB_RUN_ATTEMPT", "job": "GITHUB_JOB",
                    "workflow": "GITHUB_WORKFLOW", "repository": "GITHUB_REPOSITORY", "sha": "GITHUB_SHA",
                    "ref": "GITHUB_REF", "server_url": "GITHUB_SERVER_URL"}


def kernlab_record(checkout: Path = REPO) -> KernlabRecord:
    """The version, and the git commit of the checkout when kernlab runs from one (None otherwise)."""
    record = KernlabRecord(version=__version__)
    if shutil.which("git") is None or not (checkout / ".git").exists():
        return record
    try:
        record.commit = tools.output(["git", "-C", checkout, "rev-parse", "HEAD"], what="git rev-parse")
        # Untracked files are left out: results/ and caches inside a checkout are no change to kernlab.
        record.dirty = bool(tools.output(["git", "-C", checkout, "status", "--porcelain", "--untracked-files=no"],
                                         what="git status"))
    except KernlabError:
        pass  # a checkout git cannot read (e.g. owned by another user) only loses the commit
    return record


def ci_record(environ: Mapping[str, str] | None = None) -> CiRecord | None:
    """The CI run's identifiers, from the environment; None outside CI."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_ACTIONS") == "true":
        return CiRecord(provider="github-actions",
                        **{key: env[name] for key, name in GITHUB_VARIABLES.items() if env.get(name)})
    if env.get("CI"):
        return CiRecord(provider="unknown")
    return None
