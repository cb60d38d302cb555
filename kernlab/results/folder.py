"""The results folder's contract: a model of every JSON file a lab run writes (manifest, summary, samples,
workloads/, chains, branches, trace/ probes and vmlinux fact tables, a sweep's plan), and the one reader and writer
of them. Older folders are read (fields added since have defaults); a newer `format` is refused, saying so."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from kernlab.cache import check_child, json_bytes, write_bytes_atomic
from kernlab.errors import KernlabError
from kernlab.results.chainrecords import ChainsFile
from kernlab.results.evidencerecords import BranchesFile, GraphCapture, GraphFile, ProbeSet
from kernlab.results.schema import FORMAT, Manifest, Summary, WorkloadRecord
from kernlab.results.sweeprecords import AggregateFile, SweepPlan
from kernlab.yamlfile import validation_message

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
SAMPLES = "samples.jsonl"
CHAINS = "chains.json"
BRANCHES = "branches.json"
SWEEP = "sweep.json"
AGGREGATE = "aggregate.json"  # a variant's repeats (kernlab.results.aggregate)
OBSERVER = "observer.json"  # traced against untraced (kernlab.lab.observer)
PROBES = "trace/probes.json"
WORKLOADS = "workloads"
HIST_DIR = "trace/hist"
# What each histogram had counted when the probes were unhooked for a workload's graph window (trace.unhook_commands):
# HELD_HIST_DIR/<workload>/<probe>.hist, added to the probe's trace/hist/<probe>.hist by verification.
HELD_HIST_DIR = "trace/hist/before-graph"
GRAPH_DIR = "trace/graph"  # raw function_graph trace and ring-buffer stats of each window
GRAPH_CAPTURE = "trace/graph/windows.json"
GRAPH = "graph.json"  # the windows' merged call trees (kernlab.verify.evidence)
# vmlinux facts kept beside the evidence so verification runs offline later (kernlab.verify.evidence)
FACT_TABLES = {"inline": "trace/inline.json", "inline_trees": "trace/inline-trees.json", "ops": "trace/ops.json",
               "pointers": "trace/pointers.json"}
FactTable = Literal["inline", "inline_trees", "ops", "pointers"]

M = TypeVar("M", bound=BaseModel)


FILE_OF: dict[type[BaseModel], str] = {Manifest: MANIFEST, Summary: SUMMARY, ChainsFile: CHAINS,
                                       BranchesFile: BRANCHES, ProbeSet: PROBES, GraphCapture: GRAPH_CAPTURE,
                                       GraphFile: GRAPH}


def new_timestamped_folder(parent: Path, prefix: str = "", suffix: str = "") -> Path:
    """A new folder parent/PREFIX<UTC time>SUFFIX, made; -2, -3... when another started within the same second."""
    check_child(parent)
    stamp = f"{prefix}{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}{suffix}"
    path, clash = parent / stamp, 1
    while path.exists():
        clash += 1
        path = parent / f"{stamp}-{clash}"
    path.mkdir(parents=True)
    return path


def _dump(model: BaseModel | dict | list) -> bytes:
    return json_bytes(model.model_dump(mode="json") if isinstance(model, BaseModel) else model)


def write_model(path: Path, model: BaseModel | dict | list) -> None:
    """Atomically: a reader never sees half a file, and a crash leaves the previous one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, _dump(model))


def parse_json(text: str, path: Path) -> Any:
    if not text.strip():
        raise KernlabError(f"{path}: empty (the run was cut short while writing it?)")
    try:
        return json.loads(text)
    except ValueError as error:
        raise KernlabError(f"{path}: not valid JSON ({str(error).splitlines()[0]})") from None


def read_text(path: Path, why_missing: str = "") -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise KernlabError(f"{path}: missing" + (f": {why_missing}" if why_missing else "")) from None
    except (OSError, UnicodeDecodeError) as error:
        raise KernlabError(f"{path}: unreadable ({getattr(error, 'strerror', None) or error})") from None


def validate(data: Any, path: Path, model: type[M]) -> M:
    """Parsed JSON as its model; a one-line KernlabError naming the file and key otherwise."""
    if not isinstance(data, dict):
        raise KernlabError(f"{path}: expected a JSON object, found {type(data).__name__}")
    if isinstance(data.get("format"), int) and data["format"] > FORMAT:
        raise KernlabError(f"{path}: written by a newer kernlab (format {data['format']}; this one reads up to "
                           f"{FORMAT}): update kernlab to read it")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise KernlabError(validation_message(str(path), error)) from None


def read_model(path: Path, model: type[M]) -> M:
    return validate(parse_json(read_text(path), path), path, model)


def read_samples(path: Path) -> list[dict[str, Any]]:
    """samples.jsonl rows (kernlab.probes.zram.Sample.as_row); a run killed mid-write leaves a partial last line,
    which is dropped; any other bad line is an error naming it."""
    if not path.exists():
        return []
    text = read_text(path)
    lines = text.splitlines()
    samples = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            if number == len(lines) and not text.endswith("\n"):
                break
            raise KernlabError(f"{path}:{number}: not valid JSON ({error})") from None
        if not isinstance(row, dict):
            raise KernlabError(f"{path}:{number}: expected a JSON object per line")
        samples.append(row)
    return samples


class ResultsFolder:
    """One lab run's results folder: typed reads (absent optional files are None) and atomic writes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ResultsFolder({str(self.path)!r})"

    @classmethod
    def open(cls, path: Path) -> ResultsFolder:
        """An existing folder of a kernlab run, given as the folder or its manifest.json; refuses anything else
        with a one-line error."""
        path = Path(path)
        folder = cls(path.parent if path.name == MANIFEST and path.is_file() else path)
        if not folder.path.is_dir():
            raise KernlabError(f"{folder.path}: no such results folder")
        if not (folder.path / MANIFEST).is_file():
            raise KernlabError(f"{folder.path}: not a results folder (no {MANIFEST})")
        return folder

    @classmethod
    def create(cls, root: Path, lab_name: str) -> ResultsFolder:
        """A new folder root/LAB/TIMESTAMP (with -2, -3... when runs start within the same second)."""
        return cls(new_timestamped_folder(root / lab_name))

    def file(self, relative: str) -> Path:
        """A path inside the folder; a name that would lead out of it (`../x`, `/x`) is refused."""
        path = self.path / relative
        if not path.resolve().is_relative_to(self.path.resolve()) or path.resolve() == self.path.resolve():
            raise KernlabError(f"{path}: refusing to write outside the results folder {self.path}")
        return path

    def _optional(self, relative: str, model: type[M]) -> M | None:
        path = self.path / relative
        return read_model(path, model) if path.exists() else None

    # reads
    def manifest(self) -> Manifest:
        return read_model(self.path / MANIFEST, Manifest)

    def summary(self) -> Summary | None:
        return self._optional(SUMMARY, Summary)

    def chains(self) -> ChainsFile | None:
        return self._optional(CHAINS, ChainsFile)

    def branches(self) -> BranchesFile | None:
        return self._optional(BRANCHES, BranchesFile)

    def probes(self) -> ProbeSet | None:
        return self._optional(PROBES, ProbeSet)

    def graph_capture(self) -> GraphCapture | None:
        return self._optional(GRAPH_CAPTURE, GraphCapture)

    def graph(self) -> GraphFile | None:
        return self._optional(GRAPH, GraphFile)

    def samples(self) -> list[dict[str, Any]]:
        return read_samples(self.path / SAMPLES)

    def workloads(self) -> dict[str, WorkloadRecord]:
        found: dict[str, WorkloadRecord] = {}
        for path in sorted((self.path / WORKLOADS).glob("*.json")):
            data = parse_json(read_text(path), path)
            if isinstance(data, dict) and not data.get("name"):
                data["name"] = path.stem  # a record without its name is still shown, under its file's
            record = validate(data, path, WorkloadRecord)
            found[record.name] = record
        return found

    def fact_table(self, table: FactTable) -> dict[str, Any]:
        """A vmlinux fact table (empty when not recorded yet)."""
        path = self.path / FACT_TABLES[table]
        if not path.exists():
            return {}
        data = parse_json(read_text(path), path)
        if not isinstance(data, dict):
            raise KernlabError(f"{path}: expected a JSON object, found {type(data).__name__}")
        return data

    def hist_paths(self) -> list[Path]:
        return sorted((self.path / HIST_DIR).glob("*.hist"))

    def held_hist_paths(self, probe: str) -> list[Path]:
        """The copies of a probe's histogram taken before each graph window (HELD_HIST_DIR)."""
        return sorted((self.path / HELD_HIST_DIR).glob(f"*/{probe}.hist"))

    def text(self, relative: str, why_missing: str = "") -> str:
        return read_text(self.path / relative, why_missing)

    # writes
    def write(self, model: Manifest | Summary | ChainsFile | BranchesFile | ProbeSet | GraphCapture
              | GraphFile) -> None:
        """manifest.json, summary.json, chains.json, branches.json, graph.json, trace/probes.json or
        trace/graph/windows.json, by the model's type."""
        write_model(self.path / FILE_OF[type(model)], model)

    def write_workload(self, record: WorkloadRecord) -> None:
        write_model(self.file(f"{WORKLOADS}/{record.name}.json"), record)

    def write_fact_table(self, table: FactTable, data: dict[str, Any]) -> None:
        write_model(self.path / FACT_TABLES[table], data)

    def append_sample(self, row: dict[str, Any]) -> None:
        with open(self.path / SAMPLES, "a") as handle:
            handle.write(json.dumps(row) + "\n")

    def write_file(self, relative: str, data: str | bytes) -> Path:
        """A text or binary evidence file (console excerpts, hist tables, System.map), written atomically."""
        path = self.file(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data.encode() if isinstance(data, str) else data)
        return path


def find_folders(path: Path) -> list[Path]:
    """Results folders at path: itself, or every run folder below it (a lab's runs, a sweep, the shards of a
    sweep downloaded side by side by CI), in path order."""
    if (path / MANIFEST).is_file():
        return [path]
    found = sorted(p.parent for p in path.rglob(MANIFEST))
    if not found:
        raise KernlabError(f"{path}: no results folder here (no {MANIFEST} in it or below it)")
    return found


def read_aggregate(folder: Path) -> AggregateFile | None:
    """A repeat set's aggregate.json, None when folder is not a repeat set."""
    path = folder / AGGREGATE
    return read_model(path, AggregateFile) if path.is_file() else None


def write_aggregate(folder: Path, aggregate: AggregateFile) -> None:
    write_model(folder / AGGREGATE, aggregate)


def read_sweep(folder: Path) -> SweepPlan:
    return read_model(folder / SWEEP, SweepPlan)


def write_sweep(folder: Path, plan: SweepPlan) -> None:
    write_model(folder / SWEEP, plan)
