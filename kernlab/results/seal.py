"""The seal of a results folder: the size and sha256 of every file a run wrote, taken as the run ends and kept in
its manifest, so that `lab.verify`, `lab.report` and `lab.compare` can refuse evidence changed since (a hist
file cut by an interrupted copy, one byte edited) instead of reading it into a different verdict."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from kernlab.errors import KernlabError
from kernlab.results.folder import MANIFEST, ResultsFolder
from kernlab.results.schema import FileSeal

# Written after the seal, or regenerable from what it covers: the manifest itself, the report, a re-verification.
UNSEALED = ("report.html", "report.md", "plots", "reverified")


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sealed_files(folder: Path) -> Iterable[Path]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and relative.parts[0] not in UNSEALED and relative.as_posix() != MANIFEST:
            yield path


def seal(folder: Path) -> dict[str, FileSeal]:
    """relative path -> size and sha256, for every file of the run but the manifest and the report."""
    return {path.relative_to(folder).as_posix(): FileSeal(size=path.stat().st_size, sha256=_digest(path))
            for path in _sealed_files(folder)}


def changed(folder: Path, sealed: dict[str, FileSeal]) -> list[str]:
    """The sealed files that are gone or differ now, each with how."""
    found = []
    for name, was in sealed.items():
        path = folder / name
        if not path.is_file():
            found.append(f"{name} (missing)")
        elif path.stat().st_size != was.size:
            found.append(f"{name} ({path.stat().st_size:,} bytes, sealed at {was.size:,})")
        elif _digest(path) != was.sha256:
            found.append(f"{name} (sha256 differs)")
    return found


def check(folders: Iterable[Path], accept_changed: bool = False) -> list[str]:
    """Refuse (KernlabError) a run folder whose sealed files changed, naming them; with accept_changed, return
    what to say instead. Folders from before the seal have none to check."""
    notes = []
    for folder in folders:
        manifest = ResultsFolder.open(folder).manifest()
        if not (problems := changed(folder, manifest.evidence)):
            continue
        listed = ", ".join(problems[:5]) + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")
        if not accept_changed:
            raise KernlabError(f"{folder}: evidence changed since the run sealed it: {listed} "
                               "(--accept-changed reads it anyway)")
        notes.append(f"note: {folder}: read although its evidence changed since the run sealed it: {listed}")
    return notes
