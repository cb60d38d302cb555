"""The results folder's contract: every recorded real run loads through the models without losing a fact,
bad files are refused naming the file and key, a newer format is refused and a cut-short sample line dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernlab.errors import KernlabError
from kernlab.results.chainrecords import ChainsFile
from kernlab.results.evidencerecords import BranchesFile, GraphCapture, GraphFile, ProbeSet
from kernlab.results.folder import ResultsFolder, read_model
from kernlab.results.schema import FORMAT, Manifest, Summary
from tests.common import FIXTURES, recorded_run

RECORDED = sorted(path.parent for path in FIXTURES.glob("results-*/manifest.json"))
FILES = {"manifest.json": Manifest, "summary.json": Summary, "chains.json": ChainsFile,
         "branches.json": BranchesFile, "trace/probes.json": ProbeSet, "graph.json": GraphFile,
         "trace/graph/windows.json": GraphCapture}


def test_there_are_recorded_runs_to_check() -> None:
    assert len(RECORDED) >= 5, RECORDED


@pytest.mark.parametrize("fixture", RECORDED, ids=lambda path: path.name)
def test_every_recorded_run_loads_through_the_models_with_every_fact_kept(fixture: Path) -> None:
    folder = ResultsFolder.open(fixture)
    manifest = folder.manifest()
    assert manifest.status == "complete" and manifest.kernel is not None and manifest.kernel.version
    assert manifest.lab_name and manifest.steps_s["total"] > 0
    workloads = folder.workloads()
    assert workloads and set(workloads) == {workload["name"] for workload in manifest.lab["workloads"]}
    assert all(record.exit_code == 0 and record.report and record.report["ok"] for record in workloads.values())
    assert len(folder.samples()) > 10
    summary = folder.summary()
    assert summary is not None and summary.figures()["pswpout_pages"] > 0
    for relative, model in FILES.items():
        path = fixture / relative
        if not path.exists():
            continue
        on_disk = json.loads(path.read_text())
        # Same facts back out: nothing dropped, renamed or retyped on the way through the model.
        assert read_model(path, model).model_dump(mode="json", exclude_unset=True) == on_disk, relative
    for path in (fixture / "workloads").glob("*.json"):
        on_disk = json.loads(path.read_text())
        assert workloads[on_disk["name"]].model_dump(mode="json", exclude_unset=True) == on_disk


@pytest.mark.parametrize("fixture", [path for path in RECORDED if (path / "chains.json").exists()],
                         ids=lambda path: path.name)
def test_chain_verdicts_in_the_manifest_agree_with_chains_json(fixture: Path) -> None:
    folder = ResultsFolder.open(fixture)
    chains = folder.chains()
    assert chains is not None and chains.chains
    manifest = folder.manifest()
    for chain in chains.chains:
        kept = manifest.chains[chain.name]
        assert (kept.holds, kept.hits, kept.ok) == (chain.holds, chain.hits, chain.expectation_met())


def test_bad_files_are_refused_naming_the_file_and_key(tmp_path: Path) -> None:
    folder = recorded_run("results-6.1-untraced", tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "steps_s": {"boot": "slow"}}))
    with pytest.raises(KernlabError, match=r"manifest\.json: steps_s\.boot: Input should be a valid number"):
        ResultsFolder.open(folder).manifest()
    (folder / "summary.json").write_text("[1, 2]")
    with pytest.raises(KernlabError, match=r"summary\.json: expected a JSON object, found list"):
        ResultsFolder.open(folder).summary()
    (folder / "workloads" / "shared-hog.json").write_text("{not json")
    with pytest.raises(KernlabError, match=r"shared-hog\.json: not valid JSON"):
        ResultsFolder.open(folder).workloads()


def test_a_folder_from_a_newer_kernlab_is_refused_and_an_older_one_read(tmp_path: Path) -> None:
    folder = recorded_run("results-6.1-untraced", tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "format" not in manifest  # recorded before the format field existed: read as format 1
    assert ResultsFolder.open(folder).manifest().format == 1
    (folder / "manifest.json").write_text(json.dumps({**manifest, "format": FORMAT + 1}))
    with pytest.raises(KernlabError, match=r"written by a newer kernlab \(format 2; this one reads up to 1\)"):
        ResultsFolder.open(folder).manifest()


def test_a_cut_short_sample_line_is_dropped_and_a_bad_one_named(tmp_path: Path) -> None:
    folder = recorded_run("results-6.1-untraced", tmp_path)
    samples = folder / "samples.jsonl"
    count = len(ResultsFolder(folder).samples())
    samples.write_text(samples.read_text() + '{"t": 1')  # a run killed mid-write
    assert len(ResultsFolder(folder).samples()) == count
    samples.write_text('{"t": 1}\nnot json\n{"t": 2}\n')
    with pytest.raises(KernlabError, match=r"samples\.jsonl:2: not valid JSON"):
        ResultsFolder(folder).samples()
