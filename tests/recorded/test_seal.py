"""The seal (issue 25): a copy of a recorded run, sealed as a run seals itself, with one byte changed, cut short or
gone, is refused by lab.verify, lab.report and lab.compare, naming the file; --accept-changed reads it, saying so."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from kernlab.cli import lab_tasks
from kernlab.errors import KernlabError
from kernlab.results import seal
from kernlab.results.folder import ResultsFolder
from tests.common import FIXTURES, recorded_run

RECORDED = FIXTURES / "results-6.1-trees"
HIST = "trace/hist/zcomp_compress.hist"


def sealed_copy(tmp_path: Path, name: str = "run") -> Path:
    """The recorded run copied and sealed, as kernlab.run seals a run when it ends."""
    folder = recorded_run(RECORDED, tmp_path, folder=name)
    results = ResultsFolder.open(folder)
    manifest = results.manifest()
    manifest.evidence = seal.seal(folder)
    results.write(manifest)
    return folder


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def console() -> Console:
    return Console(file=io.StringIO(), width=200)


def test_the_seal_covers_every_file_but_the_manifest_and_the_report(tmp_path: Path) -> None:
    folder = sealed_copy(tmp_path)
    sealed = ResultsFolder.open(folder).manifest().evidence
    assert HIST in sealed and "chains.json" in sealed and "samples.jsonl" in sealed and "System.map" in sealed
    assert "manifest.json" not in sealed and not any(name.startswith("report.") for name in sealed)
    assert seal.check([folder]) == [] and seal.changed(folder, sealed) == []


@pytest.mark.parametrize(("damage", "said"), [
    (flip_one_byte, "trace/hist/zcomp_compress.hist (sha256 differs)"),
    (lambda path: path.write_bytes(path.read_bytes()[:100]), "trace/hist/zcomp_compress.hist (100 bytes, sealed at"),
    (Path.unlink, "trace/hist/zcomp_compress.hist (missing)"),
])
def test_changed_evidence_is_refused_by_verify_report_and_compare(tmp_path: Path, damage, said: str) -> None:
    folder, other = sealed_copy(tmp_path), sealed_copy(tmp_path, "other")
    chains_before = (folder / "chains.json").read_bytes()
    damage(folder / HIST)
    calls = (lambda: lab_tasks.lab_verify(folder, console()), lambda: lab_tasks.lab_report([folder], console()),
             lambda: lab_tasks.compare_runs(console(), folder, other),
             lambda: lab_tasks.compare_runs(console(), other, folder))
    for call in calls:
        with pytest.raises(KernlabError, match="evidence changed since the run sealed it") as refused:
            call()
        assert said in str(refused.value) and "--accept-changed" in str(refused.value)
        assert "\n" not in str(refused.value)
    assert (folder / "chains.json").read_bytes() == chains_before
    assert not (folder / "reverified").exists() and not (folder / "report.html").exists()


def test_accept_changed_reads_the_folder_and_says_so(tmp_path: Path) -> None:
    folder = sealed_copy(tmp_path)
    text = (folder / "samples.jsonl").read_text()
    (folder / "samples.jsonl").write_text(text + "\n")
    out = console()
    written = lab_tasks.lab_report([folder], out, accept_changed=True)
    assert written and "read although its evidence changed" in out.file.getvalue()
    assert "samples.jsonl" in out.file.getvalue()


def test_a_folder_from_before_the_seal_has_nothing_to_check(tmp_path: Path) -> None:
    folder = recorded_run(RECORDED, tmp_path, folder="old")
    assert ResultsFolder.open(folder).manifest().evidence == {}
    flip_one_byte(folder / HIST)
    assert seal.check([folder]) == []
